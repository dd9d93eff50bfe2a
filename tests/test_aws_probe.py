"""`manage.py aws_probe` against the local AWS (moto + the SaaS Manager emulation).

What is tested is the probe itself: it asks every question, prints rows in
docs/aws-fidelity.md's format, refuses an account whose edge table serves live domains, and
leaves nothing behind, also when a signal interrupts it half-way.
"""

from __future__ import annotations

import io
import os
import signal
from typing import Any

import pytest
from django.core.management import CommandError, call_command

from domains.integrations import aws, edge_store
from domains.management.commands import aws_probe

pytestmark = [pytest.mark.integration, pytest.mark.django_db]

BASE = "probe.client.test"
RUN = "t1"
FAST = {"poll_seconds": 0.05, "wait_seconds": 1, "cleanup_seconds": 15, "run_id": RUN}


def _cf() -> Any:
    return aws.client("cloudfront", "us-east-1")


def _zone() -> str:
    zone = aws.client("route53", "us-east-1").create_hosted_zone(
        Name="client.test", CallerReference="probe-test")
    return str(zone["HostedZone"]["Id"]).rsplit("/", 1)[-1]


def _left_behind(saas_stack: dict[str, Any], zone_id: str) -> dict[str, Any]:
    acm = aws.client("acm", "us-east-1").list_certificates()["CertificateSummaryList"]
    dists = [d["Id"] for d in _cf().list_distributions()["DistributionList"].get("Items", [])
             if d["Id"] != saas_stack["distribution_id"]]
    records = [r for r in aws.client("route53", "us-east-1").list_resource_record_sets(
        HostedZoneId=zone_id)["ResourceRecordSets"] if r["Type"] not in {"NS", "SOA"}]
    return {"tenants": _cf().list_distribution_tenants()["DistributionTenantList"],
            "certificates": acm, "distributions": dists, "records": records}


def _probe(zone_id: str, **extra: Any) -> str:
    out = io.StringIO()
    call_command("aws_probe", hostname=BASE, hosted_zone_id=zone_id, stdout=out,
                 **{**FAST, **extra})
    return out.getvalue()


def test_aws_probe_answers_every_question_as_fidelity_rows_and_deletes_all_it_made(
    saas_stack: dict[str, Any], dns_server: Any,
) -> None:
    # The name the probe points at the connection group once it has a zone to write; the
    # emulator resolves through the local DNS server, so it gets the same record there.
    dns_server.set_record(f"dns-{RUN}.{BASE}", "CNAME", "domain.ve.ai")
    zone_id = _zone()
    output = _probe(zone_id)
    table = output[output.rindex(aws_probe.HEADER):].strip().splitlines()
    assert table[:2] == aws_probe.HEADER.splitlines()
    rows = table[2:]
    assert len(rows) == len(aws_probe.QUESTIONS)
    for row, (behaviour, emulator, test) in zip(rows, aws_probe.QUESTIONS.values(),
                                                strict=True):
        cells = [c.strip() for c in row.strip("|").split(" | ")]
        assert cells[0] == behaviour and cells[2] == emulator and cells[3] == test
        assert cells[1].startswith("aws_probe ")
    answers = dict(zip(aws_probe.QUESTIONS, rows, strict=True))
    assert ": no |" in answers["get_returns_tags"]  # the emulator never returns Tags
    assert "refused: InvalidArgument" in answers["partial_update"]
    assert ": accepted |" in answers["whole_update"]
    assert "still in ACM" in answers["delete_keeps_managed_cert"]
    assert "created tenant dt_" in output
    assert _left_behind(saas_stack, zone_id) == {
        "tenants": [], "certificates": [], "distributions": [], "records": []}


def test_aws_probe_cleans_up_when_interrupted_by_a_signal(
    saas_stack: dict[str, Any], dns_server: Any, monkeypatch: pytest.MonkeyPatch,
) -> None:
    dns_server.set_record(f"dns-{RUN}.{BASE}", "CNAME", "domain.ve.ai")
    zone_id = _zone()

    def killed(self: aws_probe.Probe) -> str:
        os.kill(os.getpid(), signal.SIGTERM)  # as `kill <pid>` would, mid-question
        raise AssertionError("the signal did not stop the probe")

    monkeypatch.setattr(aws_probe.Probe, "_whole_update", killed)
    out = io.StringIO()
    with pytest.raises(CommandError, match="interrupted by SIGTERM"):
        call_command("aws_probe", hostname=BASE, hosted_zone_id=zone_id, stdout=out, **FAST)
    assert "created tenant dt_" in out.getvalue() and "deleted tenant dt_" in out.getvalue()
    assert _left_behind(saas_stack, zone_id) == {
        "tenants": [], "certificates": [], "distributions": [], "records": []}
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL or callable(
        signal.getsignal(signal.SIGTERM))


def test_aws_probe_refuses_an_account_with_live_mappings(
    saas_stack: dict[str, Any],
) -> None:
    edge_store.put_item(edge_store.EdgeItem(domain="live.client.com", workspace_id="acme",
                                            status="active", version=1))
    with pytest.raises(CommandError, match="active mappings"):
        call_command("aws_probe", hostname=BASE, stdout=io.StringIO(), **FAST)
    assert _cf().list_distribution_tenants()["DistributionTenantList"] == []


def test_aws_probe_rejects_a_bad_hostname(saas_stack: dict[str, Any]) -> None:
    with pytest.raises(CommandError, match="--hostname"):
        call_command("aws_probe", hostname="not a host", stdout=io.StringIO(), **FAST)


def test_stubbed_shape_a_partial_update_that_clears_fields_is_undone_with_the_whole_tenant(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """If AWS took a partial update as the whole tenant, the probe puts the tenant back
    (without a domain it could not even be disabled for its clean-up)."""
    import boto3
    from botocore.stub import Stubber

    client = boto3.client("cloudfront", region_name="us-east-1", aws_access_key_id="x",
                          aws_secret_access_key="x")
    monkeypatch.setattr(aws_probe.Probe, "_cf", staticmethod(lambda: client))
    whole = {"Id": "dt_1", "DistributionId": "EMT", "Enabled": True,
             "Domains": [{"Domain": f"cf-{RUN}.{BASE}"}],
             "Parameters": [{"Name": "workspaceId", "Value": "aws-probe"}]}
    cleared = {"Id": "dt_1", "DistributionId": "EMT", "Enabled": True, "Domains": []}
    probe = aws_probe.Probe(hostname=BASE, zone_id="", distribution_id="EMT",
                            connection_group_id="", poll=0, wait=0, cleanup_wait=0,
                            write=lambda line: None, run=RUN)
    probe.tenant = "dt_1"
    with Stubber(client) as stub:
        stub.add_response("get_distribution_tenant",
                          {"DistributionTenant": whole, "ETag": "E1"}, {"Identifier": "dt_1"})
        stub.add_response("update_distribution_tenant", {"ETag": "E2"},
                          {"Id": "dt_1", "IfMatch": "E1", "Enabled": True})
        stub.add_response("get_distribution_tenant",
                          {"DistributionTenant": cleared, "ETag": "E2"}, {"Identifier": "dt_1"})
        stub.add_response("update_distribution_tenant", {"ETag": "E3"},
                          {**whole, "IfMatch": "E2"})
        assert probe._partial_update() == "accepted; cleared: Domains, Parameters"
        stub.assert_no_pending_responses()
