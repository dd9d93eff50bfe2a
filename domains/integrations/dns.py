"""DNS checks with dnspython: does a hostname's CNAME chain reach our target, what TXT is set.

The one distinction that matters: NXDOMAIN / no CNAME / a CNAME elsewhere means the
customer's DNS is wrong (a verdict); a timeout, SERVFAIL or REFUSED means we could not tell
(transient: retried, never used to deactivate a domain).

Many domains are checked concurrently with the async resolver; single lookups use the same
code through asgiref's `async_to_sync` (which runs the coroutine on an event loop of its
own, in another thread, so it works whether or not the caller has a running loop).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from dataclasses import dataclass

import dns.asyncresolver
import dns.exception
import dns.name
import dns.nameserver
import dns.rdatatype
import dns.resolver
from asgiref.sync import async_to_sync
from django.conf import settings

from domains.integrations.errors import IntegrationError

MAX_CHAIN = 10


@dataclass(frozen=True)
class RoutingCheck:
    hostname: str
    ok: bool
    # points_to_target | nxdomain | no_cname | wrong_target | loop | transient
    reason: str
    detail: str
    chain: tuple[str, ...] = ()

    @property
    def transient(self) -> bool:
        return self.reason == "transient"


@dataclass(frozen=True)
class TxtCheck:
    name: str
    values: tuple[str, ...] = ()
    transient: bool = False
    detail: str = ""


@dataclass(frozen=True)
class DnsResult:
    routing: RoutingCheck
    txt: TxtCheck | None = None


def parse_nameserver(entry: str) -> dns.nameserver.Do53Nameserver:
    """`1.2.3.4`, `1.2.3.4:5353`, `::1` or `[::1]:5353`."""
    entry = entry.strip()
    if entry.startswith("["):
        host, _, port = entry[1:].partition("]")
        port = port.lstrip(":")
    elif entry.count(":") == 1:
        host, _, port = entry.partition(":")
    else:  # a bare IPv4 or IPv6 address
        host, port = entry, ""
    return dns.nameserver.Do53Nameserver(host, int(port or 53))


def _nameservers() -> list[dns.nameserver.Nameserver]:
    return [parse_nameserver(e) for e in settings.VEDOMAINS_DNS_NAMESERVERS if e.strip()]


def make_resolver() -> dns.asyncresolver.Resolver:
    servers = _nameservers()
    if servers:
        resolver = dns.asyncresolver.Resolver(configure=False)
        resolver.nameservers = servers
    else:
        resolver = dns.asyncresolver.Resolver()
    resolver.lifetime = settings.VEDOMAINS_DNS_TIMEOUT
    resolver.timeout = max(0.5, settings.VEDOMAINS_DNS_TIMEOUT / 2)
    return resolver


def _norm(name: dns.name.Name | str) -> str:
    return str(name).rstrip(".").lower()


async def check_routing_async(
    resolver: dns.asyncresolver.Resolver, hostname: str, target: str
) -> RoutingCheck:
    target = target.rstrip(".").lower()
    chain = [hostname]

    def result(ok: bool, reason: str, detail: str) -> RoutingCheck:
        return RoutingCheck(hostname, ok, reason, detail, tuple(chain))

    while len(chain) <= MAX_CHAIN:
        current = chain[-1]
        if current == target:
            return result(True, "points_to_target", " -> ".join(chain))
        try:
            answer = await resolver.resolve(current, "CNAME", raise_on_no_answer=False)
        except dns.resolver.NXDOMAIN:
            if current == hostname:
                return result(False, "nxdomain", f"{hostname} does not exist in DNS (NXDOMAIN).")
            return result(False, "wrong_target",
                          f"The CNAME chain ends at {current}, which does not exist.")
        except dns.exception.DNSException as exc:  # timeout, SERVFAIL, REFUSED: no verdict
            return result(False, "transient", f"DNS lookup failed: {exc}")
        links = {
            _norm(rrset.name): _norm(rrset[0].target)
            for rrset in answer.response.answer
            if rrset.rdtype == dns.rdatatype.CNAME and len(rrset)
        }
        if current not in links:
            if current == hostname:
                return result(False, "no_cname",
                              f"{hostname} has no CNAME record; add CNAME {hostname} -> {target}.")
            return result(False, "wrong_target", f"{hostname} points to {current}, not {target}.")
        # A resolver may return the whole chain at once; follow whatever it gave us.
        while current in links and current != target:
            current = links[current]
            if current in chain:
                return result(False, "loop", f"CNAME loop: {' -> '.join([*chain, current])}")
            chain.append(current)
    return result(False, "wrong_target",
                  f"The CNAME chain of {hostname} is longer than {MAX_CHAIN} links.")


async def check_apex_async(
    resolver: dns.asyncresolver.Resolver, hostname: str, addresses: Iterable[str]
) -> RoutingCheck:
    """An apex cannot hold a CNAME: its A/AAAA records must be our anycast static IPs.

    Every address the name has must be one of ours (a leftover record of the old host would
    send some visitors there), and at least one must be there.
    """
    ours = {a.lower() for a in addresses}
    found: list[str] = []
    for rtype in ("A", "AAAA"):
        try:
            answer = await resolver.resolve(hostname, rtype, raise_on_no_answer=False)
        except dns.resolver.NXDOMAIN:
            return RoutingCheck(hostname, False, "nxdomain",
                                f"{hostname} does not exist in DNS (NXDOMAIN).")
        except dns.exception.DNSException as exc:
            return RoutingCheck(hostname, False, "transient", f"DNS lookup failed: {exc}")
        for rrset in answer.response.answer:
            if _norm(rrset.name) == hostname and rrset.rdtype in (dns.rdatatype.A,
                                                                  dns.rdatatype.AAAA):
                found += [r.address.lower() for r in rrset]
    chain = (hostname, *found)
    if not found:
        return RoutingCheck(hostname, False, "no_cname",
                            f"{hostname} has no A record; add A records to "
                            f"{', '.join(sorted(ours))}.", chain)
    strangers = sorted(set(found) - ours)
    if strangers:
        return RoutingCheck(hostname, False, "wrong_target",
                            f"{hostname} also points to {', '.join(strangers)}, which is not "
                            f"ours; keep only {', '.join(sorted(ours))}.", chain)
    return RoutingCheck(hostname, True, "points_to_target",
                        f"{hostname} -> {', '.join(found)}", chain)


async def lookup_txt_async(resolver: dns.asyncresolver.Resolver, name: str) -> TxtCheck:
    try:
        answer = await resolver.resolve(name, "TXT", raise_on_no_answer=False)
    except dns.resolver.NXDOMAIN:
        return TxtCheck(name, (), False, f"{name} does not exist (NXDOMAIN).")
    except dns.exception.DNSException as exc:
        return TxtCheck(name, (), True, f"DNS lookup failed: {exc}")
    values = []
    for rrset in answer.response.answer:
        if rrset.rdtype != dns.rdatatype.TXT or _norm(rrset.name) != name.lower():
            continue
        for rdata in rrset:
            # Long TXT values arrive split into 255-byte strings; they form one value.
            values.append(b"".join(rdata.strings).decode("utf-8", "replace"))
    return TxtCheck(name, tuple(values), False, "" if values else f"No TXT record at {name}.")


async def check_many_async(
    hostnames: Iterable[str], *, txt_for: Iterable[str] = (), target: str | None = None,
    apex_for: Iterable[str] = (),
) -> dict[str, DnsResult]:
    """Routing (and, for `txt_for`, ownership TXT) for many hostnames, concurrently.

    `apex_for`: apex names, checked for A/AAAA records to VEDOMAINS_CDN_APEX_IPS.
    """
    target = target or settings.VEDOMAINS_CNAME_TARGET
    resolver = make_resolver()
    txt_wanted = set(txt_for)
    apex = set(apex_for)
    apex_ips = list(settings.VEDOMAINS_CDN_APEX_IPS)
    semaphore = asyncio.Semaphore(settings.VEDOMAINS_DNS_CONCURRENCY)
    prefix = settings.VEDOMAINS_OWNERSHIP_TXT_PREFIX

    async def one(host: str) -> tuple[str, DnsResult]:
        async with semaphore:
            routing = (await check_apex_async(resolver, host, apex_ips) if host in apex
                       else await check_routing_async(resolver, host, target))
            txt = (
                await lookup_txt_async(resolver, f"{prefix}.{host}") if host in txt_wanted else None
            )
            return host, DnsResult(routing=routing, txt=txt)

    results = await asyncio.gather(*(one(h) for h in dict.fromkeys(hostnames)))
    return dict(results)


def check_many(hostnames: Iterable[str], *, txt_for: Iterable[str] = (),
               apex_for: Iterable[str] = ()) -> dict[str, DnsResult]:
    return async_to_sync(check_many_async)(list(hostnames), txt_for=list(txt_for),
                                           apex_for=list(apex_for))


def check_routing(hostname: str) -> RoutingCheck:
    return check_many([hostname])[hostname].routing


def lookup_txt(name: str) -> list[str]:
    """TXT values at `name`; raises a transient IntegrationError when DNS cannot tell."""
    result = async_to_sync(lookup_txt_async)(make_resolver(), name)
    if result.transient:
        raise IntegrationError(result.detail, permanent=False, code="dns_transient")
    return list(result.values)
