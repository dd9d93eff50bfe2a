"""A programmable DNS server on loopback for tests and the local run command.

It answers real DNS queries (UDP and TCP, same port) from an in-memory record store,
so the app's resolver (dnspython, nameservers from settings) is exercised end to end:
CNAME chains, NXDOMAIN vs NODATA, multi-string TXT, truncation and TCP fallback, and
injected faults (timeouts, SERVFAIL, REFUSED); and the mistakes customers' DNS really
holds, for the DNS doctor's tests: wildcard records, MX beside a would-be CNAME, a broken
provider's CNAME beside other data or two CNAMEs (`conflict=True`), and a DNSSEC chain that
does not validate (a DS without a DNSKEY: SERVFAIL, unless the query sets CD).

    with LocalDNSServer() as dns_server:
        dns_server.set_record("www.example.com", "CNAME", "edge.ve.ai")
        ... resolve against 127.0.0.1:dns_server.port ...

An optional HTTP control API (JSON, loopback only) lets other processes program it;
`localdev.dns_control.DNSControl` is its client. Run standalone with
`python -m localdev.dns_server --port 5353 --control-port 5380 [--state-file var/dns.json]`.
"""

from __future__ import annotations

import argparse
import base64
import ipaddress
import json
import logging
import os
import re
import signal
import socket
import socketserver
import struct
import sys
import tempfile
import threading
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, replace
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import FrameType, TracebackType
from typing import Any, Final, Literal, Self, cast
from urllib.parse import parse_qs, urlsplit

from dnslib import (
    AAAA,
    CAA,
    CLASS,
    CNAME,
    DNSKEY,
    DS,
    EDNS0,
    MX,
    NS,
    OPCODE,
    QTYPE,
    RCODE,
    RD,
    RR,
    SOA,
    TXT,
    A,
    DNSError,
    DNSLabel,
    DNSRecord,
)
from dnslib.server import BaseResolver, DNSHandler, DNSServer

log = logging.getLogger("localdev.dns")

SUPPORTED_TYPES: Final = frozenset(
    {"A", "AAAA", "CNAME", "TXT", "CAA", "NS", "MX", "DS", "DNSKEY"}
)
FaultMode = Literal["timeout", "servfail", "refused"]
FAULT_MODES: Final = frozenset({"timeout", "servfail", "refused"})

# Recursive resolvers give up on long or looping CNAME chains with SERVFAIL; unbound's
# default limit is in this range.
MAX_CNAME_CHAIN: Final = 16
# RFC 1035 section 2.3.4: one TXT character-string is at most 255 bytes.
TXT_CHUNK: Final = 255
MAX_RDATA: Final = 65535
# A TCP query under the "timeout" fault holds its connection open this long (or until
# stop()) so clients see a timeout rather than an early EOF.
TCP_HOLD_SECONDS: Final = 30.0
TCP_READ_TIMEOUT: Final = 5.0
# What we advertise in our OPT record (the DNS Flag Day 2020 recommendation).
EDNS_UDP_SIZE: Final = 1232
SERVE_POLL_INTERVAL: Final = 0.05
MAX_CONTROL_BODY: Final = 1024 * 1024
QUERY_LOG_SIZE: Final = 10_000
STATE_VERSION: Final = 1

_LABEL_RE: Final = re.compile(r"^[a-z0-9_-]{1,63}$")
_CAA_RE: Final = re.compile(r"^(\d{1,3})\s+([A-Za-z0-9]{1,15})\s+(.*)$", re.DOTALL)
_MX_RE: Final = re.compile(r"^(\d{1,5})\s+(\S+)$")
# DS: key tag, algorithm, digest type, hex digest. DNSKEY: flags, protocol, algorithm, base64.
_DS_RE: Final = re.compile(r"^(\d{1,5})\s+(\d{1,3})\s+(\d{1,3})\s+([0-9A-Fa-f]{2,})$")
_DS_DIGEST_BYTES: Final = {1: 20, 2: 32, 4: 48}
_DNSKEY_RE: Final = re.compile(r"^(\d{1,5})\s+(\d{1,3})\s+(\d{1,3})\s+([A-Za-z0-9+/=]{4,})$")


# --- Names and values ----------------------------------------------------------------


def normalize_name(name: str) -> str:
    """Lower-case, no trailing dot: the store's key for a DNS name.

    Names must be ASCII (IDNs as punycode), because that is what travels on the wire.
    A wildcard (`*.example.com`, RFC 4592) is a `*` first label only; anywhere else it would
    be a literal label the server never expands, so it is rejected.
    """
    if not isinstance(name, str):
        raise ValueError("name must be a string")
    text = name.strip().lower()
    if text.endswith("."):
        text = text[:-1]
    if not text:
        raise ValueError("name must not be empty or the root")
    if not text.isascii():
        raise ValueError(f"name {name!r} must be ASCII (use punycode for IDNs)")
    if len(text) > 253:
        raise ValueError(f"name {name!r} is longer than 253 characters")
    for index, label in enumerate(text.split(".")):
        if label == "*":
            if index:
                raise ValueError(f"name {name!r}: a wildcard must be the first label only")
            continue
        if not _LABEL_RE.match(label):
            raise ValueError(f"name {name!r} has an invalid label {label!r}")
    return text


def normalize_type(rtype: str) -> str:
    if not isinstance(rtype, str) or rtype.upper() not in SUPPORTED_TYPES:
        supported = ", ".join(sorted(SUPPORTED_TYPES))
        raise ValueError(f"type {rtype!r} is not supported (one of {supported})")
    return rtype.upper()


def _parse_caa(value: str) -> tuple[int, str, str]:
    match = _CAA_RE.match(value.strip())
    if not match:
        raise ValueError(f'CAA value {value!r} must look like: 0 issue "amazon.com"')
    flags, tag, text = int(match.group(1)), match.group(2).lower(), match.group(3).strip()
    if flags > 255:
        raise ValueError(f"CAA flags {flags} must be 0-255")
    if len(text) >= 2 and text[0] == text[-1] == '"':
        text = text[1:-1]
    return flags, tag, text


def _txt_chunks(value: str) -> list[bytes]:
    data = value.encode("utf-8")
    # An empty TXT is one empty character-string, not zero strings.
    return [data[i : i + TXT_CHUNK] for i in range(0, len(data), TXT_CHUNK)] or [b""]


def normalize_value(rtype: str, value: str) -> str:
    """Validate `value` for `rtype` and return its canonical text form."""
    if not isinstance(value, str):
        raise ValueError("value must be a string")
    try:
        if rtype == "A":
            return str(ipaddress.IPv4Address(value.strip()))
        if rtype == "AAAA":
            return str(ipaddress.IPv6Address(value.strip()))
    except ipaddress.AddressValueError as exc:
        raise ValueError(f"invalid {rtype} value {value!r}: {exc}") from None
    if rtype in ("CNAME", "NS"):
        name = normalize_name(value)
        if name.startswith("*"):
            raise ValueError(f"{rtype} value {value!r} must not be a wildcard")
        return name
    if rtype == "MX":
        match = _MX_RE.match(value.strip())
        if not match or int(match.group(1)) > 65535:
            raise ValueError(f"MX value {value!r} must look like: 10 mail.example.com")
        return f"{int(match.group(1))} {normalize_name(match.group(2))}"
    if rtype in ("DS", "DNSKEY"):
        match = (_DS_RE if rtype == "DS" else _DNSKEY_RE).match(value.strip())
        example = "12345 13 2 <hex digest>" if rtype == "DS" else "257 3 13 <base64 key>"
        if not match:
            raise ValueError(f"{rtype} value {value!r} must look like: {example}")
        if rtype == "DS":
            # RFC 4034/4509/6605: SHA-1, SHA-256, SHA-384 digests have fixed sizes, and
            # resolvers drop an answer whose digest does not.
            size = _DS_DIGEST_BYTES.get(int(match.group(3)))
            if size is not None and len(match.group(4)) != 2 * size:
                raise ValueError(f"DS digest type {match.group(3)} takes {2 * size} hex digits")
            if len(match.group(4)) % 2:
                raise ValueError(f"DS digest {match.group(4)!r} must have an even number of "
                                 "digits")
        return " ".join(match.groups())
    if rtype == "TXT":
        chunks = _txt_chunks(value)
        if sum(len(c) + 1 for c in chunks) > MAX_RDATA:
            raise ValueError("TXT value is too long for one record")
        return value
    if rtype == "CAA":
        flags, tag, text = _parse_caa(value)
        return f'{flags} {tag} "{text}"'
    raise ValueError(f"type {rtype!r} is not supported")


def normalize_ttl(ttl: int) -> int:
    # bool is an int subclass; `"ttl": true` in JSON is a mistake, not 1 second.
    if isinstance(ttl, bool) or not isinstance(ttl, int) or not 0 <= ttl <= 2**31 - 1:
        raise ValueError("ttl must be an integer between 0 and 2147483647")
    return ttl


@dataclass(frozen=True, slots=True)
class StoredRecord:
    name: str
    type: str
    value: str
    ttl: int

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "type": self.type, "value": self.value, "ttl": self.ttl}

    def rdata(self) -> RD:
        if self.type == "A":
            return A(self.value)
        if self.type == "AAAA":
            return AAAA(self.value)
        if self.type == "CNAME":
            return CNAME(self.value + ".")
        if self.type == "NS":
            return NS(self.value + ".")
        if self.type == "TXT":
            return TXT(_txt_chunks(self.value))
        if self.type == "MX":
            preference, exchange = self.value.split(" ", 1)
            return MX(exchange + ".", int(preference))
        if self.type == "DS":
            tag, algorithm, digest_type, digest = self.value.split(" ")
            return DS(int(tag), int(algorithm), int(digest_type), bytes.fromhex(digest))
        if self.type == "DNSKEY":
            key_flags, protocol, algorithm, key = self.value.split(" ")
            return DNSKEY(int(key_flags), int(protocol), int(algorithm), base64.b64decode(key))
        flags, tag, text = _parse_caa(self.value)
        return CAA(flags, tag, text)


@dataclass(frozen=True, slots=True)
class Lookup:
    """What a query resolves to. `nodata`: the final name has no data of the type."""

    rcode: int
    answers: tuple[StoredRecord, ...]
    final_name: str
    nodata: bool


# --- The record store ----------------------------------------------------------------


class RecordStore:
    """Thread-safe records and faults; optionally mirrored to a JSON file.

    Faults are deliberately not persisted: a restarted server starts healthy.
    """

    def __init__(self, state_file: str | Path | None = None) -> None:
        self._lock = threading.RLock()
        # name -> type -> RRset, in insertion order.
        self._data: dict[str, dict[str, list[StoredRecord]]] = {}
        self._global_fault: str | None = None
        self._name_faults: dict[str, str] = {}
        self._state_file = Path(state_file) if state_file is not None else None
        if self._state_file is not None and self._state_file.exists():
            self._load(self._state_file)

    # Mutations.

    def set_record(self, name: str, rtype: str, value: str, ttl: int = 60, *,
                   conflict: bool = False) -> None:
        """`conflict=True` stores what RFC 1034 forbids (a CNAME beside other data), as some
        providers' panels allow; the server then answers each type from its own RRset."""
        record = self._make(name, rtype, value, ttl)
        with self._lock:
            if not conflict:
                self._check_cname_conflict(record, replacing=True)
            self._data.setdefault(record.name, {})[record.type] = [record]
            self._save()

    def add_record(self, name: str, rtype: str, value: str, ttl: int = 60, *,
                   conflict: bool = False) -> None:
        """`conflict=True`: as in set_record, and a second CNAME joins the first (a broken
        provider answers both)."""
        record = self._make(name, rtype, value, ttl)
        with self._lock:
            if not conflict:
                self._check_cname_conflict(record, replacing=False)
            rrset = self._data.setdefault(record.name, {}).setdefault(record.type, [])
            # An RRset is a set: adding the same value again only updates its TTL.
            rrset[:] = [r for r in rrset if r.value != record.value]
            rrset.append(record)
            self._save()

    def delete(self, name: str, rtype: str | None = None) -> int:
        key = normalize_name(name)
        rtype = normalize_type(rtype) if rtype is not None else None
        with self._lock:
            rrsets = self._data.get(key)
            if not rrsets:
                return 0
            if rtype is None:
                removed = sum(len(rrset) for rrset in rrsets.values())
                del self._data[key]
            else:
                removed = len(rrsets.pop(rtype, []))
                if not rrsets:
                    del self._data[key]
            if removed:
                self._save()
            return removed

    def clear(self) -> int:
        with self._lock:
            removed = sum(len(rrset) for rrsets in self._data.values() for rrset in rrsets.values())
            self._data.clear()
            self._save()
            return removed

    def set_fault(self, mode: str | None, name: str | None = None) -> None:
        if mode is not None and (not isinstance(mode, str) or mode not in FAULT_MODES):
            raise ValueError(f"fault mode {mode!r} must be one of {sorted(FAULT_MODES)} or null")
        key = normalize_name(name) if name is not None else None
        with self._lock:
            if key is None:
                self._global_fault = mode
                if mode is None:
                    # "off" for every name means off: per-name faults left behind would
                    # keep failing lookups the developer believes fixed.
                    self._name_faults.clear()
            elif mode is None:
                self._name_faults.pop(key, None)
            else:
                self._name_faults[key] = mode

    def clear_faults(self) -> None:
        with self._lock:
            self._global_fault = None
            self._name_faults.clear()

    # Reads.

    def records(self) -> list[dict[str, Any]]:
        with self._lock:
            return [
                record.as_dict()
                for name in sorted(self._data)
                for rtype in sorted(self._data[name])
                for record in self._data[name][rtype]
            ]

    def faults(self) -> dict[str, Any]:
        with self._lock:
            return {"global": self._global_fault, "names": dict(sorted(self._name_faults.items()))}

    def fault_for(self, name: str) -> str | None:
        with self._lock:
            return self._name_faults.get(name, self._global_fault)

    def dnssec_bogus(self, name: str) -> bool:
        """Would a validating resolver fail `name`? True when the name or a parent has a DS
        (the registrar's "this zone is signed") but no DNSKEY (the zone is not signed, e.g.
        after a move to a provider that does not sign): validation cannot succeed."""
        with self._lock:
            labels = name.split(".")
            for start in range(len(labels)):
                rrsets = self._data.get(".".join(labels[start:]), {})
                if rrsets.get("DS") and not rrsets.get("DNSKEY"):
                    return True
            return False

    def _wildcard_for(self, name: str) -> dict[str, list[StoredRecord]] | None:
        """RFC 4592: the wildcard at the closest encloser answers a name that does not
        exist, with the name as owner."""
        labels = name.split(".")
        for start in range(1, len(labels)):
            parent = ".".join(labels[start:])
            wildcard = self._data.get("*." + parent)
            if wildcard:
                return {t: [replace(r, name=name) for r in rrset] for t, rrset in wildcard.items()}
            if parent in self._data or self._is_empty_non_terminal(parent):
                return None  # the closest encloser has no wildcard
        return None

    def lookup(self, name: str, qtype: str) -> Lookup:
        """Answer (name, qtype) the way a recursive resolver would relay it."""
        with self._lock:
            answers: list[StoredRecord] = []
            seen: set[str] = set()
            current = name
            for _ in range(MAX_CNAME_CHAIN):
                seen.add(current)
                rrsets = self._data.get(current)
                if rrsets is None and not self._is_empty_non_terminal(current):
                    rrsets = self._wildcard_for(current)
                if rrsets is None:
                    if current == name and not self._is_empty_non_terminal(current):
                        return Lookup(RCODE.NXDOMAIN, (), current, nodata=False)
                    # An empty non-terminal exists (RFC 8020), and a CNAME target we
                    # hold no data for is outside our "zone": answer with the chain so
                    # far, as an authoritative server would.
                    return Lookup(RCODE.NOERROR, tuple(answers), current, nodata=True)
                cname = rrsets.get("CNAME")
                # A broken provider's CNAME beside other data (stored with conflict=True):
                # each type is answered from its own RRset, as such servers do.
                own = rrsets.get(qtype)
                if cname and qtype not in ("CNAME", "ANY") and not own:
                    answers.extend(cname)
                    current = cname[0].value
                    if current in seen:
                        # Resolvers answer a CNAME loop with SERVFAIL, not a chain.
                        return Lookup(RCODE.SERVFAIL, (), current, nodata=False)
                    continue
                if qtype == "ANY":
                    found = [r for rtype in sorted(rrsets) for r in rrsets[rtype]]
                else:
                    found = list(rrsets.get(qtype, ()))
                answers.extend(found)
                return Lookup(RCODE.NOERROR, tuple(answers), current, nodata=not found)
            return Lookup(RCODE.SERVFAIL, (), current, nodata=False)

    # Internals.

    @staticmethod
    def _make(name: str, rtype: str, value: str, ttl: int) -> StoredRecord:
        rtype = normalize_type(rtype)
        return StoredRecord(
            name=normalize_name(name),
            type=rtype,
            value=normalize_value(rtype, value),
            ttl=normalize_ttl(ttl),
        )

    def _check_cname_conflict(self, record: StoredRecord, *, replacing: bool) -> None:
        # RFC 1034 section 3.6.2: a CNAME cannot coexist with other data at a name.
        # DNS providers refuse it too, so the app never sees it; refuse it here.
        existing = self._data.get(record.name, {})
        others = {t for t, rrset in existing.items() if rrset and t != record.type}
        if record.type == "CNAME" and others:
            raise ValueError(
                f"{record.name} already has {sorted(others)} records; "
                "a CNAME cannot coexist with other data"
            )
        if record.type != "CNAME" and "CNAME" in others:
            raise ValueError(f"{record.name} has a CNAME; no other records can coexist with it")
        if record.type == "CNAME" and not replacing:
            current = existing.get("CNAME", [])
            if current and current[0].value != record.value:
                raise ValueError(
                    f"{record.name} already has a CNAME; a name can have only one (use set)"
                )

    def _is_empty_non_terminal(self, name: str) -> bool:
        suffix = "." + name
        return any(existing.endswith(suffix) for existing in self._data)

    def _load(self, path: Path) -> None:
        try:
            state = json.loads(path.read_text(encoding="utf-8"))
            rows = state["records"]
            for row in rows:
                # No CNAME conflict check: a saved state may hold a broken provider's
                # records on purpose (stored with conflict=True).
                record = self._make(row["name"], row["type"], row["value"], row.get("ttl", 60))
                rrset = self._data.setdefault(record.name, {}).setdefault(record.type, [])
                rrset[:] = [r for r in rrset if r.value != record.value] + [record]
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ValueError(f"cannot load DNS state from {path}: {exc}") from exc

    def _save(self) -> None:
        if self._state_file is None:
            return
        path = self._state_file
        path.parent.mkdir(parents=True, exist_ok=True)
        payload = json.dumps({"version": STATE_VERSION, "records": self.records()}, indent=2)
        # Write-then-rename so a crash never leaves a half-written state file.
        fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(payload + "\n")
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise


# --- DNS protocol ----------------------------------------------------------------------


def _label_to_name(label: DNSLabel) -> str:
    return b".".join(label.label).decode("ascii", "replace").lower()


def _zone_apex(name: str) -> str:
    # The store has no zones; the last two labels are a good enough owner for the SOA
    # that negative answers carry (resolvers use it only for the negative-cache TTL).
    return ".".join(name.split(".")[-2:])


def _soa_for(name: str) -> RR:
    return RR(
        _zone_apex(name) + ".",
        QTYPE.SOA,
        ttl=60,
        rdata=SOA(
            "ns.localdev.invalid.",
            "hostmaster.localdev.invalid.",
            (1, 3600, 600, 86400, 60),
        ),
    )


def _edns_udp_size(request: DNSRecord) -> int | None:
    for rr in request.ar:
        if rr.rtype == QTYPE.OPT:
            return int(rr.rclass)
    return None


class StoreResolver(BaseResolver):
    """dnslib resolver over a RecordStore. Returns None when the query must go unanswered."""

    def __init__(self, store: RecordStore) -> None:
        self.store = store
        # (name, type, cd) of every query answered, newest last: tests count the queries a
        # feature costs (the DNS doctor's budget).
        self.query_log: deque[tuple[str, str, bool]] = deque(maxlen=QUERY_LOG_SIZE)
        self._log_lock = threading.Lock()

    def resolve(self, request: DNSRecord, handler: DNSHandler | None) -> DNSRecord | None:
        reply = request.reply()
        if request.header.opcode != OPCODE.QUERY:
            reply.header.rcode = RCODE.NOTIMP
            return reply
        question = request.q
        qname = _label_to_name(question.qname)
        if question.qclass != CLASS.IN:
            reply.header.rcode = RCODE.REFUSED
            return reply
        qtype = QTYPE.get(question.qtype, str(question.qtype))
        with self._log_lock:
            self.query_log.append((qname, qtype, bool(request.header.cd)))
        fault = self.store.fault_for(qname)
        if fault == "timeout":
            return None
        if fault == "servfail":
            reply.header.rcode = RCODE.SERVFAIL
            return reply
        if fault == "refused":
            reply.header.rcode = RCODE.REFUSED
            return reply

        # A validating resolver answers SERVFAIL for a zone whose chain of trust is broken,
        # and the answer itself when the client sets CD (checking disabled, RFC 4035 3.2.2).
        # A DS query is answered from the parent zone, which validates.
        if qtype != "DS" and not request.header.cd and self.store.dnssec_bogus(qname):
            reply.header.rcode = RCODE.SERVFAIL
            return reply
        lookup = self.store.lookup(qname, qtype)
        reply.header.rcode = lookup.rcode
        for index, record in enumerate(lookup.answers):
            # The first owner echoes the question's spelling, as real servers do.
            owner = question.qname if index == 0 and record.name == qname else record.name + "."
            reply.add_answer(
                RR(owner, QTYPE.reverse[record.type], ttl=record.ttl, rdata=record.rdata())
            )
        if lookup.rcode == RCODE.NXDOMAIN or (lookup.rcode == RCODE.NOERROR and lookup.nodata):
            reply.add_auth(_soa_for(lookup.final_name))
        return reply


class _DNSHandler(DNSHandler):
    """dnslib's handler, plus: dropped queries, TC-bit truncation and EDNS echo."""

    def handle(self) -> None:
        tcp = self.server.socket_type == socket.SOCK_STREAM
        self.protocol = "tcp" if tcp else "udp"
        try:
            data = self._read_tcp() if tcp else self.request[0]
            if data is None:
                return
            request = DNSRecord.parse(data)
        except (DNSError, OSError, struct.error) as exc:
            log.debug(
                "dropping malformed %s query from %s: %s", self.protocol, self.client_address, exc
            )
            return

        try:
            reply = self.server.resolver.resolve(request, self)
        except Exception:
            # A bug here must look like a broken server to the client, not a timeout.
            log.exception("resolving %s failed", request.q.qname)
            reply = request.reply()
            reply.header.rcode = RCODE.SERVFAIL
        log.debug(
            "%s %s %s -> %s",
            self.protocol,
            request.q.qname,
            QTYPE.get(request.q.qtype),
            reply and RCODE.get(reply.header.rcode),
        )
        if reply is None:
            if tcp:
                # Keep the connection open so the client waits, as with a dead server.
                self.server.stopping.wait(TCP_HOLD_SECONDS)
            return

        client_udp_size = _edns_udp_size(request)
        if client_udp_size is not None:
            reply.add_ar(EDNS0(udp_len=EDNS_UDP_SIZE))
        rdata = reply.pack()
        if not tcp:
            limit = max(512, min(client_udp_size or 512, 65535))
            if len(rdata) > limit:
                # RFC 1035 4.2.1 / RFC 7766: set TC so the client retries over TCP.
                truncated = request.reply()
                truncated.header.tc = 1
                truncated.header.rcode = reply.header.rcode
                if client_udp_size is not None:
                    truncated.add_ar(EDNS0(udp_len=EDNS_UDP_SIZE))
                rdata = truncated.pack()
        try:
            if tcp:
                self.request.sendall(struct.pack("!H", len(rdata)) + rdata)
            else:
                self.request[1].sendto(rdata, self.client_address)
        except OSError as exc:
            log.debug("could not send reply to %s: %s", self.client_address, exc)

    def _read_tcp(self) -> bytes | None:
        sock: socket.socket = self.request
        sock.settimeout(TCP_READ_TIMEOUT)
        buffer = b""
        while len(buffer) < 2 or len(buffer) - 2 < struct.unpack("!H", buffer[:2])[0]:
            chunk = sock.recv(65537)
            if not chunk:
                return None
            buffer += chunk
        length = struct.unpack("!H", buffer[:2])[0]
        return buffer[2 : 2 + length]


def _address_family(host: str) -> socket.AddressFamily:
    return socket.AF_INET6 if ":" in host else socket.AF_INET


class _UDPServer(socketserver.ThreadingMixIn, socketserver.UDPServer):
    daemon_threads = True
    # No SO_REUSEADDR for UDP: on Linux it lets a second socket silently share the port
    # (and steal its packets); we want a clean "address in use" instead.
    allow_reuse_address = False
    stopping: threading.Event
    resolver: StoreResolver

    def __init__(
        self, server_address: tuple[str, int], handler: type[socketserver.BaseRequestHandler]
    ) -> None:
        self.address_family = _address_family(server_address[0])
        super().__init__(server_address, handler)


class _TCPServer(socketserver.ThreadingMixIn, socketserver.TCPServer):
    daemon_threads = True
    # SO_REUSEADDR lets a restarted server rebind past TIME_WAIT; Linux still refuses a
    # second listener on the same address and port.
    allow_reuse_address = True
    stopping: threading.Event
    resolver: StoreResolver

    def __init__(
        self, server_address: tuple[str, int], handler: type[socketserver.BaseRequestHandler]
    ) -> None:
        self.address_family = _address_family(server_address[0])
        super().__init__(server_address, handler)


class _QuietDNSLogger:
    """Silences dnslib's logger (it prints to stdout); _DNSHandler logs via `logging`."""

    def __getattr__(self, name: str) -> Any:
        if name.startswith("log_"):
            return lambda *args: None
        raise AttributeError(name)


# --- Control API -----------------------------------------------------------------------


class ControlError(Exception):
    def __init__(self, status: HTTPStatus, message: str) -> None:
        super().__init__(message)
        self.status = status


_RECORD_FIELDS: Final = {"name", "type", "value", "ttl", "conflict"}
_LOOPBACK_HOSTS: Final = frozenset({"127.0.0.1", "localhost", "::1"})
_FAULT_FIELDS: Final = {"mode", "name"}


def _require_fields(body: dict[str, Any], allowed: set[str], required: set[str]) -> None:
    unknown = set(body) - allowed
    if unknown:
        raise ControlError(
            HTTPStatus.BAD_REQUEST, f"unknown field(s): {', '.join(sorted(unknown))}"
        )
    missing = required - set(body)
    if missing:
        raise ControlError(
            HTTPStatus.BAD_REQUEST, f"missing field(s): {', '.join(sorted(missing))}"
        )


class _ControlHandler(BaseHTTPRequestHandler):
    server: _ControlServer
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_PUT(self) -> None:
        self._dispatch("PUT")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("control: " + format, *args)

    def _refuse_browsers(self, method: str) -> None:
        """Refuse what a web page in the developer's browser could send us.

        A page may POST a `text/plain` body to 127.0.0.1 without a CORS preflight, and a
        rebinding DNS name can make it same-origin; so a body must be declared JSON (which
        forces a preflight we never grant), an Origin other than our own is refused, and the
        Host must be a loopback name.
        """
        host = (self.headers.get("Host") or "").strip().lower()
        hostname = host.rsplit(":", 1)[0] if not host.endswith("]") else host
        if hostname.strip("[]") not in _LOOPBACK_HOSTS:
            raise ControlError(HTTPStatus.FORBIDDEN, f"Host {host!r} is not a loopback name")
        origin = self.headers.get("Origin")
        if origin is not None:
            ours = {f"http://{name}:{self.server.server_address[1]}" for name in _LOOPBACK_HOSTS}
            ours |= {f"http://[::1]:{self.server.server_address[1]}"}
            if origin.strip().lower() not in ours:
                raise ControlError(HTTPStatus.FORBIDDEN, f"Origin {origin!r} is not allowed")
        if method in ("PUT", "POST"):
            ctype = (self.headers.get("Content-Type") or "").split(";")[0].strip().lower()
            if ctype != "application/json":
                self.close_connection = True
                raise ControlError(HTTPStatus.UNSUPPORTED_MEDIA_TYPE,
                                   "the body must be sent as Content-Type: application/json")

    def _dispatch(self, method: str) -> None:
        url = urlsplit(self.path)
        path = url.path.rstrip("/") or "/"
        dns = self.server.dns
        store = dns.store
        try:
            self._refuse_browsers(method)
            if method == "GET" and path == "/health":
                self._send(
                    HTTPStatus.OK, {"status": "ok", "dns": {"host": dns.host, "port": dns.port}}
                )
            elif method == "GET" and path == "/records":
                self._send(HTTPStatus.OK, {"records": store.records()})
            elif method in ("PUT", "POST") and path == "/records":
                body = self._json_body()
                _require_fields(body, _RECORD_FIELDS, {"name", "type", "value"})
                action = store.set_record if method == "PUT" else store.add_record
                conflict = body.get("conflict", False)
                if not isinstance(conflict, bool):
                    raise ControlError(HTTPStatus.BAD_REQUEST, "conflict must be true or false")
                action(body["name"], body["type"], body["value"], body.get("ttl", 60),
                       conflict=conflict)
                name, rtype = normalize_name(body["name"]), normalize_type(body["type"])
                rrset = [r for r in store.records() if r["name"] == name and r["type"] == rtype]
                self._send(HTTPStatus.OK, {"records": rrset})
            elif method == "DELETE" and path == "/records/all":
                self._send(HTTPStatus.OK, {"deleted": store.clear()})
            elif method == "DELETE" and path == "/records":
                query = parse_qs(url.query)
                names, types = query.get("name", []), query.get("type", [])
                if len(names) != 1 or len(types) > 1:
                    raise ControlError(
                        HTTPStatus.BAD_REQUEST, "give exactly one name= and at most one type="
                    )
                self._send(
                    HTTPStatus.OK, {"deleted": store.delete(names[0], types[0] if types else None)}
                )
            elif method == "PUT" and path == "/fault":
                body = self._json_body()
                _require_fields(body, _FAULT_FIELDS, {"mode"})
                store.set_fault(body["mode"], body.get("name"))
                self._send(HTTPStatus.OK, {"faults": store.faults()})
            elif method == "GET" and path == "/fault":
                self._send(HTTPStatus.OK, {"faults": store.faults()})
            elif method == "GET" and path == "/queries":
                self._send(HTTPStatus.OK, {"queries": dns.queries()})
            elif method == "DELETE" and path == "/queries":
                dns.reset_queries()
                self._send(HTTPStatus.OK, {"queries": []})
            elif path in ("/health", "/records", "/records/all", "/fault", "/queries"):
                raise ControlError(
                    HTTPStatus.METHOD_NOT_ALLOWED, f"{method} is not allowed on {path}"
                )
            else:
                raise ControlError(HTTPStatus.NOT_FOUND, f"no such endpoint: {path}")
        except ControlError as exc:
            self._send(exc.status, {"error": str(exc)})
        except ValueError as exc:
            self._send(HTTPStatus.BAD_REQUEST, {"error": str(exc)})

    def _json_body(self) -> dict[str, Any]:
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            raise ControlError(HTTPStatus.BAD_REQUEST, "invalid Content-Length") from None
        if length > MAX_CONTROL_BODY:
            self.close_connection = True
            raise ControlError(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, "body too large")
        raw = self.rfile.read(length) if length > 0 else b""
        try:
            body = json.loads(raw)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise ControlError(HTTPStatus.BAD_REQUEST, f"body is not valid JSON: {exc}") from None
        if not isinstance(body, dict):
            raise ControlError(HTTPStatus.BAD_REQUEST, "body must be a JSON object")
        return cast(dict[str, Any], body)

    def _send(self, status: HTTPStatus, payload: dict[str, Any]) -> None:
        data = json.dumps(payload).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


class _ControlServer(ThreadingHTTPServer):
    daemon_threads = True
    dns: LocalDNSServer

    def __init__(self, address: tuple[str, int], dns: LocalDNSServer) -> None:
        self.address_family = _address_family(address[0])
        self.dns = dns
        super().__init__(address, _ControlHandler)


# --- The server ------------------------------------------------------------------------


def _require_loopback(host: str) -> str:
    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        # The control API is unauthenticated; never expose it (or the DNS) beyond loopback.
        raise ValueError(f"host {host!r} must be a loopback IP address such as 127.0.0.1")
    return host


class LocalDNSServer:
    """DNS (UDP and TCP on one port) plus an optional HTTP control API, in threads.

    `port=0` picks a free port for both protocols; `.port` is the bound port. After
    `stop()`, `start()` binds the same port again, so tests can take DNS down and bring
    it back.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        control_port: int | None = None,
        state_file: str | Path | None = None,
    ) -> None:
        self.host = _require_loopback(host)
        self._requested_port = port
        self._requested_control_port = control_port
        self.store = RecordStore(state_file)
        self._resolver = StoreResolver(self.store)
        self._stopping = threading.Event()
        self._servers: list[DNSServer] = []
        self._control: _ControlServer | None = None
        self._threads: list[threading.Thread] = []
        self._lifecycle = threading.Lock()
        self.port: int = port
        self.control_port: int | None = control_port

    # Lifecycle.

    @property
    def running(self) -> bool:
        return bool(self._servers)

    @property
    def nameserver(self) -> str:
        """The `host:port` form that settings.VEDOMAINS_DNS_NAMESERVERS takes."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"

    @property
    def control_url(self) -> str | None:
        if self.control_port is None:
            return None
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.control_port}"

    def start(self) -> Self:
        with self._lifecycle:
            if self._servers:
                raise RuntimeError("LocalDNSServer is already running")
            self._stopping.clear()
            udp, tcp = self._bind_dns(self.port)
            self._servers = [udp, tcp]
            try:
                if self._requested_control_port is not None:
                    port = self.control_port if self.control_port is not None else 0
                    self._control = _ControlServer((self.host, port), self)
                    self.control_port = self._control.server_address[1]
            except BaseException:
                self._close_all()
                raise
            self.port = udp.server.server_address[1]
            for server in (udp.server, tcp.server, self._control):
                if server is not None:
                    thread = threading.Thread(
                        target=server.serve_forever,
                        # shutdown() waits up to one poll interval per server; the
                        # default 0.5 s would make every test's teardown slow.
                        kwargs={"poll_interval": SERVE_POLL_INTERVAL},
                        name=f"localdev-dns-{self.port}",
                        daemon=True,
                    )
                    thread.start()
                    self._threads.append(thread)
            log.info(
                "local DNS on %s:%d (udp+tcp), control %s", self.host, self.port, self.control_url
            )
            return self

    def stop(self) -> None:
        with self._lifecycle:
            if not self._servers:
                return
            self._stopping.set()
            for server in [s.server for s in self._servers] + (
                [self._control] if self._control else []
            ):
                server.shutdown()
            self._close_all()
            for thread in self._threads:
                thread.join(timeout=5)
            self._threads = []

    def __enter__(self) -> Self:
        if not self.running:
            self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def _bind_dns(self, port: int) -> tuple[DNSServer, DNSServer]:
        # With port 0 the kernel picks the UDP port; TCP then needs the same number,
        # which another process may hold, so try again with a fresh UDP port.
        attempts = 50 if port == 0 else 1
        last_error: OSError | None = None
        for _ in range(attempts):
            try:
                udp = self._make_dns_server(port, tcp=False)
            except OSError as exc:
                last_error = exc
                continue
            bound = udp.server.server_address[1]
            try:
                tcp = self._make_dns_server(bound, tcp=True)
            except OSError as exc:
                udp.server.server_close()
                last_error = exc
                continue
            return udp, tcp
        raise OSError(
            f"could not bind DNS on {self.host}:{port} for both UDP and TCP: {last_error}"
        )

    def _make_dns_server(self, port: int, *, tcp: bool) -> DNSServer:
        server_class = _TCPServer if tcp else _UDPServer
        dns_server = DNSServer(
            self._resolver,
            address=self.host,
            port=port,
            tcp=tcp,
            logger=_QuietDNSLogger(),
            handler=_DNSHandler,
            server=server_class,
        )
        dns_server.server.stopping = self._stopping
        return dns_server

    def _close_all(self) -> None:
        for dns_server in self._servers:
            dns_server.server.server_close()
        self._servers = []
        if self._control is not None:
            self._control.server_close()
            self._control = None

    # Records and faults (see RecordStore).

    def set_record(self, name: str, rtype: str, value: str, ttl: int = 60, *,
                   conflict: bool = False) -> None:
        """Replace every `rtype` record at `name` with this one (`conflict`: see
        RecordStore.set_record)."""
        self.store.set_record(name, rtype, value, ttl, conflict=conflict)

    def add_record(self, name: str, rtype: str, value: str, ttl: int = 60, *,
                   conflict: bool = False) -> None:
        """Add one record to the `rtype` RRset at `name` (e.g. a second TXT)."""
        self.store.add_record(name, rtype, value, ttl, conflict=conflict)

    def queries(self) -> list[dict[str, Any]]:
        """The queries answered since the last reset_queries(), oldest first."""
        with self._resolver._log_lock:
            return [{"name": n, "type": t, "cd": cd} for n, t, cd in self._resolver.query_log]

    def reset_queries(self) -> None:
        with self._resolver._log_lock:
            self._resolver.query_log.clear()

    def delete(self, name: str, rtype: str | None = None) -> int:
        """Delete the `rtype` records at `name` (all types if None); returns how many."""
        return self.store.delete(name, rtype)

    def clear(self) -> int:
        """Delete every record (faults stay); returns how many."""
        return self.store.clear()

    def records(self) -> list[dict[str, Any]]:
        return self.store.records()

    def set_fault(self, mode: FaultMode | None, name: str | None = None) -> None:
        """Fail queries for `name` (every name if None); a per-name fault wins over the
        global one. mode None clears that fault."""
        self.store.set_fault(mode, name)

    def clear_faults(self) -> None:
        self.store.clear_faults()

    def faults(self) -> dict[str, Any]:
        return self.store.faults()

    def iter_addresses(self) -> Iterator[str]:
        yield f"udp+tcp {self.host}:{self.port}"
        if self.control_url:
            yield f"control {self.control_url}"


# --- CLI -------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m localdev.dns_server", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--host", default="127.0.0.1", help="loopback address to listen on")
    parser.add_argument("--port", type=int, default=5353, help="DNS port, UDP and TCP (0 = pick)")
    parser.add_argument(
        "--control-port", type=int, default=5380, help="HTTP control API port (0 = pick)"
    )
    parser.add_argument(
        "--state-file", type=Path, help="JSON file records are loaded from and saved to"
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log every query")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING, format="%(asctime)s %(message)s"
    )

    try:
        server = LocalDNSServer(args.host, args.port, args.control_port, args.state_file).start()
    except (OSError, ValueError) as exc:
        print(f"local DNS server failed to start: {exc}", file=sys.stderr)
        return 1

    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    state = f", state {args.state_file}" if args.state_file else ""
    print(f"local DNS: {', '.join(server.iter_addresses())}{state}", flush=True)
    try:
        # A timed wait keeps the main thread responsive to signals on every platform.
        while not stop.wait(0.5):
            pass
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
