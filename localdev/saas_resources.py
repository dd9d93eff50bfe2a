"""The SaaS Manager resources deploy/saas-manager.yaml makes, made in the local emulator.

Dev tooling (the local stack, tests, benchmarks): production creates them with CloudFormation.
"""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from domains.integrations import aws


def _cf() -> Any:
    # The app's own client, so the endpoint and credentials are the ones the app uses.
    return aws.client("cloudfront", "us-east-1")


def create_multi_tenant_distribution(*, origin_domain: str,
                                     comment: str = "vedomains multi-tenant") -> str:
    """Create the multi-tenant distribution (local emulator and tests; production: deploy/)."""
    config = {
        "CallerReference": f"vedomains-multi-tenant-{origin_domain}",
        "Comment": comment,
        "Enabled": True,
        "ConnectionMode": "tenant-only",
        "Origins": {"Quantity": 1, "Items": [{
            "Id": "ve-origin", "DomainName": origin_domain,
            "CustomOriginConfig": {"HTTPPort": 80, "HTTPSPort": 443,
                                   "OriginProtocolPolicy": "https-only"},
        }]},
        "DefaultCacheBehavior": {
            "TargetOriginId": "ve-origin", "ViewerProtocolPolicy": "redirect-to-https",
            # Multi-tenant distributions take cache policies only (no legacy TTLs).
            "CachePolicyId": "658327ea-f89d-4fab-a63d-7e88639e58f6",
        },
    }
    try:
        return str(_cf().create_distribution(DistributionConfig=config)["Distribution"]["Id"])
    except ClientError as exc:
        if aws.error_code(exc) == "DistributionAlreadyExists":
            for page in _cf().get_paginator("list_distributions").paginate():
                for item in page.get("DistributionList", {}).get("Items", []) or []:
                    if item.get("Comment") == comment:
                        return str(item["Id"])
        raise


def create_connection_group(*, name: str = "vedomains") -> tuple[str, str]:
    """(id, routing endpoint) of the connection group (local emulator and tests)."""
    try:
        group = _cf().create_connection_group(Name=name, Enabled=True)["ConnectionGroup"]
    except ClientError as exc:
        if aws.error_code(exc) != "EntityAlreadyExists":
            raise
        group = _cf().get_connection_group(Identifier=name)["ConnectionGroup"]
    return str(group["Id"]), str(group["RoutingEndpoint"])
