"""Host normalization and platform-subdomain parsing (pure logic, no AWS)."""

from __future__ import annotations

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from edge_lambda.build import default_config
from edge_lambda.config import settings_from_config
from edge_lambda.hosts import is_dns_label, normalize_host, platform_workspace


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("gallery.client.com", "gallery.client.com"),
        ("Gallery.Client.COM", "gallery.client.com"),
        ("gallery.client.com:443", "gallery.client.com"),
        ("gallery.client.com:", "gallery.client.com"),
        ("gallery.client.com.", "gallery.client.com"),
        ("GALLERY.client.com.:8443", "gallery.client.com"),
        (" gallery.client.com ", "gallery.client.com"),
        ("bücher.de", "xn--bcher-kva.de"),
        ("BÜCHER.de:443", "xn--bcher-kva.de"),
        ("xn--bcher-kva.de", "xn--bcher-kva.de"),
        ("bücher。de", "xn--bcher-kva.de"),  # ideographic full stop
        ("bücher.de。", "xn--bcher-kva.de"),
        ("bücher.de.", "xn--bcher-kva.de"),
        ("ａｂｃ.com", "abc.com"),  # fullwidth letters fold to ASCII
        ("a-b.c-d.io", "a-b.c-d.io"),
        ("1password.com", "1password.com"),
        ("x" * 63 + ".com", "x" * 63 + ".com"),
    ],
)
def test_normalize_host_canonicalizes(raw: str, expected: str) -> None:
    assert normalize_host(raw) == expected


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "   ",
        "localhost",  # a single label is never a customer domain
        "127.0.0.1",
        "127.0.0.1:80",
        "[::1]",
        "[::1]:443",
        "::1",
        "a..com",
        ".a.com",
        "a.com..",
        "bücher.de..",  # one trailing dot is stripped, not two
        "bücher.de.。",
        "-a.com",
        "a-.com",
        "under_score.com",
        "*.client.com",
        "a b.com",
        "a.com:abc",
        "a.com:80:90",
        "http://a.com",
        "a.com/path",
        "x" * 64 + ".com",
        ".".join(["a" * 63] * 4) + ".com",  # > 253 characters
        "ß.de",  # IDNA 2003 and 2008 disagree: refused
        "a\u200d.com",
        "\ud800.com",
        "a.com\x00",
        "a" * 5000,
        None,
        42,
    ],
)
def test_normalize_host_rejects_garbage(raw: object) -> None:
    assert normalize_host(raw) is None


@given(st.text(max_size=300))
@example("A.com.:0")
@example("\u212a.com")  # KELVIN SIGN lowercases to ASCII "k"
@example("xn--.com")
def test_normalize_host_never_raises_and_is_idempotent(raw: str) -> None:
    host = normalize_host(raw)
    if host is not None:
        assert host.isascii() and host == host.lower()
        assert ":" not in host and not host.endswith(".")
        assert normalize_host(host) == host


_label = st.from_regex(r"[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,20}[a-zA-Z0-9])?", fullmatch=True)


@given(
    labels=st.lists(_label, min_size=1, max_size=4),
    tld=st.sampled_from(["com", "co.uk", "io", "photography"]),
    port=st.one_of(st.none(), st.integers(min_value=0, max_value=65535)),
    trailing_dot=st.booleans(),
)
def test_normalize_host_strips_case_port_and_dot(
    labels: list[str], tld: str, port: int | None, trailing_dot: bool
) -> None:
    canonical = ".".join([*labels, tld]).lower()
    raw = ".".join([*labels, tld]) + ("." if trailing_dot else "")
    if port is not None:
        raw += f":{port}"
    assert normalize_host(raw) == canonical


SETTINGS = settings_from_config(default_config())


@pytest.mark.parametrize(
    ("host", "workspace"),
    [
        ("acme.ve.ai", "acme"),
        ("a-1.ve.ai", "a-1"),
        ("ve.ai", None),  # the bare platform domain is not a workspace
        ("www.ve.ai", None),  # reserved: the marketing site
        ("domain.ve.ai", None),  # reserved: the customers' CNAME target
        ("origin.ve.ai", None),  # the origin's own name (Host not forwarded)
        ("deep.acme.ve.ai", None),  # single label only
        ("acme.ve.ai.evil.com", None),
        ("acmeve.ai", None),
    ],
)
def test_platform_workspace(host: str, workspace: str | None) -> None:
    assert platform_workspace(host, SETTINGS) == workspace


@pytest.mark.parametrize(
    ("value", "ok"),
    [("acme", True), ("a", True), ("a" * 63, True), ("a" * 64, False), ("-a", False),
     ("a-", False), ("Acme", False), ("a.b", False), ("", False), (None, False)],
)  # fmt: skip
def test_is_dns_label(value: object, ok: bool) -> None:
    assert is_dns_label(value) is ok
