"""Fixtures for the local infrastructure's own tests: real servers on loopback."""

from __future__ import annotations

from collections.abc import Iterator

import dns.resolver
import pytest

from localdev.dns_control import DNSControl
from localdev.dns_server import LocalDNSServer
from localdev.moto_server import MotoHandle, start_moto


def make_resolver(port: int, lifetime: float = 2.0) -> dns.resolver.Resolver:
    # configure=False: never read /etc/resolv.conf; only our server is asked.
    resolver = dns.resolver.Resolver(configure=False)
    resolver.nameservers = ["127.0.0.1"]
    resolver.port = port
    resolver.lifetime = lifetime
    resolver.cache = None
    return resolver


@pytest.fixture
def dns_server() -> Iterator[LocalDNSServer]:
    with LocalDNSServer(control_port=0) as server:
        yield server


@pytest.fixture
def resolver(dns_server: LocalDNSServer) -> dns.resolver.Resolver:
    return make_resolver(dns_server.port)


@pytest.fixture
def control(dns_server: LocalDNSServer) -> DNSControl:
    assert dns_server.control_url is not None
    return DNSControl(dns_server.control_url, timeout=2.0)


@pytest.fixture(scope="module")
def moto() -> Iterator[MotoHandle]:
    # 2 s, not 1: on a loaded CI runner the first DescribeCertificate must still see
    # PENDING_VALIDATION.
    with start_moto(acm_validation_wait=2) as handle:
        yield handle
