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
from typing import Any, Protocol

from botocore.exceptions import BotoCoreError, ClientError
from django.conf import settings

from domains.integrations import aws
from domains.integrations.errors import IntegrationError

log = logging.getLogger(__name__)

ETAG_ATTEMPTS = 4
CNAME_TAKEN_MESSAGE = (
    "CloudFront says this hostname is already an alternate domain name of another "
    "distribution (CNAMEAlreadyExists), possibly in another AWS account. The hostname's "
    "owner must remove it there first."
)


@dataclass(frozen=True)
class Attachment:
    resource_id: str
    domain_name: str
    status: str


@dataclass(frozen=True)
class Detachment:
    done: bool
    detail: str


class CdnStrategy(Protocol):
    name: str

    def attach(self, *, hostname: str, certificate_arn: str, reference: str) -> Attachment: ...

    def detach(self, *, resource_id: str) -> Detachment: ...


def _cf() -> Any:
    # CloudFront is a global service whose API lives in us-east-1.
    return aws.client("cloudfront", "us-east-1")


def _raise(exc: ClientError | BotoCoreError, action: str) -> IntegrationError:
    code = aws.error_code(exc)
    if code == "CNAMEAlreadyExists":
        return IntegrationError(CNAME_TAKEN_MESSAGE, permanent=True, code=code)
    return aws.classify(exc, action)


class DistributionPerDomain:
    name = "distribution-per-domain"

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

    def attach(self, *, hostname: str, certificate_arn: str, reference: str) -> Attachment:
        if not self.template_id:
            raise IntegrationError(
                "VEDOMAINS_CDN_TEMPLATE_DISTRIBUTION_ID is not set.",
                permanent=True,
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
                "Tags": {"Items": [{"Key": aws.MANAGED_TAG_KEY, "Value": aws.MANAGED_TAG_VALUE}]},
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


class SaasTenant:
    """A distribution tenant on a multi-tenant distribution (CloudFront SaaS Manager).

    https://docs.aws.amazon.com/cloudfront/latest/APIReference/API_CreateDistributionTenant.html
    """

    name = "saas-tenant"

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
    def tenant_name(hostname: str) -> str:
        # Tenant names allow letters, digits, dots and hyphens; a hostname already fits.
        return hostname[:128]

    def attach(self, *, hostname: str, certificate_arn: str, reference: str) -> Attachment:
        if not self.distribution_id:
            raise IntegrationError(
                "VEDOMAINS_CDN_MULTI_TENANT_DISTRIBUTION_ID is not set.",
                permanent=True,
                code="not_configured",
            )
        params: dict[str, Any] = {
            "DistributionId": self.distribution_id,
            "Name": self.tenant_name(hostname),
            "Domains": [{"Domain": hostname}],
            "Customizations": {"Certificate": {"Arn": certificate_arn}},
            "Enabled": True,
            "Tags": {"Items": [{"Key": "vedomains-reference", "Value": reference}]},
        }
        if self.connection_group_id:
            params["ConnectionGroupId"] = self.connection_group_id
        try:
            resp = _cf().create_distribution_tenant(**params)
        except ClientError as exc:
            if aws.error_code(exc) == "EntityAlreadyExists":
                found = self._get(self.tenant_name(hostname))
                if found is not None:
                    tenant = found["DistributionTenant"]
                    return Attachment(tenant["Id"], "", tenant.get("Status", ""))
            raise _raise(exc, "cloudfront.CreateDistributionTenant") from exc
        except BotoCoreError as exc:
            raise _raise(exc, "cloudfront.CreateDistributionTenant") from exc
        tenant = resp["DistributionTenant"]
        return Attachment(tenant["Id"], "", tenant.get("Status", ""))

    def _get(self, identifier: str) -> dict[str, Any] | None:
        try:
            return dict(_cf().get_distribution_tenant(Identifier=identifier))
        except ClientError as exc:
            if aws.error_code(exc) == "EntityNotFound":
                return None
            raise _raise(exc, "cloudfront.GetDistributionTenant") from exc
        except BotoCoreError as exc:
            raise _raise(exc, "cloudfront.GetDistributionTenant") from exc

    def detach(self, *, resource_id: str) -> Detachment:
        def attempt() -> Detachment | None:
            got = self._get(resource_id)
            if got is None:
                return Detachment(True, "tenant already deleted")
            tenant, etag = got["DistributionTenant"], got["ETag"]
            if tenant.get("Enabled"):
                # A tenant must be disabled before it can be deleted: disable, then read the
                # new ETag and delete.
                _cf().update_distribution_tenant(Id=resource_id, IfMatch=etag, Enabled=False)
                return None
            _cf().delete_distribution_tenant(Id=resource_id, IfMatch=etag)
            return Detachment(True, "tenant deleted")

        return _with_etag_retries(attempt, gone="EntityNotFound", not_ready="ResourceNotDisabled",
                                  what="tenant")


def _with_etag_retries(attempt: Callable[[], Detachment | None], *, gone: str, not_ready: str,
                       what: str) -> Detachment:
    """Run one read-ETag-then-act `attempt` until it gives an answer.

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
            raise _raise(exc, f"cloudfront.detach {what}") from exc
        except BotoCoreError as exc:
            raise _raise(exc, f"cloudfront.detach {what}") from exc
        if result is not None:
            return result
    raise IntegrationError(
        "CloudFront kept changing under us (PreconditionFailed)",
        permanent=False,
        code="PreconditionFailed",
    )


def strategy() -> CdnStrategy:
    if settings.VEDOMAINS_CDN_STRATEGY == "saas-tenant":
        return SaasTenant()
    return DistributionPerDomain()
