"""CloudFront attachment strategies behind one interface.

A distribution carries exactly one viewer certificate, so one shared distribution with
every alias appended cannot serve more than one customer's certificate. Two strategies:

- `distribution-per-domain`: clone a template distribution's config (origins, behaviours,
  the Lambda@Edge association, cache policy with Host in the key) with the hostname as its
  only alias and its own ACM certificate.
- `saas-tenant`: a CloudFront SaaS Manager distribution tenant on a multi-tenant
  distribution, carrying the domain and its certificate.

Updates read the ETag (GetDistributionConfig) and send it as IfMatch, retrying on
PreconditionFailed; CNAMEAlreadyExists (the alias lives on another distribution, possibly
another AWS account) is a permanent, explained failure.
https://docs.aws.amazon.com/cloudfront/latest/APIReference/API_UpdateDistribution.html
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Final, Protocol

from botocore.exceptions import BotoCoreError, ClientError
from django.conf import settings

from domains.integrations import aws
from domains.integrations.errors import IntegrationError

log = logging.getLogger(__name__)

ETAG_ATTEMPTS = 4
# The tenant parameter carrying the workspace id: deploy/saas-manager.yaml declares it on the
# multi-tenant distribution under this name, so the two change together or not at all.
WORKSPACE_PARAMETER = "workspaceId"
CNAME_TAKEN_MESSAGE = (
    "CloudFront says this hostname is already an alternate domain name of another "
    "distribution (CNAMEAlreadyExists), possibly in another AWS account. The hostname's "
    "owner must remove it there first."
)


class ManagedCertificateStatus(StrEnum):
    """A CloudFront-managed certificate's status (lowercase, unlike ACM's).
    https://docs.aws.amazon.com/cloudfront/latest/APIReference/API_ManagedCertificateDetails.html"""

    PENDING_VALIDATION = "pending-validation"
    ISSUED = "issued"
    INACTIVE = "inactive"
    EXPIRED = "expired"
    VALIDATION_TIMED_OUT = "validation-timed-out"
    REVOKED = "revoked"
    FAILED = "failed"


class ValidationTokenHost(StrEnum):
    """Who serves a managed certificate's HTTP validation token (ValidationTokenHost)."""

    CLOUDFRONT = "cloudfront"
    SELF_HOSTED = "self-hosted"


@dataclass(frozen=True)
class Attachment:
    resource_id: str
    domain_name: str
    status: str


@dataclass(frozen=True)
class Detachment:
    done: bool
    detail: str
    # A tenant's CloudFront-managed certificate: it lives in our account's ACM and nothing
    # documented deletes it with the tenant, so the caller records it and deletes it itself
    # once the tenant is gone (docs/cdn.md, "Managed certificates on removal").
    certificate_arn: str = ""


class CdnStrategy(Protocol):
    name: str
    # True: CloudFront issues the certificate (no ACM request, no validation CNAME).
    managed_certificates: bool

    def attach(self, *, hostname: str, certificate_arn: str, reference: str,
               workspace_id: str = "", validation_host: str = ValidationTokenHost.CLOUDFRONT,
               takeover: bool = False, anycast_only: bool = False) -> Attachment: ...

    def detach(self, *, resource_id: str) -> Detachment: ...

    def state(self, *, resource_id: str) -> ResourceState | None: ...

    def certificate(self, *, resource_id: str) -> CertificateState | None: ...

    # Pre-validation (docs/cdn.md): only a strategy with managed_certificates offers it;
    # services refuse it on the others, so the checks call these on tenants only.
    def set_certificate(self, *, resource_id: str, certificate_arn: str) -> None: ...

    def request_managed_certificate(self, *, resource_id: str, hostname: str,
                                    validation_host: str) -> None: ...


def _cf() -> Any:
    # CloudFront is a global service whose API lives in us-east-1.
    return aws.client("cloudfront", "us-east-1")


def _managed_tag() -> dict[str, str]:
    return {"Key": aws.MANAGED_TAG_KEY, "Value": aws.MANAGED_TAG_VALUE}


def _no_prevalidation() -> IntegrationError:
    # Never reached: services refuse pre-validation unless the strategy has managed
    # certificates. Here only so every strategy is a whole CdnStrategy.
    return IntegrationError("Pre-validation needs the saas-tenant CDN strategy",
                            permanent=True, code="prevalidation_unavailable")


def _raise(exc: ClientError | BotoCoreError, action: str) -> IntegrationError:
    code = aws.error_code(exc)
    if code == "CNAMEAlreadyExists":
        return IntegrationError(CNAME_TAKEN_MESSAGE, permanent=True, code=code)
    if is_capacity_code(code):
        # Our quota, not the customer's mistake: retried, and staff are alerted.
        error = aws.classify(exc, action)
        return IntegrationError(error.message, permanent=False, code=code, capacity=True)
    return aws.classify(exc, action)


class DistributionPerDomain:
    name = "distribution-per-domain"
    managed_certificates = False

    def __init__(self, template_distribution_id: str | None = None) -> None:
        self.template_id = (
            template_distribution_id or settings.VEDOMAINS_CDN_TEMPLATE_DISTRIBUTION_ID
        )

    def build_config(
        self, template: dict[str, Any], *, hostname: str, certificate_arn: str, reference: str
    ) -> dict[str, Any]:
        config = copy.deepcopy(template)
        config["CallerReference"] = reference
        config["Aliases"] = {"Quantity": 1, "Items": [hostname]}
        config["Comment"] = f"vedomains {hostname}"[:128]
        config["Enabled"] = True
        config["ViewerCertificate"] = {
            "ACMCertificateArn": certificate_arn,
            "SSLSupportMethod": "sni-only",
            "MinimumProtocolVersion": "TLSv1.2_2021",
            "CloudFrontDefaultCertificate": False,
        }
        return config

    def attach(self, *, hostname: str, certificate_arn: str, reference: str,
               workspace_id: str = "", validation_host: str = ValidationTokenHost.CLOUDFRONT,
               takeover: bool = False, anycast_only: bool = False) -> Attachment:
        if not self.template_id:
            # Our configuration, not the customer's: retried (and a system check says so).
            raise IntegrationError(
                "VEDOMAINS_CDN_TEMPLATE_DISTRIBUTION_ID is not set.",
                permanent=False,
                code="not_configured",
            )
        try:
            template = _cf().get_distribution_config(Id=self.template_id)["DistributionConfig"]
        except (ClientError, BotoCoreError) as exc:
            raise _raise(exc, "cloudfront.GetDistributionConfig(template)") from exc
        config = self.build_config(
            template, hostname=hostname, certificate_arn=certificate_arn, reference=reference
        )
        try:
            # Tagged at creation: the app's IAM policy allows updating and deleting only
            # distributions with this tag.
            resp = _cf().create_distribution_with_tags(DistributionConfigWithTags={
                "DistributionConfig": config,
                "Tags": {"Items": [_managed_tag()]},
            })
        except ClientError as exc:
            if aws.error_code(exc) == "DistributionAlreadyExists":
                # Same CallerReference: an earlier attempt created it and then crashed
                # before recording the id. Find it instead of creating a second one.
                found = self.find_by_alias(hostname)
                if found is not None:
                    return found
            raise _raise(exc, "cloudfront.CreateDistributionWithTags") from exc
        except BotoCoreError as exc:
            raise _raise(exc, "cloudfront.CreateDistributionWithTags") from exc
        dist = resp["Distribution"]
        return Attachment(dist["Id"], dist["DomainName"], dist.get("Status", ""))

    def state(self, *, resource_id: str) -> ResourceState | None:
        try:
            dist = _cf().get_distribution(Id=resource_id)["Distribution"]
        except ClientError as exc:
            if aws.error_code(exc) == "NoSuchDistribution":
                return None
            raise _raise(exc, "cloudfront.GetDistribution") from exc
        except BotoCoreError as exc:
            raise _raise(exc, "cloudfront.GetDistribution") from exc
        config = dist.get("DistributionConfig") or {}
        return ResourceState(
            resource_id=resource_id, status=str(dist.get("Status", "")),
            enabled=bool(config.get("Enabled")),
            domains=tuple((config.get("Aliases") or {}).get("Items") or ()),
            certificate_arn=str((config.get("ViewerCertificate") or {}).get("ACMCertificateArn")
                                or ""),
        )

    def certificate(self, *, resource_id: str) -> CertificateState | None:
        return None  # the per-domain strategy uses ACM certificates (domains.integrations.acm)

    def set_certificate(self, *, resource_id: str, certificate_arn: str) -> None:
        raise _no_prevalidation()

    def request_managed_certificate(self, *, resource_id: str, hostname: str,
                                    validation_host: str) -> None:
        raise _no_prevalidation()

    def create_without_alias(self, *, hostname: str, certificate_arn: str,
                             reference: str) -> str:
        """A clone for `hostname` that does not claim it yet (a domain is moved onto it)."""
        try:
            template = _cf().get_distribution_config(Id=self.template_id)["DistributionConfig"]
            config = self.build_config(template, hostname=hostname,
                                       certificate_arn=certificate_arn, reference=reference)
            config["Aliases"] = {"Quantity": 0}
            # Tagged in the create call, like attach(): the app's policy updates and deletes
            # only distributions carrying the tag, and grants no tagging after the fact.
            resp = _cf().create_distribution_with_tags(DistributionConfigWithTags={
                "DistributionConfig": config, "Tags": {"Items": [_managed_tag()]}})
            return str(resp["Distribution"]["Id"])
        except (ClientError, BotoCoreError) as exc:
            raise _raise(exc, "cloudfront.CreateDistributionWithTags") from exc

    def find_by_alias(self, hostname: str) -> Attachment | None:
        try:
            pages = _cf().get_paginator("list_distributions").paginate()
            for page in pages:
                for item in page.get("DistributionList", {}).get("Items", []) or []:
                    if hostname in (item.get("Aliases", {}).get("Items") or []):
                        return Attachment(item["Id"], item["DomainName"], item.get("Status", ""))
        except (ClientError, BotoCoreError) as exc:
            raise _raise(exc, "cloudfront.ListDistributions") from exc
        return None

    def detach(self, *, resource_id: str) -> Detachment:
        """Disable and drop the alias (frees the hostname at once), then delete when deployed.

        CloudFront deletes only disabled, deployed distributions, which takes minutes; the
        caller calls again until `done`.
        https://docs.aws.amazon.com/AmazonCloudFront/latest/DeveloperGuide/HowToDeleteDistribution.html
        """
        def attempt() -> Detachment:
            got = _cf().get_distribution_config(Id=resource_id)
            config, etag = got["DistributionConfig"], got["ETag"]
            if config.get("Enabled") or (config.get("Aliases") or {}).get("Quantity"):
                config["Enabled"] = False
                config["Aliases"] = {"Quantity": 0}
                # Release the customer's certificate so ACM can delete it later.
                config["ViewerCertificate"] = {"CloudFrontDefaultCertificate": True}
                _cf().update_distribution(Id=resource_id, IfMatch=etag, DistributionConfig=config)
                return Detachment(False, "disabled; waiting for deployment to delete")
            status = _cf().get_distribution(Id=resource_id)["Distribution"].get("Status")
            if status != "Deployed":
                return Detachment(False, f"distribution is {status}; delete pending")
            _cf().delete_distribution(Id=resource_id, IfMatch=etag)
            return Detachment(True, "distribution deleted")

        return _with_etag_retries(attempt, gone="NoSuchDistribution",
                                  not_ready="DistributionNotDisabled", what="distribution")


TENANT_NAME_MAX = 128
# Managed certificate states that will not become "issued" by waiting.
CERTIFICATE_FAILURES: Final[dict[str, str]] = {
    ManagedCertificateStatus.VALIDATION_TIMED_OUT: (
        "CloudFront could not validate the certificate in time: the hostname's CNAME was not "
        "pointing at us (or the validation token was not served) while it tried."
    ),
    ManagedCertificateStatus.FAILED: (
        "The certificate authority refused to issue a certificate for this hostname "
        "(for example a CAA record at the domain that does not allow Amazon)."
    ),
    ManagedCertificateStatus.REVOKED: "The certificate for this hostname was revoked.",
    ManagedCertificateStatus.EXPIRED: (
        "The certificate for this hostname expired and could not be renewed; check "
        "that the CNAME still points at us."
    ),
    ManagedCertificateStatus.INACTIVE: "The certificate for this hostname is inactive.",
}


@dataclass(frozen=True)
class ResourceState:
    """A tenant's (or distribution's) deployment, as CloudFront reports it."""

    resource_id: str
    status: str  # InProgress | Deployed
    enabled: bool
    domains: tuple[str, ...] = ()
    # The certificate CloudFront serves the domain with: a tenant's Customizations.Certificate
    # (a pre-validated ACM one, or the managed one once CloudFront attached it), or a
    # distribution's ViewerCertificate.
    certificate_arn: str = ""
    # A tenant's Domains[].Status per domain (active | inactive); distributions have none.
    domain_statuses: tuple[tuple[str, str], ...] = ()
    # Distributions report no per-domain status: their aliases serve once Deployed.
    has_domain_statuses: bool = False

    @property
    def deployed(self) -> bool:
        return self.status == "Deployed"

    def served(self, hostname: str) -> bool:
        """Live means served: Deployed, enabled, the domain active, a certificate attached."""
        return not self.serving_detail(hostname, reasons_only=True)

    def serving_detail(self, hostname: str, *, reasons_only: bool = False) -> str:
        reasons = []
        if not self.deployed:
            reasons.append(f"CloudFront reports {self.status or 'no status'}")
        if not self.enabled:
            reasons.append("it is disabled")
        if self.has_domain_statuses and dict(self.domain_statuses).get(hostname) != "active":
            reasons.append(f"the domain is {dict(self.domain_statuses).get(hostname, 'absent')}")
        if not self.certificate_arn:
            reasons.append("the certificate is not attached yet")
        if reasons_only:
            return "; ".join(reasons)
        if not reasons:
            return f"CloudFront serves it ({self.status})."
        return "Not served yet: " + "; ".join(reasons) + "."


@dataclass(frozen=True)
class CertificateState:
    """A CloudFront-managed certificate (GetManagedCertificateDetails)."""

    status: str  # a ManagedCertificateStatus (a str: CloudFront may add statuses)
    arn: str = ""
    token_host: str = ""
    # Self-hosted validation: the customer's server must redirect each `redirect_from` URL
    # to its `redirect_to` (or serve the token there).
    validation: tuple[dict[str, str], ...] = ()

    @property
    def issued(self) -> bool:
        return self.status == ManagedCertificateStatus.ISSUED

    @property
    def failure_reason(self) -> str:
        return CERTIFICATE_FAILURES.get(self.status, "")


def is_capacity_code(code: str) -> bool:
    """Quota and capacity errors: the platform's limit, never the customer's fault.

    TooManyDistributions..., TooManyDistributionsAssociatedToCachePolicy / ...ToOriginRequest
    Policy (100 by default), EntityLimitExceeded (tenants, domains, connection groups).
    https://docs.aws.amazon.com/AmazonCloudFront/latest/DeveloperGuide/cloudfront-limits.html
    """
    if code in aws.TRANSIENT_CODES or code in {"TooManyRequests", "TooManyRequestsException"}:
        return False  # throttling ("slow down"), not a quota
    return code.startswith("TooMany") or code in CAPACITY_CODES


CAPACITY_CODES = frozenset(
    {"EntityLimitExceeded", "LimitExceeded", "LimitExceededException",
     "ServiceQuotaExceededException"}
)


class SaasTenant:
    """One distribution tenant per custom domain on a multi-tenant distribution.

    CloudFront SaaS Manager: the multi-tenant distribution (ConnectionMode tenant-only)
    carries the origin, policies and the Lambda@Edge association; each tenant carries one
    domain, the workspace id as a parameter, our tags and a CloudFront-managed certificate
    validated over HTTP, so the customer creates ONE record (the routing CNAME).
    https://docs.aws.amazon.com/cloudfront/latest/APIReference/API_CreateDistributionTenant.html
    https://docs.aws.amazon.com/AmazonCloudFront/latest/DeveloperGuide/managed-cloudfront-certificates.html
    """

    name = "saas-tenant"
    managed_certificates = True

    def __init__(
        self, distribution_id: str | None = None, connection_group_id: str | None = None
    ) -> None:
        self.distribution_id = (
            distribution_id or settings.VEDOMAINS_CDN_MULTI_TENANT_DISTRIBUTION_ID
        )
        self.connection_group_id = (
            connection_group_id
            if connection_group_id is not None
            else settings.VEDOMAINS_CDN_CONNECTION_GROUP_ID
        )

    @staticmethod
    def tenant_name(hostname: str, reference: str = "") -> str:
        """Unique per record, so a retried create finds its own tenant by name.

        The reference (`vedomains-<pk>`) keeps a new record for the same hostname (after a
        move to another workspace) from colliding with the old record's tenant while that
        one is being deleted. Names allow letters, digits, dots and hyphens, up to 128, and
        must end with a letter or digit (botocore's model gives the pattern).
        """
        raw = f"{reference}-{hostname}" if reference else hostname
        return raw[:TENANT_NAME_MAX].rstrip(".-")

    def attach(self, *, hostname: str, certificate_arn: str, reference: str,
               workspace_id: str = "", validation_host: str = ValidationTokenHost.CLOUDFRONT,
               takeover: bool = False, anycast_only: bool = False) -> Attachment:
        """Create the tenant (idempotent: an earlier attempt's tenant is found by name).

        `certificate_arn` (an ACM certificate validated in advance) is set as the tenant's
        certificate; without it CloudFront manages one, validated over HTTP by CloudFront
        itself (`cloudfront`) or by a token the customer serves (`self-hosted`).
        `takeover`: OnDomainTakeover=allow, moving the domain from another of our
        resources once its DNS points at this tenant (no window where both serve it).
        """
        if not self.distribution_id:
            raise IntegrationError(
                "VEDOMAINS_CDN_MULTI_TENANT_DISTRIBUTION_ID is not set.",
                permanent=False, code="not_configured",
            )
        name = self.tenant_name(hostname, reference)
        tags = [{"Key": aws.MANAGED_TAG_KEY, "Value": aws.MANAGED_TAG_VALUE},
                {"Key": "vedomains-reference", "Value": reference}]
        params: dict[str, Any] = {
            "DistributionId": self.distribution_id,
            "Name": name,
            # An apex domain reaches us only on the connection group's anycast IPs.
            "Domains": [{"Domain": hostname, "ServeOn": "anycast-ip-list-only"}
                        if anycast_only else {"Domain": hostname}],
            "Enabled": True,
            "Tags": {"Items": tags},
        }
        if workspace_id:
            tags.append({"Key": "vedomains-workspace", "Value": workspace_id})
            params["Parameters"] = [
                {"Name": WORKSPACE_PARAMETER, "Value": workspace_id}
            ]
        if certificate_arn:
            params["Customizations"] = {"Certificate": {"Arn": certificate_arn}}
        else:
            params["ManagedCertificateRequest"] = {
                "ValidationTokenHost": validation_host, "PrimaryDomainName": hostname,
            }
        if self.connection_group_id:
            params["ConnectionGroupId"] = self.connection_group_id
        if takeover:
            params["OnDomainTakeover"] = "allow"
        try:
            resp = _cf().create_distribution_tenant(**params)
        except ClientError as exc:
            if aws.error_code(exc) == "EntityAlreadyExists":
                found = self.find_own(name=name, reference=reference)
                if found is not None:
                    return found
            raise _raise(exc, "cloudfront.CreateDistributionTenant") from exc
        except BotoCoreError as exc:
            raise _raise(exc, "cloudfront.CreateDistributionTenant") from exc
        tenant = resp["DistributionTenant"]
        return Attachment(tenant["Id"], "", tenant.get("Status", ""))

    def find_own(self, *, name: str, reference: str) -> Attachment | None:
        """Our tenant named `name` (an earlier attempt's), or None if it is someone else's.

        Looked up by its deterministic name; its tags are read with ListTagsForResource,
        because GetDistributionTenant is not documented to return them (CloudFormation's
        read handler lists them separately).
        https://docs.aws.amazon.com/cloudfront/latest/APIReference/API_ListTagsForResource.html
        """
        found = self._get(name)
        if found is None:
            return None
        tenant = found["DistributionTenant"]
        if self.tags(arn=str(tenant.get("Arn", ""))).get("vedomains-reference") != reference:
            return None
        return Attachment(tenant["Id"], "", tenant.get("Status", ""))

    def tags(self, *, arn: str) -> dict[str, str]:
        try:
            items = _cf().list_tags_for_resource(Resource=arn)["Tags"].get("Items") or []
        except (ClientError, BotoCoreError) as exc:
            raise _raise(exc, "cloudfront.ListTagsForResource") from exc
        return {str(t["Key"]): str(t.get("Value", "")) for t in items}

    def _get(self, identifier: str) -> dict[str, Any] | None:
        try:
            return dict(_cf().get_distribution_tenant(Identifier=identifier))
        except ClientError as exc:
            if aws.error_code(exc) == "EntityNotFound":
                return None
            raise _raise(exc, "cloudfront.GetDistributionTenant") from exc
        except BotoCoreError as exc:
            raise _raise(exc, "cloudfront.GetDistributionTenant") from exc

    def state(self, *, resource_id: str) -> ResourceState | None:
        got = self._get(resource_id)
        if got is None:
            return None
        tenant = got["DistributionTenant"]
        return ResourceState(
            resource_id=tenant["Id"], status=str(tenant.get("Status", "")),
            enabled=bool(tenant.get("Enabled")),
            domains=tuple(d["Domain"] for d in tenant.get("Domains") or []),
            certificate_arn=str(((tenant.get("Customizations") or {}).get("Certificate") or {})
                                .get("Arn", "")),
            domain_statuses=tuple((str(d.get("Domain", "")), str(d.get("Status", "")))
                                  for d in tenant.get("Domains") or []),
            has_domain_statuses=True,
        )

    def certificate(self, *, resource_id: str) -> CertificateState | None:
        """The tenant's managed certificate, or None when it has none (pre-validated ACM)."""
        try:
            details = _cf().get_managed_certificate_details(Identifier=resource_id)[
                "ManagedCertificateDetails"]
        except ClientError as exc:
            if aws.error_code(exc) == "EntityNotFound":
                return None
            raise _raise(exc, "cloudfront.GetManagedCertificateDetails") from exc
        except BotoCoreError as exc:
            raise _raise(exc, "cloudfront.GetManagedCertificateDetails") from exc
        return CertificateState(
            status=str(details.get("CertificateStatus", "")),
            arn=str(details.get("CertificateArn", "")),
            token_host=str(details.get("ValidationTokenHost", "")),
            validation=tuple(
                {"domain": t.get("Domain", ""), "redirect_from": t.get("RedirectFrom", ""),
                 "redirect_to": t.get("RedirectTo", "")}
                for t in details.get("ValidationTokenDetails") or []
            ),
        )

    def _put(self, got: dict[str, Any], **changes: Any) -> None:
        """UpdateDistributionTenant with the WHOLE tenant: what `got` holds, plus `changes`.

        The update replaces the tenant: a field left out is not "unchanged" (the API
        reference requires at least one domain; the Terraform provider re-sends
        DistributionId, Domains, ConnectionGroupId, Customizations, Parameters and Enabled
        on every update). `got` is a GetDistributionTenant answer; its ETag is the IfMatch.
        Every tenant update goes through here; `_with_etag_retries` re-reads on a race.
        https://docs.aws.amazon.com/cloudfront/latest/APIReference/API_UpdateDistributionTenant.html
        """
        body = tenant_update_body(got["DistributionTenant"])
        body.update(changes)
        _cf().update_distribution_tenant(IfMatch=got["ETag"], **body)

    def _update(self, resource_id: str, change: Callable[[dict[str, Any]], dict[str, Any] | None],
                *, missing_ok: bool = False) -> None:
        """Read the tenant, write it back whole with `change(tenant)`; retried on a stale ETag.

        `change` returns the fields to change, or None when the tenant already is as wanted.
        """
        def attempt() -> Detachment | None:
            got = self._get(resource_id)
            if got is None:
                if missing_ok:
                    return Detachment(True, "tenant gone")
                raise IntegrationError("The distribution tenant is gone.", permanent=True,
                                       code="EntityNotFound")
            changes = change(got["DistributionTenant"])
            if changes is not None:
                self._put(got, **changes)
            return Detachment(True, "updated")

        _with_etag_retries(attempt, gone="EntityNotFound" if missing_ok else "__never__",
                           not_ready="__never__", what="tenant",
                           action="cloudfront.UpdateDistributionTenant")

    def set_certificate(self, *, resource_id: str, certificate_arn: str) -> None:
        """Use an ACM certificate (validated in advance) as the tenant's certificate."""
        def change(tenant: dict[str, Any]) -> dict[str, Any]:
            customizations = copy.deepcopy(tenant.get("Customizations") or {})
            customizations["Certificate"] = {"Arn": certificate_arn}
            return {"Customizations": customizations}

        self._update(resource_id, change)

    def request_managed_certificate(self, *, resource_id: str, hostname: str,
                                    validation_host: str) -> None:
        """Ask CloudFront for a (new) managed certificate validated by `validation_host`."""
        request = {"ValidationTokenHost": validation_host, "PrimaryDomainName": hostname}
        self._update(resource_id, lambda tenant: {"ManagedCertificateRequest": request})

    def managed_certificate_arn(self, *, resource_id: str) -> str:
        state = self.certificate(resource_id=resource_id)
        return state.arn if state is not None else ""

    def detach(self, *, resource_id: str) -> Detachment:
        """Disable, wait until CloudFront has deployed that, then delete; call until done.

        Each answer carries the tenant's managed certificate ARN (while the tenant exists)
        so the caller can record it before the tenant, and with it the only pointer to the
        certificate, is gone.
        https://docs.aws.amazon.com/cloudfront/latest/APIReference/API_DeleteDistributionTenant.html
        """
        def attempt() -> Detachment | None:
            got = self._get(resource_id)
            if got is None:
                return Detachment(True, "tenant already deleted")
            tenant, etag = got["DistributionTenant"], got["ETag"]
            arn = self.managed_certificate_arn(resource_id=resource_id)
            if tenant.get("Enabled") and not tenant.get("Domains"):
                return self._disable_emptied(got, arn)
            if tenant.get("Enabled"):
                self._put(got, Enabled=False)
                return Detachment(False, "disabled; waiting for deployment to delete", arn)
            if tenant.get("Status") != "Deployed":
                return Detachment(False, f"tenant is {tenant.get('Status')}; delete pending",
                                  arn)
            _cf().delete_distribution_tenant(Id=resource_id, IfMatch=etag)
            return Detachment(True, "tenant deleted", arn)

        return _with_etag_retries(attempt, gone="EntityNotFound", not_ready="ResourceNotDisabled",
                                  what="tenant")

    def _disable_emptied(self, got: dict[str, Any], arn: str) -> Detachment:
        """A tenant whose only domain another tenant took over (OnDomainTakeover=allow).

        It serves nothing, but the update that would disable it must name a domain (API
        reference) and it has none; deleting needs it disabled. Whether CloudFront accepts
        this update is unverified (docs/aws-fidelity.md): try, and if refused leave the
        tenant to staff (it holds no domain, so no customer is affected) rather than block
        the domain's cleanup for ever.
        """
        try:
            self._put(got, Enabled=False)
        except ClientError as exc:
            if aws.error_code(exc) != "InvalidArgument":
                raise
            log.error("tenant %s holds no domain and CloudFront refuses to disable it: %s; "
                      "delete it by hand", got["DistributionTenant"]["Id"], exc)
            # No certificate ARN: the tenant still holds it, so ACM would refuse the delete.
            return Detachment(True, "tenant holds no domain and cannot be disabled; "
                                    "left for staff to delete")
        return Detachment(False, "disabled; waiting for deployment to delete", arn)

    def disable(self, *, resource_id: str) -> None:
        """Stop serving (the first step of a delete or of moving the domain away)."""
        self._update(resource_id,
                     lambda tenant: {"Enabled": False} if tenant.get("Enabled") else None,
                     missing_ok=True)

    def move_domain_to_distribution(self, *, hostname: str, distribution_id: str) -> None:
        """UpdateDomainAssociation onto a standard distribution (the source must be disabled)."""
        def attempt() -> Detachment | None:
            etag = _cf().get_distribution_config(Id=distribution_id)["ETag"]
            _cf().update_domain_association(Domain=hostname, IfMatch=etag,
                                            TargetResource={"DistributionId": distribution_id})
            return Detachment(True, "moved")

        _with_etag_retries(attempt, gone="__never__", not_ready="__never__", what="distribution")

    def move_domain(self, *, hostname: str, to_resource_id: str) -> None:
        """Move `hostname` to another tenant in one step (the source must be disabled)."""
        def attempt() -> Detachment | None:
            got = self._get(to_resource_id)
            if got is None:
                raise IntegrationError("The target tenant is gone.", permanent=True,
                                       code="EntityNotFound")
            _cf().update_domain_association(
                Domain=hostname, IfMatch=got["ETag"],
                TargetResource={"DistributionTenantId": to_resource_id})
            return Detachment(True, "moved")

        _with_etag_retries(attempt, gone="__never__", not_ready="__never__", what="tenant")

    def verify_dns(self, *, resource_id: str, hostname: str) -> str:
        """CloudFront's own view: valid-/invalid-/unknown-configuration."""
        try:
            rows = _cf().verify_dns_configuration(Identifier=resource_id, Domain=hostname)[
                "DnsConfigurationList"]
        except (ClientError, BotoCoreError) as exc:
            raise _raise(exc, "cloudfront.VerifyDnsConfiguration") from exc
        return str(rows[0]["Status"]) if rows else "unknown-configuration"


def tenant_update_body(tenant: dict[str, Any]) -> dict[str, Any]:
    """A GetDistributionTenant `DistributionTenant` as an UpdateDistributionTenant body.

    Everything the update accepts and the read returns: Id, DistributionId, Domains (name,
    and ServeOn where it is not the default, so an apex tenant stays on the anycast list),
    ConnectionGroupId, Customizations, Parameters, Enabled. Not ManagedCertificateRequest
    (a request, not state: sent only to ask for a certificate) nor OnDomainTakeover.
    """
    domains = []
    for item in tenant.get("Domains") or []:
        domain: dict[str, str] = {"Domain": str(item["Domain"])}
        if item.get("ServeOn") and item["ServeOn"] != "any":
            domain["ServeOn"] = str(item["ServeOn"])
        domains.append(domain)
    body: dict[str, Any] = {
        "Id": tenant["Id"], "DistributionId": tenant["DistributionId"], "Domains": domains,
        "Enabled": bool(tenant.get("Enabled")),
    }
    for key in ("ConnectionGroupId", "Customizations", "Parameters"):
        if tenant.get(key):
            body[key] = copy.deepcopy(tenant[key])
    return body


def _with_etag_retries(attempt: Callable[[], Detachment | None], *, gone: str, not_ready: str,
                       what: str, action: str = "") -> Detachment:
    """Run one read-ETag-then-act `attempt` until it gives an answer: THE ETag retry.

    `None` from `attempt`, or PreconditionFailed (someone changed the resource since we
    read its ETag), means: read again and retry, up to ETAG_ATTEMPTS times.
    """
    for _ in range(ETAG_ATTEMPTS):
        try:
            result = attempt()
        except ClientError as exc:
            code = aws.error_code(exc)
            if code == gone:
                return Detachment(True, f"{what} already deleted")
            if code in {"PreconditionFailed", "InvalidIfMatchVersion"}:
                continue
            if code == not_ready:
                return Detachment(False, f"{what} not yet disabled")
            raise _raise(exc, action or f"cloudfront.detach {what}") from exc
        except BotoCoreError as exc:
            raise _raise(exc, action or f"cloudfront.detach {what}") from exc
        if result is not None:
            return result
    raise IntegrationError(
        "CloudFront kept changing under us (PreconditionFailed)",
        permanent=False,
        code="PreconditionFailed",
    )


def strategy_for_resource(resource_id: str) -> CdnStrategy:
    """The strategy that made `resource_id`, whatever the setting says now.

    Tenant ids start with "dt_"; distribution ids do not. After a strategy switch, existing
    records are still checked, detached and deleted through the API that made them.
    """
    return SaasTenant() if resource_id.startswith("dt_") else DistributionPerDomain()


def strategy() -> CdnStrategy:
    if settings.VEDOMAINS_CDN_STRATEGY == "saas-tenant":
        return SaasTenant()
    return DistributionPerDomain()
