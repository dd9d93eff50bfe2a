"""Main-app identities: the local user behind a token's (issuer, subject).

A user is created the first time a subject is seen, from a token or from the main app's
membership sync, whichever comes first; both find the same user afterwards.
"""

from __future__ import annotations

import hashlib
from datetime import timedelta

from django.contrib.auth import get_user_model
from django.contrib.auth.models import User
from django.db import IntegrityError, transaction
from django.utils import timezone

from veai.models import ExternalIdentity

# Refresh last_seen_at at most this often: a write per API request would be waste.
LAST_SEEN_RESOLUTION = timedelta(minutes=5)


def external_username(*, issuer: str, subject: str) -> str:
    # Derived from the identity and never shown as one: the mapping row is what counts, so a
    # subject that looks like an existing username can never sign in as that user.
    digest = hashlib.sha256(f"{issuer}\0{subject}".encode()).hexdigest()[:24]
    return f"veai-{digest}"


def user_for_external_subject(
    *, issuer: str, subject: str, email: str = "", seen: bool = True
) -> User:
    """The local user mapped to (issuer, subject), created on first sight."""
    now = timezone.now()
    identity = (ExternalIdentity.objects.select_related("user")
                .filter(issuer=issuer, subject=subject).first())
    if identity is None:
        try:
            with transaction.atomic():
                user_model = get_user_model()
                user = user_model(username=external_username(issuer=issuer, subject=subject),
                                  email=email)
                user.set_unusable_password()
                user.save()
                identity = ExternalIdentity.objects.create(
                    user=user, issuer=issuer, subject=subject, last_seen_at=now if seen else None)
        except IntegrityError:
            # Two first requests at once: the other one created it.
            identity = ExternalIdentity.objects.select_related("user").get(
                issuer=issuer, subject=subject)
        return identity.user
    user = identity.user
    if email and user.email != email:
        type(user).objects.filter(pk=user.pk).update(email=email)
        user.email = email
    if seen and (identity.last_seen_at is None
                 or now - identity.last_seen_at >= LAST_SEEN_RESOLUTION):
        ExternalIdentity.objects.filter(pk=identity.pk).update(last_seen_at=now)
    return user
