"""Outbound webhook POSTs with the standard library, safe against SSRF.

An endpoint URL is chosen by staff, but what its name resolves to is chosen by whoever
controls that DNS, so the destination is checked when the request is sent:
- the name is resolved once, every address it resolves to must be global (no loopback,
  private, link-local such as 169.254.169.254, unique-local such as fd00:ec2::254,
  shared, reserved or multicast; IPv4-mapped, NAT64 and 6to4 IPv6 forms are checked as
  the IPv4 address they carry), no address may sit in any range of IANA's IPv4 and IPv6
  special-purpose address registries (`SPECIAL_PURPOSE`), and metadata names are refused
  outright;
- the socket connects to the address that was checked, not to the name again, so a
  second resolution (DNS rebinding) cannot swap in an internal address; TLS still
  verifies the certificate against the hostname (SNI and check_hostname);
- https only, unless DEBUG (the local stack);
- networks listed in VEDOMAINS_WEBHOOK_ALLOWED_NETWORKS are allowed although not global
  (a receiver inside the VPC, or loopback in tests);
- no redirects are followed and no proxy is used; the answer's body is never read or
  stored: status code, Location and timing only.
"""

from __future__ import annotations

import http.client
import ipaddress
import socket
import ssl
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings

from domains.integrations.errors import IntegrationError

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# Cloud metadata services answer on these names, whatever they resolve to in a given VPC.
BLOCKED_NAMES = frozenset({
    "localhost", "metadata", "metadata.google.internal", "metadata.goog",
    "instance-data", "instance-data.ec2.internal", "metadata.azure.com",
})
BLOCKED_SUFFIXES = (".localhost", ".internal", ".local", ".localdomain", ".home.arpa")
_NAT64 = ipaddress.ip_network("64:ff9b::/96")

# Every range of IANA's special-purpose registries, globally reachable or not (a webhook
# receiver never lives in one), plus the deprecated IPv6 ranges that are not in them:
# https://www.iana.org/assignments/iana-ipv4-special-registry/
# https://www.iana.org/assignments/iana-ipv6-special-registry/
# `ipaddress.is_global` misses several (IPv4-compatible ::a.b.c.d, local-use NAT64,
# site-local fec0::/10, documentation 3fff::/20, SRv6 5f00::/16, 192.0.0.9, AS112, ...).
# Left out on purpose: the well-known NAT64 prefix 64:ff9b::/96 and 6to4 2002::/16, which
# are judged by the IPv4 address they carry (`_embedded_ipv4`).
SPECIAL_PURPOSE: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = tuple(
    ipaddress.ip_network(n) for n in (
        # IPv4 special-purpose registry
        "0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16",
        "172.16.0.0/12", "192.0.0.0/24", "192.0.2.0/24", "192.31.196.0/24",
        "192.52.193.0/24", "192.88.99.0/24", "192.168.0.0/16", "192.175.48.0/24",
        "198.18.0.0/15", "198.51.100.0/24", "203.0.113.0/24", "240.0.0.0/4",
        "255.255.255.255/32",
        # IPv4 multicast
        "224.0.0.0/4",
        # IPv6 special-purpose registry
        "::1/128", "::/128", "::ffff:0:0/96", "64:ff9b:1::/48", "100::/64",
        "100:0:0:1::/64", "2001::/23", "2001:db8::/32", "2620:4f:8000::/48", "3fff::/20",
        "5f00::/16", "fc00::/7", "fe80::/10",
        # Deprecated, in the IPv6 address space registry: IPv4-compatible (RFC 4291
        # 2.5.5.1), site-local (RFC 3879); and multicast.
        "::/96", "fec0::/10", "ff00::/8",
    )
)


@dataclass(frozen=True)
class HttpResult:
    status_code: int
    latency_ms: int
    location: str = ""

    @property
    def ok(self) -> bool:
        return 200 <= self.status_code < 300


def _refuse(message: str) -> IntegrationError:
    return IntegrationError(message, permanent=True, code="forbidden_destination")


def _embedded_ipv4(ip: IPAddress) -> ipaddress.IPv4Address | None:
    if not isinstance(ip, ipaddress.IPv6Address):
        return None
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip in _NAT64:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return ip.sixtofour or (ip.teredo[1] if ip.teredo else None)


def special_purpose(ip: IPAddress) -> bool:
    return any(ip.version == net.version and ip in net for net in SPECIAL_PURPOSE)


def address_allowed(ip: IPAddress) -> bool:
    allowed = [ipaddress.ip_network(n, strict=False)
               for n in settings.VEDOMAINS_WEBHOOK_ALLOWED_NETWORKS]
    embedded = _embedded_ipv4(ip)
    candidates = [ip] if embedded is None else [ip, embedded]
    if all(any(c.version == net.version and c in net for net in allowed) for c in candidates):
        return True
    return all(c.is_global and not c.is_multicast and not special_purpose(c)
               for c in candidates)


def check_url(url: str) -> tuple[str, str, int]:
    """Scheme, hostname and port of an acceptable URL; no I/O (used at save time too)."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    allowed_schemes = {"https", "http"} if settings.DEBUG else {"https"}
    if scheme not in allowed_schemes or not parts.hostname:
        raise _refuse(f"Refusing webhook URL {url!r}: only https URLs are allowed"
                      + (" (http too, in DEBUG)." if settings.DEBUG else "."))
    if parts.username or parts.password:
        raise _refuse("Refusing webhook URL with credentials in it.")
    host = parts.hostname.rstrip(".").lower()
    try:
        port = parts.port or (443 if scheme == "https" else 80)
    except ValueError as exc:
        raise _refuse(f"Refusing webhook URL {url!r}: {exc}.") from None
    if host in BLOCKED_NAMES or host.endswith(BLOCKED_SUFFIXES):
        raise _refuse(f"Refusing webhook host {host!r}: an internal or metadata name.")
    try:
        literal: IPAddress | None = ipaddress.ip_address(host)
    except ValueError:
        literal = None
    if literal is not None and not address_allowed(literal):
        raise _refuse(f"Refusing webhook address {host}: not a public address.")
    return scheme, host, port


def resolve_checked(host: str, port: int) -> str:
    """The address to connect to: every address of `host` must be allowed."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM,
                                   proto=socket.IPPROTO_TCP)
    except (socket.gaierror, UnicodeError) as exc:
        raise IntegrationError(f"Could not resolve webhook host {host!r}: {exc}",
                               permanent=False, code="network") from exc
    addresses = [ipaddress.ip_address(str(info[4][0]).split("%", 1)[0]) for info in infos]
    if not addresses:
        raise IntegrationError(f"Webhook host {host!r} has no address.", permanent=False,
                               code="network")
    refused = [str(a) for a in addresses if not address_allowed(a)]
    if refused:
        raise _refuse(f"Refusing webhook host {host!r}: it resolves to non-public "
                      f"address(es) {', '.join(sorted(set(refused)))}.")
    return str(addresses[0])


def check_destination(url: str) -> str:
    """Validate `url` and resolve its host now (the admin form's save-time check)."""
    _, host, port = check_url(url)
    return resolve_checked(host, port)


class _PinnedHTTPConnection(http.client.HTTPConnection):
    """Connects to the checked address; Host header is still the URL's host."""

    def __init__(self, host: str, port: int, *, address: str, timeout: float) -> None:
        super().__init__(host, port, timeout=timeout)
        self._address = address

    def connect(self) -> None:
        self.sock = socket.create_connection((self._address, self.port), self.timeout)


class _PinnedHTTPSConnection(http.client.HTTPSConnection):
    def __init__(self, host: str, port: int, *, address: str, timeout: float,
                 context: ssl.SSLContext) -> None:
        super().__init__(host, port, timeout=timeout, context=context)
        self._address = address
        self._ssl_context = context

    def connect(self) -> None:
        sock = socket.create_connection((self._address, self.port), self.timeout)
        # SNI and certificate verification against the URL's hostname, not the address.
        self.sock = self._ssl_context.wrap_socket(sock, server_hostname=self.host)


def post_json(url: str, body: bytes, headers: dict[str, str], *, timeout: float) -> HttpResult:
    """POST `body`; any HTTP answer is a result, a network failure a transient error."""
    scheme, host, port = check_url(url)
    address = resolve_checked(host, port)
    parts = urlsplit(url)
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    connection: Any
    if scheme == "https":
        connection = _PinnedHTTPSConnection(host, port, address=address, timeout=timeout,
                                            context=ssl.create_default_context())
    else:
        connection = _PinnedHTTPConnection(host, port, address=address, timeout=timeout)
    started = time.monotonic()
    try:
        connection.request("POST", path, body=body,
                           headers={"Content-Type": "application/json", **headers})
        response = connection.getresponse()
        status = response.status
        location = response.getheader("Location", "") or ""
        # The body is never read: a receiver cannot make us store (or show staff) what an
        # internal service said. Closing without reading drops the connection.
        return HttpResult(status, _elapsed_ms(started), location=location[:500])
    except (http.client.HTTPException, OSError) as exc:
        raise IntegrationError(f"POST {host}:{port} failed: {exc}", permanent=False,
                               code="network") from exc
    finally:
        connection.close()


def _elapsed_ms(started: float) -> int:
    return int((time.monotonic() - started) * 1000)
