"""Cleanup of a removed domain: detach from the CDN, tombstone at the edge, delete the
certificate.

Resumable: each step is recorded as it completes, and a step that cannot finish yet (a
distribution still deploying) reschedules the domain (`next_check_at`), so the check
dispatcher calls `domain_cleanup` again until nothing is left.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from domains.integrations import acm, cdn
from domains.integrations.errors import IntegrationError
from domains.models import CustomDomain, DomainStatus, EventKind
from edge.sync import edge_sync_hostname
from workflow import lifecycle

log = logging.getLogger(__name__)


def _cleanup_retry() -> timedelta:
    return timedelta(seconds=settings.VEDOMAINS_CLEANUP_RETRY_SECONDS)


def domain_cleanup(*, domain_id: int) -> str:
    """Detach from the CDN, tombstone at the edge, delete the certificate; resumable.

    Each step is recorded as it completes; a step that cannot finish yet (a distribution
    still deploying) reschedules the domain so the dispatcher calls this again.
    """
    domain = CustomDomain.objects.select_related("workspace").filter(pk=domain_id).first()
    if domain is None:
        return "missing"
    if domain.status != DomainStatus.REMOVED:
        return "not_removed"
    now = timezone.now()
    try:
        if domain.cdn_resource_id:
            # Through the API that made it, whatever the strategy setting says now.
            detachment = cdn.strategy_for_resource(domain.cdn_resource_id).detach(
                resource_id=domain.cdn_resource_id)
            _record_managed_certificate(domain, detachment.certificate_arn,
                                        tenant_gone=detachment.done)
            if not detachment.done:
                CustomDomain.objects.filter(pk=domain.pk).update(
                    next_check_at=now + _cleanup_retry(), last_error="")
                return "detaching"
            with transaction.atomic():
                CustomDomain.objects.filter(pk=domain.pk,
                                            cdn_resource_id=domain.cdn_resource_id).update(
                    cdn_resource_id="", cdn_domain_name="")
                lifecycle.event_record(domain=domain, kind=EventKind.CDN_DETACHED,
                                      source="system:cleanup",
                                      data={"resource_id": domain.cdn_resource_id,
                                            "detail": detachment.detail})
        if not domain.edge_in_sync:
            edge_sync_hostname(hostname=domain.hostname)
        if domain.certificate_arn:
            acm.delete_certificate(domain.certificate_arn)
            with transaction.atomic():
                CustomDomain.objects.filter(pk=domain.pk,
                                            certificate_arn=domain.certificate_arn).update(
                    certificate_arn="", certificate_status="DELETED")
                lifecycle.event_record(domain=domain, kind=EventKind.CERTIFICATE_DELETED,
                                      source="system:cleanup",
                                      data={"arn": domain.certificate_arn})
    except IntegrationError as exc:
        CustomDomain.objects.filter(pk=domain.pk).update(
            next_check_at=now + _cleanup_retry(), last_error=str(exc)[:2000])
        raise
    domain.refresh_from_db()
    if domain.cleanup_pending:
        CustomDomain.objects.filter(pk=domain.pk).update(next_check_at=now + _cleanup_retry())
        return "pending"
    CustomDomain.objects.filter(pk=domain.pk).update(next_check_at=None, last_error="")
    return "clean"


def _record_managed_certificate(domain: CustomDomain, arn: str, *, tenant_gone: bool) -> None:
    """Keep a tenant's managed certificate ARN so the certificate step below deletes it.

    CloudFront puts the certificate in our ACM ("you own the certificate"), and nothing
    documented deletes it with the tenant; left behind, removed domains pile up against
    ACM's certificate quota. Recorded while the tenant (our only pointer to it) still exists,
    so a crash between the tenant's deletion and ours loses nothing. A domain that also holds
    an ACM certificate of its own (pre-validation) keeps that one here; the managed one is
    then deleted once the tenant is gone, best effort, with an event naming it if that fails.
    """
    if not arn or arn == domain.certificate_arn:
        return
    if domain.certificate_arn and not tenant_gone:
        return
    try:
        acm.tag_as_ours(arn)
    except IntegrationError as exc:
        # Not fatal here: the delete is retried, and its error is what staff see.
        log.warning("could not tag managed certificate %s of %s: %s", arn, domain.hostname, exc)
    if not domain.certificate_arn:
        if CustomDomain.objects.filter(pk=domain.pk, certificate_arn="").update(
                certificate_arn=arn):
            domain.certificate_arn = arn
        return
    try:
        acm.delete_certificate(arn)
    except IntegrationError as exc:
        lifecycle.event_record(domain=domain, kind=EventKind.CDN_DETACHED,
                               source="system:cleanup",
                               data={"managed_certificate_arn": arn, "detail": str(exc)[:500]})
