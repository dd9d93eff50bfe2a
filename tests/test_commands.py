"""Every management command through call_command: output, effect, and bad input as a
CommandError (non-zero exit, one line). backfill_edge, create_edge_table and reconcile_edge
are also covered against moto in tests/test_edge_sync.py, local_dns in localdev/tests."""

from __future__ import annotations

import json
import zipfile
from datetime import timedelta
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from domains.models import DomainStatus
from edge_lambda.build import CONFIG_FILENAME, PACKAGE_FILES
from tests.factories import CustomDomainFactory, WorkspaceFactory
from tests.notify_helpers import TaskRecorder

pytestmark = pytest.mark.django_db


def run(*args: str) -> str:
    out = StringIO()
    call_command(*args, stdout=out, stderr=StringIO())
    return out.getvalue()


# --- check_domains ----------------------------------------------------------------------------


def test_check_domains_dry_run_lists_what_is_due_and_changes_nothing() -> None:
    due = CustomDomainFactory(hostname="due.client.com", next_check_at=timezone.now())
    CustomDomainFactory(hostname="later.client.com",
                        next_check_at=timezone.now() + timedelta(hours=1))
    out = run("check_domains", "--dry-run")
    assert out.splitlines() == ["would check due.client.com (pending_validation)",
                                "1 domains would be checked"]
    due.refresh_from_db()
    assert due.check_count == 0


def test_check_domains_checks_a_named_hostname_now(
    dns_server: Any, queued_tasks: TaskRecorder, django_capture_on_commit_callbacks: Any
) -> None:
    later = timezone.now() + timedelta(hours=1)
    domain = CustomDomainFactory(hostname="shop.client.com", next_check_at=later)
    with django_capture_on_commit_callbacks(execute=True):
        out = run("check_domains", "--hostname", "Shop.Client.com.")
    # No CNAME yet: it waits, and no certificate is requested until the CNAME shows intent.
    assert "shop.client.com: waiting (pending_validation)" in out
    assert "checked 1: 1 waiting" in out
    domain.refresh_from_db()
    assert domain.check_count == 1 and domain.checks["dns"]["reason"] == "nxdomain"
    assert queued_tasks.names() == []


def test_check_domains_with_nothing_due_says_so() -> None:
    assert "checked 0: nothing due" in run("check_domains")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--hostname", "not a host"), "--hostname 'not a host'"),
        (("--hostname", "absent.client.com"), "no domain found for absent.client.com"),
        (("--batch-size", "0"), "--batch-size must be at least 1"),
    ],
)
def test_check_domains_refuses_bad_input_with_one_line(args: tuple[str, ...],
                                                       message: str) -> None:
    with pytest.raises(CommandError, match=message.replace(".", r"\.")) as raised:
        run("check_domains", *args)
    assert "\n" not in str(raised.value)


def test_check_domains_all_skips_failed_and_finished_removals() -> None:
    workspace = WorkspaceFactory(slug="acme")
    live = CustomDomainFactory(workspace=workspace, hostname="live.client.com")
    CustomDomainFactory(workspace=workspace, hostname="failed.client.com",
                        status=DomainStatus.FAILED)
    CustomDomainFactory(workspace=workspace, hostname="gone.client.com",
                        status=DomainStatus.REMOVED, next_check_at=None)
    out = run("check_domains", "--all", "--dry-run")
    assert out.splitlines() == [f"would check {live.hostname} (pending_validation)",
                                "1 domains would be checked"]


# --- build_edge_lambda ------------------------------------------------------------------------


def test_build_edge_lambda_dry_run_prints_the_config_from_settings(settings: Any) -> None:
    settings.VEDOMAINS_EDGE_TABLE = "mappings-test"
    config = json.loads(run("build_edge_lambda", "--dry-run"))
    assert config["table_name"] == "mappings-test"
    assert config["table_region"] == settings.VEDOMAINS_AWS_REGION


def test_build_edge_lambda_writes_the_zip_with_the_config_baked_in(tmp_path: Path) -> None:
    target = tmp_path / "edge.zip"
    out = run("build_edge_lambda", "--output", str(target))
    assert f"wrote {target.resolve()}" in out
    with zipfile.ZipFile(target) as archive:
        assert sorted(archive.namelist()) == sorted([*PACKAGE_FILES, CONFIG_FILENAME])
        config = json.loads(archive.read(CONFIG_FILENAME))
    assert config["table_name"] == "domain-workspace-mappings"


def test_build_edge_lambda_refuses_an_invalid_config(settings: Any, tmp_path: Path) -> None:
    settings.VEDOMAINS_EDGE_MODE = "sideways"
    with pytest.raises(CommandError, match="invalid edge configuration"):
        run("build_edge_lambda", "--output", str(tmp_path / "edge.zip"))
    assert not (tmp_path / "edge.zip").exists()
