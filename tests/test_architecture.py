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


def test_import_contracts_are_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    assert cli.lint_imports(config_filename=str(ROOT / "pyproject.toml"), no_cache=True) == 0


def test_every_module_of_the_product_has_a_layer() -> None:
    """A module left out of the layers contract would be checked by nothing."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    [layers] = [c["layers"] for c in config["tool"]["importlinter"]["contracts"]
                if c["type"] == "layers" and c["containers"] == ["domains"]]
    placed = {name.strip() for row in layers for name in re.split(r"[|:]", row)}
    modules = {p.stem for p in (ROOT / "domains").glob("*.py") if p.stem != "__init__"}
    packages = {p.name for p in (ROOT / "domains").iterdir()
                if (p / "__init__.py").is_file() and p.name != "migrations"}
    missing = sorted((modules | packages) - placed)
    assert missing == [], f"add these to the layers in pyproject.toml: {missing}"


def test_every_module_of_the_edge_function_has_a_layer() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    [layers] = [c["layers"] for c in config["tool"]["importlinter"]["contracts"]
                if c["type"] == "layers" and c["containers"] == ["edge_lambda"]]
    placed = {name.strip() for row in layers for name in row.split("|")}
    modules = {p.stem for p in (ROOT / "edge_lambda").glob("*.py") if p.stem != "__init__"}
    assert sorted(modules - placed) == [], "add these to the edge_lambda layers in pyproject.toml"


def test_no_two_modules_of_the_product_import_each_other() -> None:
    graph = grimp.build_graph("domains", cache_dir=None)
    # Top-level modules and subpackages of `domains` (a subpackage counts as one module).
    units = sorted({".".join(m.split(".")[:2]) for m in graph.modules if m != "domains"})
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
    graph = grimp.build_graph("domains", "vedomains_site", include_external_packages=True,
                              cache_dir=None)
    third_party = {
        m for m in graph.modules
        if "." not in m and not m.startswith(("domains", "vedomains_site"))
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


def test_no_tracker_markers_or_unread_type_ignores_in_the_code() -> None:
    """Comments say why, not which ticket; and no type checker reads `type: ignore`."""
    marker = re.compile(r"\bissue\s+\d+|#\s*type:\s*ignore", re.IGNORECASE)
    found = [
        f"{path.relative_to(ROOT)}:{number}"
        for folder in ("domains", "vedomains_site", "localdev", "edge_lambda", "tests", "bench")
        for path in (ROOT / folder).rglob("*.py")
        if "node_modules" not in path.parts
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if marker.search(line)
    ]
    assert found == [], "reword these (see docs/testing.md)"


def test_the_architecture_drawing_follows_the_import_contract() -> None:
    """docs/architecture.md draws the layers: every module the contract names is in the
    drawing, and the drawing lists the layers in the contract's order (a module added to
    the contract but not drawn, or drawn out of place, fails here)."""
    import tomllib

    doc = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    drawing = doc.split("Modules on one row do not import each other.")[1].split("```")[1]
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    layers = config["tool"]["importlinter"]["contracts"][0]["layers"]

    def position(module: str) -> int:
        found = re.search(rf"(?<![\w/]){module}(?:\.py\b|/)", drawing)
        assert found, f"{module} (in the import contract) is missing from the drawing"
        return found.start()

    firsts = [min(position(m.strip()) for m in layer.split("|")) for layer in layers]
    assert firsts == sorted(firsts), "the drawing's rows are not in the contract's order"
