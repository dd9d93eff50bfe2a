"""Loaded by the fleet benchmark's worker processes (PYTHONPATH): records each AWS request.

Every HTTP attempt botocore sends is appended, as "<unix time> <X-Amz-Target>", to a file
per process under VEDOMAINS_BENCH_PROBE_DIR, so the benchmark can count the requests the
whole fleet sent in any one-second window. Nothing else changes.
"""

from __future__ import annotations

import os
import time
from typing import Any

_DIR = os.environ.get("VEDOMAINS_BENCH_PROBE_DIR")

if _DIR:
    from botocore import endpoint

    _send = endpoint.Endpoint._send

    def _recording_send(self: endpoint.Endpoint, request: Any) -> Any:
        target = request.headers.get("X-Amz-Target", b"")
        if isinstance(target, bytes):
            target = target.decode()
        with open(os.path.join(_DIR, f"{os.getpid()}.log"), "a") as out:
            out.write(f"{time.time():.6f} {target or '-'}\n")
        return _send(self, request)

    endpoint.Endpoint._send = _recording_send
