"""The module layers (docs/architecture.md): the import contract holds and nothing cycles.

`./dev test` also runs `lint-imports` on its own; these tests keep the guarantee inside the
suite, and the second one states "no cycle" directly rather than through the layer list.
"""

from __future__ import annotations

import importlib.metadata
import itertools
import re
import sys
import tomllib
from pathlib import Path

import grimp
import pytest
from importlinter import cli

ROOT = Path(__file__).resolve().parent.parent
# The product's packages: its Django apps, bottom first, and the REST API.
APPS = ('domains', 'notifications', 'edge', 'workflow', 'veai', 'staff')
PACKAGES = (*APPS, "api")


def test_import_contracts_are_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    assert cli.lint_imports(config_filename=str(ROOT / "pyproject.toml"), no_cache=True) == 0


def test_every_module_of_the_product_has_a_layer() -> None:
    """A module left out of its app's layers contract would be checked by nothing."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    contracts = {c["containers"][0]: c["layers"]
                 for c in config["tool"]["importlinter"]["contracts"]
                 if c["type"] == "layers" and c.get("containers")}
    for app in PACKAGES:
        placed = {name.strip() for row in contracts[app] for name in row.split("|")}
        modules = {p.stem for p in (ROOT / app).glob("*.py") if p.stem != "__init__"}
        packages = {p.name for p in (ROOT / app).iterdir()
                    if (p / "__init__.py").is_file() and p.name != "migrations"}
        missing = sorted((modules | packages) - placed)
        assert missing == [], f"add these to the {app} layers in pyproject.toml: {missing}"


def test_every_module_of_the_edge_function_has_a_layer() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    [layers] = [c["layers"] for c in config["tool"]["importlinter"]["contracts"]
                if c["type"] == "layers" and c.get("containers") == ["edge_lambda"]]
    placed = {name.strip() for row in layers for name in row.split("|")}
    modules = {p.stem for p in (ROOT / "edge_lambda").glob("*.py") if p.stem != "__init__"}
    assert sorted(modules - placed) == [], "add these to the edge_lambda layers in pyproject.toml"


def test_no_two_modules_of_the_product_import_each_other() -> None:
    graph = grimp.build_graph(*PACKAGES, cache_dir=None)
    # The apps' top-level modules and subpackages (a subpackage counts as one module).
    units = sorted({".".join(m.split(".")[:2]) for m in graph.modules if "." in m})
    cycles = [
        (a, b) for a, b in itertools.combinations(units, 2)
        if graph.chain_exists(importer=a, imported=b, as_packages=True)
        and graph.chain_exists(importer=b, imported=a, as_packages=True)
    ]
    assert cycles == []


def _pinned(requirements: Path) -> set[str]:
    names = set()
    for line in requirements.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line and not line.startswith("-"):
            names.add(_normalized(re.split(r"[\[=<>~!]", line, maxsplit=1)[0]))
    return names


def _normalized(name: str) -> str:
    # PEP 503: prometheus_client and prometheus-client are one distribution.
    return re.sub(r"[-_.]+", "-", name.strip()).lower()


def test_production_requirements_cover_what_the_product_imports() -> None:
    """requirements.txt alone runs the product; dev tools stay in requirements-dev.txt."""
    graph = grimp.build_graph(*PACKAGES, "vedomains_site", include_external_packages=True,
                              cache_dir=None)
    third_party = {
        m for m in graph.modules
        if "." not in m and m not in PACKAGES and not m.startswith("vedomains_site")
        and m not in sys.stdlib_module_names and m != "edge_lambda"  # ours, in this repo
    }
    assert {"django", "celery", "boto3"} <= third_party, "the graph lost its external imports"
    distributions = importlib.metadata.packages_distributions()
    needed = {_normalized(distributions[m][0]) for m in third_party}
    production = _pinned(ROOT / "requirements.txt")
    assert needed - production == set(), "pin these in requirements.txt"
    development = _pinned(ROOT / "requirements-dev.txt")
    assert production & development == set(), "a package is pinned in both files"
    assert {"moto", "dnslib", "pytest", "selenium", "ruff"} <= development


_TYPE_IGNORE = re.compile(r"#\s*type:\s*ignore(\[[a-z-]+(,[a-z-]+)*\])?(\s*#\s*\S)?",
                          re.IGNORECASE)


def _ignore_is_explained(lines: list[str], index: int) -> bool:
    """The ignore names its error code, and a comment says why: after it on its line, or
    on one of the two lines above (the statement may wrap)."""
    found = _TYPE_IGNORE.search(lines[index])
    assert found is not None
    if found.group(1) is None:
        return False
    above = lines[max(index - 2, 0):index]
    return found.group(3) is not None or any(x.lstrip().startswith("#") for x in above)


def test_no_tracker_markers_or_unexplained_type_ignores_in_the_code() -> None:
    """Comments say why, not which ticket. A `type: ignore` only where mypy reads it (the
    packages in pyproject.toml [tool.mypy] `files`, where an unused one fails), with its
    error code and its reason."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    checked = set(config["tool"]["mypy"]["files"])
    tracker = re.compile(r"\bissue\s+\d+", re.IGNORECASE)
    found = []
    for folder in (*PACKAGES, "vedomains_site", "localdev", "edge_lambda", "tests", "bench"):
        for path in (ROOT / folder).rglob("*.py"):
            if "node_modules" in path.parts:
                continue
            lines = path.read_text(encoding="utf-8").splitlines()
            for index, line in enumerate(lines):
                ignored = _TYPE_IGNORE.search(line) is not None
                if tracker.search(line) or (ignored and not (
                        folder in checked and _ignore_is_explained(lines, index))):
                    found.append(f"{path.relative_to(ROOT)}:{index + 1}")
    assert found == [], "reword these (see docs/testing.md, \"Types\")"


def test_the_architecture_drawing_follows_the_import_contract() -> None:
    """docs/architecture.md draws the layers: every module the contract names is in the
    drawing, and the drawing lists the layers in the contract's order (a module added to
    the contract but not drawn, or drawn out of place, fails here)."""
    import tomllib

    doc = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    drawing = doc.split("Apps and modules on one row do not import each other.")[1].split("```")[1]
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    layers = config["tool"]["importlinter"]["contracts"][0]["layers"]

    def position(module: str) -> int:
        found = re.search(rf"(?<![\w/]){module}(?:\.py\b|/)", drawing)
        assert found, f"{module} (in the import contract) is missing from the drawing"
        return found.start()

    firsts = [min(position(m.strip()) for m in layer.split("|")) for layer in layers]
    assert firsts == sorted(firsts), "the drawing's rows are not in the contract's order"


def test_the_drawings_follow_each_apps_contract() -> None:
    """docs/architecture.md draws each app's modules in the order of the app's contract, and
    the README draws the apps in the order of the apps' contract."""
    doc = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    drawing = doc.split("Apps and modules on one row do not import each other.")[1].split("```")[1]
    contracts = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))[
        "tool"]["importlinter"]["contracts"]
    blocks = re.split(r"^ (\w+)/\s+", drawing, flags=re.MULTILINE)
    drawn = dict(zip(blocks[1::2], blocks[2::2], strict=True))
    for contract in contracts[1:]:
        app = contract.get("containers", [""])[0]
        if contract["type"] != "layers" or app not in PACKAGES:
            continue
        positions = []
        for row in contract["layers"]:
            found = [re.search(rf"(?<![\w/]){m.strip()}(?:\.py\b|/)", drawn[app])
                     for m in row.split("|")]
            assert all(found), f"{app}: {row} is missing from the drawing"
            positions.append(min(f.start() for f in found if f))
        assert positions == sorted(positions), f"{app}: the drawing is not in the contract's order"
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    rows = readme.split("## The apps")[1].split("```")[1].strip().splitlines()
    assert [re.findall(r"(\w+)/", row) for row in rows] == [
        row.replace("|", " ").split() for row in contracts[0]["layers"]]
