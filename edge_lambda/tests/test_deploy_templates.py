"""Every CloudFormation template in deploy/ passes cfn-lint with no errors.

moto cannot deploy global tables, CloudFront policies or Lambda@Edge associations, so
linting against the CloudFormation resource schemas is the check these templates get.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.cfn import load_template

DEPLOY_DIR = Path(__file__).resolve().parents[2] / "deploy"
TEMPLATES = sorted(DEPLOY_DIR.glob("*.yaml"))

# cfn-lint's exit code is a bit mask: 2 = errors, 4 = warnings, 8 = informational.
_ERRORS = 2


def _cfn_lint() -> str:
    found = shutil.which("cfn-lint", path=str(Path(sys.executable).parent)) or shutil.which(
        "cfn-lint"
    )
    if found is None:
        pytest.fail("cfn-lint is not installed (it is in requirements-dev.txt)")
    return found


def test_deploy_has_the_expected_templates() -> None:
    names = {path.name for path in TEMPLATES}
    assert {
        "dynamodb-global-table.yaml",
        "edge-function.yaml",
        "cloudfront.yaml",
        "app-iam-policy.yaml",
        "control-plane.yaml",
    } <= names


@pytest.mark.parametrize("template", TEMPLATES, ids=lambda path: path.name)
def test_template_passes_cfn_lint(template: Path) -> None:
    completed = subprocess.run(
        [_cfn_lint(), "--format", "json", "--", str(template)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    findings = json.loads(completed.stdout or "[]")
    errors = [f for f in findings if f["Level"] == "Error"]
    assert not completed.returncode & _ERRORS and not errors, json.dumps(findings, indent=2)
    assert completed.returncode in (0, 4, 8, 12), completed.stderr  # anything else: crashed


def _load(name: str) -> dict[str, Any]:
    return load_template(DEPLOY_DIR / name)


def test_edge_function_respects_lambda_at_edge_limits() -> None:
    resources = _load("edge-function.yaml")["Resources"]
    function = resources["EdgeFunction"]["Properties"]
    assert function["MemorySize"] == 128 and function["Timeout"] == 5
    assert function["Handler"] == "handler.handler"
    assert "Environment" not in function  # not supported at the edge
    principals = resources["EdgeRole"]["Properties"]["AssumeRolePolicyDocument"]["Statement"][0]
    assert set(principals["Principal"]["Service"]) == {
        "lambda.amazonaws.com",
        "edgelambda.amazonaws.com",
    }
    assert resources["EdgeFunctionVersion"]["Type"] == "AWS::Lambda::Version"


def test_cache_policy_keys_on_host_and_distribution_uses_origin_request() -> None:
    resources = _load("cloudfront.yaml")["Resources"]
    cache = resources["HostCachePolicy"]["Properties"]["CachePolicyConfig"]
    headers = cache["ParametersInCacheKeyAndForwardedToOrigin"]["HeadersConfig"]
    assert headers == {"HeaderBehavior": "whitelist", "Headers": ["Host"]}
    origin = resources["ForwardHostOriginRequestPolicy"]["Properties"]
    assert "Host" in origin["OriginRequestPolicyConfig"]["HeadersConfig"]["Headers"]
    behavior = resources["TemplateDistribution"]["Properties"]["DistributionConfig"][
        "DefaultCacheBehavior"
    ]
    (association,) = behavior["LambdaFunctionAssociations"]
    # The trigger follows the EdgeEventType parameter, origin-request by default (the
    # per-mode policies are checked in test_origin_contract.py).
    assert association["EventType"] == {"Ref": "EdgeEventType"}
    assert _load("cloudfront.yaml")["Parameters"]["EdgeEventType"]["Default"] == "origin-request"


def test_global_table_is_on_demand_with_pitr_and_sse() -> None:
    table = _load("dynamodb-global-table.yaml")["Resources"]["MappingsTable"]["Properties"]
    assert table["TableName"] == {"Ref": "TableName"}
    assert table["BillingMode"] == "PAY_PER_REQUEST"
    assert table["SSESpecification"]["SSEEnabled"] is True
    assert table["KeySchema"] == [{"AttributeName": "domain", "KeyType": "HASH"}]
    home = table["Replicas"][0]
    assert home["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
    for conditional in table["Replicas"][1:]:
        replica = conditional["Fn::If"][1]
        assert replica["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
