"""What the DNS doctor may remember across batches: definite answers only.

A timeout or SERVFAIL on a zone's NS, wildcard probe or DS/DNSKEY reads as "none" for the
name being checked, but kept for five minutes it would hide the zone's provider, a wildcard
or a DNSSEC fault from every later check of the zone. A fake resolver gives the failures;
`_zone_facts` and the worker's memory are called directly (no server needed)."""

from __future__ import annotations

import asyncio
from typing import Any

import dns.exception
import dns.resolver

from domains.integrations import dns as our_dns
from workflow import checks


class _Failing:
    """Answers every query with the exception given for its type (NS, A)."""

    def __init__(self, errors: dict[str, Exception]) -> None:
        self.errors = errors
        self.asked: list[tuple[str, str]] = []

    async def resolve(self, name: str, rdtype: Any, **_: Any) -> Any:
        kind = rdtype if isinstance(rdtype, str) else dns.rdatatype.to_text(rdtype)
        self.asked.append((name, kind))
        raise self.errors[kind]


def _zone_facts(resolver: _Failing, cache: our_dns.FactsCache) -> our_dns.DnsFacts:
    facts = our_dns.DnsFacts("shop.client.com", "client.com")
    return asyncio.run(our_dns._zone_facts(resolver, facts, cache))


def test_a_zone_lookup_that_timed_out_is_used_once_and_asked_again() -> None:
    cache = our_dns.FactsCache()
    resolver = _Failing({"NS": dns.exception.Timeout(), "A": dns.exception.Timeout()})
    facts = _zone_facts(resolver, cache)
    assert (facts.nameservers, facts.wildcard, facts.incomplete) == ((), (), True)
    assert cache.nameservers == {} and cache.wildcard == {}
    _zone_facts(resolver, cache)
    assert resolver.asked.count(("client.com", "NS")) == 2


def test_a_definite_no_is_kept_for_the_zone() -> None:
    cache = our_dns.FactsCache()
    resolver = _Failing({"NS": dns.resolver.NXDOMAIN(), "A": dns.resolver.NXDOMAIN()})
    facts = _zone_facts(resolver, cache)
    assert (facts.nameservers, facts.wildcard, facts.incomplete) == ((), (), False)
    assert cache.nameservers == {"client.com": ()} and cache.wildcard == {"client.com": ()}
    _zone_facts(resolver, cache)
    assert resolver.asked.count(("client.com", "NS")) == 1


def test_the_memory_keeps_neither_incomplete_facts_nor_a_zero_ttl() -> None:
    memory = checks._DoctorMemory()
    routing = our_dns.RoutingCheck("a.client.com", False, "no_cname", "no CNAME")
    complete = our_dns.DnsFacts("a.client.com", "client.com", negative_ttl=60)
    memory.remember(("a.client.com", False, routing), complete)
    assert memory.recall(("a.client.com", False, routing)) == complete
    for host, facts in [
        ("b.client.com", our_dns.DnsFacts("b.client.com", "client.com", incomplete=True)),
        ("c.client.com", our_dns.DnsFacts("c.client.com", "client.com", negative_ttl=0)),
        ("d.client.com", our_dns.DnsFacts("d.client.com", "client.com", transient="timeout")),
    ]:
        memory.remember((host, False, routing), facts)
        assert memory.recall((host, False, routing)) is None, host
