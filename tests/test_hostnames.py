"""Hostname normalization and validation (DESIGN.md, "Hostname rules")."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import example, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from domains.hostnames import (
    HostnameError,
    is_platform_hostname,
    normalize_hostname,
    validate_custom_hostname,
)


@pytest.mark.parametrize(
    "raw,expected",
    [
        ("gallery.client.com", "gallery.client.com"),
        ("Gallery.Client.COM", "gallery.client.com"),
        ("gallery.client.com.", "gallery.client.com"),
        ("  gallery.client.com  ", "gallery.client.com"),
        ("bücher.client.com", "xn--bcher-kva.client.com"),
        ("BÜCHER.client.com", "xn--bcher-kva.client.com"),
        ("xn--bcher-kva.client.com", "xn--bcher-kva.client.com"),
        ("münchen.de", "xn--mnchen-3ya.de"),
        ("例え.テスト", "xn--r8jz45g.xn--zckzah"),
        ("a-b.c-d.com", "a-b.c-d.com"),
        ("1password.com", "1password.com"),
        ("ｇａｌｌｅｒｙ.client.com", "gallery.client.com"),  # UTS #46 maps full-width forms
        ("faß.de", "xn--fa-hia.de"),  # IDNA 2008, non-transitional: ß stays ß
    ],
)
def test_normalize(raw: str, expected: str) -> None:
    assert normalize_hostname(raw) == expected


@pytest.mark.parametrize(
    "raw",
    [
        "", " ", None, 42, b"gallery.client.com", ["a.com"],
        "http://a.client.com", "a.client.com/x", "a.client.com:8080", "a.client.com?q",
        "a.client.com#f", "u@a.client.com", "a b.com", "127.0.0.1", "[::1]", "::1",
        "*.client.com", "a..b.com", ".a.com", "a.com..", "-a.com", "a-.com", "a_b.com",
        "a" * 64 + ".com", ".".join(["a" * 63] * 4) + ".com", "x" * 2000, "localhost",
        "a.com\x00", "☃", "\ud800.com",
    ],
)
def test_normalize_rejects(raw: Any) -> None:
    with pytest.raises(HostnameError) as info:
        normalize_hostname(raw)
    assert info.value.message


def test_normalize_allows_exactly_253_characters() -> None:
    name = ".".join(["a" * 63, "b" * 63, "c" * 63, "d" * 57]) + ".com"
    assert len(name) == 253
    assert normalize_hostname(name) == name
    with pytest.raises(HostnameError):
        normalize_hostname("e" + name)


@pytest.mark.parametrize(
    "raw,code",
    [
        ("com", "invalid_hostname"),
        ("co.uk", "public_suffix"),
        ("github.io", "public_suffix"),
        ("client.com", "apex_not_supported"),
        ("client.co.uk", "apex_not_supported"),
        ("user.github.io", "apex_not_supported"),
        ("gallery.client.nosuchtld", "unknown_suffix"),
        ("ve.ai", "platform_domain"),
        ("x.ve.ai", "platform_domain"),
        ("domain.ve.ai", "platform_domain"),
        ("a.b.ve.ai", "platform_domain"),
        ("VE.AI.", "platform_domain"),
    ],
)
def test_validate_rejects_with_a_code(raw: str, code: str) -> None:
    with pytest.raises(HostnameError) as info:
        validate_custom_hostname(raw)
    assert info.value.code == code


@pytest.mark.parametrize(
    "raw", ["gallery.client.com", "www.client.co.uk", "shop.user.github.io", "a.b.c.client.com"]
)
def test_validate_accepts(raw: str) -> None:
    assert validate_custom_hostname(raw) == raw


@pytest.mark.parametrize("raw", ["client.com", "client.co.uk", "user.github.io"])
def test_apex_is_refused_with_what_to_use_instead(raw: str) -> None:
    with pytest.raises(HostnameError) as info:
        validate_custom_hostname(raw)
    assert info.value.code == "apex_not_supported"
    assert f"www.{raw}" in info.value.message


def test_reserved_domains_from_settings(settings: Any) -> None:
    settings.VEDOMAINS_RESERVED_DOMAINS = ["ve-cdn.net"]
    assert is_platform_hostname("x.ve-cdn.net")
    with pytest.raises(HostnameError):
        validate_custom_hostname("gallery.ve-cdn.net")


def test_platform_check_is_on_label_boundaries() -> None:
    # "notve.ai" is someone else's domain, not a subdomain of ve.ai.
    assert not is_platform_hostname("gallery.notve.ai")
    assert validate_custom_hostname("gallery.notve.ai") == "gallery.notve.ai"


# --- properties -------------------------------------------------------------------------------

# Text shaped like hostnames (so the success path is exercised often), plus anything at all.
_label = st.text(
    alphabet=st.sampled_from("abcdefghijklmnopqrstuvwxyzABCXYZ0123456789-_üßéÅ例ｇ*"),
    min_size=0,
    max_size=70,
)
hostname_like = st.builds(
    lambda labels, dot: ".".join(labels) + dot,
    st.lists(_label, min_size=1, max_size=6),
    st.sampled_from(["", ".", ".."]),
)
anything = st.one_of(
    st.text(max_size=300),
    hostname_like,
    st.from_regex(r"[a-z0-9.\-:/\[\]@*%]{0,80}", fullmatch=True),
    st.binary(max_size=20),
    st.integers(),
    st.floats(),
    st.none(),
    st.lists(st.text(max_size=5), max_size=3),
)


@hsettings(max_examples=2000, deadline=None)
@given(anything)
@example("xn--bcher-kva.client.com")
@example("a.b.")
@example("\u0301.com")
@example("xn--ls8h.la")
@example("1.2.3.4.5")
@example("0x7f.1")
def test_normalize_is_idempotent_and_raises_only_hostname_error(raw: object) -> None:
    try:
        once = normalize_hostname(raw)
    except HostnameError:
        return
    assert normalize_hostname(once) == once
    assert once == once.lower()
    assert once.isascii()
    assert not once.endswith(".")
    assert len(once) <= 253
    assert all(0 < len(label) <= 63 for label in once.split("."))


@hsettings(max_examples=1000, deadline=None)
@given(anything)
def test_validate_raises_only_hostname_error_and_is_idempotent(raw: object) -> None:
    try:
        host = validate_custom_hostname(raw)
    except HostnameError:
        return
    assert validate_custom_hostname(host) == host
    assert not is_platform_hostname(host)
