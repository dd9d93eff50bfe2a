"""Takeover: nobody gets a hostname routed to their workspace without controlling its DNS.

Against moto (server mode) and the loopback DNS server, in-process. The cases:
- a hostname once active for A is activated for B only with B's own ownership TXT, even
  when the customer's CNAME still points at us (the dangling-DNS takeover);
- a squatter's pending claim neither blocks the real owner forever (it fails after the
  pending window, and a TXT proof releases it at once) nor expires on a DNS outage;
- a domain whose DNS left us keeps its owner through the grace period, then is detached
  with nothing left behind: no CloudFront alias, an edge tombstone, no certificate.
tests/test_engine_lifecycle.py has the basic lifecycle; this file adds the attacks.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
import time_machine
from django.utils import timezone
from rest_framework.test import APIClient

from domains.errors import Conflict
from domains.integrations import acm, dns, edge_store
from domains.models import CustomDomain, DomainEvent, DomainStatus, EventKind, Role, Workspace
from edge import sync as edge_sync
from tests.factories import CustomDomainFactory, MembershipFactory, WorkspaceFactory
from tests.faults import cloudfront_aliases
from tests.polling import wait_for
from workflow import certificates, checks, cleanup, services

# The per-domain strategy (ACM certificates the engine requests, template clones).
pytestmark = [
    pytest.mark.integration, pytest.mark.django_db,
    pytest.mark.per_domain,
    # Checks are driven in-process here; queued follow-ups are not under test.
    pytest.mark.usefixtures("queued_tasks"),
]

HOST = "gallery.client.com"
TARGET = "domain.ve.ai"



@pytest.fixture
def a(db: Any) -> Workspace:
    return WorkspaceFactory(slug="ws-a")


@pytest.fixture
def b(db: Any) -> Workspace:
    return WorkspaceFactory(slug="ws-b")


def issue(domain: CustomDomain) -> CustomDomain:
    certificates.domain_request_certificate(domain_id=domain.pk)
    domain.refresh_from_db()
    wait_for(lambda: acm.describe_certificate(domain.certificate_arn).status == "ISSUED", 10,
             "moto to issue the certificate")
    return domain


def check(domain: CustomDomain) -> checks.CheckOutcome:
    outcome = checks.domain_check(domain_id=domain.pk, force=True)
    domain.refresh_from_db()
    return outcome


def activate(workspace: Workspace, dns_server: Any, host: str = HOST) -> CustomDomain:
    domain = issue(services.domain_register(workspace=workspace, hostname=host, by=None))
    dns_server.store.set_record(host, "CNAME", TARGET)
    if domain.ownership_required:
        dns_server.store.set_record(domain.ownership_record_name, "TXT",
                                    domain.ownership_record_value)
    assert check(domain).outcome == "activated"
    assert edge_sync.edge_sync_hostname(hostname=host) == "written"
    domain.refresh_from_db()
    return domain


def clean_up(domain: CustomDomain) -> None:
    for _ in range(10):
        if cleanup.domain_cleanup(domain_id=domain.pk) == "clean":
            return
    pytest.fail("cleanup never finished")


def routed_to() -> str | None:
    item = edge_store.get_item(HOST)
    return item.workspace_id if item is not None and item.status == "active" else None


# --- a hostname once active elsewhere ---------------------------------------------------------


def test_dangling_cname_is_not_enough_to_take_a_previously_active_hostname(
    aws_stack: Any, dns_server: Any, a: Workspace, b: Workspace, settings: Any
) -> None:
    """A leaves, its customer's CNAME still points at us: B must prove ownership with B's TXT.

    DNS and certificate are fine for B, and A's old TXT record is still published; neither
    activates B. B stays pending until the pending window ends, then fails, never routed.
    """
    old = activate(a, dns_server)
    dns_server.store.set_record(old.ownership_record_name, "TXT", old.ownership_record_value)
    services.domain_remove(domain=old, by=None, source="test")
    clean_up(old)
    assert routed_to() is None

    squat = issue(services.domain_register(workspace=b, hostname=HOST, by=None))
    assert squat.ownership_required is True
    assert squat.ownership_token != old.ownership_token
    # B is told which TXT record to create: its own token's.
    owner = MembershipFactory(workspace=b, role=Role.OWNER).user
    client = APIClient()
    client.force_authenticate(owner)
    shown = client.get(f"/api/domains/{HOST}/").json()["dns_records"]
    assert {"purpose": "ownership", "type": "TXT", "name": squat.ownership_record_name,
            "value": squat.ownership_record_value} in shown
    for _ in range(3):
        outcome = check(squat)
        assert (outcome.outcome, outcome.detail) == ("waiting", "waiting for ownership")
    assert squat.checks["ownership"]["ok"] is False
    assert squat.status == DomainStatus.PENDING_VALIDATION

    later = timezone.now() + timedelta(
        seconds=settings.VEDOMAINS_PENDING_TIMEOUT_SECONDS) + timedelta(minutes=1)
    with time_machine.travel(later, tick=True):
        outcome = check(squat)
    assert outcome.outcome == "failed"
    assert "ownership TXT" in squat.last_error
    assert squat.activated_at is None
    assert routed_to() is None
    assert cloudfront_aliases()[HOST] == 0


def test_previously_active_hostname_moves_with_the_new_owner_s_txt(
    aws_stack: Any, dns_server: Any, a: Workspace, b: Workspace
) -> None:
    old = activate(a, dns_server)
    services.domain_remove(domain=old, by=None, source="test")
    clean_up(old)
    # B registers the same name in another spelling: the same record, the same rule.
    new = issue(services.domain_register(workspace=b, hostname="GALLERY.Client.com.", by=None))
    assert (new.hostname, new.ownership_required) == (HOST, True)
    assert check(new).detail == "waiting for ownership"
    dns_server.store.set_record(new.ownership_record_name, "TXT", new.ownership_record_value)
    assert check(new).outcome == "activated"
    assert DomainEvent.objects.filter(domain=new, kind=EventKind.OWNERSHIP_VERIFIED).count() == 1
    assert edge_sync.edge_sync_hostname(hostname=HOST) == "written"
    item = edge_store.get_item(HOST)
    assert item is not None and (item.workspace_id, item.status) == ("ws-b", "active")
    assert item.version > old.edge_version  # above A's tombstone
    assert cloudfront_aliases()[HOST] == 1


def test_a_cannot_come_back_once_b_holds_the_hostname(
    aws_stack: Any, dns_server: Any, a: Workspace, b: Workspace
) -> None:
    old = activate(a, dns_server)
    services.domain_remove(domain=old, by=None, source="test")
    clean_up(old)
    activate(b, dns_server)
    with pytest.raises(Conflict) as caught:
        services.domain_register(workspace=a, hostname=HOST, by=None)
    assert caught.value.code == "hostname_taken"
    # The answer tells A which TXT would prove ownership: A's own token, not B's.
    (record,) = caught.value.details["dns_records"]
    assert record["value"] == "vedomains-verification=" + services.ownership_token_for(
        workspace_id=a.pk, hostname=HOST)
    assert routed_to() == "ws-b"


# --- squatting on a pending claim -------------------------------------------------------------


def test_a_squatter_s_pending_claim_expires_and_the_owner_registers(
    aws_stack: Any, dns_server: Any, a: Workspace, b: Workspace, settings: Any
) -> None:
    squat = issue(services.domain_register(workspace=a, hostname=HOST, by=None))
    with pytest.raises(Conflict):
        services.domain_register(workspace=b, hostname=HOST, by=None)
    later = timezone.now() + timedelta(
        seconds=settings.VEDOMAINS_PENDING_TIMEOUT_SECONDS) + timedelta(minutes=1)
    with time_machine.travel(later, tick=True):
        assert check(squat).outcome == "failed"
        owner = services.domain_register(workspace=b, hostname=HOST, by=None)
    squat.refresh_from_db()
    assert squat.status == DomainStatus.REMOVED  # the failed claim was replaced
    assert DomainEvent.objects.filter(domain=squat, kind=EventKind.RELEASED).exists()
    # A's failed claim may have left DNS pointing at us: B still proves ownership.
    assert owner.ownership_required is True
    clean_up(squat)
    with pytest.raises(Exception, match="ResourceNotFound"):
        acm.describe_certificate(squat.certificate_arn or "arn:aws:acm:us-east-1:1:x/none")


@pytest.mark.parametrize("answers_again", [True, False])
def test_a_dns_outage_at_the_deadline_does_not_end_a_pending_claim(
    aws_stack: Any, dns_server: Any, a: Workspace, settings: Any, answers_again: bool
) -> None:
    """Timeout or SERVFAIL is no verdict: the claim fails once DNS answers, or at the latest
    when lookups still fail at twice the pending window (so a claim cannot be held for ever).
    """
    domain = issue(services.domain_register(workspace=a, hostname=HOST, by=None))
    window = timedelta(seconds=settings.VEDOMAINS_PENDING_TIMEOUT_SECONDS)
    with time_machine.travel(timezone.now() + window + timedelta(minutes=1), tick=True):
        for fault in ("timeout", "servfail"):
            dns_server.store.set_fault(fault)
            outcome = check(domain)
            assert (outcome.outcome, domain.status) == ("waiting",
                                                        DomainStatus.PENDING_VALIDATION), fault
            assert domain.next_check_at is not None
        if answers_again:
            dns_server.store.clear_faults()
            assert check(domain).outcome == "failed"
            return
    with time_machine.travel(timezone.now() + 2 * window + timedelta(minutes=1), tick=True):
        assert check(domain).outcome == "failed"
    assert "DNS lookup failed" in domain.last_error


def test_the_owner_s_txt_proof_releases_a_pending_claim_at_once(
    aws_stack: Any, dns_server: Any, a: Workspace, b: Workspace
) -> None:
    squat = issue(services.domain_register(workspace=a, hostname=HOST, by=None))
    owner = MembershipFactory(workspace=b, role=Role.OWNER).user
    client = APIClient()
    client.force_authenticate(owner)
    r = client.post("/api/domains/", {"hostname": HOST, "workspace": "ws-b"}, format="json")
    assert r.status_code == 409
    (txt,) = r.json()["error"]["details"]["dns_records"]
    dns_server.store.set_record(txt["name"], "TXT", txt["value"])

    r = client.post("/api/domains/", {"hostname": HOST, "workspace": "ws-b"}, format="json")
    assert r.status_code == 201, r.content
    squat.refresh_from_db()
    assert squat.status == DomainStatus.REMOVED
    released = DomainEvent.objects.get(domain=squat, kind=EventKind.RELEASED)
    assert (released.actor, released.data["to_workspace"]) == (owner, "ws-b")
    new = CustomDomain.objects.get(hostname=HOST, workspace=b)
    assert new.ownership_verified_at is not None  # proven once, not asked again
    clean_up(squat)
    assert not CustomDomain.objects.get(pk=squat.pk).certificate_arn

    issue(new)
    dns_server.store.set_record(HOST, "CNAME", TARGET)
    assert check(new).outcome == "activated"


def test_a_txt_lookup_failure_never_releases_a_claim(
    aws_stack: Any, dns_server: Any, a: Workspace, b: Workspace
) -> None:
    services.domain_register(workspace=a, hostname=HOST, by=None)
    token = services.ownership_token_for(workspace_id=b.pk, hostname=HOST)
    dns_server.store.set_record(f"_vedomains-challenge.{HOST}", "TXT",
                                f"vedomains-verification={token}")
    dns_server.store.set_fault("servfail")
    with pytest.raises(Conflict):
        services.domain_register(workspace=b, hostname=HOST, by=None)
    assert CustomDomain.objects.get(hostname=HOST, status=DomainStatus.PENDING_VALIDATION
                                    ).workspace == a


def test_a_txt_proof_moves_an_active_hostname_without_routing_it_twice(
    aws_stack: Any, dns_server: Any, a: Workspace, b: Workspace
) -> None:
    """A holds and routes the name; its real owner B proves control and takes it over."""
    old = activate(a, dns_server)
    token = services.ownership_token_for(workspace_id=b.pk, hostname=HOST)
    dns_server.store.set_record(f"_vedomains-challenge.{HOST}", "TXT",
                                f"vedomains-verification={token}")
    new = issue(services.domain_register(workspace=b, hostname=HOST, by=None))
    old.refresh_from_db()
    assert old.status == DomainStatus.REMOVED
    # The old route is gone from the edge before the new one exists.
    assert edge_sync.edge_sync_hostname(hostname=HOST) == "written"
    assert routed_to() is None
    clean_up(old)
    assert cloudfront_aliases()[HOST] == 0
    assert check(new).outcome == "activated"
    edge_sync.edge_sync_hostname(hostname=HOST)
    assert routed_to() == "ws-b"
    assert cloudfront_aliases()[HOST] == 1


# --- DNS that left us ------------------------------------------------------------------------


def test_grace_keeps_the_owner_then_detachment_leaves_nothing_to_claim(
    aws_stack: Any, dns_server: Any, a: Workspace, b: Workspace, settings: Any
) -> None:
    domain = activate(a, dns_server)
    arn = domain.certificate_arn
    dns_server.store.set_record(HOST, "CNAME", "elsewhere.example.net")
    assert check(domain).outcome == "misconfigured"
    # During the grace period A keeps the name (and its route): B cannot claim it.
    with pytest.raises(Conflict):
        services.domain_register(workspace=b, hostname=HOST, by=None)
    assert routed_to() == "ws-a"

    later = timezone.now() + timedelta(
        seconds=settings.VEDOMAINS_MISCONFIGURED_GRACE_SECONDS) + timedelta(minutes=1)
    with time_machine.travel(later, tick=True):
        assert check(domain).outcome == "detached"
        clean_up(domain)
        # Whoever registers it next must prove ownership: it was active before.
        newcomer = services.domain_register(workspace=b, hostname=HOST, by=None)
    assert newcomer.ownership_required is True
    item = edge_store.get_item(HOST)
    assert item is not None and item.status == "inactive"
    assert cloudfront_aliases()[HOST] == 0
    with pytest.raises(Exception, match="ResourceNotFound"):
        acm.describe_certificate(arn)


def test_dns_fixed_within_grace_returns_the_domain_to_its_owner(
    aws_stack: Any, dns_server: Any, a: Workspace
) -> None:
    domain = activate(a, dns_server)
    dns_server.store.set_record(HOST, "CNAME", "elsewhere.example.net")
    assert check(domain).outcome == "misconfigured"
    dns_server.store.set_record(HOST, "CNAME", TARGET)
    assert check(domain).outcome == "fixed"
    assert (domain.status, domain.misconfigured_at) == (DomainStatus.ACTIVE, None)
    assert routed_to() == "ws-a"
    assert cloudfront_aliases()[HOST] == 1


def test_stubbed_cname_already_exists_from_our_own_released_record_is_waited_out(
    aws_stack: Any, dns_server: Any, a: Workspace, b: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    """B proves ownership while A's distribution still carries the alias.

    Real CloudFront answers B's attach with CNAMEAlreadyExists until A's cleanup has
    dropped the alias (moto does not enforce aliases, hence the Stubber, with the real API
    model). That is not B's fault and must not fail B for good: B waits, A's cleanup runs,
    B is attached on a later check.
    """
    import boto3
    from botocore.stub import ANY, Stubber

    from domains.integrations import aws, cdn

    old = activate(a, dns_server)
    token = services.ownership_token_for(workspace_id=b.pk, hostname=HOST)
    dns_server.store.set_record(f"_vedomains-challenge.{HOST}", "TXT",
                                f"vedomains-verification={token}")
    new = issue(services.domain_register(workspace=b, hostname=HOST, by=None))
    old.refresh_from_db()
    assert old.status == DomainStatus.REMOVED and old.cdn_resource_id  # not detached yet

    template = aws.client("cloudfront", "us-east-1").get_distribution_config(
        Id=aws_stack["template_id"])
    stubbed = boto3.client("cloudfront", region_name="us-east-1")
    with monkeypatch.context() as patch, Stubber(stubbed) as stub:
        patch.setattr(cdn, "_cf", lambda: stubbed)
        stub.add_response("get_distribution_config",
                          {"DistributionConfig": template["DistributionConfig"],
                           "ETag": template["ETag"]}, {"Id": aws_stack["template_id"]})
        stub.add_client_error("create_distribution_with_tags",
                              service_error_code="CNAMEAlreadyExists", http_status_code=409,
                              expected_params={"DistributionConfigWithTags": ANY})
        outcome = check(new)
    assert (outcome.outcome, new.status) == ("waiting", DomainStatus.PENDING_VALIDATION)
    assert new.checks["cdn"]["code"] == "CNAMEAlreadyExists"
    assert new.next_check_at is not None and new.next_check_at < timezone.now() + timedelta(
        minutes=5)

    clean_up(old)
    assert check(new).outcome == "activated"
    assert cloudfront_aliases()[HOST] == 1


@pytest.mark.django_db
def test_ownership_proof_and_its_event_are_recorded_together_or_not_at_all() -> None:
    """A check that read the domain before another process changed its status must record
    neither the proof nor its audit event (the event used to stay without the proof)."""
    domain = CustomDomainFactory(hostname="proof.client.com", ownership_required=True)
    txt = dns.TxtCheck(name=domain.ownership_record_name, values=(domain.ownership_record_value,))
    result = dns.DnsResult(routing=dns.RoutingCheck("proof.client.com", True, "ok", "ok", ()),
                           txt=txt)
    now = timezone.now()
    stale = CustomDomain.objects.get(pk=domain.pk)
    CustomDomain.objects.filter(pk=domain.pk).update(status=DomainStatus.REMOVED)
    checks._pending_ownership(stale, result, {}, now=now, source="test")
    assert CustomDomain.objects.get(pk=domain.pk).ownership_verified_at is None
    assert not DomainEvent.objects.filter(kind=EventKind.OWNERSHIP_VERIFIED).exists()
    # The same check on the current row records both.
    CustomDomain.objects.filter(pk=domain.pk).update(status=DomainStatus.PENDING_VALIDATION)
    fresh = CustomDomain.objects.get(pk=domain.pk)
    assert checks._pending_ownership(fresh, result, {}, now=now, source="test")
    assert CustomDomain.objects.get(pk=domain.pk).ownership_verified_at == now
    assert DomainEvent.objects.filter(kind=EventKind.OWNERSHIP_VERIFIED).count() == 1
