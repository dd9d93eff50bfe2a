"""The app's IAM policies, as deployed, evaluated on Resource and Condition (tests/iam_policy.py):
every call the code makes, with the tags the code puts in its create calls and therefore the
tags the created resource carries, is allowed; calls outside that scope are refused.

The create requests are the code's own: the integrations run against a recording client that
keeps each call's parameters (botocore's `before-parameter-build` event) and answers from a
table (`before-call`), with no AWS and no emulator: only the requests' shapes matter here.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config

from domains.integrations import acm, aws, cdn
from tests.iam_policy import ACCOUNT, Request, allowed, app_statements, decide

ROOT = Path(__file__).resolve().parent.parent
CF = f"arn:aws:cloudfront::{ACCOUNT}"
CERT = f"arn:aws:acm:us-east-1:{ACCOUNT}:certificate/0f0f0f0f-1111-2222-3333-444455556666"
OTHER_CERT = f"arn:aws:acm:us-east-1:{ACCOUNT}:certificate/aaaaaaaa-1111-2222-3333-444455556666"
PLATFORM = {"vedomains-platform": "true"}
ACM_CONTEXT = {"acm:ValidationMethod": "DNS", "aws:RequestedRegion": "us-east-1"}


class Recorder:
    """boto3 clients that record every call's parameters and answer from `answers`."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, dict[str, Any]]] = []
        self.answers: dict[str, dict[str, Any]] = {
            "GetDistributionConfig": {"ETag": "E1", "DistributionConfig": {
                "CallerReference": "template", "Origins": {"Quantity": 0, "Items": []},
                "Comment": "template", "Enabled": True}},
            "CreateDistribution": {"Distribution": {"Id": "ECLONE", "DomainName": "x"}},
            "CreateDistributionWithTags": {"Distribution": {
                "Id": "ECLONE", "DomainName": "d1.cloudfront.net", "Status": "InProgress"}},
            "CreateDistributionTenant": {"DistributionTenant": {"Id": "dt_1",
                                                                "Status": "InProgress"}},
            "RequestCertificate": {"CertificateArn": CERT},
        }
        self._clients: dict[str, Any] = {}

    def client(self, service: str, region: str | None = None) -> Any:
        if service not in self._clients:
            made = boto3.session.Session().client(
                service, region_name="us-east-1", aws_access_key_id="x",
                aws_secret_access_key="x", config=Config(parameter_validation=False))
            made.meta.events.register(f"before-parameter-build.{service}.*", self._record)
            made.meta.events.register(f"before-call.{service}.*", self._answer)
            self._clients[service] = made
        return self._clients[service]

    def _record(self, params: dict[str, Any], model: Any, **_: Any) -> None:
        self.calls.append((model.service_model.endpoint_prefix, model.name, dict(params)))

    def _answer(self, model: Any, **_: Any) -> tuple[Any, dict[str, Any]]:
        return _Http(), self.answers.get(model.name, {})

    def params(self, operation: str) -> dict[str, Any]:
        found = [p for _, op, p in self.calls if op == operation]
        assert found, f"the code made no {operation} call"
        return found[-1]


class _Http:
    status_code = 200
    headers: dict[str, str] = {}


@pytest.fixture
def recorder(monkeypatch: pytest.MonkeyPatch) -> Iterator[Recorder]:
    made = Recorder()
    monkeypatch.setattr(aws, "client", made.client)
    yield made


def _tags(items: list[dict[str, str]]) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in items}


def _source_tag_sets() -> list[dict[str, str]]:
    """The `tags={...}` the code passes to acm.request_certificate (every caller), read from
    domains/ so a new key cannot slip past this test."""
    found = []
    for path in (
        p
        for app in ("domains", "notifications", "edge", "workflow", "veai", "staff", "api")
        for p in (ROOT / app).rglob("*.py")
    ):
        for body in re.findall(r"tags=\{([^}]*)\}", path.read_text()):
            keys = re.findall(r"\"(vedomains-[a-z-]+)\"\s*:", body)
            if keys:
                found.append({k: "v" for k in keys})
    return found


# ---------------------------------------------------------------- the code's own calls

def test_certificates_the_code_requests_are_allowed_and_then_deletable(
        recorder: Recorder) -> None:
    statements = app_statements()
    tag_sets = _source_tag_sets()
    assert any("vedomains-adopted" in t for t in tag_sets), "seed adoption's tags are read"
    for caller_tags in tag_sets:
        acm.request_certificate(hostname="shop.client.com", key="k", tags=caller_tags)
        tags = _tags(recorder.params("RequestCertificate")["Tags"])
        request = Request("acm:RequestCertificate", "*", request_tags=tags, extra=ACM_CONTEXT)
        assert allowed(statements, request), tags
        # Whether the tags are also authorized as AddTagsToCertificate is unverified:
        # allowed either way.
        assert allowed(statements, Request("acm:AddTagsToCertificate", CERT,
                                           request_tags=tags)), tags
        for action in ("acm:DescribeCertificate", "acm:ListTagsForCertificate",
                       "acm:DeleteCertificate"):
            assert allowed(statements, Request(action, CERT, resource_tags=tags)), action
    assert allowed(statements, Request("acm:ListCertificates", "*"))


def test_tenant_calls_are_allowed_on_the_tenant_the_code_creates(recorder: Recorder) -> None:
    statements = app_statements()
    strategy = cdn.SaasTenant(distribution_id="EPLATFORMMULTITEN",
                              connection_group_id="cg_platformconnectiongroup")
    strategy.attach(hostname="shop.client.com", certificate_arn="", reference="vedomains-7",
                    workspace_id="ws1")
    created = recorder.params("CreateDistributionTenant")
    tags = _tags(created["Tags"]["Items"])
    assert tags["vedomains-managed"] == "true"
    assert allowed(statements, Request("cloudfront:CreateDistributionTenant", "*",
                                       request_tags=tags))
    tenant = f"{CF}:distribution-tenant/dt_1"
    for action in ("GetDistributionTenant", "UpdateDistributionTenant",
                   "DeleteDistributionTenant", "VerifyDnsConfiguration",
                   "GetManagedCertificateDetails", "UpdateDomainAssociation"):
        assert allowed(statements, Request(f"cloudfront:{action}", tenant,
                                           resource_tags=tags)), action


def test_the_per_domain_clone_is_tagged_in_its_create_call_and_then_changeable(
        recorder: Recorder) -> None:
    """create_without_alias used CreateDistribution without tags: Update/Delete on the
    clone were denied by the tag condition."""
    statements = app_statements(per_domain=True)
    dists = cdn.DistributionPerDomain(template_distribution_id="EPLATFORMTEMPLATE")
    for make in (
        lambda: dists.attach(hostname="shop.client.com", certificate_arn=CERT,
                             reference="vedomains-7"),
        lambda: dists.create_without_alias(hostname="shop.client.com", certificate_arn=CERT,
                                           reference="vedomains-7"),
    ):
        recorder.calls.clear()
        make()
        assert [op for _, op, _ in recorder.calls if op.startswith("Create")] == [
            "CreateDistributionWithTags"]
        tags = _tags(recorder.params("CreateDistributionWithTags")[
            "DistributionConfigWithTags"]["Tags"]["Items"])
        clone = f"{CF}:distribution/ECLONE"
        # CreateDistributionWithTags = CreateDistribution + TagResource.
        # CreateDistribution names no resource type: IAM checks it against "*".
        assert allowed(statements, Request("cloudfront:CreateDistribution", "*",
                                           request_tags=tags))
        assert not allowed(statements, Request("cloudfront:CreateDistribution", "*"))
        assert allowed(statements, Request("cloudfront:TagResource", clone,
                                           request_tags=tags))
        for action in ("GetDistribution", "GetDistributionConfig", "UpdateDistribution",
                       "DeleteDistribution", "UpdateDomainAssociation"):
            assert allowed(statements, Request(f"cloudfront:{action}", clone,
                                               resource_tags=tags)), action
    # Reading the template to clone it.
    assert allowed(statements, Request("cloudfront:GetDistributionConfig",
                                       f"{CF}:distribution/EPLATFORMTEMPLATE",
                                       resource_tags=PLATFORM))


def test_dynamodb_calls_on_the_table_only() -> None:
    statements = app_statements()
    table = f"arn:aws:dynamodb:us-east-1:{ACCOUNT}:table/domain-workspace-mappings"
    for action in ("GetItem", "BatchGetItem", "PutItem", "UpdateItem", "BatchWriteItem",
                   "Scan"):
        assert allowed(statements, Request(f"dynamodb:{action}", table)), action
    other = f"arn:aws:dynamodb:us-east-1:{ACCOUNT}:table/someone-elses"
    assert not allowed(statements, Request("dynamodb:Scan", other))
    assert not allowed(statements, Request("dynamodb:DeleteTable", table))


# ---------------------------------------------------------------- attacks: refused

def test_attack_app_tags_an_existing_distribution_then_changes_it() -> None:
    """The tag-on-create statement applied to any TagResource: the app could label an
    existing distribution managed and then update or delete it. By default (saas-tenant)
    nothing can be tagged at all."""
    statements = app_statements()
    target = f"{CF}:distribution/ESOMEONEELSE"
    managed = {"vedomains-managed": "true"}
    assert not allowed(statements, Request("cloudfront:TagResource", target,
                                           request_tags=managed))
    assert not allowed(statements, Request("cloudfront:UpdateDistribution", target))
    assert not allowed(statements, Request("cloudfront:DeleteDistribution", target))
    # Nor a tenant (tagged by CreateDistributionTenant itself), nor the connection group.
    for other in (f"{CF}:distribution-tenant/dt_theirs",
                  f"{CF}:connection-group/cg_platformconnectiongroup"):
        assert decide(statements, Request("cloudfront:TagResource", other,
                                          request_tags=managed)) != "allow", other
    # With the per-domain strategy on, still only the managed tag alone, and never a tag
    # removed (which would let a later create reuse a resource).
    per_domain = app_statements(per_domain=True)
    assert not allowed(per_domain, Request("cloudfront:TagResource", target,
                                           request_tags={"vedomains-platform": "false"}))
    assert not allowed(per_domain, Request("cloudfront:TagResource", target, request_tags={
        "vedomains-managed": "true", "owner": "x"}))
    assert decide(per_domain, Request("cloudfront:UntagResource", target,
                                      resource_tags=managed)) == "deny"


def test_attack_app_updates_or_deletes_the_platform_distribution_or_group() -> None:
    for statements in (app_statements(), app_statements(per_domain=True)):
        for name in ("EPLATFORMMULTITEN", "EPLATFORMTEMPLATE"):
            dist = f"{CF}:distribution/{name}"
            for action in ("UpdateDistribution", "DeleteDistribution", "TagResource",
                           "UntagResource"):
                # Even if someone had put our managed tag on it.
                request = Request(f"cloudfront:{action}", dist, request_tags={
                    "vedomains-managed": "true"}, resource_tags={
                    **PLATFORM, "vedomains-managed": "true"})
                assert decide(statements, request) == "deny", (name, action)
        group = f"{CF}:connection-group/cg_platformconnectiongroup"
        for action in ("UpdateConnectionGroup", "DeleteConnectionGroup"):
            assert not allowed(statements, Request(f"cloudfront:{action}", group,
                                                   resource_tags=PLATFORM))


def test_attack_tenant_without_the_managed_tag_is_out_of_reach() -> None:
    """Tenant Get/Update/Delete had no tag condition: the app reached every tenant of the
    account (another team's, or one made by hand)."""
    statements = app_statements()
    theirs = f"{CF}:distribution-tenant/dt_theirs"
    for action in ("GetDistributionTenant", "UpdateDistributionTenant",
                   "DeleteDistributionTenant", "VerifyDnsConfiguration",
                   "GetManagedCertificateDetails", "CreateInvalidationForDistributionTenant"):
        assert not allowed(statements, Request(f"cloudfront:{action}", theirs,
                                               resource_tags={"team": "other"})), action
    # A create must carry the managed tag and only our keys.
    assert not allowed(statements, Request("cloudfront:CreateDistributionTenant", "*"))
    assert not allowed(statements, Request("cloudfront:CreateDistributionTenant", "*",
                                           request_tags={"vedomains-managed": "true",
                                                         "vedomains-platform": "true"}))


def test_attack_app_deletes_an_untagged_or_platform_certificate() -> None:
    statements = app_statements(per_domain=True)
    assert not allowed(statements, Request("acm:DeleteCertificate", OTHER_CERT))
    assert decide(statements, Request("acm:DeleteCertificate", OTHER_CERT, resource_tags={
        **PLATFORM, "vedomains-managed": "true"})) == "deny"
    # The platform's certificate cannot be labelled ours, nor any tag removed.
    assert decide(statements, Request("acm:AddTagsToCertificate", OTHER_CERT,
                                      request_tags={"vedomains-managed": "true"},
                                      resource_tags=PLATFORM)) == "deny"
    assert decide(statements, Request("acm:RemoveTagsFromCertificate", CERT,
                                      resource_tags={"vedomains-managed": "true"})) == "deny"
    # Requests: only DNS validation in us-east-1, only with our tag and keys.
    managed = {"vedomains-managed": "true"}
    assert not allowed(statements, Request("acm:RequestCertificate", "*",
                                           request_tags=managed,
                                           extra={**ACM_CONTEXT,
                                                  "acm:ValidationMethod": "EMAIL"}))
    assert not allowed(statements, Request("acm:RequestCertificate", "*",
                                           extra=ACM_CONTEXT))
    assert not allowed(statements, Request("acm:RequestCertificate", "*", request_tags={
        **managed, "vedomains-platform": "true"}, extra=ACM_CONTEXT))


def test_attack_platform_resources_lack_the_platform_tag_the_deny_relies_on() -> None:
    """The multi-tenant distribution and the connection group were tagged only app=vedomains:
    the deny on vedomains-platform did not cover them."""
    from tests.cfn import load_template

    kinds = {"AWS::CloudFront::Distribution", "AWS::CloudFront::ConnectionGroup"}
    seen = []
    for path in (ROOT / "deploy").glob("*.yaml"):
        for name, resource in load_template(path)["Resources"].items():
            if resource["Type"] in kinds:
                tags = {t["Key"]: t["Value"] for t in resource["Properties"].get("Tags", [])}
                assert tags.get("vedomains-platform") == "true", (path.name, name)
                seen.append(name)
    assert {"MultiTenantDistribution", "ConnectionGroup", "TemplateDistribution"} <= set(seen)


MANAGED = {"vedomains-managed": "true"}
TABLE = f"arn:aws:dynamodb:us-east-1:{ACCOUNT}:table/domain-workspace-mappings"
# Each operation the code calls, as IAM sees it: the actions it is authorized as, on the
# resource it names, with the tags the code's create calls put on that resource.
CALLS: dict[str, list[Request]] = {
    "acm:RequestCertificate": [Request("acm:RequestCertificate", "*", request_tags={
        **MANAGED, "vedomains-domain-id": "1"}, extra=ACM_CONTEXT)],
    "acm:DescribeCertificate": [Request("acm:DescribeCertificate", CERT,
                                        resource_tags=MANAGED)],
    "acm:ListTagsForCertificate": [Request("acm:ListTagsForCertificate", CERT)],
    "acm:ListCertificates": [Request("acm:ListCertificates", "*")],
    # A removed tenant's CloudFront-managed certificate is labelled ours, then deleted
    # (workflow/cleanup.py): CloudFront requested it, so it carries no tag of ours yet.
    "acm:AddTagsToCertificate": [Request("acm:AddTagsToCertificate", CERT,
                                         request_tags=MANAGED)],
    "acm:DeleteCertificate": [Request("acm:DeleteCertificate", CERT, resource_tags=MANAGED)],
    "cloudfront:CreateDistributionTenant": [
        Request("cloudfront:CreateDistributionTenant", "*", request_tags=MANAGED)],
    "cloudfront:GetDistributionTenant": [Request("cloudfront:GetDistributionTenant",
                                                 f"{CF}:distribution-tenant/dt_1",
                                                 resource_tags=MANAGED)],
    "cloudfront:UpdateDistributionTenant": [Request("cloudfront:UpdateDistributionTenant",
                                                    f"{CF}:distribution-tenant/dt_1",
                                                    resource_tags=MANAGED)],
    "cloudfront:DeleteDistributionTenant": [Request("cloudfront:DeleteDistributionTenant",
                                                    f"{CF}:distribution-tenant/dt_1",
                                                    resource_tags=MANAGED)],
    "cloudfront:ListTagsForResource": [Request("cloudfront:ListTagsForResource",
                                               f"{CF}:distribution-tenant/dt_1",
                                               resource_tags=MANAGED)],
    "cloudfront:GetManagedCertificateDetails": [Request(
        "cloudfront:GetManagedCertificateDetails", f"{CF}:distribution-tenant/dt_1",
        resource_tags=MANAGED)],
    "cloudfront:VerifyDnsConfiguration": [Request("cloudfront:VerifyDnsConfiguration",
                                                  f"{CF}:distribution-tenant/dt_1",
                                                  resource_tags=MANAGED)],
    "cloudfront:UpdateDomainAssociation": [
        Request("cloudfront:UpdateDomainAssociation", f"{CF}:distribution-tenant/dt_1",
                resource_tags=MANAGED),
        Request("cloudfront:UpdateDistributionTenant", f"{CF}:distribution-tenant/dt_1",
                resource_tags=MANAGED)],
    "cloudfront:GetDistribution": [Request("cloudfront:GetDistribution",
                                           f"{CF}:distribution/EPLATFORMMULTITEN",
                                           resource_tags=PLATFORM)],
    "cloudfront:GetDistributionConfig": [Request("cloudfront:GetDistributionConfig",
                                                 f"{CF}:distribution/EPLATFORMTEMPLATE",
                                                 resource_tags=PLATFORM)],
    "cloudfront:ListDistributions": [Request("cloudfront:ListDistributions", "*")],
    "dynamodb:BatchGetItem": [Request("dynamodb:BatchGetItem", TABLE)],
    "dynamodb:BatchWriteItem": [Request("dynamodb:BatchWriteItem", TABLE)],
    "dynamodb:GetItem": [Request("dynamodb:GetItem", TABLE)],
    "dynamodb:PutItem": [Request("dynamodb:PutItem", TABLE)],
    "dynamodb:Scan": [Request("dynamodb:Scan", TABLE)],
    "dynamodb:UpdateItem": [Request("dynamodb:UpdateItem", TABLE)],
}
# Only the distribution-per-domain strategy (and a migration to it) makes these.
PER_DOMAIN: dict[str, list[Request]] = {
    "cloudfront:CreateDistributionWithTags": [
        Request("cloudfront:CreateDistribution", "*", request_tags=MANAGED),
        Request("cloudfront:TagResource", f"{CF}:distribution/ECLONE", request_tags=MANAGED)],
    "cloudfront:UpdateDistribution": [Request("cloudfront:UpdateDistribution",
                                              f"{CF}:distribution/ECLONE",
                                              resource_tags=MANAGED)],
    "cloudfront:DeleteDistribution": [Request("cloudfront:DeleteDistribution",
                                              f"{CF}:distribution/ECLONE",
                                              resource_tags=MANAGED)],
}


def test_every_operation_the_code_calls_is_allowed_as_deployed() -> None:
    from tests.test_security_adversarial import LOCAL_ONLY, _app_operations

    operations = _app_operations() - LOCAL_ONLY
    # Every distribution is created with its tag (a plain CreateDistribution left the
    # per-domain clone untagged, so the app could never update or delete it).
    assert "cloudfront:CreateDistribution" not in operations
    assert operations <= set(CALLS) | set(PER_DOMAIN), "describe the new call here"
    default, per_domain = app_statements(), app_statements(per_domain=True)
    for operation in sorted(operations):
        for request in CALLS.get(operation, []):
            assert allowed(default, request), (operation, request)
        for request in CALLS.get(operation, []) + PER_DOMAIN.get(operation, []):
            assert allowed(per_domain, request), (operation, request)
    # The default deployment (saas-tenant) cannot make the per-domain calls at all.
    for requests in PER_DOMAIN.values():
        assert not any(allowed(default, r) for r in requests)
