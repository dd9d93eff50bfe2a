"""CAA lookups (RFC 8659) with the app's resolver: which CAs may issue for a hostname.

Kept beside `dns.py` rather than in it: only the certificate renewal watch needs it, and it
shares that module's resolver (nameservers and timeouts from settings).
"""

from __future__ import annotations

from dataclasses import dataclass

import dns.asyncresolver
import dns.exception
import dns.rdatatype
import dns.resolver

# The issuer names ACM's CAA check accepts for Amazon: the one list the CAA gate before a
# certificate and the DNS doctor share.
# https://docs.aws.amazon.com/acm/latest/userguide/setup-caa.html
AMAZON_CAA_ISSUERS = frozenset({"amazon.com", "amazontrust.com", "awstrust.com",
                                "amazonaws.com"})


@dataclass(frozen=True)
class CaaRecord:
    flags: int
    tag: str
    value: str


@dataclass(frozen=True)
class CaaResult:
    hostname: str
    # The name whose CAA RRset applies ("" when no name up the tree has one).
    found_at: str = ""
    records: tuple[CaaRecord, ...] = ()
    transient: bool = False
    detail: str = ""

    def forbids_amazon(self) -> bool:
        """A CAA RRset applies and names no Amazon issuer (a lookup that could not tell is
        no verdict): ACM and CloudFront would be refused the certificate."""
        issuers = self.issuers("issue")
        return not self.transient and bool(issuers) and not AMAZON_CAA_ISSUERS.intersection(
            issuers)

    def issuers(self, tag: str = "issue") -> list[str]:
        # An issuer value may carry parameters after ";" (`amazon.com; account=...`);
        # an empty issuer (`0 issue ";"`) allows no CA at all.
        return [r.value.split(";", 1)[0].strip().lower() for r in self.records if r.tag == tag]


async def lookup_caa_async(resolver: dns.asyncresolver.Resolver, hostname: str) -> CaaResult:
    """The relevant CAA RRset: climb from the hostname towards the root (RFC 8659 section 3).

    Resolution follows CNAMEs (the resolver does), as CAs do; an NXDOMAIN or empty answer
    moves on to the parent. A timeout or SERVFAIL stops with `transient`: we cannot tell.
    """
    labels = hostname.rstrip(".").lower().split(".")
    for start in range(len(labels)):
        name = ".".join(labels[start:])
        try:
            answer = await resolver.resolve(name, "CAA", raise_on_no_answer=False)
        except dns.resolver.NXDOMAIN:
            continue
        except dns.exception.DNSException as exc:
            return CaaResult(hostname, transient=True, detail=f"CAA lookup of {name} failed: {exc}")
        records = tuple(
            CaaRecord(int(rdata.flags), rdata.tag.decode("ascii", "replace").lower(),
                      rdata.value.decode("utf-8", "replace"))
            for rrset in answer.response.answer
            if rrset.rdtype == dns.rdatatype.CAA
            for rdata in rrset
        )
        if records:
            return CaaResult(hostname, found_at=name, records=records)
    return CaaResult(hostname)


# name -> its CAA records (empty: none there, or the name does not exist).
CaaCache = dict[str, tuple[CaaRecord, ...]]


async def lookup_caa_cached_async(resolver: dns.asyncresolver.Resolver, hostname: str,
                                  cache: CaaCache) -> CaaResult:
    """`lookup_caa_async` with the answers for each name kept in `cache`, so the parents
    that many hostnames of one zone share (`client.com`, `com`) are asked once per batch."""
    labels = hostname.rstrip(".").lower().split(".")
    for start in range(len(labels)):
        name = ".".join(labels[start:])
        if name not in cache:
            try:
                answer = await resolver.resolve(name, "CAA", raise_on_no_answer=False)
            except dns.resolver.NXDOMAIN:
                cache[name] = ()
                continue
            except dns.exception.DNSException as exc:
                return CaaResult(hostname, transient=True,
                                 detail=f"CAA lookup of {name} failed: {exc}")
            cache[name] = tuple(
                CaaRecord(int(rdata.flags), rdata.tag.decode("ascii", "replace").lower(),
                          rdata.value.decode("utf-8", "replace"))
                for rrset in answer.response.answer
                if rrset.rdtype == dns.rdatatype.CAA
                for rdata in rrset
            )
        if cache[name]:
            return CaaResult(hostname, found_at=name, records=cache[name])
    return CaaResult(hostname)
