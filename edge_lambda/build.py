"""Build the Lambda@Edge deployment zip: the function's modules + edge_config.json.

Lambda@Edge has no environment variables, so the configuration is baked into the zip at
build time. `python manage.py build_edge_lambda` calls `build_package()` with values from
Django settings; `python -m edge_lambda.build --output edge.zip [--config overrides.json]`
does the same without Django.

The zip is reproducible (fixed timestamps and permissions, sorted entries), so the same
code and config always give the same CodeSha256 and deploying twice publishes nothing new.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import zipfile
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Final

from edge_lambda.config import (
    ALL_KEYS,
    CONFIG_FILENAME,
    DEFAULTS,
    REGIONAL_EDGE_CACHE_REGIONS,
    EdgeConfigError,
    validate_config,
)

__all__ = [
    "MAX_PACKAGE_BYTES",
    "PACKAGE_FILES",
    "EdgeConfigError",
    "PackageTooLargeError",
    "build_package",
    "default_config",
    "replica_map",
]

# Viewer-trigger functions are limited to 1 MB zipped (origin triggers to 50 MB); we hold
# the function to the smaller limit so it can move between triggers freely:
# https://docs.aws.amazon.com/AmazonCloudFront/latest/DeveloperGuide/cloudfront-limits.html#limits-lambda-at-edge
MAX_PACKAGE_BYTES: Final = 1_048_576
# The modules of this package that the function needs at run time, all at the zip's root
# (flat, as Lambda imports `handler` from it; handler.py says how they import each other).
# test_build.py fails when a module of edge_lambda/ is neither here nor build tooling.
PACKAGE_FILES: Final = (
    "handler.py",
    "config.py",
    "dynamodb.py",
    "headers.py",
    "hosts.py",
    "metrics.py",
    "redirects.py",
    "sigv4.py",
)
DEFAULT_HANDLER: Final = "handler.handler"

# A zip timestamp cannot predate 1980; any fixed value makes the archive reproducible.
_ZIP_EPOCH: Final = (1980, 1, 1, 0, 0, 0)

# For each region where AWS_REGION may be reported at the edge, replica regions by rough
# network proximity. Used to point every edge region at the nearest region that actually
# holds a replica. The first eight keys beyond the regional edge caches come from AWS's
# "nearest regional edge cache" table for Origin Shield:
# https://docs.aws.amazon.com/AmazonCloudFront/latest/DeveloperGuide/origin-shield.html#choose-origin-shield-region
_PROXIMITY: Final[Mapping[str, tuple[str, ...]]] = {
    "us-east-1": ("us-east-1", "us-east-2", "ca-central-1", "us-west-2", "eu-west-1"),
    "us-east-2": ("us-east-2", "us-east-1", "ca-central-1", "us-west-2", "eu-west-1"),
    "us-west-2": ("us-west-2", "us-west-1", "us-east-2", "us-east-1", "ap-northeast-1"),
    "ap-south-1": ("ap-south-1", "ap-southeast-1", "me-south-1", "eu-central-1", "eu-west-1"),
    "ap-northeast-1": (
        "ap-northeast-1",
        "ap-northeast-3",
        "ap-northeast-2",
        "ap-east-1",
        "ap-southeast-1",
        "us-west-2",
    ),
    "ap-northeast-2": (
        "ap-northeast-2",
        "ap-northeast-1",
        "ap-northeast-3",
        "ap-east-1",
        "ap-southeast-1",
        "us-west-2",
    ),
    "ap-southeast-1": (
        "ap-southeast-1",
        "ap-east-1",
        "ap-south-1",
        "ap-southeast-2",
        "ap-northeast-1",
        "us-west-2",
    ),
    "ap-southeast-2": ("ap-southeast-2", "ap-southeast-1", "ap-northeast-1", "us-west-2"),
    "eu-central-1": ("eu-central-1", "eu-west-3", "eu-west-2", "eu-west-1", "eu-north-1"),
    "eu-west-1": ("eu-west-1", "eu-west-2", "eu-west-3", "eu-central-1", "us-east-1"),
    "eu-west-2": ("eu-west-2", "eu-west-1", "eu-west-3", "eu-central-1", "us-east-1"),
    "sa-east-1": ("sa-east-1", "us-east-1", "us-east-2", "us-west-2"),
    "us-west-1": ("us-west-1", "us-west-2", "us-east-2", "us-east-1"),
    "af-south-1": ("af-south-1", "eu-west-1", "eu-west-2", "eu-central-1"),
    "ap-east-1": ("ap-east-1", "ap-southeast-1", "ap-northeast-1", "ap-northeast-2"),
    "ca-central-1": ("ca-central-1", "us-east-1", "us-east-2"),
    "eu-south-1": ("eu-south-1", "eu-central-1", "eu-west-3", "eu-west-1"),
    "eu-west-3": ("eu-west-3", "eu-west-2", "eu-central-1", "eu-west-1"),
    "eu-north-1": ("eu-north-1", "eu-central-1", "eu-west-2", "eu-west-1"),
    "me-south-1": ("me-south-1", "ap-south-1", "eu-central-1", "eu-south-1", "eu-west-1"),
}


class PackageTooLargeError(RuntimeError):
    """The built zip exceeds the Lambda@Edge limit for viewer triggers."""


def replica_map(replicas: Iterable[str], default: str | None = None) -> dict[str, str]:
    """Map every edge region to the nearest of `replicas` (plus a "default" entry).

    `default` (the region used when AWS_REGION is unknown) defaults to the first replica.
    """
    replica_list = list(dict.fromkeys(replicas))
    if not replica_list:
        raise EdgeConfigError("at least one replica region is needed")
    fallback = default or replica_list[0]
    if fallback not in replica_list:
        raise EdgeConfigError(f"default region {fallback!r} is not one of the replicas")
    available = set(replica_list)
    mapping = {"default": fallback}
    for region, nearest in _PROXIMITY.items():
        mapping[region] = next((r for r in nearest if r in available), fallback)
    for region in replica_list:  # a replica always reads locally
        mapping[region] = region
    return mapping


def default_config(**overrides: Any) -> dict[str, Any]:
    """A complete, valid config for ve.ai, with `overrides` applied (and validated).

    By default there is a replica in every regional-edge-cache region, each read locally.
    `origin_domain` follows `platform_domain` ("origin.<platform_domain>") unless given.
    """
    unknown = sorted(set(overrides) - ALL_KEYS)
    if unknown:
        raise EdgeConfigError(f"unknown config keys: {', '.join(unknown)}")
    platform = overrides.get("platform_domain", "ve.ai")
    table_region = overrides.get("table_region", "us-east-1")
    config: dict[str, Any] = {
        **DEFAULTS,
        "platform_domain": platform,
        "table_region": table_region,
        "origin_domain": f"origin.{platform}",
        # The home region always holds a replica, so it is the fallback for unknown regions.
        "replica_regions": {**replica_map(REGIONAL_EDGE_CACHE_REGIONS), "default": table_region},
    }
    config.update(overrides)
    return validate_config(config)


def _entry(name: str) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name, date_time=_ZIP_EPOCH)
    info.compress_type = zipfile.ZIP_DEFLATED
    info.external_attr = 0o100644 << 16  # regular file, rw-r--r--: Lambda needs it readable
    info.create_system = 3  # Unix, so the permission bits above are honoured
    return info


def package_contents(config: Mapping[str, Any]) -> dict[str, bytes]:
    """The files of the zip, by name: the function's sources and the validated config."""
    validated = validate_config(config)
    source_dir = Path(__file__).resolve().parent
    files = {name: (source_dir / name).read_bytes() for name in PACKAGE_FILES}
    for name, data in files.items():
        compile(data, name, "exec")  # a syntax error must fail the build, not the edge
    files[CONFIG_FILENAME] = (json.dumps(validated, indent=2, sort_keys=True) + "\n").encode()
    return files


def build_package(config: Mapping[str, Any], output: Path) -> Path:
    """Validate `config`, write the deployment zip to `output` and return its path.

    `output` is the zip's path, or an existing directory to write `edge-lambda.zip` into.
    Raises EdgeConfigError for a bad config and PackageTooLargeError above 1 MB; in both
    cases nothing is left at `output`.
    """
    output = Path(output)
    if output.is_dir():
        output = output / "edge-lambda.zip"
    output.parent.mkdir(parents=True, exist_ok=True)
    files = package_contents(config)
    # Write next to the target and rename, so a failed build never leaves half a zip.
    fd, tmp_name = tempfile.mkstemp(prefix=".edge-lambda-", suffix=".zip", dir=output.parent)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as raw, zipfile.ZipFile(raw, "w") as archive:
            for name in sorted(files):
                archive.writestr(_entry(name), files[name], compresslevel=9)
        size = tmp.stat().st_size
        if size > MAX_PACKAGE_BYTES:
            raise PackageTooLargeError(
                f"edge package is {size} bytes; Lambda@Edge allows at most "
                f"{MAX_PACKAGE_BYTES} bytes for viewer triggers"
            )
        tmp.replace(output)
    finally:
        tmp.unlink(missing_ok=True)
    return output.resolve()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", type=Path, required=True, help="zip path or directory")
    parser.add_argument(
        "--config", type=Path, help="JSON file of overrides applied to default_config()"
    )
    args = parser.parse_args(argv)
    overrides = json.loads(args.config.read_text(encoding="utf-8")) if args.config else {}
    path = build_package(default_config(**overrides), args.output)
    print(f"{path} ({path.stat().st_size} bytes)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
