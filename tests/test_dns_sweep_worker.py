"""DNS-ready first with a real Celery worker on Redis: the sweep task, sent as beat sends it,
finds the CNAME a customer just created and the same task checks the domain, whatever its
backed-off schedule (the per-domain strategy here: the check then requests the certificate,
which the worker also runs)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db.models import F

from domains.models import CustomDomain
from tests.factories import WorkspaceFactory
from tests.polling import wait_for
from workflow import services, tasks

pytestmark = [
    pytest.mark.integration, pytest.mark.worker, pytest.mark.django_db(transaction=True),
    pytest.mark.per_domain,
]
HOST = "shop.sweep-client.com"


def test_the_worker_sweeps_a_backed_off_domain_whose_cname_was_just_set(celery_worker,
                                                                          dns_server):
    workspace = WorkspaceFactory(slug="acme")
    domain = services.domain_register(workspace=workspace, hostname=HOST, by=None)
    # The first check (queued on commit) finds no DNS.
    wait_for(lambda: CustomDomain.objects.get(pk=domain.pk).last_checked_at, 30,
             "the worker's first check",
             on_timeout=lambda: celery_worker.log_path.read_text()[-3000:])
    # Days later in its life: the next check is hours away.
    CustomDomain.objects.filter(pk=domain.pk).update(
        fast_checks_until=None, next_check_at=F("last_checked_at") + timedelta(hours=2))
    assert not CustomDomain.objects.get(pk=domain.pk).certificate_arn

    dns_server.store.set_record(HOST, "CNAME", "domain.ve.ai")
    tasks.pending_dns_sweep.delay()  # what beat sends every VEDOMAINS_DNS_SWEEP_INTERVAL_SECONDS

    wait_for(lambda: CustomDomain.objects.get(pk=domain.pk).certificate_arn, 30,
             "the sweep's check to request the certificate",
             on_timeout=lambda: celery_worker.log_path.read_text()[-3000:])
    swept = CustomDomain.objects.get(pk=domain.pk)
    assert swept.fast_checks_until is not None  # followed closely from now on
