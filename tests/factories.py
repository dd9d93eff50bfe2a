"""factory_boy factories for the records."""

from __future__ import annotations

import factory
from django.contrib.auth import get_user_model

from domains.models import CustomDomain, DomainStatus, Membership, Plan, Role, Workspace
from workflow.services import ownership_token_for


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda o: f"{o.username}@example.com")
    password = factory.PostGenerationMethodCall("set_password", "pw-12345-long")

    @factory.post_generation
    def _save(obj, create: bool, extracted: object, **kwargs: object) -> None:
        if create:
            obj.save()


def staff_with_perms(*codenames: str) -> object:
    """A staff user (not superuser) holding exactly these model permissions."""
    from django.contrib.auth.models import Permission

    user = UserFactory(is_staff=True)
    user.user_permissions.set(Permission.objects.filter(
        content_type__app_label__in=('domains', 'notifications', 'workflow', 'veai'),
        codename__in=codenames))
    return user


class WorkspaceFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Workspace

    slug = factory.Sequence(lambda n: f"ws{n}")
    name = factory.LazyAttribute(lambda o: o.slug.title())
    plan = Plan.PRO


class MembershipFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Membership

    workspace = factory.SubFactory(WorkspaceFactory)
    user = factory.SubFactory(UserFactory)
    role = Role.OWNER


class CustomDomainFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = CustomDomain

    workspace = factory.SubFactory(WorkspaceFactory)
    hostname = factory.Sequence(lambda n: f"gallery{n}.client.com")
    status = DomainStatus.PENDING_VALIDATION
    ownership_token = factory.LazyAttribute(
        lambda o: ownership_token_for(workspace_id=o.workspace.pk, hostname=o.hostname)
    )


# --- notifications and webhooks -----------------------------------------------------------


class WebhookEndpointFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "notifications.WebhookEndpoint"

    name = factory.Sequence(lambda n: f"receiver {n}")
    url = "http://127.0.0.1:9/hooks"
    active = True
