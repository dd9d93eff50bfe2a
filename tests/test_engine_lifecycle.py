"""The whole lifecycle against real servers: moto (server mode) and the loopback DNS server."""

from __future__ import annotations

from datetime import timedelta

import pytest
import time_machine
from django.utils import timezone

from domains.integrations import acm, aws, edge_store
from domains.models import CustomDomain, DomainEvent, DomainStatus, EventKind
from edge import sync as edge_sync
from tests.factories import WorkspaceFactory
from tests.polling import wait_for
from workflow import certificates, checks, cleanup, services

# The per-domain strategy (ACM certificates the engine requests, template clones).
pytestmark = [
    pytest.mark.integration, pytest.mark.django_db,
    pytest.mark.per_domain,
]

HOST = "gallery.client.com"
TARGET = "domain.ve.ai"


def _cloudfront_aliases() -> dict[str, list[str]]:
    cf = aws.client("cloudfront", "us-east-1")
    found: dict[str, list[str]] = {}
    for item in cf.list_distributions()["DistributionList"].get("Items", []) or []:
        found[item["Id"]] = list(item.get("Aliases", {}).get("Items") or [])
    return found


def _wait_issued(arn: str, seconds: float = 10) -> None:
    wait_for(lambda: acm.describe_certificate(arn).status == "ISSUED", seconds,
             "moto to issue the certificate")


def _register_and_activate(workspace, dns_server) -> CustomDomain:
    domain = services.domain_register(workspace=workspace, hostname=HOST, by=None)
    assert certificates.domain_request_certificate(domain_id=domain.pk) == "requested"
    dns_server.store.set_record(HOST, "CNAME", TARGET)
    if domain.ownership_required:
        dns_server.store.set_record(
            domain.ownership_record_name, "TXT", domain.ownership_record_value
        )
    domain.refresh_from_db()
    _wait_issued(domain.certificate_arn)
    outcome = checks.domain_check(domain_id=domain.pk, force=True)
    assert outcome.outcome == "activated", outcome
    assert edge_sync.edge_sync_hostname(hostname=HOST) == "written"
    domain.refresh_from_db()
    return domain


def test_register_to_active_to_misconfigured_to_detached(aws_stack, dns_server, settings):
    workspace = WorkspaceFactory(slug="acme", plan="pro")
    domain = services.domain_register(workspace=workspace, hostname=HOST, by=None)
    assert domain.status == DomainStatus.PENDING_VALIDATION

    assert certificates.domain_request_certificate(domain_id=domain.pk) == "requested"
    domain.refresh_from_db()
    assert domain.certificate_arn.startswith("arn:aws:acm:us-east-1:")
    # Validation records reach the customer as soon as ACM publishes them.
    assert domain.validation_records, "ACM validation CNAME was not recorded"
    assert domain.validation_records[0]["type"] == "CNAME"

    # No DNS yet: the check waits and says why.
    outcome = checks.domain_check(domain_id=domain.pk, force=True)
    assert outcome.outcome == "waiting"
    domain.refresh_from_db()
    assert domain.status == DomainStatus.PENDING_VALIDATION
    assert domain.checks["dns"]["reason"] == "nxdomain"
    assert domain.next_check_at is not None and domain.next_check_at > timezone.now()

    dns_server.store.set_record(HOST, "CNAME", TARGET)
    _wait_issued(domain.certificate_arn)
    outcome = checks.domain_check(domain_id=domain.pk, force=True)
    assert outcome.outcome == "activated"
    domain.refresh_from_db()
    assert domain.status == DomainStatus.ACTIVE
    assert domain.activated_at is not None and domain.verified_at is not None
    assert domain.cdn_resource_id in _cloudfront_aliases()
    assert _cloudfront_aliases()[domain.cdn_resource_id] == [HOST]

    assert edge_sync.edge_sync_hostname(hostname=HOST) == "written"
    item = edge_store.get_item(HOST)
    assert item is not None
    assert (item.workspace_id, item.status, item.version) == ("acme", "active", 1)
    domain.refresh_from_db()
    assert domain.edge_in_sync

    # DNS leaves us: misconfigured, still routed during the grace period.
    dns_server.store.set_record(HOST, "CNAME", "elsewhere.example.net")
    outcome = checks.domain_check(domain_id=domain.pk, force=True)
    assert outcome.outcome == "misconfigured"
    domain.refresh_from_db()
    assert domain.status == DomainStatus.MISCONFIGURED
    assert edge_store.get_item(HOST).status == "active"

    # Grace passes: detached, tombstoned, certificate deleted.
    later = timezone.now() + timedelta(
        seconds=settings.VEDOMAINS_MISCONFIGURED_GRACE_SECONDS) + timedelta(minutes=1)
    with time_machine.travel(later, tick=True):
        outcome = checks.domain_check(domain_id=domain.pk, force=True)
        assert outcome.outcome == "detached"
        for _ in range(10):
            if cleanup.domain_cleanup(domain_id=domain.pk) == "clean":
                break
        else:
            pytest.fail("cleanup never finished")
    domain.refresh_from_db()
    assert domain.status == DomainStatus.REMOVED
    assert domain.cdn_resource_id == "" and domain.certificate_arn == ""
    assert domain.next_check_at is None
    item = edge_store.get_item(HOST)
    assert item is not None and item.status == "inactive" and item.version == 2
    assert HOST not in sum(_cloudfront_aliases().values(), [])
    kinds = list(DomainEvent.objects.filter(domain=domain).values_list("kind", flat=True))
    assert kinds.count(EventKind.STATUS_CHANGED) == 3
    assert EventKind.CDN_DETACHED in kinds and EventKind.CERTIFICATE_DELETED in kinds


def test_remove_cleans_cdn_edge_and_certificate(aws_stack, dns_server):
    domain = _register_and_activate(WorkspaceFactory(slug="acme"), dns_server)
    arn = domain.certificate_arn

    services.domain_remove(domain=domain, by=None, source="test")
    for _ in range(10):
        if cleanup.domain_cleanup(domain_id=domain.pk) == "clean":
            break
    domain.refresh_from_db()
    assert domain.status == DomainStatus.REMOVED and not domain.cleanup_pending
    assert edge_store.get_item(HOST).status == "inactive"
    assert HOST not in sum(_cloudfront_aliases().values(), [])
    with pytest.raises(Exception, match="ResourceNotFound"):
        acm.describe_certificate(arn)


def test_transient_dns_never_changes_an_active_domain(aws_stack, dns_server):
    domain = _register_and_activate(WorkspaceFactory(slug="acme"), dns_server)
    for fault in ("timeout", "servfail", "refused"):
        dns_server.store.set_fault(fault)
        outcome = checks.domain_check(domain_id=domain.pk, force=True)
        assert outcome.outcome == "transient", (fault, outcome)
        domain.refresh_from_db()
        assert domain.status == DomainStatus.ACTIVE
        assert domain.checks["dns"]["transient"] is True
        # Retried soon, not after a day.
        assert domain.next_check_at < timezone.now() + timedelta(minutes=5)
    dns_server.store.clear_faults()
    assert checks.domain_check(domain_id=domain.pk, force=True).outcome == "ok"


def test_pending_domain_fails_after_the_pending_window(aws_stack, dns_server, settings):
    domain = services.domain_register(workspace=WorkspaceFactory(), hostname=HOST, by=None)
    certificates.domain_request_certificate(domain_id=domain.pk)
    later = timezone.now() + timedelta(
        seconds=settings.VEDOMAINS_PENDING_TIMEOUT_SECONDS) + timedelta(minutes=1)
    with time_machine.travel(later, tick=True):
        outcome = checks.domain_check(domain_id=domain.pk, force=True)
    assert outcome.outcome == "failed"
    domain.refresh_from_db()
    assert domain.status == DomainStatus.FAILED
    assert "never pointed at us" in domain.last_error
    assert domain.next_check_at is None


def test_stale_sync_cannot_overwrite_a_newer_item(aws_stack, dns_server):
    domain = _register_and_activate(WorkspaceFactory(slug="acme"), dns_server)
    services.domain_remove(domain=domain, by=None, source="test")
    assert edge_sync.edge_sync_hostname(hostname=HOST) == "written"  # tombstone v2
    stale = edge_store.EdgeItem(HOST, "acme", "active", 1)
    assert edge_store.put_item(stale) is False
    assert edge_store.get_item(HOST).status == "inactive"
    # And a late sync task re-reads Django, so it writes (or keeps) the tombstone.
    assert edge_sync.edge_sync_hostname(hostname=HOST) == "already_current"


def test_hostname_reused_by_another_workspace_gets_a_higher_version(aws_stack, dns_server):
    first = _register_and_activate(WorkspaceFactory(slug="first"), dns_server)
    services.domain_remove(domain=first, by=None, source="test")
    edge_sync.edge_sync_hostname(hostname=HOST)
    # Takeover protection: the hostname was active for another workspace, so the new
    # holder must prove ownership with the TXT record before it is activated.
    pending = services.domain_register(
        workspace=WorkspaceFactory(slug="second"), hostname=HOST, by=None
    )
    assert pending.ownership_required is True
    certificates.domain_request_certificate(domain_id=pending.pk)
    pending.refresh_from_db()
    _wait_issued(pending.certificate_arn)
    assert checks.domain_check(domain_id=pending.pk, force=True).detail == "waiting for ownership"
    dns_server.store.set_record(
        pending.ownership_record_name, "TXT", pending.ownership_record_value
    )
    assert checks.domain_check(domain_id=pending.pk, force=True).outcome == "activated"
    assert edge_sync.edge_sync_hostname(hostname=HOST) == "written"
    item = edge_store.get_item(HOST)
    assert item is not None and item.workspace_id == "second" and item.status == "active"
    assert item.version > 2


def test_two_check_runs_over_the_same_domains_apply_each_transition_once(aws_stack, dns_server):
    workspace = WorkspaceFactory(plan="enterprise")
    domains = [
        services.domain_register(workspace=workspace, hostname=f"d{i}.client.com", by=None)
        for i in range(5)
    ]
    for d in domains:
        certificates.domain_request_certificate(domain_id=d.pk)
        dns_server.store.set_record(d.hostname, "CNAME", TARGET)
    for d in domains:
        d.refresh_from_db()
        _wait_issued(d.certificate_arn)
    ids = [d.pk for d in domains]
    CustomDomain.objects.filter(pk__in=ids).update(next_check_at=timezone.now())
    first = checks.domains_check_batch(domain_ids=ids)
    second = checks.domains_check_batch(domain_ids=ids)  # not due any more: claims nothing
    assert [o.outcome for o in first] == ["activated"] * 5
    assert second == []
    for d in domains:
        assert DomainEvent.objects.filter(domain=d, to_status=DomainStatus.ACTIVE).count() == 1


def test_stubbed_cname_already_exists_fails_the_domain_with_the_reason(
    aws_stack, dns_server, monkeypatch
):
    """moto cannot raise CNAMEAlreadyExists: CloudFront is stubbed (real API model), the
    rest (ACM, DNS, database) is real."""
    import boto3
    from botocore.stub import ANY, Stubber

    from domains.integrations import cdn

    domain = services.domain_register(workspace=WorkspaceFactory(), hostname=HOST, by=None)
    certificates.domain_request_certificate(domain_id=domain.pk)
    dns_server.store.set_record(HOST, "CNAME", TARGET)
    domain.refresh_from_db()
    _wait_issued(domain.certificate_arn)

    real_template = aws.client("cloudfront", "us-east-1").get_distribution_config(
        Id=aws_stack["template_id"]
    )
    stubbed = boto3.client("cloudfront", region_name="us-east-1")
    monkeypatch.setattr(cdn, "_cf", lambda: stubbed)
    with Stubber(stubbed) as stub:
        stub.add_response(
            "get_distribution_config",
            {
                "DistributionConfig": real_template["DistributionConfig"],
                "ETag": real_template["ETag"],
            },
            {"Id": aws_stack["template_id"]},
        )
        stub.add_client_error(
            "create_distribution_with_tags",
            service_error_code="CNAMEAlreadyExists",
            http_status_code=409,
            expected_params={"DistributionConfigWithTags": ANY},
        )
        outcome = checks.domain_check(domain_id=domain.pk, force=True)
    assert outcome.outcome == "failed"
    domain.refresh_from_db()
    assert domain.status == DomainStatus.FAILED
    assert "already an alternate domain name" in domain.last_error
    assert domain.checks["cdn"]["code"] == "CNAMEAlreadyExists"
    assert domain.next_check_at is None  # not retried


def test_cleanup_finishes_when_the_hostname_moved_to_another_workspace(aws_stack, dns_server):
    first = _register_and_activate(WorkspaceFactory(slug="first"), dns_server)
    services.domain_remove(domain=first, by=None, source="test")
    # The hostname is claimed again before the first record's tombstone was pushed.
    second = services.domain_register(workspace=WorkspaceFactory(slug="second"), hostname=HOST,
                                      by=None)
    for _ in range(10):
        if cleanup.domain_cleanup(domain_id=first.pk) == "clean":
            break
    else:
        pytest.fail("the superseded record's cleanup never finished")
    first.refresh_from_db()
    assert not first.cleanup_pending and first.next_check_at is None
    item = edge_store.get_item(HOST)
    assert item is not None and item.status == "inactive"  # nothing routes to `first`
    second.refresh_from_db()
    assert second.status == DomainStatus.PENDING_VALIDATION and second.edge_in_sync


def test_certificate_is_read_only_when_it_can_change_the_outcome(
        aws_stack, dns_server, monkeypatch):
    domain = services.domain_register(workspace=WorkspaceFactory(), hostname=HOST, by=None)
    certificates.domain_request_certificate(domain_id=domain.pk)
    reads: list[str] = []
    real_describe = acm.describe_certificate

    def counting_describe(arn: str) -> acm.Certificate:  # a spy: the real call goes through
        reads.append(arn)
        return real_describe(arn)

    monkeypatch.setattr(acm, "describe_certificate", counting_describe)
    assert checks.domain_check(domain_id=domain.pk, force=True).outcome == "waiting"
    assert len(reads) == 1  # first check: read once, records are known now
    for _ in range(3):  # the customer has not set DNS: no need to ask ACM again yet
        checks.domain_check(domain_id=domain.pk, force=True)
    assert len(reads) == 1

    dns_server.store.set_record(HOST, "CNAME", TARGET)
    domain.refresh_from_db()
    _wait_issued(domain.certificate_arn)
    reads.clear()
    # DNS now points at us: the check reads the certificate on the spot and activates.
    assert checks.domain_check(domain_id=domain.pk, force=True).outcome == "activated"
    assert len(reads) == 1

    # Without DNS, the certificate is still read now and then (ACM may have failed it).
    other = services.domain_register(workspace=WorkspaceFactory(), hostname="other.client.com",
                                     by=None)
    certificates.domain_request_certificate(domain_id=other.pk)
    checks.domain_check(domain_id=other.pk, force=True)
    reads.clear()
    checks.domain_check(domain_id=other.pk, force=True)
    assert reads == []
    with time_machine.travel(timezone.now() + checks.CERTIFICATE_READ_INTERVAL, tick=True):
        checks.domain_check(domain_id=other.pk, force=True)
    assert len(reads) == 1
