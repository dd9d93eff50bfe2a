"""The deployment zip: config validation, contents, size, and running it in isolation."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path
from typing import Any

import pytest

from edge_lambda import build
from edge_lambda.build import (
    MAX_PACKAGE_BYTES,
    PACKAGE_FILES,
    EdgeConfigError,
    PackageTooLargeError,
    build_package,
    default_config,
    replica_map,
)
from edge_lambda.config import REGIONAL_EDGE_CACHE_REGIONS
from edge_lambda.tests.conftest import MappingTable, load_event

REPO_ROOT = Path(__file__).resolve().parents[2]
EDGE_DIR = REPO_ROOT / "edge_lambda"


def test_default_config_is_complete_and_valid() -> None:
    config = default_config()
    assert config["platform_domain"] == "ve.ai"
    assert config["table_name"] == "domain-workspace-mappings"
    assert config["table_region"] == "us-east-1"
    assert config["origin_domain"] == "origin.ve.ai"
    assert (config["positive_ttl_seconds"], config["negative_ttl_seconds"]) == (300, 30)
    assert config["mode"] == "origin-request" and config["rewrite_origin"] is False
    assert config["connect_timeout"] < 1 and config["read_timeout"] < 1
    assert config["max_attempts"] == 2
    replicas = config["replica_regions"]
    assert replicas["default"] == "us-east-1"
    for region in REGIONAL_EDGE_CACHE_REGIONS:
        assert replicas[region] == region  # a replica in every edge region, read locally
    json.dumps(config)  # it goes into a JSON file


def test_default_config_follows_platform_domain() -> None:
    config = default_config(platform_domain="staging.ve.ai")
    assert config["origin_domain"] == "origin.staging.ve.ai"


def test_replica_map_picks_nearest_available_replica() -> None:
    mapping = replica_map(["us-east-1", "eu-west-1", "ap-northeast-1"])
    assert mapping["default"] == "us-east-1"
    assert mapping["eu-west-2"] == "eu-west-1"
    assert mapping["eu-central-1"] == "eu-west-1"
    assert mapping["ap-northeast-2"] == "ap-northeast-1"
    assert mapping["us-west-2"] == "us-east-1"
    assert set(REGIONAL_EDGE_CACHE_REGIONS) <= set(mapping)
    default_config(replica_regions=mapping)  # accepted as is


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"nonsense": 1}, "unknown config keys: nonsense"),
        ({"platform_domain": "VE.AI."}, "platform_domain"),
        ({"table_region": "virginia"}, "table_region"),
        ({"replica_regions": {"default": "us-east-1"}}, "missing: us-east-1"),
        ({"replica_regions": {**replica_map(["us-east-1"]), "eu-west-1": "nowhere"}}, "invalid"),
        ({"positive_ttl_seconds": 0}, "positive_ttl_seconds"),
        ({"negative_ttl_seconds": 301}, "negative_ttl_seconds"),
        ({"negative_ttl_seconds": True}, "negative_ttl_seconds"),
        ({"max_cache_entries": 10_000_000}, "max_cache_entries"),
        ({"mode": "origin-response"}, "mode"),
        ({"mode": "viewer-request", "rewrite_origin": True}, "origin-request mode"),
        ({"rewrite_origin": True, "origin_domain": ""}, "needs origin_domain"),
        ({"connect_timeout": 5}, "connect_timeout"),
        ({"max_attempts": 0}, "max_attempts"),
        (
            {"max_attempts": 3, "connect_timeout": 1.0, "read_timeout": 1.0},
            "exceeds the 4.0s budget",
        ),
        ({"reserved_labels": ["Www"]}, "reserved_labels"),
    ],
)
def test_invalid_config_is_refused_with_a_clear_message(
    overrides: dict[str, Any], message: str
) -> None:
    with pytest.raises(EdgeConfigError, match=message):
        default_config(**overrides)


def test_build_package_writes_small_reproducible_zip(tmp_path: Path) -> None:
    config = default_config(rewrite_origin=True)
    first = build_package(config, tmp_path / "a" / "edge.zip")
    second = build_package(config, tmp_path)  # a directory: default file name

    assert first.is_file() and second == (tmp_path / "edge-lambda.zip").resolve()
    assert first.stat().st_size < MAX_PACKAGE_BYTES
    assert first.read_bytes() == second.read_bytes()  # same input, same CodeSha256
    with zipfile.ZipFile(first) as archive:
        assert archive.namelist() == sorted(["edge_config.json", *PACKAGE_FILES])
        assert json.loads(archive.read("edge_config.json")) == config
        for name in PACKAGE_FILES:
            assert archive.read(name) == (EDGE_DIR / name).read_bytes()
        for info in archive.infolist():
            assert (info.external_attr >> 16) & 0o444 == 0o444  # readable by the runtime


def test_every_module_of_the_function_is_packaged() -> None:
    """A module of edge_lambda/ is either in the zip or build tooling: a new module left out
    of PACKAGE_FILES would fail every import of `handler` at the edge."""
    tooling = {"__init__.py", "build.py"}
    on_disk = {path.name for path in EDGE_DIR.glob("*.py")} - tooling
    assert set(PACKAGE_FILES) == on_disk
    # At the zip's root each module is top-level: a stdlib name would shadow the stdlib's.
    clashes = {name.removesuffix(".py") for name in PACKAGE_FILES} & sys.stdlib_module_names
    assert clashes == set()


def _sibling_imports(branch: list[ast.stmt]) -> list[tuple[int, str | None, list[str]]]:
    return [
        (node.level, node.module, sorted(alias.name for alias in node.names))
        for node in branch
        if isinstance(node, ast.ImportFrom)
    ]


@pytest.mark.parametrize("name", PACKAGE_FILES)
def test_sibling_imports_are_the_same_in_the_repository_and_the_zip(name: str) -> None:
    """Each module imports its siblings twice: relatively as edge_lambda.<module>, absolutely
    at the zip's root (handler.py). Both lists must name the same things, or the code that
    runs at the edge is not the code the tests ran."""
    tree = ast.parse((EDGE_DIR / name).read_text(encoding="utf-8"))
    pairs = [
        node
        for node in tree.body
        if isinstance(node, ast.If) and "__package__" in ast.unparse(node.test)
    ]
    for pair in pairs:
        assert ast.unparse(pair.test) == "TYPE_CHECKING or __package__"
        repository, zip_root = _sibling_imports(pair.body), _sibling_imports(pair.orelse)
        assert len(repository) == len(pair.body) and len(zip_root) == len(pair.orelse)
        assert all(level == 1 for level, _, _ in repository)
        assert all(level == 0 for level, _, _ in zip_root)
        assert [(m, names) for _, m, names in repository] == [
            (m, names) for _, m, names in zip_root
        ]
    # Any other import of a sibling would work in one of the two places only (an import
    # under `if TYPE_CHECKING:` alone is for the type checker and never runs).
    siblings = {n.removesuffix(".py") for n in PACKAGE_FILES}
    type_only = [
        node
        for node in tree.body
        if isinstance(node, ast.If) and ast.unparse(node.test) == "TYPE_CHECKING"
    ]
    allowed = {id(n) for node in (*pairs, *type_only) for n in (*node.body, *node.orelse)}
    for node in ast.walk(tree):
        if id(node) in allowed:
            continue
        if isinstance(node, ast.ImportFrom):
            assert node.level == 0 and node.module not in siblings, ast.unparse(node)
        elif isinstance(node, ast.Import):
            names = {alias.name.partition(".")[0] for alias in node.names}
            assert names.isdisjoint(siblings), ast.unparse(node)


def test_build_package_refuses_bad_config_and_leaves_nothing(tmp_path: Path) -> None:
    with pytest.raises(EdgeConfigError):
        build_package({"platform_domain": "ve.ai"}, tmp_path / "edge.zip")
    assert list(tmp_path.iterdir()) == []


def test_build_package_refuses_oversized_zip(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(build, "MAX_PACKAGE_BYTES", 1_000)
    with pytest.raises(PackageTooLargeError, match="at most 1000 bytes"):
        build_package(default_config(), tmp_path / "edge.zip")
    assert list(tmp_path.iterdir()) == []


def test_cli_builds_with_overrides(tmp_path: Path) -> None:
    overrides = tmp_path / "overrides.json"
    overrides.write_text(json.dumps({"platform_domain": "example.net"}))
    assert build.main(["--output", str(tmp_path / "out.zip"), "--config", str(overrides)]) == 0
    with zipfile.ZipFile(tmp_path / "out.zip") as archive:
        assert json.loads(archive.read("edge_config.json"))["platform_domain"] == "example.net"


# The script run inside the unpacked package. -I keeps the repo, PYTHON* variables and user
# site-packages off sys.path; the package directory goes first, as LAMBDA_TASK_ROOT does.
_RUNNER = textwrap.dedent(
    """
    import json, sys
    task_root = sys.argv[1]
    sys.path.insert(0, task_root)
    import handler
    events = json.load(sys.stdin)
    results = [handler.handler(event, None) for event in events]
    handler.flush_metrics()
    modules = sorted(
        {getattr(m, "__file__", None) or "" for m in list(sys.modules.values())} - {""}
    )
    print(json.dumps({"results": results, "modules": modules, "file": handler.__file__}))
    """
)


@pytest.mark.integration
def test_unpacked_zip_runs_in_isolation(tmp_path: Path, table: MappingTable) -> None:
    table.put("gallery.client.com", "acme")
    zip_path = build_package(default_config(rewrite_origin=True), tmp_path / "edge.zip")
    task_root = tmp_path / "task"
    with zipfile.ZipFile(zip_path) as archive:
        archive.extractall(task_root)

    def event(name: str, host: str) -> dict[str, Any]:
        return load_event(name, host, workspace_id="spoof")

    events = [
        event("origin-request-custom", "gallery.client.com"),
        event("origin-request-custom", "gallery.client.com"),
        event("viewer-request", "acme.ve.ai"),
        event("origin-request-s3", "unknown.client.com"),
    ]
    completed = subprocess.run(
        [sys.executable, "-I", "-c", _RUNNER, str(task_root)],
        input=json.dumps(events),
        capture_output=True,
        text=True,
        cwd=task_root,
        timeout=120,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    output = json.loads(completed.stdout.splitlines()[-1])
    routed, hit, platform, unknown = output["results"]

    assert routed["headers"]["workspace-id"] == [{"key": "workspace-id", "value": "acme"}]
    assert routed["origin"]["custom"]["domainName"] == "acme.origin.ve.ai"
    assert hit["headers"]["workspace-id"][0]["value"] == "acme"
    assert platform["headers"]["workspace-id"][0]["value"] == "acme"
    assert unknown["status"] == "404"
    emf = json.loads(completed.stdout.splitlines()[-2])
    assert emf["Requests"] == 4 and emf["CacheHit"] == 1 and emf["CacheMiss"] == 2

    # Nothing from the repository was imported: only the package, stdlib, site-packages.
    assert Path(output["file"]).parent == task_root
    venv = Path(sys.prefix).resolve()
    leaked = [
        module
        for module in output["modules"]
        if Path(module).resolve().is_relative_to(REPO_ROOT)
        and not Path(module).resolve().is_relative_to(venv)
        and not Path(module).resolve().is_relative_to(task_root)
    ]
    assert leaked == []
    assert not any("edge_lambda" in module for module in output["modules"])
