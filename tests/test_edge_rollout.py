"""deploy/rollout_edge_version.py: one UpdateDistribution with IfMatch, and its rollback."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

ROOT = Path(__file__).resolve().parent.parent
_spec = importlib.util.spec_from_file_location(
    "rollout", ROOT / "deploy" / "rollout_edge_version.py")
assert _spec and _spec.loader
rollout = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(rollout)

FN = "arn:aws:lambda:us-east-1:123456789012:function:vedomains-edge-router"


def _config(version: int) -> dict[str, Any]:
    assoc = {"Quantity": 1, "Items": [{"LambdaFunctionARN": f"{FN}:{version}",
                                       "EventType": "origin-request", "IncludeBody": False}]}
    return {
        "CallerReference": "mt", "Comment": "multi-tenant", "Enabled": True,
        "Origins": {"Quantity": 1, "Items": [{"Id": "o", "DomainName": "origin.ve.ai"}]},
        "DefaultCacheBehavior": {"TargetOriginId": "o", "ViewerProtocolPolicy": "https-only",
                                 "LambdaFunctionAssociations": assoc},
    }


def test_stubbed_rollout_is_one_update_with_if_match_retried_on_precondition_failed() -> None:
    cf = boto3.client("cloudfront", region_name="us-east-1", aws_access_key_id="x",
                      aws_secret_access_key="x")
    with Stubber(cf) as stub:
        stub.add_response("get_distribution_config",
                          {"DistributionConfig": _config(7), "ETag": "E1"}, {"Id": "EMT"})
        stub.add_client_error("update_distribution", service_error_code="PreconditionFailed",
                              http_status_code=412)
        stub.add_response("get_distribution_config",
                          {"DistributionConfig": _config(7), "ETag": "E2"}, {"Id": "EMT"})
        stub.add_response("update_distribution", {},
                          {"Id": "EMT", "IfMatch": "E2", "DistributionConfig": _config(8)})
        previous = rollout.rollout(cf, distribution_id="EMT", version_arn=f"{FN}:8", wait=False)
    assert previous == f"{FN}:7"


def test_stubbed_rollback_restores_the_previous_version(tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    cf = boto3.client("cloudfront", region_name="us-east-1", aws_access_key_id="x",
                      aws_secret_access_key="x")
    monkeypatch.setattr(rollout.boto3, "client", lambda *a, **k: cf)
    state = tmp_path / "state.json"
    with Stubber(cf) as stub:
        stub.add_response("get_distribution_config",
                          {"DistributionConfig": _config(7), "ETag": "E1"}, {"Id": "EMT"})
        stub.add_response("update_distribution", {},
                          {"Id": "EMT", "IfMatch": "E1", "DistributionConfig": _config(8)})
        assert rollout.main(["--distribution-id", "EMT", "--version-arn", f"{FN}:8",
                             "--no-wait", "--state-file", str(state)]) == 0
        stub.add_response("get_distribution_config",
                          {"DistributionConfig": _config(8), "ETag": "E3"}, {"Id": "EMT"})
        stub.add_response("update_distribution", {},
                          {"Id": "EMT", "IfMatch": "E3", "DistributionConfig": _config(7)})
        assert rollout.main(["--distribution-id", "EMT", "--rollback", "--no-wait",
                             "--state-file", str(state)]) == 0


def test_a_version_arn_of_another_function_is_refused() -> None:
    with pytest.raises(rollout.RolloutError, match="no association"):
        rollout.swap_version(_config(7), "arn:aws:lambda:us-east-1:123456789012:function:other:3")
    with pytest.raises(rollout.RolloutError, match="numbered"):
        rollout.swap_version(_config(7), f"{FN}:$LATEST")
