"""The redirect change's cost at the edge: package size, import time, the route() hot path.

Compares edge_lambda/handler.py with the version at a git revision (default: the commit
before redirects), in one process, best of several rounds (the machine is shared):

    .venv/bin/python -m bench.edge_redirects [--base c3a1185]
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

from edge_lambda.build import default_config

ROOT = Path(__file__).resolve().parents[1]
EVENT = ROOT / "edge_lambda" / "tests" / "events" / "origin-request-custom.json"


def _load(path: Path, name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _zipped(path: Path) -> int:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("handler.py", path.read_bytes())
    return len(buffer.getvalue())


def _import_us(directory: Path, runs: int) -> float:
    times = []
    for _ in range(runs):
        out = subprocess.run(
            [sys.executable, "-I", "-X", "importtime", "-c",
             f"import sys; sys.path.insert(0, {str(directory)!r}); import handler"],
            capture_output=True, text=True, check=True).stderr
        line = next(x for x in out.splitlines() if x.rstrip().endswith("| handler"))
        times.append(float(line.split("|")[1]))
    return statistics.median(times)


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
        (old_dir / "handler.py").write_text(subprocess.run(
            ["git", "show", f"{args.base}:edge_lambda/handler.py"], cwd=ROOT,
            capture_output=True, text=True, check=True).stdout)
        (new_dir / "handler.py").write_bytes((ROOT / "edge_lambda" / "handler.py").read_bytes())
        old, new = _load(old_dir / "handler.py", "h_old"), _load(new_dir / "handler.py", "h_new")
        rows = {
            "handler.py deflated bytes (old, new)": (_zipped(old_dir / "handler.py"),
                                                     _zipped(new_dir / "handler.py")),
            "import handler with its stdlib imports, median us (old, new)": (
                _import_us(old_dir, args.import_runs), _import_us(new_dir, args.import_runs)),
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
