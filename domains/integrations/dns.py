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
import itertools
import secrets
from collections.abc import Iterable
from dataclasses import dataclass, field, replace

import dns.asyncquery
import dns.asyncresolver
import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.nameserver
import dns.rcode
import dns.rdatatype
import dns.resolver
from asgiref.sync import async_to_sync
from django.conf import settings

from domains.integrations.dns_caa import CaaCache, CaaResult, lookup_caa_cached_async
from domains.integrations.errors import IntegrationError

MAX_CHAIN = 10
# The ownership TXT record lives at <prefix>.<hostname>; customers' zones hold it, so it is
# part of the product's contract, not a setting.
OWNERSHIP_TXT_PREFIX = "_vedomains-challenge"


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
    resolver.lifetime = settings.VEDOMAINS_DNS_TIMEOUT_SECONDS
    resolver.timeout = max(0.5, settings.VEDOMAINS_DNS_TIMEOUT_SECONDS / 2)
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
    prefix = OWNERSHIP_TXT_PREFIX

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


# --- facts for the DNS doctor ----------------------------------------------------------------
#
# When a hostname does not point at us, a few more queries say why (domains.dns_doctor turns
# them into words). Per name: CNAME, A, AAAA, CAA, and MX and TXT when there is no CNAME;
# per zone (cached for the batch): NS, the parents' CAA, one wildcard probe; a SERVFAIL
# costs one retry with CD set (and DS/DNSKEY at the zone when that retry answers). A name
# that points at us but waits for its certificate gets the light version: CAA, CNAME, A,
# AAAA.

# A label no customer creates: if it resolves, a wildcard answered it.
WILDCARD_PROBE_PREFIX = "_vedomains-wildcard-probe-"


@dataclass(frozen=True)
class DnsFacts:
    hostname: str
    zone: str
    # CNAME targets at the name itself (two: a broken provider serves both).
    cnames: tuple[str, ...] = ()
    cname_ttl: int | None = None
    # A/AAAA owned by the name itself (beside or instead of a CNAME), and their TTL.
    addresses: tuple[str, ...] = ()
    address_ttl: int | None = None
    nxdomain: bool = False
    # How long resolvers cache "no such record" (the SOA's negative TTL, RFC 2308).
    negative_ttl: int | None = None
    has_mx: bool = False
    txt: tuple[str, ...] = ()
    nameservers: tuple[str, ...] = ()
    caa: CaaResult | None = None
    # What a random name beside the hostname resolves to: its CNAME target or addresses.
    wildcard: tuple[str, ...] = ()
    # SERVFAIL that goes away with CD set: the zone's DNSSEC chain does not validate.
    dnssec_broken: bool = False
    ds_without_dnskey: bool = False
    # A lookup failed and could not be explained (timeout, SERVFAIL even with CD).
    transient: str = ""
    # A zone answer (NS, the wildcard probe, DS/DNSKEY) failed and was read as none: these
    # facts are right for this check but must not be remembered for the next.
    incomplete: bool = False


@dataclass
class FactsCache:
    """Answers shared by the hostnames of one zone, for one batch."""

    nameservers: dict[str, tuple[str, ...]] = field(default_factory=dict)
    caa: CaaCache = field(default_factory=dict)
    wildcard: dict[str, tuple[str, ...]] = field(default_factory=dict)
    dnssec: dict[str, tuple[bool, bool]] = field(default_factory=dict)


def _values(answer: dns.resolver.Answer | dns.message.Message, owner: str,
            rdtype: dns.rdatatype.RdataType) -> tuple[tuple[str, ...], int | None]:
    values: list[str] = []
    ttl: int | None = None
    response = answer.response if isinstance(answer, dns.resolver.Answer) else answer
    for rrset in response.answer:
        if rrset.rdtype == rdtype and _norm(rrset.name) == owner:
            ttl = rrset.ttl if ttl is None else min(ttl, rrset.ttl)
            for rdata in rrset:
                if rdtype == dns.rdatatype.CNAME:
                    values.append(_norm(rdata.target))
                elif rdtype == dns.rdatatype.TXT:
                    values.append(b"".join(rdata.strings).decode("utf-8", "replace"))
                else:
                    values.append(rdata.to_text().lower())
    return tuple(values), ttl


def _negative_ttl(response: dns.message.Message) -> int | None:
    for rrset in response.authority:
        if rrset.rdtype == dns.rdatatype.SOA and len(rrset):
            return min(rrset.ttl, rrset[0].minimum)
    return None


async def _cname_query(resolver: dns.asyncresolver.Resolver, hostname: str, *, cd: bool
                       ) -> tuple[str, dns.message.Message | None]:
    """The CNAME query, sent by hand: ("answer" | "nxdomain" | "servfail" | "timeout", reply).

    Not through the resolver, because its parser keeps one record of a CNAME RRset (a
    CNAME is a singleton type) and a broken provider's two CNAMEs would read as one;
    `one_rr_per_rrset` keeps them all.
    """
    query = dns.message.make_query(hostname, dns.rdatatype.CNAME)
    query.flags |= dns.flags.RD | (dns.flags.CD if cd else 0)
    outcome = "timeout"
    for server in resolver.nameservers:
        if isinstance(server, dns.nameserver.Do53Nameserver):
            address, port = server.address, server.port
        else:
            address, port = str(server), resolver.port
        try:
            reply, _ = await dns.asyncquery.udp_with_fallback(
                query, address, timeout=resolver.timeout, port=port, one_rr_per_rrset=True)
        except (dns.exception.DNSException, OSError):
            continue
        rcode = reply.rcode()
        if rcode == dns.rcode.NOERROR:
            return "answer", reply
        if rcode == dns.rcode.NXDOMAIN:
            return "nxdomain", reply
        outcome = "servfail"  # SERVFAIL or REFUSED: the next server may know
    return outcome, None


def _checking_disabled(resolver: dns.asyncresolver.Resolver) -> dns.asyncresolver.Resolver:
    cd = dns.asyncresolver.Resolver(configure=False)
    cd.nameservers = resolver.nameservers
    cd.lifetime, cd.timeout = resolver.lifetime, resolver.timeout
    cd.flags = dns.flags.RD | dns.flags.CD
    return cd


async def gather_facts_async(resolver: dns.asyncresolver.Resolver, hostname: str, zone: str,
                             cache: FactsCache, *, light: bool = False) -> DnsFacts:
    """What DNS holds at and around `hostname`, for the doctor. Never raises for DNS.

    `light`: the name already points at us; only what can still go wrong is asked: CAA
    (which can stop the certificate) and an address record a provider serves beside the
    CNAME (which sends some visitors elsewhere).
    """
    hostname, zone = hostname.lower(), zone.lower()
    if light:
        caa = await lookup_caa_cached_async(resolver, hostname, cache.caa)
        outcome, response = await _cname_query(resolver, hostname, cd=False)
        cnames = _values(response, hostname, dns.rdatatype.CNAME)[0] if response else ()
        try:
            addresses, ttl, _ = await _addresses(resolver, hostname)
        except dns.exception.DNSException:
            addresses, ttl = (), None
        return DnsFacts(hostname, zone, caa=caa, addresses=addresses, address_ttl=ttl,
                        cnames=cnames)
    dnssec_broken = ds_without_dnskey = False
    outcome, response = await _cname_query(resolver, hostname, cd=False)
    if outcome == "servfail":
        # Retrying with CD tells a zone whose DNSSEC does not validate from a broken one.
        outcome, response = await _cname_query(resolver, hostname, cd=True)
        if outcome in ("answer", "nxdomain"):
            resolver = _checking_disabled(resolver)
            dnssec_broken = True
            ds_without_dnskey = await _ds_without_dnskey(resolver, zone, cache)
    if outcome == "nxdomain" and response is not None:
        # No such name: it holds no CAA record either, so the climb starts at its parent
        # (RFC 8659 section 3) without asking.
        cache.caa.setdefault(hostname, ())
        nx_caa = (await lookup_caa_cached_async(resolver, hostname, cache.caa)
                  if not dnssec_broken else None)
        facts = DnsFacts(hostname, zone, nxdomain=True, caa=nx_caa,
                         negative_ttl=_negative_ttl(response), dnssec_broken=dnssec_broken,
                         ds_without_dnskey=ds_without_dnskey)
        return await _zone_facts(resolver, facts, cache)
    if outcome != "answer" or response is None:
        # A timeout (asking more would only wait more), or SERVFAIL even with CD.
        return DnsFacts(hostname, zone, transient=f"DNS lookup of {hostname} failed: {outcome}")
    caa = await lookup_caa_cached_async(resolver, hostname, cache.caa)
    cnames, cname_ttl = _values(response, hostname, dns.rdatatype.CNAME)
    negative_ttl = _negative_ttl(response) if not cnames else None
    has_mx = False
    txt: tuple[str, ...] = ()
    try:
        addresses, address_ttl, _ = await _addresses(resolver, hostname)
        if not cnames:
            # Only beside no CNAME: a provider that refuses a CNAME refuses it for these.
            mx = await resolver.resolve(hostname, "MX", raise_on_no_answer=False)
            has_mx = bool(_values(mx, hostname, dns.rdatatype.MX)[0])
            txt_answer = await resolver.resolve(hostname, "TXT", raise_on_no_answer=False)
            txt = _values(txt_answer, hostname, dns.rdatatype.TXT)[0]
    except dns.exception.DNSException as exc:
        return DnsFacts(hostname, zone, cnames=cnames, cname_ttl=cname_ttl, caa=caa,
                        transient=f"DNS lookup failed: {exc}")
    facts = DnsFacts(hostname, zone, cnames=cnames, cname_ttl=cname_ttl,
                     addresses=addresses, address_ttl=address_ttl,
                     negative_ttl=negative_ttl, has_mx=has_mx, txt=txt, caa=caa,
                     dnssec_broken=dnssec_broken, ds_without_dnskey=ds_without_dnskey)
    return await _zone_facts(resolver, facts, cache)


async def _addresses(resolver: dns.asyncresolver.Resolver, hostname: str
                     ) -> tuple[tuple[str, ...], int | None, tuple[str, ...]]:
    """A and AAAA owned by the name itself (not those of a CNAME's target), their TTL, and
    the CNAME the A answer carried."""
    addresses: list[str] = []
    address_ttl: int | None = None
    cnames: tuple[str, ...] = ()
    for rdtype in (dns.rdatatype.A, dns.rdatatype.AAAA):
        answer = await resolver.resolve(hostname, rdtype, raise_on_no_answer=False)
        found, ttl = _values(answer, hostname, rdtype)
        addresses += found
        if ttl is not None:
            address_ttl = ttl if address_ttl is None else min(address_ttl, ttl)
        if rdtype == dns.rdatatype.A:
            cnames = _values(answer, hostname, dns.rdatatype.CNAME)[0]
    return tuple(addresses), address_ttl, cnames


async def _zone_facts(resolver: dns.asyncresolver.Resolver, facts: DnsFacts,
                      cache: FactsCache) -> DnsFacts:
    """The zone's nameservers and the wildcard probe: asked once per zone (parent)."""
    # Only a definite answer is kept in `cache` (which may outlive the batch): a timeout or
    # SERVFAIL reads as "none" for this name and is asked again for the next.
    zone = facts.zone
    incomplete = facts.incomplete
    nameservers = cache.nameservers.get(zone)
    if nameservers is None:
        try:
            answer = await resolver.resolve(zone, "NS", raise_on_no_answer=False)
            nameservers = cache.nameservers[zone] = tuple(
                sorted(_values(answer, zone, dns.rdatatype.NS)[0]))
        except dns.resolver.NXDOMAIN:
            nameservers = cache.nameservers[zone] = ()
        except dns.exception.DNSException:
            nameservers, incomplete = (), True
    parent = facts.hostname.partition(".")[2] if facts.hostname != zone else ""
    wildcard: tuple[str, ...] = ()
    if parent:
        known = cache.wildcard.get(parent)
        if known is None:
            probe = f"{WILDCARD_PROBE_PREFIX}{secrets.token_hex(4)}.{parent}"
            try:
                answer = await resolver.resolve(probe, "A", raise_on_no_answer=False)
                cnames = _values(answer, probe, dns.rdatatype.CNAME)[0]
                known = cache.wildcard[parent] = (
                    cnames or _values(answer, probe, dns.rdatatype.A)[0])
            except dns.resolver.NXDOMAIN:  # no wildcard
                known = cache.wildcard[parent] = ()
            except dns.exception.DNSException:
                known, incomplete = (), True
        wildcard = known
    return replace(facts, nameservers=nameservers, wildcard=wildcard, incomplete=incomplete)


async def _ds_without_dnskey(resolver: dns.asyncresolver.Resolver, zone: str,
                             cache: FactsCache) -> bool:
    """With CD set: does the zone have a DS at its parent but no DNSKEY of its own?"""
    known = cache.dnssec.get(zone)
    if known is None:
        try:
            ds = await resolver.resolve(zone, "DS", raise_on_no_answer=False)
            key = await resolver.resolve(zone, "DNSKEY", raise_on_no_answer=False)
            known = cache.dnssec[zone] = (bool(_values(ds, zone, dns.rdatatype.DS)[0]),
                                          bool(_values(key, zone, dns.rdatatype.DNSKEY)[0]))
        except dns.resolver.NXDOMAIN:
            known = cache.dnssec[zone] = (False, False)
        except dns.exception.DNSException:
            # Read as "nothing to blame on DNSSEC" now, asked again next time (the name's
            # facts are already marked dnssec_broken, which is never remembered).
            known = (False, False)
    has_ds, has_key = known
    return has_ds and not has_key


async def gather_facts_many_async(wanted: dict[str, tuple[str, bool]],
                                  cache: FactsCache | None = None) -> dict[str, DnsFacts]:
    """Facts for many hostnames at once: {hostname: (zone, light)}. `cache`: answers
    already known (the caller may keep them across batches); filled as it goes."""
    resolver = make_resolver()
    cache = FactsCache() if cache is None else cache
    semaphore = asyncio.Semaphore(settings.VEDOMAINS_DNS_CONCURRENCY)

    async def one(host: str, zone: str, light: bool) -> tuple[str, DnsFacts]:
        async with semaphore:
            return host, await gather_facts_async(resolver, host, zone, cache, light=light)

    async def zone(batch: list[tuple[str, tuple[str, bool]]]) -> list[tuple[str, DnsFacts]]:
        # The zone's first name fills the cache its other names then read.
        first = await one(batch[0][0], *batch[0][1])
        rest = await asyncio.gather(*(one(h, z, c) for h, (z, c) in batch[1:]))
        return [first, *rest]

    ordered = sorted(wanted.items(), key=lambda item: (item[1][0], item[0]))
    zones = [list(g) for _, g in itertools.groupby(ordered, key=lambda item: item[1][0])]
    return {host: facts for batch in await asyncio.gather(*(zone(b) for b in zones))
            for host, facts in batch}


def gather_facts_many(wanted: dict[str, tuple[str, bool]],
                      cache: FactsCache | None = None) -> dict[str, DnsFacts]:
    return async_to_sync(gather_facts_many_async)(dict(wanted), cache)
