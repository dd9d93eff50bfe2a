"""The DynamoDB projection against moto in server mode: sync, backfill, reconcile, outages."""

from __future__ import annotations

import socket

import boto3
import pytest
from botocore.config import Config
from django.core.management import call_command
from django.utils import timezone

from domains.integrations import edge_store
from domains.integrations.edge_store import EdgeItem
from domains.integrations.errors import IntegrationError
from domains.models import CustomDomain, DomainStatus
from edge import sync as edge_sync
from tests.factories import CustomDomainFactory, WorkspaceFactory
from workflow import services

pytestmark = [pytest.mark.integration, pytest.mark.django_db]


def _active(n: int, workspace=None, prefix: str = "site") -> list[CustomDomain]:
    workspace = workspace or WorkspaceFactory(slug="acme", plan="enterprise")
    now = timezone.now()
    return CustomDomain.objects.bulk_create(
        [
            CustomDomain(
                hostname=f"{prefix}{i}.client.com",
                workspace=workspace,
                status=DomainStatus.ACTIVE,
                ownership_token="t",
                edge_version=1,
                verified_at=now,
                activated_at=now,
            )
            for i in range(n)
        ]
    )


def _closed_port() -> int:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()  # nothing listens there now: connections are refused
    return port


def test_backfill_writes_every_active_mapping_in_batches(aws_stack):
    domains = _active(60)
    CustomDomainFactory(hostname="pending.client.com")  # not routed: not pushed
    counts = edge_sync.edge_backfill()
    assert counts == {"active": 60, "written": 60, "resynced": 0}
    items = {i.domain: i for i in edge_store.scan(segments=3)}
    assert set(items) == {d.hostname for d in domains}
    assert {(i.workspace_id, i.status, i.version) for i in items.values()} == {
        ("acme", "active", 1)
    }
    assert (
        CustomDomain.objects.filter(status=DomainStatus.ACTIVE, edge_synced_version=1).count() == 60
    )


def test_reconcile_finds_and_repairs_missing_extra_and_stale(aws_stack):
    domains = _active(5)
    edge_sync.edge_backfill()
    # Drift of every kind: an item deleted by hand, an item nobody owns, an item pointing
    # at the wrong workspace.
    edge_store._ddb().delete_item(
        TableName=edge_store.table_name(), Key={"domain": {"S": domains[0].hostname}}
    )
    edge_store.put_item(EdgeItem("ghost.client.com", "intruder", "active", 7))
    edge_store._ddb().put_item(
        TableName=edge_store.table_name(),
        Item=EdgeItem(domains[1].hostname, "intruder", "active", 1).to_dynamo(),
    )

    report = edge_sync.edge_reconcile(repair=False)
    assert report.counts() == {
        "scanned": 5,
        "checked": 5,
        "missing": 1,
        "stale": 1,
        "extra": 1,
        "repaired": 0,
    }
    assert report.missing == [domains[0].hostname]
    assert report.extra == ["ghost.client.com"]
    assert report.stale == [domains[1].hostname]

    repaired = edge_sync.edge_reconcile(repair=True)
    assert repaired.counts()["repaired"] == 3
    assert edge_store.get_item(domains[0].hostname).workspace_id == "acme"
    assert edge_store.get_item(domains[1].hostname).workspace_id == "acme"
    ghost = edge_store.get_item("ghost.client.com")
    assert ghost is not None and ghost.status == "inactive" and ghost.version == 8
    clean = edge_sync.edge_reconcile(repair=False).counts()
    assert (clean["missing"], clean["stale"], clean["extra"]) == (0, 0, 0)


def test_reconcile_command_dry_run_prints_the_diff_and_changes_nothing(aws_stack, capsys):
    domains = _active(2)
    call_command("reconcile_edge", "--dry-run")
    out = capsys.readouterr().out
    assert f"missing: {domains[0].hostname}" in out and "2 missing" in out
    assert "nothing repaired" in out
    assert edge_store.get_item(domains[0].hostname) is None
    call_command("reconcile_edge")
    assert "repaired 2" in capsys.readouterr().out
    assert edge_store.get_item(domains[0].hostname) is not None


def test_backfill_and_create_table_commands(aws_stack, capsys):
    call_command("create_edge_table")
    assert "already exists" in capsys.readouterr().out
    _active(3)
    call_command("backfill_edge", "--dry-run")
    assert "would write 3 of 3" in capsys.readouterr().out
    assert list(edge_store.scan()) == []
    call_command("backfill_edge")
    assert "wrote 3 of 3" in capsys.readouterr().out
    assert len(list(edge_store.scan())) == 3


def test_sync_while_dynamodb_is_unreachable_loses_nothing(aws_stack, monkeypatch):
    domain = _active(1)[0]
    CustomDomain.objects.filter(pk=domain.pk).update(edge_version=2, edge_synced_version=1)
    real = edge_store._ddb()
    unreachable = boto3.client(
        "dynamodb",
        region_name="us-east-1",
        endpoint_url=f"http://127.0.0.1:{_closed_port()}",
        config=Config(connect_timeout=0.5, read_timeout=0.5, retries={"max_attempts": 1}),
    )
    monkeypatch.setattr(edge_store, "_ddb", lambda: unreachable)
    with pytest.raises(IntegrationError) as caught:
        edge_sync.edge_sync_hostname(hostname=domain.hostname)
    assert caught.value.permanent is False
    domain.refresh_from_db()
    assert not domain.edge_in_sync  # the pending change is remembered in Django

    monkeypatch.setattr(edge_store, "_ddb", lambda: real)
    assert edge_sync.edge_sync_pending() == 1
    domain.refresh_from_db()
    assert domain.edge_in_sync
    assert edge_store.get_item(domain.hostname).version == 2


def test_a_removed_domain_cannot_come_back_from_a_late_write(aws_stack):
    domain = _active(1)[0]
    assert edge_sync.edge_sync_hostname(hostname=domain.hostname) == "written"
    services.domain_remove(domain=domain, by=None, source="test")
    assert edge_sync.edge_sync_hostname(hostname=domain.hostname) == "written"
    # A task that read the active record before the removal now writes it: refused.
    assert edge_store.put_item(EdgeItem(domain.hostname, "acme", "active", 1)) is False
    assert edge_store.get_item(domain.hostname).status == "inactive"
