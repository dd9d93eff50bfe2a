"""The package built from default settings against what deploy/ configures.

CloudFront is modelled from the templates themselves (cloudfront.yaml, with its parameters'
defaults and the EdgeEventType condition resolved): which viewer headers reach the function
and the origin (the cache policy's and origin request policy's header lists), the origin's
name and protocol, and the TLS name CloudFront checks the origin's certificate against: the
Host it sends when Host is forwarded, else the origin's domain name:
https://docs.aws.amazon.com/AmazonCloudFront/latest/DeveloperGuide/http-502-bad-gateway.html
The local edge proxy speaks plain HTTP, so only this test sees the TLS name.
"""

from __future__ import annotations

import importlib.util
import sys
import zipfile
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from django.test import override_settings

from edge.config import edge_config_from_settings, edge_replica_regions
from edge_lambda.build import PACKAGE_FILES, build_package
from edge_lambda.config import REGIONAL_EDGE_CACHE_REGIONS
from edge_lambda.tests.conftest import (
    MappingTable,
    load_event,
    request_of,
    with_event_type,
)
from tests.cfn import load_template

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
VIEWER_HOST = "gallery.client.com"
# What a hostile viewer adds: each must be gone, or replaced by the function's own value.
VIEWER_HEADERS = {
    "host": VIEWER_HOST,
    "workspace-id": "evil",
    "workspace_id": "evil",
    "x-forwarded-host": "evil.example",
    "x-original-host": "evil.example",
    "forwarded": "host=evil.example",
    "cookie": "session=1",
    "user-agent": "Mozilla/5.0",
    "accept": "text/html",
}


def resolve(template: dict[str, Any], parameters: dict[str, str]) -> dict[str, Any]:
    """The template's resources with parameters, conditions, !Ref and !If resolved."""
    values = {k: v.get("Default") for k, v in template.get("Parameters", {}).items()}
    values.update(parameters)

    def evaluate(node: Any) -> Any:
        if isinstance(node, dict) and len(node) == 1:
            ((key, arg),) = node.items()
            if key == "Ref":
                return values.get(arg, {"Ref": arg}) if arg != "AWS::NoValue" else _NOVALUE
            if key == "Fn::Equals":
                return evaluate(arg[0]) == evaluate(arg[1])
            if key == "Fn::If":
                return evaluate(arg[1] if conditions[arg[0]] else arg[2])
        if isinstance(node, dict):
            out = {k: evaluate(v) for k, v in node.items()}
            return {k: v for k, v in out.items() if v is not _NOVALUE}
        if isinstance(node, list):
            return [v for v in (evaluate(x) for x in node) if v is not _NOVALUE]
        return node

    conditions: dict[str, bool] = {}
    for name, expression in template.get("Conditions", {}).items():
        conditions[name] = bool(evaluate(expression))
    resources = {}
    for name, resource in template["Resources"].items():
        if "Condition" in resource and not conditions[resource["Condition"]]:
            continue
        resources[name] = evaluate(resource)
    return resources


_NOVALUE = object()


def _cloudfront(mode: str) -> dict[str, Any]:
    template = load_template(DEPLOY / "cloudfront.yaml")
    resources = resolve(template, {"EdgeEventType": mode})
    policies = {
        name: res
        for name, res in resources.items()
        if res["Type"] in ("AWS::CloudFront::CachePolicy", "AWS::CloudFront::OriginRequestPolicy")
    }
    config = resources["TemplateDistribution"]["Properties"]["DistributionConfig"]
    behavior = config["DefaultCacheBehavior"]
    (origin,) = config["Origins"]

    def headers_of(reference: Any, key: str) -> set[str]:
        if reference is None:
            return set()
        assert isinstance(reference, dict) and set(reference) == {"Ref"}, reference
        policy = policies[reference["Ref"]]["Properties"]
        found = policy[key]
        if key == "CachePolicyConfig":
            found = found["ParametersInCacheKeyAndForwardedToOrigin"]
        else:
            found = found
        headers = found["HeadersConfig"]
        assert headers["HeaderBehavior"] in ("whitelist", "none"), headers
        return {h.lower() for h in headers.get("Headers", [])}

    (association,) = behavior["LambdaFunctionAssociations"]
    return {
        "event_type": association["EventType"],
        # Headers in the cache key are forwarded too; the origin request policy adds its own.
        "forwarded": headers_of(behavior.get("CachePolicyId"), "CachePolicyConfig")
        | headers_of(behavior.get("OriginRequestPolicyId"), "OriginRequestPolicyConfig"),
        "origin_domain": origin["DomainName"],
        "origin_protocol": origin["CustomOriginConfig"]["OriginProtocolPolicy"],
        "origin_default": template["Parameters"]["OriginDomainName"]["Default"],
    }


def _package(tmp_path: Path, config: dict[str, Any], name: str) -> ModuleType:
    """Build the zip, unpack it as Lambda does and import its handler.py on its own."""
    zip_path = build_package(config, tmp_path / f"{name}.zip")
    task_root = tmp_path / name
    with zipfile.ZipFile(zip_path) as archive:
        archive.extractall(task_root)
    spec = importlib.util.spec_from_file_location(f"edge_package_{name}", task_root / "handler.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    # Its siblings are top-level modules there, as at /var/task: imported from task_root
    # alone, then forgotten, so the next package (another config) imports its own.
    siblings = [file.removesuffix(".py") for file in PACKAGE_FILES if file != "handler.py"]
    shadowed = {name: sys.modules.pop(name) for name in siblings if name in sys.modules}
    sys.path.insert(0, str(task_root))
    try:
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(task_root))
        for name in siblings:
            sys.modules.pop(name, None)
        sys.modules.update(shadowed)
    assert Path(module.normalize_host.__code__.co_filename).parent == task_root
    return module


def _cf_headers(pairs: dict[str, str]) -> dict[str, list[dict[str, str]]]:
    return {k: [{"key": k.title(), "value": v}] for k, v in pairs.items()}


def _origin_request(cf: dict[str, Any], mode: str, fn: ModuleType) -> dict[str, Any]:
    """What CloudFront sends the origin for VIEWER_HEADERS: connect target, TLS name, headers."""
    fixture = "origin-request-custom" if mode == "origin-request" else "viewer-request"
    event = with_event_type(load_event(fixture), mode)
    request = request_of(event)
    if mode == "origin-request":
        # Only forwarded viewer headers exist by now, next to CloudFront's own.
        kept = {k: v for k, v in VIEWER_HEADERS.items() if k in cf["forwarded"]}
        request["headers"] = {
            **_cf_headers(
                {"x-forwarded-for": "203.0.113.9", "via": "2.0 x.cloudfront.net (CloudFront)"}
            ),
            **_cf_headers(kept),
        }
        request["origin"]["custom"]["domainName"] = cf["origin_domain"]
        request["origin"]["custom"]["protocol"] = cf["origin_protocol"].removesuffix("-only")
        result = fn.handler(event)
        assert "status" not in result, result
        sent = {k: v[0]["value"] for k, v in result["headers"].items()}
        target = result["origin"]["custom"]["domainName"]
    else:
        request["headers"] = _cf_headers(VIEWER_HEADERS)
        result = fn.handler(event)
        assert "status" not in result, result
        after = {k: v[0]["value"] for k, v in result["headers"].items()}
        # The function's headers go on only as far as the policies forward them.
        sent = {k: v for k, v in after.items() if k in cf["forwarded"]}
        target = cf["origin_domain"]
        sent.setdefault("host", target)  # Host not forwarded: CloudFront uses the origin's
    return {"target": target, "tls_name": sent.get("host", target), "headers": sent}


@pytest.fixture
def mapping(table: MappingTable) -> MappingTable:
    table.put(VIEWER_HOST, "acme")
    return table


@pytest.mark.integration
def test_default_settings_package_asks_the_origin_for_its_own_name(
    tmp_path: Path, mapping: MappingTable
) -> None:
    cf = _cloudfront("origin-request")
    config = edge_config_from_settings()
    assert config["mode"] == cf["event_type"] == "origin-request"
    assert config["origin_domain"] == cf["origin_default"] == cf["origin_domain"]
    assert cf["origin_protocol"] == "https-only"

    sent = _origin_request(cf, "origin-request", _package(tmp_path, config, "default"))

    # CloudFront connects to the template's origin and checks its certificate against the
    # Host it sends: the origin's own name, which its certificate holds.
    assert sent["target"] == cf["origin_domain"]
    assert sent["tls_name"] == cf["origin_domain"]
    headers = sent["headers"]
    assert headers["workspace-id"] == "acme"
    assert headers["x-forwarded-host"] == VIEWER_HOST
    # No viewer header survives unless the policies forward it and the function keeps it.
    viewer_sent = {k for k in VIEWER_HEADERS if k in headers and headers[k] == VIEWER_HEADERS[k]}
    assert viewer_sent <= cf["forwarded"] - {"host"}
    assert not {"workspace_id", "x-original-host", "forwarded"} & set(headers)


@pytest.mark.integration
def test_rewrite_origin_needs_the_wildcard_the_template_names(
    tmp_path: Path, mapping: MappingTable
) -> None:
    cf = _cloudfront("origin-request")
    config = edge_config_from_settings(rewrite_origin=True)
    sent = _origin_request(cf, "origin-request", _package(tmp_path, config, "rewrite"))
    assert sent["target"] == sent["tls_name"] == f"acme.{cf['origin_domain']}"
    # The OriginDomainName parameter says this mode needs a wildcard certificate.
    template = (DEPLOY / "cloudfront.yaml").read_text()
    assert "wildcard certificate" in template


@pytest.mark.integration
@override_settings(VEDOMAINS_EDGE_MODE="viewer-request")
def test_viewer_request_package_gets_workspace_id_and_only_it_to_the_origin(
    tmp_path: Path, mapping: MappingTable
) -> None:
    cf = _cloudfront("viewer-request")
    config = edge_config_from_settings()
    assert config["mode"] == cf["event_type"] == "viewer-request"
    # Forwarded from the viewer side: the function's workspace-id, nothing else.
    assert cf["forwarded"] == {"workspace-id"}

    sent = _origin_request(cf, "viewer-request", _package(tmp_path, config, "viewer"))

    assert sent["headers"] == {"workspace-id": "acme", "host": cf["origin_domain"]}
    assert sent["tls_name"] == cf["origin_domain"]


def test_origin_request_mode_does_not_forward_a_viewer_workspace_id() -> None:
    """In origin-request mode the function sets the header itself: forwarding the viewer's
    would only hand it a value to strip."""
    assert "workspace-id" not in _cloudfront("origin-request")["forwarded"]


# --------------------------------------------------------------------------- replicas


def _template_replicas() -> set[str]:
    template = load_template(DEPLOY / "dynamodb-global-table.yaml")
    resources = resolve(template, {"AWS::Region": "us-east-1"})
    replicas = resources["MappingsTable"]["Properties"]["Replicas"]
    return {replica["Region"] for replica in replicas}


def test_replica_regions_have_one_source_of_truth() -> None:
    """The template's replicas (defaults), the regions the edge reads and the regional edge
    caches are one set: no replica is paid for and never read, none is read but missing."""
    template = _template_replicas()
    config = edge_config_from_settings()
    read = set(config["replica_regions"].values())
    assert template == set(REGIONAL_EDGE_CACHE_REGIONS)
    assert set(edge_replica_regions()) == template
    assert read == template
    # Every edge region reads its own replica.
    assert all(config["replica_regions"][r] == r for r in REGIONAL_EDGE_CACHE_REGIONS)


@override_settings(VEDOMAINS_EDGE_REPLICA_REGIONS=["us-east-1", "eu-west-1"])
def test_a_narrower_replica_setting_reads_only_those_regions() -> None:
    config = edge_config_from_settings()
    assert set(config["replica_regions"].values()) == {"us-east-1", "eu-west-1"}
