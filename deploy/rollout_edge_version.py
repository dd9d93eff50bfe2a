"""Roll a new Lambda@Edge version out to the multi-tenant distribution, or roll it back.

With SaaS Manager every custom domain is a tenant of ONE distribution, so a new edge
version is ONE UpdateDistribution: read the config and its ETag, swap the function's
version ARN in every cache behaviour, send it back with IfMatch (a concurrent change makes
CloudFront answer PreconditionFailed; we re-read and retry), then wait until Deployed.
The previous ARN is printed and written to a state file: rolling back is the same call
with that ARN.
https://docs.aws.amazon.com/cloudfront/latest/APIReference/API_UpdateDistribution.html

    python deploy/rollout_edge_version.py --distribution-id E123 \
        --version-arn arn:aws:lambda:us-east-1:123456789012:function:vedomains-edge-router:8
    python deploy/rollout_edge_version.py --distribution-id E123 --rollback
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from pathlib import Path
from typing import Any

import boto3
from botocore.exceptions import ClientError

VERSION_ARN = re.compile(r"^(arn:aws[a-z-]*:lambda:us-east-1:\d{12}:function:[\w-]+):(\d+)$")
ATTEMPTS = 5
STATE = Path(".edge-rollout.json")


class RolloutError(RuntimeError):
    pass


def _behaviours(config: dict[str, Any]) -> list[dict[str, Any]]:
    found = [config["DefaultCacheBehavior"]]
    found += (config.get("CacheBehaviors") or {}).get("Items") or []
    return found


def swap_version(config: dict[str, Any], version_arn: str) -> list[str]:
    """Point every association of the same function at `version_arn`; returns the old ARNs."""
    match = VERSION_ARN.match(version_arn)
    if not match:
        raise RolloutError(f"not a numbered Lambda version ARN in us-east-1: {version_arn}")
    function = match.group(1)
    previous: list[str] = []
    for behaviour in _behaviours(config):
        for assoc in (behaviour.get("LambdaFunctionAssociations") or {}).get("Items") or []:
            arn = assoc["LambdaFunctionARN"]
            if arn.rsplit(":", 1)[0] == function:
                previous.append(arn)
                assoc["LambdaFunctionARN"] = version_arn
    if not previous:
        raise RolloutError(f"the distribution has no association of {function}")
    return previous


def rollout(cf: Any, *, distribution_id: str, version_arn: str, wait: bool = True,
            poll_seconds: float = 20, timeout: float = 3600) -> str:
    """One UpdateDistribution with IfMatch; returns the ARN that was replaced."""
    for _ in range(ATTEMPTS):
        got = cf.get_distribution_config(Id=distribution_id)
        config, etag = got["DistributionConfig"], got["ETag"]
        previous = swap_version(config, version_arn)
        if set(previous) == {version_arn}:
            return version_arn  # already there: nothing to deploy
        try:
            cf.update_distribution(Id=distribution_id, IfMatch=etag, DistributionConfig=config)
        except ClientError as exc:
            if exc.response["Error"]["Code"] == "PreconditionFailed":
                continue  # changed since we read it: read again
            raise
        break
    else:
        raise RolloutError("the distribution kept changing (PreconditionFailed)")
    if wait:
        deadline = time.monotonic() + timeout
        while cf.get_distribution(Id=distribution_id)["Distribution"]["Status"] != "Deployed":
            if time.monotonic() > deadline:
                raise RolloutError("not Deployed in time; it keeps deploying in the background")
            time.sleep(poll_seconds)
    return previous[0]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--distribution-id", required=True)
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument("--version-arn")
    group.add_argument("--rollback", action="store_true",
                       help=f"go back to the version recorded in {STATE}")
    parser.add_argument("--no-wait", action="store_true")
    parser.add_argument("--state-file", type=Path, default=STATE)
    args = parser.parse_args(argv)
    cf = boto3.client("cloudfront", region_name="us-east-1")
    try:
        if args.rollback:
            state = json.loads(args.state_file.read_text())
            target = state["previous"]
        else:
            target = args.version_arn
        previous = rollout(cf, distribution_id=args.distribution_id, version_arn=target,
                           wait=not args.no_wait)
    except (RolloutError, OSError, KeyError, ValueError, ClientError) as exc:
        print(f"rollout failed: {exc}", file=sys.stderr)
        return 1
    args.state_file.write_text(json.dumps({"distribution": args.distribution_id,
                                           "current": target, "previous": previous}) + "\n")
    print(f"{args.distribution_id}: {previous} -> {target}; rollback with --rollback")
    return 0


if __name__ == "__main__":
    sys.exit(main())
