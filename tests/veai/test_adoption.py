"""Adopting a `domain-workspace-mappings` table filled by the seed's functions.

The table lives in moto (server mode); it is filled exactly as the seed's three Lambdas
fill it (registration, certificate validation, DNS verification). A reader thread plays the
edge during the whole adoption and records any moment an active hostname stopped routing.
"""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import pytest
from django.conf import settings
from django.core.management import CommandError, call_command

from domains.integrations import edge_store
from domains.models import CustomDomain, DomainStatus, EventKind
from edge import sync as edge_sync
from tests.factories import MembershipFactory, WorkspaceFactory
from tests.polling import wait_for
from veai.models import SeedAdoption
from workflow import services

pytestmark = [pytest.mark.django_db, pytest.mark.integration]

TARGET = "domain.ve.ai"


def _ddb() -> Any:
    return boto3.client("dynamodb", region_name="us-east-1",
                        endpoint_url=settings.VEDOMAINS_AWS_ENDPOINT_URL)


def _acm() -> Any:
    return boto3.client("acm", region_name="us-east-1",
                        endpoint_url=settings.VEDOMAINS_AWS_ENDPOINT_URL)


def _now() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


# --- the seed's functions, as written in seed 000 (JS -> boto3, same calls and items) -------


def seed_register(domain: str, workspace_id: str) -> str:
    """The registration Lambda: an EMAIL-validated certificate and a pending item."""
    parent = domain.split(".", 1)[1]
    arn = _acm().request_certificate(
        DomainName=domain, ValidationMethod="EMAIL",
        DomainValidationOptions=[{"DomainName": domain, "ValidationDomain": parent}],
    )["CertificateArn"]
    _ddb().put_item(TableName=edge_store.table_name(), Item={
        "domain": {"S": domain}, "workspaceId": {"S": workspace_id},
        "status": {"S": "pending_validation"}, "certificateArn": {"S": arn},
        "createdAt": {"S": _now()}})
    return str(arn)


def seed_validate(domain: str) -> None:
    """The certificate validation Lambda's DynamoDB update once ACM says ISSUED (with the
    attribute-name placeholder real DynamoDB needs for the reserved word `status`)."""
    _ddb().update_item(
        TableName=edge_store.table_name(), Key={"domain": {"S": domain}},
        UpdateExpression="SET #s = :status, verifiedAt = :now",
        ExpressionAttributeNames={"#s": "status"},
        ExpressionAttributeValues={":status": {"S": "active"}, ":now": {"S": _now()}})


def seed_verify(domain: str, workspace_id: str) -> None:
    """The DNS verification Lambda: an active item, no certificate."""
    _ddb().put_item(TableName=edge_store.table_name(), Item={
        "domain": {"S": domain}, "workspaceId": {"S": workspace_id},
        "status": {"S": "active"}, "createdAt": {"S": "2025-03-13T12:00:00Z"},
        "verifiedAt": {"S": "2025-03-13T12:05:00Z"}})


def _wait_issued(arn: str) -> None:
    wait_for(lambda: _acm().describe_certificate(CertificateArn=arn)["Certificate"]["Status"]
             == "ISSUED", 20, "moto to issue the certificate")


def _table() -> dict[str, dict[str, Any]]:
    items = _ddb().scan(TableName=edge_store.table_name(), ConsistentRead=True)["Items"]
    return {i["domain"]["S"]: {k: next(iter(v.values())) for k, v in i.items()} for i in items}


class EdgeWatcher(threading.Thread):
    """Reads the given hostnames' items in a loop, as the edge would, noting any gap."""

    def __init__(self, expected: dict[str, str]) -> None:
        super().__init__(daemon=True)
        self.expected = expected
        self.stop_flag = threading.Event()
        self.reads = 0
        self.gaps: list[str] = []

    def run(self) -> None:
        client = _ddb()
        while not self.stop_flag.is_set():
            for host, workspace in self.expected.items():
                item = client.get_item(TableName=edge_store.table_name(),
                                       Key={"domain": {"S": host}}).get("Item")
                self.reads += 1
                if (not item or item["status"]["S"] != "active"
                        or item["workspaceId"]["S"] != workspace):
                    self.gaps.append(f"{host}: {item}")

    def stop(self) -> None:
        self.stop_flag.set()
        self.join(timeout=10)


@pytest.fixture
def seeded(saas_stack: dict[str, Any], dns_server: Any) -> dict[str, Any]:
    ws = WorkspaceFactory(slug="acme", plan="pro")
    MembershipFactory(workspace=ws)
    # 1. Registered, validated by email, turned active by the validation Lambda.
    arn = seed_register("a1.client.com", "acme")
    _wait_issued(arn)
    seed_validate("a1.client.com")
    # 2. Turned active by the DNS verification Lambda: no certificate at all.
    seed_verify("a2.client.com", "acme")
    # 3. Still pending.
    pending_arn = seed_register("p1.client.com", "acme")
    # 4. A workspace Django does not know.
    seed_verify("u1.other.com", "ghost")
    # 5. Active in the table, but its DNS no longer points at us.
    seed_verify("a3.client.com", "acme")
    for host in ("a1.client.com", "a2.client.com", "p1.client.com", "u1.other.com"):
        dns_server.store.set_record(host, "CNAME", TARGET)
    return {"workspace": ws, "a1_arn": arn, "p1_arn": pending_arn}


def test_dry_run_reports_and_changes_nothing(seeded: dict[str, Any], tmp_path: Path,
                                             capsys: Any) -> None:
    before = _table()
    certs = len(_acm().list_certificates()["CertificateSummaryList"])
    report = tmp_path / "report.json"
    call_command("adopt_seed_table", "--dry-run", "--report", str(report))
    out = capsys.readouterr().out
    assert "dry run (nothing changed): 5 items" in out
    data = json.loads(report.read_text())
    outcomes = {i["hostname"]: (i["outcome"], i.get("reason", "")) for i in data["items"]}
    assert outcomes == {
        "a1.client.com": ("would_adopt", ""),
        "a2.client.com": ("would_request_certificate", ""),
        "p1.client.com": ("would_adopt", ""),
        "u1.other.com": ("skipped", "unknown_workspace"),
        "a3.client.com": ("skipped", "dns_not_pointing"),
    }
    assert _table() == before
    assert len(_acm().list_certificates()["CertificateSummaryList"]) == certs
    assert not CustomDomain.objects.exists() and not SeedAdoption.objects.exists()


def test_adoption_keeps_routing_throughout_and_is_resumable(
    seeded: dict[str, Any], capsys: Any
) -> None:
    watcher = EdgeWatcher({"a1.client.com": "acme", "a2.client.com": "acme",
                           "a3.client.com": "acme"})
    watcher.start()
    try:
        # Interrupted after two items; the next run continues.
        call_command("adopt_seed_table", "--limit", "2")
        assert SeedAdoption.objects.count() == 2
        call_command("adopt_seed_table")
        out = capsys.readouterr().out
        a1 = CustomDomain.objects.get(hostname="a1.client.com")
        assert a1.status == DomainStatus.ACTIVE
        assert a1.certificate_arn == seeded["a1_arn"] and a1.cdn_resource_id
        assert a1.events.filter(kind=EventKind.ADOPTED).exists()
        p1 = CustomDomain.objects.get(hostname="p1.client.com")
        assert p1.status == DomainStatus.PENDING_VALIDATION and not p1.certificate_arn
        assert not CustomDomain.objects.filter(hostname__in=["u1.other.com", "a3.client.com"])
        waiting = SeedAdoption.objects.get(hostname="a2.client.com")
        assert waiting.state == SeedAdoption.State.WAITING_CERTIFICATE
        assert "waiting_certificate" in out
        # Stamped, still routing, then replaced by our item through the usual edge sync.
        assert _table()["a1.client.com"]["version"] == "1"
        assert edge_sync.edge_sync_hostname(hostname="a1.client.com") == "written"
        item = _table()["a1.client.com"]
        assert (item["status"], item["workspaceId"], item["version"]) == ("active", "acme", "2")
        assert "certificateArn" not in item and item["updatedAt"]

        # The certificate requested for a2 is issued: the next run finishes it.
        _wait_issued(waiting.certificate_arn)
        call_command("adopt_seed_table")
        a2 = CustomDomain.objects.get(hostname="a2.client.com")
        assert a2.status == DomainStatus.ACTIVE and a2.cdn_resource_id
        assert edge_sync.edge_sync_hostname(hostname="a2.client.com") == "written"
        assert watcher.reads > 0
    finally:
        watcher.stop()
    assert watcher.gaps == []
    # Unknown workspace and DNS problems stay as they were, reported again each run.
    assert _table()["u1.other.com"].get("version") is None
    assert SeedAdoption.objects.get(hostname="u1.other.com").reason == "unknown_workspace"
    assert SeedAdoption.objects.get(hostname="a3.client.com").reason == "dns_not_pointing"
    # Running again changes nothing.
    rows = CustomDomain.objects.count()
    call_command("adopt_seed_table")
    assert CustomDomain.objects.count() == rows


def test_an_adopted_domain_can_then_be_removed_from_the_edge(seeded: dict[str, Any]) -> None:
    """The point of stamping: without a version our tombstone could never replace the item."""
    call_command("adopt_seed_table")
    a1 = CustomDomain.objects.get(hostname="a1.client.com")
    edge_sync.edge_sync_hostname(hostname="a1.client.com")
    services.domain_remove(domain=a1, by=None, source="test")
    assert edge_sync.edge_sync_hostname(hostname="a1.client.com") == "written"
    assert _table()["a1.client.com"]["status"] == "inactive"
    # The adopted pending domain too: removed before it ever went live.
    p1 = CustomDomain.objects.get(hostname="p1.client.com")
    services.domain_remove(domain=p1, by=None, source="test")
    assert edge_sync.edge_sync_hostname(hostname="p1.client.com") == "written"
    assert _table()["p1.client.com"]["status"] == "inactive"


def test_a_bad_limit_is_a_command_error(db: Any) -> None:
    with pytest.raises(CommandError, match="--limit must be at least 1"):
        call_command("adopt_seed_table", "--limit", "0")
