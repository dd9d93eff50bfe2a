"""Loaded by the benchmark's moto server only (bench/common.py puts this directory on its
PYTHONPATH and sets VEDOMAINS_BENCH_MOTO=1).

moto's ACM generates a fresh 2048-bit RSA key for every requested certificate and then
re-parses it with full RSA key validation: ~0.1 s of CPU per certificate, so the 10,000
certificates of the checks benchmark would take 15+ minutes to set up. Reusing one key
(and its parsed form) brings that to a few milliseconds. Nothing the benchmarks time
depends on the key: DescribeCertificate only reads the stored certificate.
"""

from __future__ import annotations

import functools
import os
from typing import Any

if os.environ.get("VEDOMAINS_BENCH_MOTO") == "1":
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    _generate = rsa.generate_private_key
    _load_pem = serialization.load_pem_private_key

    @functools.lru_cache(maxsize=8)
    def _cached_key(public_exponent: int, key_size: int) -> Any:
        return _generate(public_exponent=public_exponent, key_size=key_size)

    def generate_private_key(public_exponent: int, key_size: int, backend: Any = None) -> Any:
        return _cached_key(public_exponent, key_size)

    @functools.lru_cache(maxsize=8)
    def _cached_load(data: bytes, password: bytes | None) -> Any:
        return _load_pem(data, password=password)

    def load_pem_private_key(data: bytes, password: bytes | None = None, backend: Any = None,
                             **kwargs: Any) -> Any:
        if kwargs or not isinstance(data, bytes):
            return _load_pem(data, password=password, **kwargs)
        return _cached_load(data, password)

    rsa.generate_private_key = generate_private_key
    serialization.load_pem_private_key = load_pem_private_key
