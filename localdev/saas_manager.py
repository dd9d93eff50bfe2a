"""CloudFront SaaS Manager, emulated on moto's own endpoint (moto 5 has none of it).

A WSGI middleware in front of moto's app answers the multi-tenant operations the product
calls: distribution tenants, connection groups, managed certificates, domain conflicts and
moves, DNS verification. Everything else goes to moto untouched, so boto3 talks to ONE
endpoint exactly as it would talk to AWS.

Requests are parsed and responses written with botocore's own CloudFront service model
(rest-xml): botocore's XML parser reads the request body against the operation's input
shape, and botocore's rest-xml serializer writes the output shape, so an answer can only
carry fields, nesting and list member names that the model defines. Errors use the codes and
HTTP statuses of the operation's error shapes.
https://docs.aws.amazon.com/cloudfront/latest/APIReference/API_Operations_Amazon_CloudFront.html

What is emulated and how (each knob is live-configurable through POST /_localdev/cloudfront/config):
- ETags: every change gets a new ETag; Update/Delete need IfMatch (InvalidIfMatchVersion when
  missing, PreconditionFailed when stale).
- Deployment: a change leaves the resource `InProgress` for `deploy_seconds` (3 s unless
  configured), then `Deployed`.
- DNS first: CreateDistributionTenant is refused with CloudFront's InvalidArgument ("Could not
  verify Domain Name ownership...") for a domain that does not resolve (through the configured
  DNS server) to an edge IP, as AWS refuses one that does not point at CloudFront.
- An issued managed certificate is attached `certificate_attach_seconds` later: only then
  are `Customizations.Certificate` filled and the tenant's `Domains[].Status` `active`.
- Quotas with the real error code (EntityLimitExceeded): tenants per account, domains per
  tenant, connection groups per account.
- Domains are unique across tenants and moto's distributions (CNAMEAlreadyExists); tenant and
  connection-group names are unique (EntityAlreadyExists), so a retried create is detectable.
- Managed certificates (ValidationTokenHost `cloudfront` or `self-hosted`) become `issued`
  only after an HTTP GET of the validation URL succeeds. The domain is resolved through the
  configured DNS server; if it lands on an edge IP (what CloudFront's IPs are here) the GET
  goes to the local edge proxy (which asks us for the token, as CloudFront serves it),
  otherwise to the resolved address on `self_hosted_port`. So the certificate issues only
  when the customer's DNS really points at us (or, self-hosted, at a server holding the token).
- Multi-tenant distributions: CreateDistribution with `ConnectionMode: tenant-only` goes to
  moto (which ignores the field); we remember the id and put the field back in its answers.
"""

from __future__ import annotations

import copy
import http.client
import io
import json
import re
import secrets
import string
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, unquote
from xml.etree import ElementTree

import botocore.session
import dns.exception
import dns.message
import dns.query
import dns.rdatatype
from botocore import parsers, serialize
from botocore.model import NoShapeFoundError
from moto.acm.models import acm_backends
from moto.cloudfront.models import cloudfront_backends

ACCOUNT_ID = "123456789012"
NAMESPACE = "http://cloudfront.amazonaws.com/doc/2020-05-31/"
CONTROL_PREFIX = "/_localdev/cloudfront/"
TOKEN_PATH_PREFIX = "/.well-known/pki-validation/"
ACM_VALIDATION_HOST = "validation.us-east-1.acm-validations.aws"

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]

_MODEL = botocore.session.get_session().get_service_model("cloudfront")


DEFAULT_DEPLOY_SECONDS = 3.0
DEFAULT_CERTIFICATE_ATTACH_SECONDS = 1.0
# CloudFront's answer to a tenant whose domain does not resolve to it yet
# (https://github.com/aws/aws-sdk-php/issues/3129; docs/aws-fidelity.md).
DNS_NOT_VERIFIED_MESSAGE = (
    "The provided Domain Name is not valid. Could not verify Domain Name ownership. It may "
    "not be pointing to a valid CloudFront resource."
)


def _default_config() -> dict[str, Any]:
    return {
        # Seconds a created or changed resource stays InProgress: a few by default, so the
        # "deploying" step is seen locally and in tests (a test may set it lower explicitly).
        "deploy_seconds": DEFAULT_DEPLOY_SECONDS,
        # Seconds between a managed certificate's issue and CloudFront attaching it to the
        # tenant (Customizations.Certificate filled, Domains[].Status active).
        "certificate_attach_seconds": DEFAULT_CERTIFICATE_ATTACH_SECONDS,
        # Whether a tenant whose certificate needs no DNS (self-hosted token, pre-validated
        # ACM certificate) may be created before its domain resolves to the edge. Unverified
        # on AWS (docs/aws-fidelity.md), so refused by default: never kinder than AWS.
        "prevalidated_before_dns": False,
        # Quotas. Defaults are generous; tests set small ones. The production figures are
        # on the CloudFront quotas page and are adjustable there.
        "limits": {"tenants": 10000, "domains_per_tenant": 1000, "connection_groups": 50},
        # "host:port" of the DNS server that resolves customers' domains ("" = validation
        # cannot resolve anything and certificates stay pending).
        "dns_server": "",
        # Addresses that stand for CloudFront's edge: a domain resolving to one of them is
        # served by the edge proxy below.
        "edge_ips": ["127.0.0.1"],
        "edge_proxy": "",  # "host:port" of localdev.edge_proxy
        # Where a self-hosted token is fetched (customers' servers listen on this port).
        "self_hosted_port": 80,
        # A managed certificate still pending after this long is validation-timed-out.
        "validation_timeout_seconds": 72 * 3600,
        # Minimum seconds between two validation attempts of one certificate.
        "validation_interval_seconds": 0.0,
        "routing_endpoint_suffix": "cloudfront.net",
    }


class ApiError(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message

    @property
    def status(self) -> int:
        try:
            shape = _MODEL.shape_for(self.code)
            return int(shape.metadata.get("error", {}).get("httpStatusCode", 400))
        except NoShapeFoundError:
            return 400


def _now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def _etag() -> str:
    return "E" + "".join(secrets.choice(string.ascii_uppercase + string.digits) for _ in range(13))


def _short_id(prefix: str) -> str:
    alphabet = string.ascii_letters + string.digits
    return prefix + "".join(secrets.choice(alphabet) for _ in range(27))


@dataclass
class ManagedCertificate:
    arn: str
    domain: str
    token_host: str
    token: str
    created: float
    status: str = "pending-validation"
    last_attempt: float = 0.0
    attempts: int = 0
    last_result: str = ""

    @property
    def redirect_from(self) -> str:
        return f"http://{self.domain}{TOKEN_PATH_PREFIX}{self.token}.txt"

    @property
    def redirect_to(self) -> str:
        return f"https://{ACM_VALIDATION_HOST}/{ACCOUNT_ID}{TOKEN_PATH_PREFIX}{self.token}.txt"


@dataclass
class Deployable:
    etag: str = field(default_factory=_etag)
    deployed_at: float = 0.0
    created: datetime = field(default_factory=_now)
    modified: datetime = field(default_factory=_now)

    def status(self) -> str:
        return "Deployed" if time.monotonic() >= self.deployed_at else "InProgress"

    def changed(self, deploy_seconds: float) -> None:
        self.etag = _etag()
        self.modified = _now()
        self.deployed_at = time.monotonic() + deploy_seconds


@dataclass
class Tenant(Deployable):
    id: str = ""
    distribution_id: str = ""
    name: str = ""
    domains: list[dict[str, str]] = field(default_factory=list)
    tags: dict[str, Any] = field(default_factory=dict)
    customizations: dict[str, Any] = field(default_factory=dict)
    parameters: list[dict[str, str]] = field(default_factory=list)
    connection_group_id: str = ""
    enabled: bool = True
    certificate: ManagedCertificate | None = None
    # When CloudFront attaches the issued managed certificate (0: not scheduled).
    certificate_attach_at: float = 0.0

    @property
    def arn(self) -> str:
        return f"arn:aws:cloudfront::{ACCOUNT_ID}:distribution-tenant/{self.id}"

    def domain_names(self) -> list[str]:
        return [d["Domain"] for d in self.domains]

    def to_model(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "Id": self.id, "DistributionId": self.distribution_id, "Name": self.name,
            "Arn": self.arn,
            # A domain is active once the tenant is enabled and has a certificate attached.
            "Domains": [{"Domain": d["Domain"],
                         "Status": "active" if self.enabled and self.customizations.get(
                             "Certificate") else "inactive",
                         "ServeOn": d.get("ServeOn", "any")} for d in self.domains],
            "ConnectionGroupId": self.connection_group_id,
            "CreatedTime": self.created, "LastModifiedTime": self.modified,
            "Enabled": self.enabled, "Status": self.status(),
        }
        if self.tags:
            out["Tags"] = self.tags
        if self.customizations:
            out["Customizations"] = self.customizations
        if self.parameters:
            out["Parameters"] = self.parameters
        return out


@dataclass
class ConnectionGroup(Deployable):
    id: str = ""
    name: str = ""
    routing_endpoint: str = ""
    anycast_ip_list_id: str = ""
    ipv6: bool = True
    enabled: bool = True
    is_default: bool = False
    tags: dict[str, Any] = field(default_factory=dict)

    @property
    def arn(self) -> str:
        return f"arn:aws:cloudfront::{ACCOUNT_ID}:connection-group/{self.id}"

    def to_model(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "Id": self.id, "Name": self.name, "Arn": self.arn, "CreatedTime": self.created,
            "LastModifiedTime": self.modified, "Ipv6Enabled": self.ipv6,
            "RoutingEndpoint": self.routing_endpoint, "Status": self.status(),
            "Enabled": self.enabled, "IsDefault": self.is_default,
        }
        if self.anycast_ip_list_id:
            out["AnycastIpListId"] = self.anycast_ip_list_id
        if self.tags:
            out["Tags"] = self.tags
        return out


# --- wire format: botocore's model both ways ---------------------------------------------


def parse_request(operation: str, body: bytes) -> dict[str, Any]:
    """The request body as botocore would have built it from the caller's parameters."""
    shape = _MODEL.operation_model(operation).input_shape
    if shape is None or not body.strip():
        return {}
    parser = parsers.RestXMLParser()
    payload = shape.serialization.get("payload")
    try:
        root = parser._parse_xml_string_to_dom(body)
        if payload:  # e.g. TagResource: the body is the payload member itself
            return {payload: parser._handle_structure(shape.members[payload], root)}
        return dict(parser._handle_structure(shape, root))
    except Exception as exc:  # a malformed body is the caller's error, as on AWS
        raise ApiError("InvalidArgument", f"malformed request body: {exc}") from exc


def render_response(operation: str, result: dict[str, Any]) -> tuple[int, dict[str, str], bytes]:
    """Serialise `result` with the operation's output shape (payload, headers, body)."""
    op = _MODEL.operation_model(operation)
    status = int(op.http.get("responseCode", 200))
    shape = op.output_shape
    headers: dict[str, str] = {"x-amz-request-id": str(uuid.uuid4())}
    if shape is None:
        return status, headers, b""
    body_params: dict[str, Any] = {}
    for name, member in shape.members.items():
        if name not in result:
            continue
        if member.serialization.get("location") == "header":
            headers[member.serialization.get("name", name)] = str(result[name])
        else:
            body_params[name] = result[name]
    payload = shape.serialization.get("payload")
    if payload:
        body_shape, params, root_name = shape.members[payload], body_params.get(payload), payload
        if params is None:
            return status, headers, b""
    else:
        body_shape, params, root_name = shape, body_params, shape.name
    serializer = serialize.RestXMLSerializer()
    pseudo_root = ElementTree.Element("")
    serializer._serialize(body_shape, params, pseudo_root, root_name)
    root = list(pseudo_root)[0]
    root.set("xmlns", NAMESPACE)
    headers["Content-Type"] = "text/xml"
    return status, headers, b'<?xml version="1.0"?>\n' + ElementTree.tostring(root)


def render_error(error: ApiError) -> tuple[int, dict[str, str], bytes]:
    root = ElementTree.Element("ErrorResponse", xmlns=NAMESPACE)
    err = ElementTree.SubElement(root, "Error")
    ElementTree.SubElement(err, "Type").text = "Sender" if error.status < 500 else "Receiver"
    ElementTree.SubElement(err, "Code").text = error.code
    ElementTree.SubElement(err, "Message").text = error.message
    ElementTree.SubElement(root, "RequestId").text = str(uuid.uuid4())
    return error.status, {"Content-Type": "text/xml"}, ElementTree.tostring(root)


# --- the emulated service ------------------------------------------------------------------


class SaasManager:
    def __init__(self, *, moto_aliases: Callable[[], dict[str, str]] | None = None) -> None:
        self._lock = threading.RLock()
        self._moto_aliases = moto_aliases or (lambda: {})
        self.config = _default_config()
        self.tenants: dict[str, Tenant] = {}
        self.groups: dict[str, ConnectionGroup] = {}
        self.multi_tenant_distributions: set[str] = set()
        self.calls: dict[str, int] = {}

    # -- control ---------------------------------------------------------------------------

    def reset(self) -> None:
        with self._lock:
            self.config = _default_config()
            self.tenants.clear()
            self.groups.clear()
            self.multi_tenant_distributions.clear()
            self.calls.clear()

    def configure(self, changes: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            for key, value in changes.items():
                if key not in self.config:
                    raise ApiError("InvalidArgument", f"unknown emulator setting {key!r}")
                if key == "limits":
                    unknown = set(value) - set(self.config["limits"])
                    if unknown:
                        raise ApiError("InvalidArgument", f"unknown limits {sorted(unknown)}")
                    self.config["limits"].update({k: int(v) for k, v in value.items()})
                else:
                    self.config[key] = value
            return copy.deepcopy(self.config)

    def _deploy_seconds(self) -> float:
        return float(self.config["deploy_seconds"])

    # -- lookups ---------------------------------------------------------------------------

    def _tenant(self, identifier: str) -> Tenant:
        ident = unquote(identifier)
        for tenant in self.tenants.values():
            if ident in (tenant.id, tenant.arn, tenant.name):
                return tenant
        raise ApiError("EntityNotFound", f"The distribution tenant {ident} does not exist.")

    def _group(self, identifier: str) -> ConnectionGroup:
        ident = unquote(identifier)
        for group in self.groups.values():
            if ident in (group.id, group.arn, group.name):
                return group
        raise ApiError("EntityNotFound", f"The connection group {ident} does not exist.")

    def _holder(self, domain: str) -> tuple[str, str] | None:
        """(resource type, id) holding `domain` (exact name), across tenants and moto."""
        for tenant in self.tenants.values():
            if domain in tenant.domain_names():
                return "distribution-tenant", tenant.id
        dist = self._moto_aliases().get(domain)
        if dist:
            return "distribution", dist
        return None

    @staticmethod
    def _check_etag(if_match: str | None, current: str) -> None:
        if not if_match:
            raise ApiError("InvalidIfMatchVersion", "The If-Match version is missing or not valid.")
        if if_match != current:
            raise ApiError("PreconditionFailed",
                           "The precondition given in one or more of the request fields "
                           "evaluated to false.")

    def _default_group(self) -> ConnectionGroup:
        for group in self.groups.values():
            if group.is_default:
                return group
        return self._new_group(name="default", anycast="", ipv6=True, enabled=True, tags={},
                               is_default=True)

    def _new_group(self, *, name: str, anycast: str, ipv6: bool, enabled: bool,
                   tags: dict[str, Any], is_default: bool = False) -> ConnectionGroup:
        if len([g for g in self.groups.values() if not g.is_default]) >= \
                self.config["limits"]["connection_groups"]:
            raise ApiError("EntityLimitExceeded",
                           "Your request contains more connection groups than are allowed "
                           "per account.")
        group = ConnectionGroup(
            id=_short_id("cg_"), name=name, anycast_ip_list_id=anycast, ipv6=ipv6,
            enabled=enabled, is_default=is_default, tags=tags,
        )
        suffix = self.config["routing_endpoint_suffix"]
        group.routing_endpoint = f"{group.id[3:15].lower()}.{suffix}"
        group.changed(self._deploy_seconds())
        self.groups[group.id] = group
        return group

    # -- operations ------------------------------------------------------------------------

    def CreateDistributionTenant(self, req: dict[str, Any]) -> dict[str, Any]:
        name = req.get("Name", "")
        pattern = _MODEL.shape_for("CreateDistributionTenantRequestNameString").metadata["pattern"]
        if not re.fullmatch(pattern, name):
            raise ApiError("InvalidArgument", f"The tenant name {name!r} is not valid.")
        dist_id = req.get("DistributionId", "")
        if dist_id not in self.multi_tenant_distributions:
            raise ApiError("EntityNotFound" if not self._moto_has(dist_id) else "InvalidArgument",
                           f"{dist_id} is not a multi-tenant distribution (ConnectionMode "
                           "tenant-only).")
        if any(t.name == name for t in self.tenants.values()):
            raise ApiError("EntityAlreadyExists", f"A distribution tenant named {name} exists.")
        moves: list[tuple[str, str, str]] = []
        domains = self._domains(req.get("Domains") or [],
                                takeover=req.get("OnDomainTakeover", "reject"), moves=moves)
        # After the conflict check (CNAMEAlreadyExists first): AWS's order is not documented.
        self._refuse_unless_pointed(req)
        if len(self.tenants) >= self.config["limits"]["tenants"]:
            raise ApiError("EntityLimitExceeded",
                           "Your request contains more distribution tenants than are allowed "
                           "per account.")
        group_id = req.get("ConnectionGroupId") or self._default_group().id
        if group_id not in self.groups:
            raise ApiError("EntityNotFound", f"The connection group {group_id} does not exist.")
        tenant = Tenant(
            id=_short_id("dt_"), distribution_id=dist_id, name=name, domains=domains,
            tags=req.get("Tags") or {}, customizations=req.get("Customizations") or {},
            parameters=req.get("Parameters") or [], connection_group_id=group_id,
            enabled=req.get("Enabled", True),
        )
        self._set_certificate(tenant, req.get("ManagedCertificateRequest"))
        tenant.changed(self._deploy_seconds())
        self._take_over(moves)
        self.tenants[tenant.id] = tenant
        return {"DistributionTenant": tenant.to_model(), "ETag": tenant.etag}

    def _refuse_unless_pointed(self, req: dict[str, Any]) -> None:
        """CloudFront refuses a tenant for a domain that does not resolve to it yet."""
        mcr = req.get("ManagedCertificateRequest") or {}
        prevalidated = (mcr.get("ValidationTokenHost") == "self-hosted"
                        or bool((req.get("Customizations") or {}).get("Certificate")))
        if prevalidated and self.config["prevalidated_before_dns"]:
            return
        for item in req.get("Domains") or []:
            domain = str(item.get("Domain", "")).lower().rstrip(".")
            if domain and not self._points_at_edge(domain):
                raise ApiError("InvalidArgument", DNS_NOT_VERIFIED_MESSAGE)

    def _moto_has(self, dist_id: str) -> bool:
        return dist_id in set(self._moto_aliases().values())

    def _domains(self, items: list[dict[str, Any]], *, owner: str = "", takeover: str = "reject",
                 moves: list[tuple[str, str, str]] | None = None) -> list[dict[str, str]]:
        """Validate domains; with OnDomainTakeover `allow`, collect moves in `moves`.

        `allow` moves a domain held elsewhere to this tenant only when the domain's DNS
        points at CloudFront (here: resolves to an edge IP).
        """
        if not items:
            raise ApiError("InvalidArgument", "At least one domain is required.")
        if len(items) > self.config["limits"]["domains_per_tenant"]:
            raise ApiError("EntityLimitExceeded",
                           "Your request contains more domains than are allowed per tenant.")
        out = []
        for item in items:
            domain = str(item.get("Domain", "")).lower().rstrip(".")
            if not domain:
                raise ApiError("InvalidArgument", "A domain name is required.")
            holder = self._holder(domain)
            if (holder is not None and holder[1] != owner and takeover == "allow"
                    and moves is not None and self._points_at_edge(domain)):
                moves.append((domain, holder[0], holder[1]))
            elif holder is not None and holder[1] != owner:
                raise ApiError("CNAMEAlreadyExists",
                               f"One or more of the CNAMEs you provided are already associated "
                               f"with a different resource: {domain}.")
            out.append({"Domain": domain, "ServeOn": item.get("ServeOn", "any")})
        return out

    def _points_at_edge(self, domain: str) -> bool:
        try:
            return self._at_edge(self._resolve(domain)[1])
        except _DnsUnknown:
            return False

    def _take_over(self, moves: list[tuple[str, str, str]]) -> None:
        """Drop each moved domain from its old holder, in the same step as the new one gets it."""
        for domain, kind, holder_id in moves:
            if kind == "distribution-tenant":
                source = self.tenants[holder_id]
                source.domains = [d for d in source.domains if d["Domain"] != domain]
                source.changed(self._deploy_seconds())
            else:
                _drop_moto_alias(holder_id, domain)

    def _set_certificate(self, tenant: Tenant, request: dict[str, Any] | None) -> None:
        if not request:
            return
        host = request.get("ValidationTokenHost", "")
        if host not in {"cloudfront", "self-hosted"}:
            raise ApiError("InvalidArgument", f"ValidationTokenHost {host!r} is not valid.")
        primary = request.get("PrimaryDomainName") or tenant.domains[0]["Domain"]
        cert_id = str(uuid.uuid4())
        tenant.certificate = ManagedCertificate(
            arn=f"arn:aws:acm:us-east-1:{ACCOUNT_ID}:certificate/{cert_id}",
            domain=primary, token_host=host, token=secrets.token_hex(16),
            created=time.monotonic(),
        )
        tenant.certificate.arn = _acm_certificate(primary)

    def GetDistributionTenant(self, req: dict[str, Any]) -> dict[str, Any]:
        tenant = self._tenant(req["Identifier"])
        self._advance_certificate(tenant)
        return {"DistributionTenant": _untagged(tenant.to_model()), "ETag": tenant.etag}

    def GetDistributionTenantByDomain(self, req: dict[str, Any]) -> dict[str, Any]:
        domain = str(req.get("Domain", "")).lower()
        for tenant in self.tenants.values():
            if domain in tenant.domain_names():
                return {"DistributionTenant": _untagged(tenant.to_model()), "ETag": tenant.etag}
        raise ApiError("EntityNotFound", f"No distribution tenant holds {domain}.")

    def UpdateDistributionTenant(self, req: dict[str, Any]) -> dict[str, Any]:
        """The body is the whole tenant: a field left out is cleared, never "kept".

        AWS documents that the update needs at least one domain, and the Terraform provider
        re-sends every field on each update; what an omitted field does on AWS is not
        documented, so the emulator takes the strict reading (omitted = cleared: no
        customizations, so no certificate; no parameters; ServeOn `any`; the default
        connection group; Enabled false). DistributionId cannot be cleared (a tenant belongs
        to one distribution) and the managed certificate is not part of the body.
        https://docs.aws.amazon.com/cloudfront/latest/APIReference/API_UpdateDistributionTenant.html
        """
        tenant = self._tenant(req["Id"])
        self._check_etag(req.get("IfMatch"), tenant.etag)
        if not req.get("Domains"):
            raise ApiError("InvalidArgument", "You must specify at least one domain.")
        if (req.get("DistributionId", tenant.distribution_id) != tenant.distribution_id
                and req["DistributionId"] not in self.multi_tenant_distributions):
            raise ApiError("InvalidArgument", "Not a multi-tenant distribution.")
        group_id = req.get("ConnectionGroupId") or self._default_group().id
        self._group(group_id)
        moves: list[tuple[str, str, str]] = []
        domains = self._domains(req["Domains"], owner=tenant.id,
                                takeover=req.get("OnDomainTakeover", "reject"), moves=moves)
        # Validated whole before anything changes: a refused update changes nothing.
        if req.get("ManagedCertificateRequest"):
            self._set_certificate(tenant, req["ManagedCertificateRequest"])
        self._take_over(moves)
        tenant.distribution_id = req.get("DistributionId") or tenant.distribution_id
        tenant.domains = domains
        tenant.connection_group_id = group_id
        tenant.customizations = req.get("Customizations") or {}
        tenant.parameters = req.get("Parameters") or []
        tenant.enabled = bool(req.get("Enabled", False))
        tenant.changed(self._deploy_seconds())
        return {"DistributionTenant": tenant.to_model(), "ETag": tenant.etag}

    def DeleteDistributionTenant(self, req: dict[str, Any]) -> dict[str, Any]:
        tenant = self._tenant(req["Id"])
        self._check_etag(req.get("IfMatch"), tenant.etag)
        if tenant.enabled or tenant.status() != "Deployed":
            raise ApiError("ResourceNotDisabled",
                           "The distribution tenant must be disabled and deployed before it "
                           "can be deleted.")
        # The tenant's managed certificate stays in ACM: no AWS document says deleting a
        # tenant deletes it (docs/aws-fidelity.md), so the strict reading keeps it and the
        # product must delete it itself.
        del self.tenants[tenant.id]
        return {}

    # -- tags (ListTagsForResource / TagResource / UntagResource on tenant ARNs) -----------

    def _tagged(self, arn: str) -> Tenant | ConnectionGroup:
        arn = unquote(arn)
        for item in [*self.tenants.values(), *self.groups.values()]:
            if item.arn == arn:
                return item
        raise ApiError("NoSuchResource", f"The resource {arn} does not exist.")

    def ListTagsForResource(self, req: dict[str, Any]) -> dict[str, Any]:
        return {"Tags": {"Items": list((self._tagged(req["Resource"]).tags or {})
                                       .get("Items") or [])}}

    def TagResource(self, req: dict[str, Any]) -> dict[str, Any]:
        item = self._tagged(req["Resource"])
        tags = {t["Key"]: t.get("Value", "") for t in (item.tags or {}).get("Items") or []}
        tags.update({t["Key"]: t.get("Value", "")
                     for t in (req.get("Tags") or {}).get("Items") or []})
        item.tags = {"Items": [{"Key": k, "Value": v} for k, v in tags.items()]}
        return {}

    def UntagResource(self, req: dict[str, Any]) -> dict[str, Any]:
        item = self._tagged(req["Resource"])
        drop = set((req.get("TagKeys") or {}).get("Items") or [])
        item.tags = {"Items": [t for t in (item.tags or {}).get("Items") or []
                               if t["Key"] not in drop]}
        return {}

    def certificate_in_use(self, arn: str) -> bool:
        """ACM refuses to delete a certificate a tenant still uses (ResourceInUseException)."""
        with self._lock:
            for tenant in self.tenants.values():
                attached = ((tenant.customizations or {}).get("Certificate") or {}).get("Arn")
                if arn in {attached, tenant.certificate.arn if tenant.certificate else None}:
                    return True
        return False

    def ListDistributionTenants(self, req: dict[str, Any]) -> dict[str, Any]:
        flt = req.get("AssociationFilter") or {}
        items = [t for t in self.tenants.values()
                 if (not flt.get("DistributionId") or t.distribution_id == flt["DistributionId"])
                 and (not flt.get("ConnectionGroupId")
                      or t.connection_group_id == flt["ConnectionGroupId"])]
        items.sort(key=lambda t: t.id)
        start = 0
        if req.get("Marker"):
            start = next((i for i, t in enumerate(items) if t.id == req["Marker"]), len(items))
        size = int(req.get("MaxItems") or 100)
        page = items[start:start + size]
        out: dict[str, Any] = {"DistributionTenantList": [
            {**{k: v for k, v in t.to_model().items() if k not in {"Tags", "Parameters"}},
             "ETag": t.etag} for t in page]}
        if start + size < len(items):
            out["NextMarker"] = items[start + size].id
        return out

    def GetManagedCertificateDetails(self, req: dict[str, Any]) -> dict[str, Any]:
        tenant = self._tenant(req["Identifier"])
        cert = tenant.certificate
        if cert is None:
            raise ApiError("EntityNotFound", "The tenant has no managed certificate.")
        self._advance_certificate(tenant)
        details: dict[str, Any] = {
            "CertificateArn": cert.arn, "CertificateStatus": cert.status,
            "ValidationTokenHost": cert.token_host,
        }
        if cert.status == "pending-validation":
            details["ValidationTokenDetails"] = [{
                "Domain": cert.domain, "RedirectTo": cert.redirect_to,
                "RedirectFrom": cert.redirect_from}]
        return {"ManagedCertificateDetails": details}

    def CreateConnectionGroup(self, req: dict[str, Any]) -> dict[str, Any]:
        name = req.get("Name", "")
        if not name:
            raise ApiError("InvalidArgument", "Name is required.")
        if any(g.name == name for g in self.groups.values()):
            raise ApiError("EntityAlreadyExists", f"A connection group named {name} exists.")
        group = self._new_group(name=name, anycast=req.get("AnycastIpListId", ""),
                                ipv6=req.get("Ipv6Enabled", True),
                                enabled=req.get("Enabled", True), tags=req.get("Tags") or {})
        return {"ConnectionGroup": group.to_model(), "ETag": group.etag}

    def GetConnectionGroup(self, req: dict[str, Any]) -> dict[str, Any]:
        group = self._group(req["Identifier"])
        return {"ConnectionGroup": group.to_model(), "ETag": group.etag}

    def GetConnectionGroupByRoutingEndpoint(self, req: dict[str, Any]) -> dict[str, Any]:
        endpoint = str(req.get("RoutingEndpoint", "")).lower()
        for group in self.groups.values():
            if group.routing_endpoint == endpoint:
                return {"ConnectionGroup": group.to_model(), "ETag": group.etag}
        raise ApiError("EntityNotFound", f"No connection group has routing endpoint {endpoint}.")

    def VerifyDnsConfiguration(self, req: dict[str, Any]) -> dict[str, Any]:
        tenant = self._tenant(req["Identifier"])
        domains = [req["Domain"]] if req.get("Domain") else tenant.domain_names()
        result = []
        for domain in domains:
            try:
                _, ips, _ = self._resolve(domain)
            except _DnsUnknown as exc:
                result.append({"Domain": domain, "Status": "unknown-configuration",
                               "Reason": str(exc)})
                continue
            if self._at_edge(ips):
                result.append({"Domain": domain, "Status": "valid-configuration"})
            else:
                result.append({"Domain": domain, "Status": "invalid-configuration",
                               "Reason": "The domain does not resolve to CloudFront."})
        return {"DnsConfigurationList": result}

    def ListDomainConflicts(self, req: dict[str, Any]) -> dict[str, Any]:
        domain = str(req.get("Domain", "")).lower()
        resource = req.get("DomainControlValidationResource") or {}
        own = resource.get("DistributionTenantId") or resource.get("DistributionId")
        if own and own not in self.tenants and not self._moto_has(own):
            raise ApiError("EntityNotFound", f"{own} does not exist.")
        conflicts = []
        holder = self._holder(domain)
        if holder is not None and holder[1] != own:
            conflicts.append({"Domain": domain, "ResourceType": holder[0],
                              "ResourceId": holder[1], "AccountId": ACCOUNT_ID})
        return {"DomainConflicts": conflicts}

    def UpdateDomainAssociation(self, req: dict[str, Any]) -> dict[str, Any]:
        domain = str(req.get("Domain", "")).lower()
        target = req.get("TargetResource") or {}
        target_id = target.get("DistributionTenantId")
        if not target_id and target.get("DistributionId"):
            return self._move_to_distribution(domain, target["DistributionId"],
                                              req.get("IfMatch"))
        if not target_id:
            raise ApiError("InvalidArgument", "TargetResource needs DistributionTenantId or "
                                              "DistributionId.")
        dest = self._tenant(target_id)
        self._check_etag(req.get("IfMatch"), dest.etag)
        holder = self._holder(domain)
        if holder is None:
            raise ApiError("EntityNotFound", f"No resource holds {domain}.")
        if holder[0] != "distribution-tenant":
            raise ApiError("IllegalUpdate", "Moving a domain off a standard distribution is "
                                            "not emulated.")
        if holder[1] == dest.id:
            raise ApiError("IllegalUpdate", f"{domain} is already on {dest.id}.")
        source = self.tenants[holder[1]]
        if source.enabled:
            raise ApiError("IllegalUpdate", "Disable the source distribution tenant before "
                                            "moving its domain.")
        if len(dest.domains) >= self.config["limits"]["domains_per_tenant"]:
            raise ApiError("EntityLimitExceeded", "Too many domains on the target tenant.")
        moved = next(d for d in source.domains if d["Domain"] == domain)
        # One step: the name is never held by both tenants, nor by neither.
        source.domains = [d for d in source.domains if d["Domain"] != domain]
        dest.domains.append(moved)
        source.changed(self._deploy_seconds())
        dest.changed(self._deploy_seconds())
        return {"Domain": domain, "ResourceId": dest.id, "ETag": dest.etag}

    def _move_to_distribution(self, domain: str, dist_id: str, if_match: str | None
                              ) -> dict[str, Any]:
        """A tenant's domain onto a standard distribution (moto's) as an alias."""
        dist = _moto_distribution(dist_id)
        if dist is None:
            raise ApiError("EntityNotFound", f"The distribution {dist_id} does not exist.")
        self._check_etag(if_match, dist.etag)
        holder = self._holder(domain)
        if holder is None or holder[0] != "distribution-tenant":
            raise ApiError("EntityNotFound", f"No distribution tenant holds {domain}.")
        source = self.tenants[holder[1]]
        if source.enabled:
            raise ApiError("IllegalUpdate", "Disable the source distribution tenant before "
                                            "moving its domain.")
        source.domains = [d for d in source.domains if d["Domain"] != domain]
        source.changed(self._deploy_seconds())
        kept = _alias_items(dist.distribution_config.Aliases) + [domain]
        dist.distribution_config.Aliases = {"Quantity": len(kept), "Items": kept}
        dist.etag = _etag()
        return {"Domain": domain, "ResourceId": dist_id, "ETag": dist.etag}

    # -- managed certificate validation ------------------------------------------------------

    def _advance_certificate(self, tenant: Tenant) -> None:
        """Time out a certificate left pending too long; attach an issued one once its
        attach delay passed (called under the lock)."""
        cert = tenant.certificate
        if (cert is not None and cert.status == "issued" and tenant.certificate_attach_at
                and time.monotonic() >= tenant.certificate_attach_at):
            attached_at = tenant.certificate_attach_at
            tenant.certificate_attach_at = 0.0
            tenant.customizations = {**tenant.customizations, "Certificate": {"Arn": cert.arn}}
            # Attaching the certificate is a change the edge has to deploy, from the moment
            # CloudFront attached it (not from when someone next looked).
            tenant.changed(self._deploy_seconds())
            tenant.deployed_at = attached_at + self._deploy_seconds()
        if cert is None or cert.status != "pending-validation":
            return
        if time.monotonic() - cert.created > float(self.config["validation_timeout_seconds"]):
            cert.status = "validation-timed-out"

    def validate_pending(self, identifier: str) -> None:
        """Try a pending certificate's HTTP validation, as CloudFront keeps doing.

        Runs WITHOUT the lock held during the fetch: the GET goes through the edge proxy,
        which calls back into this emulator for the token.
        """
        with self._lock:
            try:
                tenant = self._tenant(identifier)
            except ApiError:
                return
            self._advance_certificate(tenant)
            cert = tenant.certificate
            now = time.monotonic()
            if (cert is None or cert.status != "pending-validation"
                    or now - cert.last_attempt < float(self.config["validation_interval_seconds"])):
                return
            cert.last_attempt = now
            cert.attempts += 1
        ok, detail = self._fetch_token(cert)
        with self._lock:
            cert.last_result = detail
            if ok and cert.status == "pending-validation" and tenant.certificate is cert:
                cert.status = "issued"
                # CloudFront attaches it a little later (see _advance_certificate).
                tenant.certificate_attach_at = time.monotonic() + float(
                    self.config["certificate_attach_seconds"])

    def token_for(self, domain: str, path: str) -> str | None:
        """What CloudFront's edge answers at `path` for `domain` (a cloudfront-hosted token)."""
        with self._lock:
            for tenant in self.tenants.values():
                cert = tenant.certificate
                if (cert and cert.token_host == "cloudfront" and cert.domain == domain
                        and tenant.enabled and path == f"{TOKEN_PATH_PREFIX}{cert.token}.txt"):
                    return cert.redirect_to
        return None

    def _fetch_token(self, cert: ManagedCertificate) -> tuple[bool, str]:
        try:
            _, ips, _ = self._resolve(cert.domain)
        except _DnsUnknown as exc:
            return False, str(exc)
        if not ips:
            return False, "the domain has no address"
        if self._at_edge(ips):
            if not self.config["edge_proxy"]:
                return False, "no edge proxy configured"
            host, _, port = str(self.config["edge_proxy"]).rpartition(":")
        else:
            host, port = ips[0], str(self.config["self_hosted_port"])
        path = f"{TOKEN_PATH_PREFIX}{cert.token}.txt"
        try:
            conn = http.client.HTTPConnection(host, int(port), timeout=5)
            try:
                conn.request("GET", path, headers={"Host": cert.domain})
                resp = conn.getresponse()
                body = resp.read(4096)
            finally:
                conn.close()
        except OSError as exc:
            return False, f"GET {cert.redirect_from} failed: {exc}"
        if resp.status in {301, 302, 307, 308} and resp.getheader("Location") == cert.redirect_to:
            return True, "redirected to the validation URL"
        if resp.status == 200 and cert.token.encode() in body:
            return True, "token served"
        return False, f"GET {cert.redirect_from}: HTTP {resp.status}"

    def _at_edge(self, ips: list[str]) -> bool:
        edge = set(self.config["edge_ips"])
        return bool(ips) and all(ip in edge for ip in ips)

    def _resolve(self, name: str) -> tuple[list[str], list[str], bool]:
        """(CNAME chain, A addresses, answered) through the configured DNS server."""
        server = str(self.config["dns_server"])
        if not server:
            raise _DnsUnknown("no DNS server configured")
        host, _, port = server.rpartition(":")
        chain: list[str] = []
        current = name.rstrip(".") + "."
        for _ in range(10):
            query = dns.message.make_query(current, dns.rdatatype.A)
            try:
                resp = dns.query.udp(query, host, port=int(port), timeout=2)
            except (dns.exception.DNSException, OSError) as exc:
                raise _DnsUnknown(f"DNS lookup of {current} failed: {exc}") from exc
            ips: list[str] = []
            next_name = None
            for rrset in resp.answer:
                for rdata in rrset:
                    if rrset.rdtype == dns.rdatatype.CNAME and rrset.name.to_text() == current:
                        next_name = rdata.target.to_text()
                    elif rrset.rdtype == dns.rdatatype.A:
                        ips.append(rdata.address)
            if ips:
                return chain, ips, True
            if next_name is None:
                return chain, [], True
            chain.append(next_name.rstrip("."))
            current = next_name
        raise _DnsUnknown(f"CNAME chain of {name} too long")


class _DnsUnknown(Exception):
    pass


def _untagged(model: dict[str, Any]) -> dict[str, Any]:
    # GetDistributionTenant is not documented to return Tags (CloudFormation's read handler
    # calls ListTagsForResource for them): answer without, so nothing comes to rely on them.
    return {k: v for k, v in model.items() if k != "Tags"}


def _acm_certificate(domain: str) -> str:
    """A managed certificate lands in the account's ACM (us-east-1), as on AWS, where the
    docs say "you own the certificate": it shows in ACM's lists and counts against its quota.
    https://docs.aws.amazon.com/AmazonCloudFront/latest/DeveloperGuide/managed-cloudfront-certificates.html
    """
    backend = acm_backends[ACCOUNT_ID]["us-east-1"]
    token: Any = None  # moto types the idempotency token as str; None means "none given"
    return str(backend.request_certificate(domain, token, [], []))


# --- routing -------------------------------------------------------------------------------

_P = "/2020-05-31"
ROUTES: list[tuple[str, re.Pattern[str], str | None, str]] = [
    # (method, path, required query key, operation); the query key tells apart two
    # operations that share a path.
    ("GET", re.compile(rf"{_P}/distribution-tenant$"), "domain", "GetDistributionTenantByDomain"),
    ("POST", re.compile(rf"{_P}/distribution-tenant$"), None, "CreateDistributionTenant"),
    ("GET", re.compile(rf"{_P}/distribution-tenant/(?P<Identifier>[^/]+)$"), None,
     "GetDistributionTenant"),
    ("PUT", re.compile(rf"{_P}/distribution-tenant/(?P<Id>[^/]+)$"), None,
     "UpdateDistributionTenant"),
    ("DELETE", re.compile(rf"{_P}/distribution-tenant/(?P<Id>[^/]+)$"), None,
     "DeleteDistributionTenant"),
    ("POST", re.compile(rf"{_P}/distribution-tenants$"), None, "ListDistributionTenants"),
    ("GET", re.compile(rf"{_P}/managed-certificate/(?P<Identifier>[^/]+)$"), None,
     "GetManagedCertificateDetails"),
    ("GET", re.compile(rf"{_P}/connection-group$"), "RoutingEndpoint",
     "GetConnectionGroupByRoutingEndpoint"),
    ("POST", re.compile(rf"{_P}/connection-group$"), None, "CreateConnectionGroup"),
    ("GET", re.compile(rf"{_P}/connection-group/(?P<Identifier>[^/]+)$"), None,
     "GetConnectionGroup"),
    ("POST", re.compile(rf"{_P}/verify-dns-configuration$"), None, "VerifyDnsConfiguration"),
    ("POST", re.compile(rf"{_P}/domain-association$"), None, "UpdateDomainAssociation"),
    ("POST", re.compile(rf"{_P}/domain-conflicts$"), None, "ListDomainConflicts"),
]

_CREATE_DISTRIBUTION = re.compile(rf"{_P}/distribution$")
_GET_DISTRIBUTION = re.compile(rf"{_P}/distribution/(?P<id>[^/]+)(?P<config>/config)?$")


def _read_body(environ: dict[str, Any]) -> bytes:
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    return environ["wsgi.input"].read(length) if length else b""


class SaasManagerMiddleware:
    """WSGI: the SaaS Manager operations here, everything else to moto."""

    def __init__(self, app: WsgiApp, manager: SaasManager | None = None) -> None:
        self.app = app
        self.manager = manager or SaasManager(moto_aliases=moto_distribution_aliases)

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]
                 ) -> Iterable[bytes]:
        method = environ.get("REQUEST_METHOD", "GET")
        path = environ.get("PATH_INFO", "")
        query = {k: v[0] for k, v in parse_qs(environ.get("QUERY_STRING", "")).items()}
        if path.startswith(CONTROL_PREFIX):
            return self._control(method, path[len(CONTROL_PREFIX):], query, environ,
                                 start_response)
        if path == f"{_P}/tagging" and self._ours(query.get("Resource", "")):
            operation = {("GET", None): "ListTagsForResource", ("POST", "Tag"): "TagResource",
                         ("POST", "Untag"): "UntagResource"}.get(
                (method, query.get("Operation")), "")
            if operation:
                return self._operation(operation, {}, query, environ, start_response)
        if (environ.get("HTTP_X_AMZ_TARGET") == "CertificateManager.DeleteCertificate"
                and method == "POST"):
            refused = self._acm_delete_in_use(environ, start_response)
            if refused is not None:
                return refused
        if path == "/moto-api/reset" and method == "POST":
            self.manager.reset()
            return self.app(environ, start_response)
        for route_method, pattern, needs, operation in ROUTES:
            match = pattern.match(path)
            if match and method == route_method and (needs is None or needs in query):
                return self._operation(operation, match.groupdict(), query, environ,
                                       start_response)
        if method == "POST" and _CREATE_DISTRIBUTION.match(path):
            return self._create_distribution(environ, start_response)
        match = _GET_DISTRIBUTION.match(path)
        if method == "GET" and match and match["id"] in self.manager.multi_tenant_distributions:
            return self._with_connection_mode(environ, start_response)
        return self.app(environ, start_response)

    def _ours(self, arn: str) -> bool:
        return any(f":{kind}/" in unquote(arn) for kind in ("distribution-tenant",
                                                             "connection-group"))

    def _acm_delete_in_use(self, environ: dict[str, Any], start_response: Callable[..., Any]
                           ) -> Iterable[bytes] | None:
        """ACM DeleteCertificate of a certificate a tenant uses: ResourceInUseException."""
        body = _read_body(environ)
        environ["wsgi.input"] = io.BytesIO(body)  # moto reads it again if we pass
        try:
            arn = str(json.loads(body or b"{}").get("CertificateArn", ""))
        except ValueError:
            return None
        if not arn or not self.manager.certificate_in_use(arn):
            return None
        payload = json.dumps({"__type": "ResourceInUseException",
                              "message": f"Certificate {arn} is in use."}).encode()
        return _respond(start_response, 400, {"Content-Type": "application/x-amz-json-1.1"},
                        payload)

    def _operation(self, operation: str, uri: dict[str, str], query: dict[str, str],
                   environ: dict[str, Any], start_response: Callable[..., Any]
                   ) -> Iterable[bytes]:
        try:
            req = parse_request(operation, _read_body(environ))
            op = _MODEL.operation_model(operation)
            for name, member in op.input_shape.members.items():
                loc = member.serialization.get("location")
                wire = member.serialization.get("name", name)
                if loc == "uri" and wire in uri:
                    req[name] = unquote(uri[wire])
                elif loc == "querystring" and wire in query:
                    req[name] = query[wire]
                elif loc == "header":
                    value = environ.get("HTTP_" + wire.upper().replace("-", "_"))
                    if value is not None:
                        req[name] = value
            if operation in {"GetManagedCertificateDetails", "GetDistributionTenant"}:
                self.manager.validate_pending(req.get("Identifier", ""))
            with self.manager._lock:
                self.manager.calls[operation] = self.manager.calls.get(operation, 0) + 1
                result = getattr(self.manager, operation)(req)
            status, headers, body = render_response(operation, result)
        except ApiError as exc:
            status, headers, body = render_error(exc)
        return _respond(start_response, status, headers, body)

    def _control(self, method: str, what: str, query: dict[str, str], environ: dict[str, Any],
                 start_response: Callable[..., Any]) -> Iterable[bytes]:
        manager = self.manager
        try:
            if what == "config" and method == "POST":
                payload = json.loads(_read_body(environ) or b"{}")
                out: Any = manager.configure(payload)
            elif what == "config":
                out = manager.config
            elif what == "calls":
                out = dict(manager.calls)
            elif what == "validation-token":
                location = manager.token_for(query.get("domain", ""), query.get("path", ""))
                if location is None:
                    return _respond(start_response, 404, {"Content-Type": "text/plain"},
                                    b"no such token")
                out = {"location": location}
            else:
                return _respond(start_response, 404, {"Content-Type": "text/plain"}, b"unknown")
        except (ApiError, ValueError) as exc:
            return _respond(start_response, 400, {"Content-Type": "text/plain"},
                            str(exc).encode())
        return _respond(start_response, 200, {"Content-Type": "application/json"},
                        json.dumps(out, default=str).encode())

    def _call_moto(self, environ: dict[str, Any], body: bytes) -> tuple[str, list[Any], bytes]:
        environ = dict(environ)
        environ["wsgi.input"] = io.BytesIO(body)
        environ["CONTENT_LENGTH"] = str(len(body))
        captured: dict[str, Any] = {}

        def start(status: str, headers: list[Any], exc_info: Any = None) -> Callable[..., Any]:
            captured["status"], captured["headers"] = status, headers
            return lambda data: None

        chunks = self.app(environ, start)
        try:
            out = b"".join(chunks)
        finally:
            close = getattr(chunks, "close", None)
            if close:
                close()
        return captured["status"], captured["headers"], out

    def _create_distribution(self, environ: dict[str, Any], start_response: Callable[..., Any]
                             ) -> Iterable[bytes]:
        body = _read_body(environ)
        status, headers, out = self._call_moto(environ, body)
        if status.startswith("201") and b"<ConnectionMode>tenant-only</ConnectionMode>" in body:
            found = re.search(rb"<Id>([^<]+)</Id>", out)
            if found:
                with self.manager._lock:
                    self.manager.multi_tenant_distributions.add(found.group(1).decode())
        return _passthrough(start_response, status, headers, out)

    def _with_connection_mode(self, environ: dict[str, Any], start_response: Callable[..., Any]
                              ) -> Iterable[bytes]:
        status, headers, out = self._call_moto(environ, _read_body(environ))
        if status.startswith("200") and b"<ConnectionMode>" not in out:
            out = out.replace(b"</DistributionConfig>",
                              b"<ConnectionMode>tenant-only</ConnectionMode></DistributionConfig>")
        return _passthrough(start_response, status, headers, out)


def _respond(start_response: Callable[..., Any], status: int, headers: dict[str, str],
             body: bytes) -> Iterable[bytes]:
    reason = http.client.responses.get(status, "")
    start_response(f"{status} {reason}", [*headers.items(), ("Content-Length", str(len(body)))])
    return [body]


def _passthrough(start_response: Callable[..., Any], status: str, headers: list[Any],
                 body: bytes) -> Iterable[bytes]:
    kept = [(k, v) for k, v in headers if k.lower() != "content-length"]
    start_response(status, [*kept, ("Content-Length", str(len(body)))])
    return [body]


def moto_distribution_aliases() -> dict[str, str]:
    """alias -> distribution id, from moto's in-process CloudFront backend."""
    out: dict[str, str] = {}
    for account_backends in cloudfront_backends.values():
        for backend in account_backends.values():
            for dist_id, dist in backend.distributions.items():
                for alias in _alias_items(getattr(dist.distribution_config, "Aliases", None)):
                    out[alias.lower()] = dist_id
                # Keyed by an impossible hostname so _moto_has() sees alias-less ones too.
                out.setdefault(f"\0{dist_id}", dist_id)
    return out


def _alias_items(aliases: Any) -> list[str]:
    # moto keeps the parsed XML: Items may be a list, or {"CNAME": str | list}.
    items = (aliases or {}).get("Items") if isinstance(aliases, dict) else None
    if isinstance(items, dict):
        items = items.get("CNAME")
    if isinstance(items, str):
        return [items]
    return [str(i) for i in items or []]


def _drop_moto_alias(distribution_id: str, domain: str) -> None:
    for account_backends in cloudfront_backends.values():
        for backend in account_backends.values():
            dist = backend.distributions.get(distribution_id)
            if dist is None:
                continue
            kept = [a for a in _alias_items(dist.distribution_config.Aliases)
                    if a.lower() != domain]
            dist.distribution_config.Aliases = (
                {"Quantity": len(kept), "Items": kept} if kept else {"Quantity": 0})


def _moto_distribution(distribution_id: str) -> Any:
    for account_backends in cloudfront_backends.values():
        for backend in account_backends.values():
            dist = backend.distributions.get(distribution_id)
            if dist is not None:
                return dist
    return None
