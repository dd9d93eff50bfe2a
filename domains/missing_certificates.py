"""A certificate ACM no longer has: a visible state, and the domain requests a new one.

It happens when someone deletes a pending certificate by hand in the AWS console, and on
every restart of the local stack (moto keeps its certificates in memory). Before, the check
logged ResourceNotFoundException at every tick for ever, and API, admin and dashboard showed
an empty error; the only way out was to remove and register the domain again.

Now the check that meets the missing certificate records it once (status MISSING, the reason
in `last_error` and in the certificate check, a CERTIFICATE_MISSING audit event), forgets
the ARN and queues a new request. The new request uses a new idempotency token: ACM (and
moto) answer a repeated token within an hour with the same, deleted, ARN.
https://docs.aws.amazon.com/acm/latest/APIReference/API_RequestCertificate.html
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from django.db import transaction
from django.db.models import F

from domains import services
from domains.integrations import acm
from domains.integrations.errors import IntegrationError
from domains.models import CustomDomain, DomainEvent, EventKind

log = logging.getLogger(__name__)

MISSING = "MISSING"
NOT_FOUND_CODE = "ResourceNotFoundException"
# The new certificate's request is queued at once; look again soon after.
RECHECK_AFTER = timedelta(seconds=5)


def is_missing(exc: IntegrationError) -> bool:
    return exc.code == NOT_FOUND_CODE


def missing_certificate(arn: str) -> acm.Certificate:
    """What a check sees for a certificate ACM says does not exist."""
    return acm.Certificate(
        arn=arn, status=MISSING,
        failure_reason=f"The certificate {arn} no longer exists in ACM (deleted outside "
        "vedomains, or the local AWS emulator restarted); a new one is being requested.",
    )


def request_key(domain: CustomDomain) -> str:
    """The idempotency key of the domain's next certificate request: a new one after each
    missing certificate, the original one otherwise."""
    key = f"vedomains:{domain.pk}:{domain.hostname}"
    replaced = DomainEvent.objects.filter(domain=domain, kind=EventKind.CERTIFICATE_MISSING).count()
    return f"{key}:{replaced}" if replaced else key


def certificate_replace_missing(*, domain: CustomDomain, cert: acm.Certificate,
                                checks: dict[str, Any], now: datetime, source: str) -> bool:
    """Record the missing certificate and queue a new request; False if the domain moved on
    meanwhile (another check did it, or the status or certificate changed)."""
    checks = {**checks, "certificate": {"ok": False, "detail": cert.failure_reason,
                                        "at": now.isoformat(), "status": MISSING}}
    with transaction.atomic():
        applied = CustomDomain.objects.filter(
            pk=domain.pk, status=domain.status, certificate_arn=cert.arn
        ).update(
            certificate_arn="", certificate_status=MISSING, validation_records=[],
            checks=checks, last_error=cert.failure_reason, last_checked_at=now,
            check_count=F("check_count") + 1, next_check_at=now + RECHECK_AFTER,
            updated_at=now,
        ) == 1
        if applied:
            services.event_record(domain=domain, kind=EventKind.CERTIFICATE_MISSING,
                                  source=source, message=cert.failure_reason,
                                  data={"arn": cert.arn})
            services.enqueue_after_commit("request_certificate", domain.pk)
    if applied:
        log.warning("%s: certificate %s no longer exists; requesting a new one",
                    domain.hostname, cert.arn)
    return applied
