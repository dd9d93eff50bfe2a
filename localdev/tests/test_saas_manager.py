"""The CloudFront SaaS Manager emulation on the moto endpoint, through boto3 over HTTP.

Every response is checked twice against botocore's model: the raw XML may only contain
elements the operation's output shape defines, and the parsed result must pass botocore's
own validator for that shape (required members, types).
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from xml.etree import ElementTree

import boto3
import pytest
from botocore.exceptions import ClientError
from botocore.validate import ParamValidator

from domains.integrations import cdn
from edge_lambda.build import default_config
from localdev.demo_origin import DemoOriginServer
from localdev.dns_server import LocalDNSServer
from localdev.edge_proxy import EdgeProxyServer
from localdev.moto_server import MotoHandle, aws_env

pytestmark = pytest.mark.integration

EDGE_IP = "127.0.0.1"
ELSEWHERE_IP = "127.0.0.2"
ORIGIN_CONFIG = {"HTTPPort": 80, "HTTPSPort": 443, "OriginProtocolPolicy": "https-only"}


def _strip_ns(tag: str) -> str:
    return tag.split("}", 1)[-1]


def _check_xml(shape: Any, node: ElementTree.Element, where: str) -> None:
    """Every child element of `node` must be a member (or list member) of `shape`."""
    if shape.type_name == "structure":
        wire = {m.serialization.get("name", name): m for name, m in shape.members.items()}
        for child in node:
            tag = _strip_ns(child.tag)
            assert tag in wire, f"{where}: <{tag}> is not in {shape.name}"
            _check_xml(wire[tag], child, f"{where}/{tag}")
    elif shape.type_name == "list":
        member_name = shape.member.serialization.get("name", "member")
        for child in node:
            assert _strip_ns(child.tag) == member_name, f"{where}: <{child.tag}> in {shape.name}"
            _check_xml(shape.member, child, f"{where}/{member_name}")


@pytest.fixture
def cf(moto: MotoHandle, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    moto.reset()
    for key, value in aws_env(moto.endpoint_url).items():
        monkeypatch.setenv(key, value)
    client = boto3.client("cloudfront", region_name="us-east-1")
    checked: list[str] = []

    def check(operation_model: Any, response_dict: dict[str, Any], **_: Any) -> None:
        shape = operation_model.output_shape
        if shape is None or response_dict["status_code"] >= 300:
            return
        body = response_dict["body"]
        payload = shape.serialization.get("payload")
        if body:
            root = ElementTree.fromstring(body)
            _check_xml(shape.members[payload] if payload else shape, root, operation_model.name)
        checked.append(operation_model.name)

    def validate(http_response: Any, parsed: dict[str, Any], model: Any, **_: Any) -> None:
        if model.output_shape is None or http_response.status_code >= 300:
            return
        data = {k: v for k, v in parsed.items() if k != "ResponseMetadata"}
        report = ParamValidator().validate(data, model.output_shape)
        assert not report.has_errors(), report.generate_report()

    client.meta.events.register("before-parse.cloudfront.*", check)
    client.meta.events.register("after-call.cloudfront.*", validate)
    client.checked = checked
    yield client


@pytest.fixture
def distribution(cf: Any) -> str:
    config = {
        "CallerReference": f"mt-{uuid.uuid4().hex}", "Comment": "multi-tenant", "Enabled": True,
        "ConnectionMode": "tenant-only",
        "Origins": {"Quantity": 1, "Items": [{"Id": "ve", "DomainName": "origin.ve.test",
                                              "CustomOriginConfig": ORIGIN_CONFIG}]},
        "DefaultCacheBehavior": {"TargetOriginId": "ve",
                                 "ViewerProtocolPolicy": "redirect-to-https",
                                 "CachePolicyId": "658327ea-f89d-4fab-a63d-7e88639e58f6"},
    }
    dist_id = str(cf.create_distribution(DistributionConfig=config)["Distribution"]["Id"])
    got = cf.get_distribution_config(Id=dist_id)["DistributionConfig"]
    assert got["ConnectionMode"] == "tenant-only"
    return dist_id


@pytest.fixture
def group(cf: Any) -> dict[str, Any]:
    return dict(cf.create_connection_group(Name="vedomains", Enabled=True)["ConnectionGroup"])


@pytest.fixture
def dns() -> Iterator[LocalDNSServer]:
    with LocalDNSServer(port=0) as server:
        yield server


_POINTED: list[LocalDNSServer] = []


@pytest.fixture(autouse=True)
def _dns_first(cf: Any, moto: MotoHandle, dns: LocalDNSServer) -> Iterator[None]:
    """CloudFront creates a tenant only for a domain that resolves to it: `_tenant` points
    each domain at the edge first, through the DNS server the emulator resolves with."""
    moto.saas_configure(dns_server=f"127.0.0.1:{dns.port}", edge_ips=[EDGE_IP])
    _POINTED[:] = [dns]
    yield
    _POINTED.clear()


def _tenant(cf: Any, distribution: str, group: dict[str, Any], domain: str, **extra: Any
            ) -> dict[str, Any]:
    _point(domain)
    return dict(cf.create_distribution_tenant(
        DistributionId=distribution, Name=domain, Domains=[{"Domain": domain}],
        ConnectionGroupId=group["Id"], Enabled=True,
        Parameters=[{"Name": "workspaceId", "Value": "acme"}],
        Tags={"Items": [{"Key": "vedomains-managed", "Value": "true"}]}, **extra))


def _update(cf: Any, tenant_id: str, **changes: Any) -> dict[str, Any]:
    """UpdateDistributionTenant as the product sends it: the whole tenant, changed."""
    got = cf.get_distribution_tenant(Identifier=tenant_id)
    body = {**cdn.tenant_update_body(got["DistributionTenant"]), **changes}
    return dict(cf.update_distribution_tenant(IfMatch=got["ETag"], **body))


def _point(domain: str) -> None:
    """The domain's A record at the edge, unless the test already gave it one."""
    server = _POINTED[0]
    if not any(r["name"] == domain for r in server.store.records()):
        server.set_record(domain, "A", EDGE_IP)


def _wait(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError("condition not met in time")


def _code(exc: pytest.ExceptionInfo[ClientError]) -> str:
    return str(exc.value.response["Error"]["Code"])


def test_tenant_lifecycle_with_etags_and_deploy_delay(
    cf: Any, moto: MotoHandle, distribution: str, group: dict[str, Any]
) -> None:
    moto.saas_configure(deploy_seconds=0.6)
    created = _tenant(cf, distribution, group, "gallery.client.com")
    tenant, etag = created["DistributionTenant"], created["ETag"]
    assert tenant["Status"] == "InProgress"
    assert tenant["Parameters"] == [{"Name": "workspaceId", "Value": "acme"}]
    _wait(lambda: cf.get_distribution_tenant(Identifier=tenant["Id"])
          ["DistributionTenant"]["Status"] == "Deployed")
    # Found by name (a retried create looks it up) and by domain.
    assert cf.get_distribution_tenant(Identifier="gallery.client.com")["ETag"] == etag
    assert cf.get_distribution_tenant_by_domain(Domain="gallery.client.com")[
        "DistributionTenant"]["Id"] == tenant["Id"]

    with pytest.raises(ClientError) as stale:
        cf.update_distribution_tenant(Id=tenant["Id"], IfMatch="E0000000000000", Enabled=False)
    assert _code(stale) == "PreconditionFailed"
    with pytest.raises(ClientError) as enabled:
        cf.delete_distribution_tenant(Id=tenant["Id"], IfMatch=etag)
    assert _code(enabled) == "ResourceNotDisabled"

    disabled = _update(cf, tenant["Id"], Enabled=False)
    assert disabled["ETag"] != etag and disabled["DistributionTenant"]["Status"] == "InProgress"
    with pytest.raises(ClientError) as deploying:
        cf.delete_distribution_tenant(Id=tenant["Id"], IfMatch=disabled["ETag"])
    assert _code(deploying) == "ResourceNotDisabled"
    _wait(lambda: cf.get_distribution_tenant(Identifier=tenant["Id"])
          ["DistributionTenant"]["Status"] == "Deployed")
    cf.delete_distribution_tenant(Id=tenant["Id"], IfMatch=disabled["ETag"])
    with pytest.raises(ClientError) as gone:
        cf.get_distribution_tenant(Identifier=tenant["Id"])
    assert _code(gone) == "EntityNotFound"
    assert {"CreateDistributionTenant", "GetDistributionTenant", "UpdateDistributionTenant",
            "GetDistributionTenantByDomain"} <= set(cf.checked)


def test_names_domains_and_quotas(cf: Any, moto: MotoHandle, distribution: str,
                                  group: dict[str, Any]) -> None:
    moto.saas_configure(limits={"tenants": 2})
    _tenant(cf, distribution, group, "a.client.com")
    with pytest.raises(ClientError) as same_name:
        _tenant(cf, distribution, group, "a.client.com")
    assert _code(same_name) == "EntityAlreadyExists"
    with pytest.raises(ClientError) as taken:
        cf.create_distribution_tenant(DistributionId=distribution, Name="other-name",
                                      Domains=[{"Domain": "a.client.com"}])
    assert _code(taken) == "CNAMEAlreadyExists"
    _tenant(cf, distribution, group, "b.client.com")
    with pytest.raises(ClientError) as full:
        _tenant(cf, distribution, group, "c.client.com")
    assert _code(full) == "EntityLimitExceeded"
    assert full.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    moto.saas_configure(limits={"tenants": 3})
    _tenant(cf, distribution, group, "c.client.com")

    listed = cf.list_distribution_tenants(AssociationFilter={"ConnectionGroupId": group["Id"]},
                                          MaxItems=2)
    assert len(listed["DistributionTenantList"]) == 2 and listed["NextMarker"]
    rest = cf.list_distribution_tenants(Marker=listed["NextMarker"])
    assert len(rest["DistributionTenantList"]) == 1

    conflicts = cf.list_domain_conflicts(
        Domain="a.client.com",
        DomainControlValidationResource={"DistributionTenantId": cf.get_distribution_tenant(
            Identifier="c.client.com")["DistributionTenant"]["Id"]})["DomainConflicts"]
    assert [c["ResourceType"] for c in conflicts] == ["distribution-tenant"]
    assert {"ListDistributionTenants", "ListDomainConflicts"} <= set(cf.checked)


def test_not_a_multi_tenant_distribution(cf: Any, group: dict[str, Any]) -> None:
    with pytest.raises(ClientError) as exc:
        cf.create_distribution_tenant(DistributionId="E123NOTHERE", Name="x.client.com",
                                      Domains=[{"Domain": "x.client.com"}])
    assert _code(exc) == "EntityNotFound"


def test_move_a_domain_between_tenants(cf: Any, distribution: str, group: dict[str, Any]) -> None:
    first = _tenant(cf, distribution, group, "old-owner.client.com")["DistributionTenant"]
    _update(cf, first["Id"],
            Domains=[{"Domain": "old-owner.client.com"}, {"Domain": "moving.client.com"}])
    second = _tenant(cf, distribution, group, "new-owner.client.com")
    with pytest.raises(ClientError) as source_enabled:
        cf.update_domain_association(
            Domain="moving.client.com", IfMatch=second["ETag"],
            TargetResource={"DistributionTenantId": second["DistributionTenant"]["Id"]})
    assert _code(source_enabled) == "IllegalUpdate"
    _update(cf, first["Id"], Enabled=False)
    moved = cf.update_domain_association(
        Domain="moving.client.com", IfMatch=second["ETag"],
        TargetResource={"DistributionTenantId": second["DistributionTenant"]["Id"]})
    assert moved["ResourceId"] == second["DistributionTenant"]["Id"]
    assert cf.get_distribution_tenant_by_domain(Domain="moving.client.com")[
        "DistributionTenant"]["Id"] == second["DistributionTenant"]["Id"]
    domains = cf.get_distribution_tenant(Identifier=first["Id"])["DistributionTenant"]["Domains"]
    assert [d["Domain"] for d in domains] == ["old-owner.client.com"]
    assert "UpdateDomainAssociation" in cf.checked


def test_connection_group_lookups(cf: Any, group: dict[str, Any]) -> None:
    by_endpoint = cf.get_connection_group_by_routing_endpoint(
        RoutingEndpoint=group["RoutingEndpoint"])["ConnectionGroup"]
    assert by_endpoint["Id"] == group["Id"]
    assert cf.get_connection_group(Identifier="vedomains")["ConnectionGroup"]["Id"] == group["Id"]
    with pytest.raises(ClientError) as dup:
        cf.create_connection_group(Name="vedomains")
    assert _code(dup) == "EntityAlreadyExists"
    assert {"CreateConnectionGroup", "GetConnectionGroupByRoutingEndpoint",
            "GetConnectionGroup"} <= set(cf.checked)


@pytest.fixture
def edge(moto: MotoHandle, cf: Any) -> Iterator[EdgeProxyServer]:
    origin = DemoOriginServer(("127.0.0.1", 0))
    proxy = EdgeProxyServer(("127.0.0.1", 0), origin=f"http://127.0.0.1:{origin.port}",
                            config=default_config(table_name="unused"))
    threads = [threading.Thread(target=s.serve_forever, kwargs={"poll_interval": 0.05},
                                daemon=True) for s in (origin, proxy)]
    for thread in threads:
        thread.start()
    yield proxy
    for server in (proxy, origin):
        server.shutdown()
        server.server_close()


def test_managed_certificate_issues_only_when_dns_points_at_the_edge(
    cf: Any, moto: MotoHandle, distribution: str, group: dict[str, Any], dns: LocalDNSServer,
    edge: EdgeProxyServer,
) -> None:
    moto.saas_configure(dns_server=f"127.0.0.1:{dns.port}", edge_ips=[EDGE_IP],
                        edge_proxy=f"127.0.0.1:{edge.port}", deploy_seconds=0.3,
                        certificate_attach_seconds=0.3)
    dns.set_record(group["RoutingEndpoint"], "A", EDGE_IP)
    dns.set_record("domain.ve.test", "CNAME", group["RoutingEndpoint"])
    dns.set_record("shop.client.com", "A", ELSEWHERE_IP)  # still on the old host
    tenant_request = {"DistributionId": distribution, "Name": "shop.client.com",
                      "Domains": [{"Domain": "shop.client.com"}],
                      "ManagedCertificateRequest": {"ValidationTokenHost": "cloudfront"}}
    # DNS first: CloudFront refuses the tenant while the name does not point at it.
    with pytest.raises(ClientError) as refused:
        cf.create_distribution_tenant(**tenant_request)
    assert _code(refused) == "InvalidArgument"
    assert "Could not verify Domain Name ownership" in refused.value.response["Error"][
        "Message"]
    dns.set_record("shop.client.com", "A", EDGE_IP)
    created = cf.create_distribution_tenant(**tenant_request)
    tenant_id = created["DistributionTenant"]["Id"]
    dns.set_record("shop.client.com", "A", ELSEWHERE_IP)  # moved back before validation

    def details() -> dict[str, Any]:
        return dict(cf.get_managed_certificate_details(Identifier=tenant_id)
                    ["ManagedCertificateDetails"])

    pending = details()
    assert pending["CertificateStatus"] == "pending-validation"
    token = pending["ValidationTokenDetails"][0]
    assert token["RedirectFrom"].startswith("http://shop.client.com/.well-known/pki-validation/")
    assert cf.verify_dns_configuration(Identifier=tenant_id)["DnsConfigurationList"][0][
        "Status"] == "invalid-configuration"

    dns.store.clear()
    dns.set_record(group["RoutingEndpoint"], "A", EDGE_IP)
    dns.set_record("domain.ve.test", "CNAME", group["RoutingEndpoint"])
    dns.set_record("shop.client.com", "CNAME", "domain.ve.test")  # the one record
    assert cf.verify_dns_configuration(Identifier=tenant_id)["DnsConfigurationList"][0][
        "Status"] == "valid-configuration"
    assert details()["CertificateStatus"] == "issued"
    # Issued is not attached: CloudFront attaches it a little later (Customizations and the
    # domain's status), and that is a change it deploys: InProgress, then Deployed.
    tenant = cf.get_distribution_tenant(Identifier=tenant_id)["DistributionTenant"]
    assert "Certificate" not in (tenant.get("Customizations") or {})
    assert tenant["Domains"][0]["Status"] == "inactive"
    _wait(lambda: "Certificate" in (cf.get_distribution_tenant(Identifier=tenant_id)[
        "DistributionTenant"].get("Customizations") or {}))
    tenant = cf.get_distribution_tenant(Identifier=tenant_id)["DistributionTenant"]
    assert tenant["Customizations"]["Certificate"]["Arn"] == details()["CertificateArn"]
    assert tenant["Domains"][0]["Status"] == "active"
    assert tenant["Status"] == "InProgress"
    _wait(lambda: cf.get_distribution_tenant(Identifier=tenant_id)["DistributionTenant"][
        "Status"] == "Deployed")
    assert {"GetManagedCertificateDetails", "VerifyDnsConfiguration"} <= set(cf.checked)


class _TokenServer(ThreadingHTTPServer):
    token_path = ""
    location = ""


class _TokenHandler(BaseHTTPRequestHandler):
    server: _TokenServer

    def do_GET(self) -> None:
        found = self.path == self.server.token_path
        self.send_response(302 if found else 404)
        if found:
            self.send_header("Location", self.server.location)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


def test_self_hosted_token_on_the_customers_current_server(
    cf: Any, moto: MotoHandle, distribution: str, group: dict[str, Any], dns: LocalDNSServer,
) -> None:
    server = _TokenServer((ELSEWHERE_IP, 0), _TokenHandler)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                     daemon=True).start()
    try:
        # Whether CloudFront creates a self-hosted tenant before DNS moves is unverified;
        # the emulator refuses unless told otherwise (tests/test_cdn_tenant.py has both).
        moto.saas_configure(dns_server=f"127.0.0.1:{dns.port}", edge_ips=[EDGE_IP],
                            self_hosted_port=server.server_address[1],
                            prevalidated_before_dns=True)
        dns.set_record("live.client.com", "A", ELSEWHERE_IP)
        tenant_id = _tenant(cf, distribution, group, "live.client.com",
                            ManagedCertificateRequest={"ValidationTokenHost": "self-hosted"})[
            "DistributionTenant"]["Id"]
        token = cf.get_managed_certificate_details(Identifier=tenant_id)[
            "ManagedCertificateDetails"]["ValidationTokenDetails"][0]
        assert cf.get_managed_certificate_details(Identifier=tenant_id)[
            "ManagedCertificateDetails"]["CertificateStatus"] == "pending-validation"
        server.token_path = token["RedirectFrom"].split("live.client.com", 1)[1]
        server.location = token["RedirectTo"]
        assert cf.get_managed_certificate_details(Identifier=tenant_id)[
            "ManagedCertificateDetails"]["CertificateStatus"] == "issued"
    finally:
        server.shutdown()
        server.server_close()


def test_validation_times_out(cf: Any, moto: MotoHandle, distribution: str,
                              group: dict[str, Any]) -> None:
    moto.saas_configure(validation_timeout_seconds=0)
    tenant_id = _tenant(cf, distribution, group, "never.client.com",
                        ManagedCertificateRequest={"ValidationTokenHost": "cloudfront"})[
        "DistributionTenant"]["Id"]
    assert cf.get_managed_certificate_details(Identifier=tenant_id)[
        "ManagedCertificateDetails"]["CertificateStatus"] == "validation-timed-out"


def test_domain_takeover_only_when_dns_points_at_the_edge(
    cf: Any, moto: MotoHandle, distribution: str, group: dict[str, Any], dns: LocalDNSServer,
) -> None:
    moto.saas_configure(dns_server=f"127.0.0.1:{dns.port}", edge_ips=[EDGE_IP])
    old = _tenant(cf, distribution, group, "vd1-moving.client.com")["DistributionTenant"]
    cf.update_distribution_tenant(
        Id=old["Id"], IfMatch=cf.get_distribution_tenant(Identifier=old["Id"])["ETag"],
        Domains=[{"Domain": "moving.client.com"}])
    dns.set_record("moving.client.com", "A", ELSEWHERE_IP)
    with pytest.raises(ClientError) as elsewhere:
        cf.create_distribution_tenant(
            DistributionId=distribution, Name="vd2-moving.client.com",
            Domains=[{"Domain": "moving.client.com"}], OnDomainTakeover="allow")
    assert _code(elsewhere) == "CNAMEAlreadyExists"
    dns.set_record("moving.client.com", "A", EDGE_IP)
    new = cf.create_distribution_tenant(
        DistributionId=distribution, Name="vd2-moving.client.com",
        Domains=[{"Domain": "moving.client.com"}], OnDomainTakeover="allow")["DistributionTenant"]
    assert cf.get_distribution_tenant_by_domain(Domain="moving.client.com")[
        "DistributionTenant"]["Id"] == new["Id"]
    assert cf.get_distribution_tenant(Identifier=old["Id"])["DistributionTenant"]["Domains"] == []
