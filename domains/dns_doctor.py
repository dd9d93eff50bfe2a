"""The DNS doctor: from what DNS holds around a hostname, what exactly is wrong, in the
customer's words, where to fix it and when the fix will be seen.

A pure function (`diagnose`) over the facts `domains.integrations.dns.gather_facts_async`
collects; no I/O beyond reading the two data files shipped beside it (`domains/data/`:
CDN address ranges and DNS providers, each entry with its source and date). The codes are
stable (clients and support may match on them) and documented in docs/dns-doctor.md.
"""

from __future__ import annotations

import ipaddress
import json
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from functools import cache
from pathlib import Path
from typing import Any, TypedDict, assert_never

from domains.integrations.dns import DnsFacts

DATA_DIR = Path(__file__).resolve().parent / "data"

# The CAs whose `issue` value lets Amazon issue (ACM, and CloudFront's managed certificates).
CAA_HELP_URL = "https://docs.aws.amazon.com/acm/latest/userguide/setup-caa.html"
DNSSEC_HELP_URL = "https://www.icann.org/resources/pages/dnssec-what-is-it-why-important-2019-03-05-en"
GENERIC_HELP_URL = "https://www.cloudflare.com/learning/dns/dns-records/dns-cname-record/"
# A target one slip away: a dropped dot and a ".com" the form added.
TYPO_TLDS = ("com", "net", "org", "io", "co")


class DiagnosisCode(StrEnum):
    """Stable codes (docs/dns-doctor.md). Add, never rename."""

    DNSSEC_BROKEN = "dnssec_broken"
    ZONE_APPENDED = "zone_appended"
    TYPO = "typo"
    TWO_CNAMES = "two_cnames"
    ADDRESS_BESIDE_CNAME = "address_beside_cname"
    CDN_PROXIED = "cdn_proxied"
    WILDCARD = "wildcard"
    ADDRESS_INSTEAD_OF_CNAME = "address_instead_of_cname"
    RECORDS_BLOCK_CNAME = "records_block_cname"
    APEX = "apex"
    WRONG_TARGET = "wrong_target"
    NO_RECORD = "no_record"
    CAA_FORBIDS_AMAZON = "caa_forbids_amazon"
    OLD_ANSWER_CACHED = "old_answer_cached"


class DiagnosisDict(TypedDict):
    code: str
    message: str
    fix: str
    docs_url: str


@dataclass(frozen=True)
class Diagnosis:
    code: DiagnosisCode
    message: str
    fix: str
    docs_url: str

    def as_dict(self) -> DiagnosisDict:
        data = asdict(self)
        return DiagnosisDict(code=str(self.code), message=data["message"], fix=data["fix"],
                             docs_url=data["docs_url"])


@dataclass(frozen=True)
class Provider:
    name: str
    cname_help_url: str
    appends_zone: bool
    apex: str | None
    ns_suffixes: tuple[str, ...] = ()
    ns_contains: tuple[str, ...] = ()

    def serves(self, nameserver: str) -> bool:
        ns = nameserver.rstrip(".").lower()
        return (any(ns == s or ns.endswith("." + s) for s in self.ns_suffixes)
                or any(part in ns for part in self.ns_contains))


@dataclass(frozen=True)
class Cdn:
    name: str
    proxy_words: str
    help_url: str
    networks: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]

    def holds(self, address: str) -> bool:
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        return any(ip in net for net in self.networks if net.version == ip.version)


def _load(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((DATA_DIR / name).read_text(encoding="utf-8"))
    return data


@cache
def providers() -> tuple[Provider, ...]:
    return tuple(
        Provider(p["name"], p["cname_help_url"], bool(p["appends_zone"]), p.get("apex"),
                 tuple(p.get("ns_suffixes", ())), tuple(p.get("ns_contains", ())))
        for p in _load("dns_providers.json")["providers"]
    )


@cache
def cdns() -> tuple[Cdn, ...]:
    return tuple(
        Cdn(c["name"], c["proxy_words"], c["help_url"],
            tuple(ipaddress.ip_network(r) for r in c["ranges"]))
        for c in _load("cdn_ranges.json")["cdns"]
    )


def provider_for(nameservers: tuple[str, ...]) -> Provider | None:
    for provider in providers():
        if any(provider.serves(ns) for ns in nameservers):
            return provider
    return None


def cdn_for(addresses: tuple[str, ...]) -> Cdn | None:
    for cdn in cdns():
        if any(cdn.holds(a) for a in addresses):
            return cdn
    return None


def _edits(a: str, b: str) -> int:
    """Optimal string alignment distance: insertions, deletions, substitutions and
    swaps of two neighbours each count one (`domian` is one edit from `domain`)."""
    rows = [list(range(len(b) + 1))] + [[i] + [0] * len(b) for i in range(1, len(a) + 1)]
    for i in range(1, len(a) + 1):
        for j in range(1, len(b) + 1):
            cost = 0 if a[i - 1] == b[j - 1] else 1
            rows[i][j] = min(rows[i - 1][j] + 1, rows[i][j - 1] + 1, rows[i - 1][j - 1] + cost)
            if i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                rows[i][j] = min(rows[i][j], rows[i - 2][j - 2] + 1)
    return rows[len(a)][len(b)]


def is_typo(value: str, target: str) -> bool:
    """`domian.ve.ai`, `domain.ve.ia`, `domain.veai.com`: a slip, not another host."""
    if value == target:
        return False
    if _edits(value, target) <= 2:
        return True
    flat, flat_target = value.replace(".", ""), target.replace(".", "")
    if _edits(flat, flat_target) <= 1:
        return True
    return flat.startswith(flat_target) and flat[len(flat_target):] in TYPO_TLDS


def _ttl_words(seconds: int) -> str:
    if seconds < 120:
        return f"{seconds} seconds"
    if seconds < 7200:
        return f"{seconds // 60} minutes"
    if seconds < 2 * 86400:
        return f"{seconds // 3600} hours"
    return f"{seconds // 86400} days"


def diagnose(facts: DnsFacts, *, target: str, routing_ok: bool, apex: bool = False,
             apex_ips: tuple[str, ...] = (), now: datetime) -> list[Diagnosis]:
    """What is wrong, most important first. Empty when nothing we can name is."""
    host, zone = facts.hostname, facts.zone
    provider = provider_for(facts.nameservers)
    at = f"at {provider.name}" if provider else "at your DNS provider"
    help_url = provider.cname_help_url if provider else GENERIC_HELP_URL
    found: list[Diagnosis] = []

    if facts.dnssec_broken:
        why = (f"{zone} has a DS record at its registrar but publishes no DNSKEY: DNSSEC "
               "is switched on at the registrar and off at the DNS provider"
               if facts.ds_without_dnskey else
               f"the DNSSEC signatures of {zone} do not validate")
        found.append(Diagnosis(
            DiagnosisCode.DNSSEC_BROKEN,
            f"Resolvers that check DNSSEC (most of them) cannot look up {host}: {why}. "
            "Nobody can reach the site and we cannot see your records.",
            f"At the registrar of {zone} (where you bought it), remove the DS record, or "
            f"turn DNSSEC on {at} and give the registrar its new DS record. This is for "
            "the registrar to fix, not a record to add.",
            DNSSEC_HELP_URL))

    # CAA found "at" a name holding a CNAME came from the CNAME's target (resolvers follow
    # it, as CAs do): the old host's, gone once the name points at us.
    caa_of_old_target = (not routing_ok and bool(facts.cnames) and facts.caa is not None
                         and facts.caa.found_at == host)
    if facts.caa is not None and facts.caa.records and not caa_of_old_target:
        issuers = facts.caa.issuers("issue")
        if facts.caa.forbids_amazon():
            level = facts.caa.found_at
            found.append(Diagnosis(
                DiagnosisCode.CAA_FORBIDS_AMAZON,
                f"The CAA records at {level} allow only {', '.join(sorted(set(issuers)))} "
                f"to issue certificates for {host}, so our certificate authority (Amazon) "
                "is refused and the site cannot get HTTPS.",
                f'Add this record {at}, beside your other CAA records at {level} (it must '
                f'be at that level, not elsewhere): {level}. CAA 0 issue "amazon.com"',
                CAA_HELP_URL))

    if routing_ok and len(facts.cnames) > 1:
        found.append(_two_cnames(facts, target=target, at=at,
                                 help_url=provider.cname_help_url if provider
                                 else GENERIC_HELP_URL))
    if routing_ok and not apex and facts.addresses:
        found.append(Diagnosis(
            DiagnosisCode.ADDRESS_BESIDE_CNAME,
            f"{host} also has address records ({', '.join(facts.addresses)}) beside its "
            f"CNAME to {target}. Your provider serves both, so some visitors go to those "
            "addresses.",
            f"{at[0].upper() + at[1:]}, delete the A/AAAA records for {host}; keep only the "
            f"CNAME to {target}.", provider.cname_help_url if provider else GENERIC_HELP_URL))
    if not routing_ok and not facts.transient:
        routing = _routing(facts, target=target, apex=apex, apex_ips=apex_ips, at=at,
                           help_url=help_url, provider=provider)
        found += routing
        if routing:
            found += _cached_until(facts, now)
    return found


def _routing(facts: DnsFacts, *, target: str, apex: bool, apex_ips: tuple[str, ...], at: str,
             help_url: str, provider: Provider | None) -> list[Diagnosis]:
    host, zone = facts.hostname, facts.zone
    label = host[: -len(zone) - 1] if host.endswith("." + zone) else "@"
    where = at[0].upper() + at[1:]
    add_cname = f"add a CNAME record with name {label} and value {target} (for {host})."
    found: list[Diagnosis] = []
    cnames, addresses = facts.cnames, facts.addresses
    wildcard = bool(facts.wildcard) and (
        (cnames and set(cnames) == set(facts.wildcard))
        or (not cnames and addresses and set(addresses) == set(facts.wildcard)))

    if apex:
        ours = {a.lower() for a in apex_ips}
        strangers = sorted(set(addresses) - ours)
        if cnames or strangers or not addresses:
            alias = (f" {provider.name} offers {provider.apex}, but use the A records: "
                     "they are the addresses that serve your domain." if provider and provider.apex
                     else "")
            extra = (f" Remove the records to {', '.join(strangers)}: visitors sent there "
                     "reach your old host." if strangers else "")
            found.append(Diagnosis(
                DiagnosisCode.APEX,
                f"{host} is the apex of your domain: a CNAME cannot exist there at most "
                f"providers, so it needs A records to our addresses instead.{extra}",
                f"{where}, create A records for @ to {', '.join(sorted(ours))}.{alias}",
                help_url))
        return found

    if wildcard:
        what = cnames[0] if cnames else ", ".join(addresses)
        parent = host.partition(".")[2]
        found.append(Diagnosis(
            DiagnosisCode.WILDCARD,
            f"You have not created a record for {host}: a wildcard record (*.{parent}) "
            f"answers for it, with {what}.",
            f"{where}, {add_cname} Once {host} has a record of its own, the wildcard no "
            "longer answers for it.", help_url))
        return found

    if len(cnames) > 1:
        found.append(_two_cnames(facts, target=target, at=at, help_url=help_url))

    if cnames:
        cname = cnames[0] if target not in cnames else target
        if cname.startswith(target + ".") and cname.endswith("." + zone):
            trailing = (f" {provider.name} adds {zone} to any value that does not end "
                        "with a dot." if provider and provider.appends_zone else "")
            found.append(Diagnosis(
                DiagnosisCode.ZONE_APPENDED,
                f"The CNAME of {host} points to {cname}: your DNS provider added {zone} "
                f"to the value, because it had no dot at the end.{trailing}",
                f"{where}, edit the CNAME for {label} and enter the value as {target}. (with "
                "the final dot), then check that it shows exactly "
                f"{target}.", help_url))
        elif is_typo(cname, target):
            found.append(Diagnosis(
                DiagnosisCode.TYPO,
                f"The CNAME of {host} points to {cname}. Did you mean {target}?",
                f"{where}, edit the CNAME for {label} and set its value to {target}.", help_url))
        elif cname != target:
            found.append(Diagnosis(
                DiagnosisCode.WRONG_TARGET,
                f"The CNAME of {host} points to {cname}, not to {target} (perhaps your "
                "previous host).",
                f"{where}, edit the CNAME for {label} and set its value to {target}.", help_url))
        if addresses:
            found.append(Diagnosis(
                DiagnosisCode.ADDRESS_BESIDE_CNAME,
                f"{host} also has address records ({', '.join(addresses)}) beside its CNAME. "
                "Your provider serves both, so some visitors go to those addresses.",
                f"{where}, delete the A/AAAA records for {label}; keep only the CNAME to "
                f"{target}.", help_url))
        return found

    if addresses:
        cdn = cdn_for(addresses)
        if cdn is not None:
            found.append(Diagnosis(
                DiagnosisCode.CDN_PROXIED,
                f"{host} answers with {cdn.name} addresses ({', '.join(addresses)}) instead "
                f"of our CNAME: the record is proxied by {cdn.name}, which hides where it "
                "points.",
                f"At {cdn.name}: {cdn.proxy_words}, and make sure the record is a CNAME to "
                f"{target}.", cdn.help_url))
        else:
            found.append(Diagnosis(
                DiagnosisCode.ADDRESS_INSTEAD_OF_CNAME,
                f"{host} has address records ({', '.join(addresses)}), not a CNAME to "
                f"{target}.",
                f"{where}, delete the A/AAAA records for {label}, then {add_cname}", help_url))
    caa_here = facts.caa is not None and facts.caa.found_at == host
    if facts.has_mx or facts.txt or caa_here:
        kinds = " and ".join(k for k, present in (("MX", facts.has_mx), ("TXT", facts.txt),
                                                  ("CAA", caa_here)) if present)
        found.append(Diagnosis(
            DiagnosisCode.RECORDS_BLOCK_CNAME,
            f"{host} already has {kinds} records. A CNAME cannot sit beside other records, "
            "so many providers refuse to add it (or drop it without saying).",
            f"{where}, remove the {kinds} records for {label} if nothing needs them (or use "
            f"another hostname), then {add_cname}", help_url))
    if not found:
        found.append(Diagnosis(
            DiagnosisCode.NO_RECORD,
            f"There is no record for {host} yet." if not facts.nxdomain else
            f"{host} does not exist in DNS yet: the CNAME has not been created (or not "
            "saved).",
            f"{where}, {add_cname}", help_url))
    return found


def _two_cnames(facts: DnsFacts, *, target: str, at: str, help_url: str) -> Diagnosis:
    return Diagnosis(
        DiagnosisCode.TWO_CNAMES,
        f"{facts.hostname} has {len(facts.cnames)} CNAME records ({', '.join(facts.cnames)}); "
        "a name can have only one, and visitors get either.",
        f"{at[0].upper() + at[1:]}, delete every CNAME for {facts.hostname} except the one "
        f"to {target}.", help_url)


def _cached_until(facts: DnsFacts, now: datetime) -> list[Diagnosis]:
    """When a fix will be seen: resolvers keep the answer they have for its TTL."""
    if facts.cnames:
        ttl, what = facts.cname_ttl, "the current CNAME"
    elif facts.addresses:
        ttl, what = facts.address_ttl, "the current address records"
    else:
        ttl, what = facts.negative_ttl, '"no such record"'
    if not ttl:
        return []
    until = (now + timedelta(seconds=ttl)).astimezone(UTC)
    return [Diagnosis(
        DiagnosisCode.OLD_ANSWER_CACHED,
        f"Once you fix it, resolvers that already looked may keep {what} until "
        f"{until:%H:%M} UTC (the record's TTL is {_ttl_words(ttl)}).",
        "Nothing to do but wait; we check again by ourselves and email you when the "
        "domain is live.", "")]


def diagnosis_dicts(diagnoses: list[Diagnosis]) -> list[DiagnosisDict]:
    return [d.as_dict() for d in diagnoses]


def stored_diagnosis(checks: object) -> list[DiagnosisDict]:
    """The diagnosis the last check stored (`checks["dns"]["diagnosis"]`), or []."""
    dns_check = checks.get("dns") if isinstance(checks, dict) else None
    raw = dns_check.get("diagnosis") if isinstance(dns_check, dict) else None
    if not isinstance(raw, list):
        return []
    return [DiagnosisDict(code=str(d.get("code", "")), message=str(d.get("message", "")),
                          fix=str(d.get("fix", "")), docs_url=str(d.get("docs_url", "")))
            for d in raw if isinstance(d, dict)]


def in_words(diagnosis: list[DiagnosisDict]) -> str:
    """The diagnosis as one paragraph for a message or an email: the first mistake and its
    fix, and when the fix will be seen. "" when there is nothing to say."""
    main = [d for d in diagnosis if d["code"] != DiagnosisCode.OLD_ANSWER_CACHED]
    if not main:
        return ""
    words = f"{main[0]['message']} {main[0]['fix']}"
    if len(main) > 1:
        words += f" ({len(main) - 1} more: see the domain's diagnosis.)"
    cached = [d for d in diagnosis if d["code"] == DiagnosisCode.OLD_ANSWER_CACHED]
    return f"{words} {cached[0]['message']}" if cached else words


def short_words(code: DiagnosisCode) -> str:
    """A few words for a table cell ("what we found" beside the record)."""
    match code:
        case DiagnosisCode.DNSSEC_BROKEN:
            return "DNSSEC broken"
        case DiagnosisCode.ZONE_APPENDED:
            return "zone added to the value"
        case DiagnosisCode.TYPO:
            return "typo in the value"
        case DiagnosisCode.TWO_CNAMES:
            return "two CNAMEs"
        case DiagnosisCode.ADDRESS_BESIDE_CNAME:
            return "old A/AAAA beside it"
        case DiagnosisCode.CDN_PROXIED:
            return "proxied by a CDN"
        case DiagnosisCode.WILDCARD:
            return "only a wildcard answers"
        case DiagnosisCode.ADDRESS_INSTEAD_OF_CNAME:
            return "A/AAAA, no CNAME"
        case DiagnosisCode.RECORDS_BLOCK_CNAME:
            return "other records block it"
        case DiagnosisCode.APEX:
            return "apex needs A records"
        case DiagnosisCode.WRONG_TARGET:
            return "points elsewhere"
        case DiagnosisCode.NO_RECORD:
            return "missing"
        case DiagnosisCode.CAA_FORBIDS_AMAZON:
            return "CAA refuses Amazon"
        case DiagnosisCode.OLD_ANSWER_CACHED:
            return "old answer cached"
        case _:
            assert_never(code)


def code_of(entry: DiagnosisDict) -> DiagnosisCode | None:
    """The code of a stored entry; None for one this version does not know (a newer one)."""
    try:
        return DiagnosisCode(entry["code"])
    except ValueError:
        return None
