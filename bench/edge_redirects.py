"""The redirect change's cost at the edge: package size, import time, the route() hot path.

Compares the edge function's modules (edge_lambda/build.py PACKAGE_FILES) with the version
at a git revision (default: the commit before redirects), in one process, best of several
rounds (the machine is shared):

    .venv/bin/python -m bench.edge_redirects [--base c3a1185]

`--base 0323a8f` (the last single-file handler.py) measures the split into modules instead.
"""

from __future__ import annotations

import argparse
import copy
import importlib.util
import io
import json
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path
from types import ModuleType
from typing import Any

from edge_lambda.build import PACKAGE_FILES, default_config

ROOT = Path(__file__).resolve().parents[1]
EVENT = ROOT / "edge_lambda" / "tests" / "events" / "origin-request-custom.json"


def _load(directory: Path, name: str) -> ModuleType:
    """handler.py of `directory` as module `name`, its siblings imported from `directory`
    (as at the zip's root) and then forgotten, so the next version brings its own."""
    siblings = [p.stem for p in directory.glob("*.py") if p.name != "handler.py"]
    spec = importlib.util.spec_from_file_location(name, directory / "handler.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    shadowed = {s: sys.modules.pop(s) for s in siblings if s in sys.modules}
    sys.path.insert(0, str(directory))
    try:
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(directory))
        for sibling in siblings:
            sys.modules.pop(sibling, None)
        sys.modules.update(shadowed)
    return module


def _zipped(directory: Path) -> int:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(directory.glob("*.py")):
            archive.writestr(path.name, path.read_bytes())
    return len(buffer.getvalue())


def _write_revision(directory: Path, base: str) -> None:
    """The function's modules as they were at `base` (before the split: handler.py alone)."""
    listed = subprocess.run(["git", "ls-tree", "--name-only", base, "edge_lambda/"], cwd=ROOT,
                            capture_output=True, text=True, check=True).stdout.split()
    for name in PACKAGE_FILES:
        if f"edge_lambda/{name}" in listed:
            (directory / name).write_text(subprocess.run(
                ["git", "show", f"{base}:edge_lambda/{name}"], cwd=ROOT,
                capture_output=True, text=True, check=True).stdout)


def _import_us(directory: Path) -> float:
    out = subprocess.run(
        [sys.executable, "-I", "-X", "importtime", "-c",
         f"import sys; sys.path.insert(0, {str(directory)!r}); import handler"],
        capture_output=True, text=True, check=True).stderr
    line = next(x for x in out.splitlines() if x.rstrip().endswith("| handler"))
    return float(line.split("|")[1])


def _import_cpu_ms(directory: Path) -> float:
    """CPU time of `import handler` with no bytecode cache, as at /var/task (read-only: the
    sources are compiled at every cold start); CPU time, so other work on the machine
    weighs less than on the wall clock."""
    out = subprocess.run(
        [sys.executable, "-I", "-B", "-c",
         "import sys, time; started = time.process_time(); "
         f"sys.path.insert(0, {str(directory)!r}); import handler; "
         "print((time.process_time() - started) * 1000)"],
        capture_output=True, text=True, check=True).stdout
    return float(out)


def _paired(measure: Any, old: Path, new: Path, runs: int) -> tuple[float, float]:
    """Medians of `runs` measurements of each, alternating which goes first."""
    olds, news = [], []
    for run in range(runs):
        for directory in ((old, new) if run % 2 == 0 else (new, old)):
            (olds if directory == old else news).append(measure(directory))
    return statistics.median(olds), statistics.median(news)


def _route_us(module: Any, host: str, value: Any, rounds: int = 5, n: int = 20_000) -> float:
    module._reset_for_tests(default_config(metrics_flush_invocations=10**6))
    module._cache[host] = (value, 1e18, 1e18)
    template = json.loads(EVENT.read_text())["Records"][0]["cf"]["request"]
    template["headers"]["host"] = [{"key": "Host", "value": host}]
    best = float("inf")
    for _ in range(rounds):
        requests = [copy.deepcopy(template) for _ in range(n)]
        started = time.perf_counter()
        for request in requests:
            module.route(request, "origin-request")
        best = min(best, (time.perf_counter() - started) / n * 1e6)
    return best


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--base", default="c3a1185")
    parser.add_argument("--import-runs", type=int, default=15)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        old_dir, new_dir = Path(tmp, "old"), Path(tmp, "new")
        old_dir.mkdir()
        new_dir.mkdir()
        _write_revision(old_dir, args.base)
        for name in PACKAGE_FILES:
            (new_dir / name).write_bytes((ROOT / "edge_lambda" / name).read_bytes())
        old, new = _load(old_dir, "h_old"), _load(new_dir, "h_new")
        rows = {
            "modules deflated bytes (old, new)": (_zipped(old_dir), _zipped(new_dir)),
            "import handler with its stdlib imports, median us (old, new)": _paired(
                _import_us, old_dir, new_dir, args.import_runs),
            "import handler, no bytecode cache, median CPU ms (old, new)": _paired(
                _import_cpu_ms, old_dir, new_dir, args.import_runs),
            "route() cache hit, plain host, best us (old, new)": (
                _route_us(old, "gallery.client.com", "acme"),
                _route_us(new, "gallery.client.com", "acme")),
            "route() cache hit, redirect host, best us (new)": (
                _route_us(new, "client.com", new.Redirect("gallery.client.com", 308, "acme")),),
        }
    for name, values in rows.items():
        print(f"{name}: " + ", ".join(f"{v:.2f}" if isinstance(v, float) else str(v)
                                      for v in values))
    return 0


if __name__ == "__main__":
    sys.exit(main())
