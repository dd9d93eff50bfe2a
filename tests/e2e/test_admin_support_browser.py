"""The support view of the admin in headless Chromium at 1280 and 1440 px.

Domains are made the way the system makes them: registered through the service with a real
certificate request to moto, checked by the engine against the loopback DNS server (which
knows nothing of the hostname, so the check records NXDOMAIN), removed through the service.
The page must then say why the domain is stuck, show every record value whole (measured
in the browser: scrollWidth not above clientWidth), and offer no Save button.

`VEDOMAINS_ADMIN_SCREENSHOTS=docs/admin pytest -m browser tests/e2e/test_admin_support_browser.py`
regenerates the screenshots in docs/admin/; without it they go to the test's tmp dir.
"""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.utils import timezone

from domains import selectors
from domains.models import CustomDomain, DomainEvent, DomainStatus, EventKind
from tests.e2e.conftest import WAIT
from tests.factories import CustomDomainFactory, UserFactory, WorkspaceFactory
from workflow import services, tasks

# Real ACM validation records on the page: the per-domain strategy's certificate request.
pytestmark = [pytest.mark.browser, pytest.mark.integration, pytest.mark.slow,
              pytest.mark.per_domain]

ROOT = Path(__file__).resolve().parents[2]
PASSWORD = "pw-12345-long"  # UserFactory's
# Long on purpose: the validation record's name is longer still, and must not be clipped.
PENDING_HOST = "portfolio-gallery-2026.northlight-photography-studio.com"
REMOVED_HOST = "old-shop.northlight-photography-studio.com"
SAVE_BUTTONS = "input[name=_save], input[name=_continue], input[name=_addanother]"


def _shots_dir(tmp_path: Path) -> Path:
    target = os.environ.get("VEDOMAINS_ADMIN_SCREENSHOTS")
    path = ROOT / target if target else tmp_path
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture
def fleet(
    transactional_db: None, aws_stack: dict[str, str], dns_server: Any, clean_redis: str,
    settings: Any,
) -> dict[str, CustomDomain]:
    settings.CELERY_BROKER_URL = clean_redis
    staff = UserFactory(username="staff", is_staff=True, is_superuser=True)
    ws = WorkspaceFactory(slug="northlight", name="Northlight Photography Studio", plan="pro")

    pending = services.domain_register(workspace=ws, hostname=PENDING_HOST, by=None,
                                       source="api")
    # What the worker does next, run here through the same tasks.
    assert tasks.domain_request_certificate(pending.pk) == "requested"
    assert tasks.domain_check(pending.pk) == "waiting"
    pending.refresh_from_db()
    assert pending.checks["dns"]["reason"] == "nxdomain", pending.checks
    assert pending.validation_records

    removed = services.domain_register(workspace=ws, hostname=REMOVED_HOST, by=None,
                                       source="api")
    # What its last checks said while it was live: attached. The page must not repeat that.
    CustomDomain.objects.filter(pk=removed.pk).update(checks={
        "dns": {"ok": True, "detail": "points at us", "at": timezone.now().isoformat()},
        "cdn": {"ok": True, "detail": "Attached (distribution-per-domain: E2EXAMPLE).",
                "at": timezone.now().isoformat()}})
    removed.refresh_from_db()
    services.domain_remove(domain=removed, by=staff, source="admin",
                           reason="The customer moved the shop elsewhere.")

    # A few more states for the list, as the engine leaves them.
    now = timezone.now()
    other = WorkspaceFactory(slug="harbour-weddings", name="Harbour Weddings", plan="business")
    CustomDomainFactory(workspace=other, hostname="weddings.harbour-example.com",
                        status=DomainStatus.ACTIVE, activated_at=now, certificate_status="ISSUED",
                        next_check_at=now + timedelta(hours=20))
    broken = CustomDomainFactory(
        workspace=other, hostname="xn--bcher-caf-j4a4r.harbour-example.com",
        status=DomainStatus.MISCONFIGURED, misconfigured_at=now - timedelta(hours=5),
        certificate_status="ISSUED", next_check_at=now + timedelta(minutes=25),
        last_error="xn--bcher-caf-j4a4r.harbour-example.com points to shops.example.net, "
                   "not domain.ve.ai.")
    DomainEvent.objects.create(domain=broken, kind=EventKind.STATUS_CHANGED,
                               source="system:check", from_status="active",
                               to_status="misconfigured", data={"reason": "wrong_target"},
                               message=broken.last_error)
    return {"pending": pending, "removed": removed}


def _login(browser: Any, base: str) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    browser.get(f"{base}/admin/login/")
    wait = WebDriverWait(browser, WAIT)
    wait.until(ec.presence_of_element_located((By.ID, "id_username"))).send_keys("staff")
    browser.find_element(By.ID, "id_password").send_keys(PASSWORD)
    browser.find_element(By.CSS_SELECTOR, "input[type=submit]").click()
    wait.until(ec.presence_of_element_located((By.ID, "user-tools")))


def _viewport(browser: Any, width: int, height: int = 1000) -> None:
    """Make the page's viewport (not the window) `width` px wide."""
    browser.set_window_size(width, height)
    inner = int(browser.execute_script("return window.innerWidth"))
    if inner != width:
        browser.set_window_size(width + (width - inner), height)
    assert int(browser.execute_script("return window.innerWidth")) == width


def _open(browser: Any, url: str, ready_css: str) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    browser.get(url)
    WebDriverWait(browser, WAIT).until(ec.presence_of_element_located((By.CSS_SELECTOR,
                                                                        ready_css)))


def _no_horizontal_scroll(browser: Any) -> None:
    widths = browser.execute_script(
        "var d = document.documentElement; return [d.scrollWidth, d.clientWidth];")
    if widths[0] > widths[1]:
        wide = browser.execute_script(
            "var w = document.documentElement.clientWidth; return Array.from("
            "document.querySelectorAll('body *')).filter(function (e) {"
            " return e.getBoundingClientRect().right > w; }).slice(0, 8).map(function (e) {"
            " return e.tagName + '.' + e.className + '#' + e.id + ' ' +"
            " Math.round(e.getBoundingClientRect().right); });")
        raise AssertionError(f"the page scrolls sideways: {widths}; too wide: {wide}")


def _screenshot(browser: Any, path: Path, width: int) -> None:
    height = int(browser.execute_script("return document.documentElement.scrollHeight"))
    _viewport(browser, width, min(max(height, 700), 5000))
    assert browser.save_screenshot(str(path))
    assert path.stat().st_size > 10_000
    _viewport(browser, width)


@pytest.mark.parametrize("width", [1280, 1440])
def test_support_view_in_chromium(
    live_server: Any, browser: Any, fleet: dict[str, CustomDomain], width: int,
    tmp_path: Path,
) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    shots = _shots_dir(tmp_path)
    base = live_server.url
    _viewport(browser, width)
    _login(browser, base)
    header = browser.find_element(By.ID, "site-name").text
    assert "vedomains" in header and "Django" not in header
    assert "Django" not in browser.title
    assert not browser.find_elements(By.LINK_TEXT, "View site")

    # The list: the support columns, all on screen, no icon for "no error".
    _open(browser, f"{base}/admin/domains/customdomain/", "#result_list")
    columns = [th.text.strip() for th in
               browser.find_elements(By.CSS_SELECTOR, "#result_list thead th")][1:]
    assert columns == ["HOSTNAME", "WORKSPACE", "STATE", "PROBLEM", "AGE", "NEXT CHECK"] or [
        c.title() for c in columns] == ["Hostname", "Workspace", "State", "Problem", "Age",
                                        "Next Check"], columns
    _no_horizontal_scroll(browser)
    # Whole inside its box too (the admin lets a wide list scroll within it).
    inner = browser.execute_script(
        "var r = document.querySelector('#changelist .results');"
        "return [r.scrollWidth, r.clientWidth,"
        " document.querySelector('#result_list').getBoundingClientRect().right];")
    assert inner[0] <= inner[1] and inner[2] <= width, f"the list is cut off: {inner}"
    assert not browser.find_elements(By.CSS_SELECTOR, "#result_list img")
    assert "Misconfigured" in browser.find_element(By.ID, "result_list").text
    _screenshot(browser, shots / f"admin-list-{width}.png", width)

    # Search by a spelling staff might paste: the customer's URL with a Unicode name.
    search = browser.find_element(By.ID, "searchbar")
    search.send_keys("https://Bücher-Café.harbour-example.com./shop")
    search.submit()
    WebDriverWait(browser, WAIT).until(
        lambda b: "bücher" in b.current_url.lower() or "b%c3%bc" in b.current_url.lower())
    rows = browser.find_elements(By.CSS_SELECTOR, "#result_list tbody tr")
    assert len(rows) == 1 and "xn--bcher-caf-j4a4r" in rows[0].text

    # The pending domain: summary first, naming the reason; every record value whole.
    pending = fleet["pending"]
    _open(browser, f"{base}/admin/domains/customdomain/{pending.pk}/change/", "#vd-summary")
    reason = browser.find_element(By.ID, "vd-reason").text
    assert "does not exist in DNS" in reason, reason
    tops = browser.execute_script(
        "return ['vd-summary', 'vd-checks', 'vd-audit', 'vd-technical'].map("
        "function (id) { return document.getElementById(id).getBoundingClientRect().top; });")
    assert tops == sorted(tops), tops
    assert not browser.find_element(By.ID, "vd-technical").get_attribute("open")
    expected = [v for r in selectors.domain_dns_records(pending) for v in (r["name"], r["value"])]
    values = browser.find_elements(By.CSS_SELECTOR, "#vd-records code.vd-value")
    assert [v.text for v in values] == expected
    assert any(len(v) > 60 for v in expected)  # a value long enough to have been clipped
    for value in values:
        scroll, client, right = browser.execute_script(
            "var e = arguments[0]; return [e.scrollWidth, e.clientWidth, "
            "e.getBoundingClientRect().right];", value)
        assert scroll <= client, f"{value.text!r} is clipped: {scroll} > {client}"
        assert right <= width, f"{value.text!r} runs off screen at {right} px"
    assert not browser.find_elements(By.CSS_SELECTOR, SAVE_BUTTONS)
    _no_horizontal_scroll(browser)
    # The page used to be ~2,900 px tall; the summary, checks and trail now fit ~1.5 screens.
    height = int(browser.execute_script("return document.documentElement.scrollHeight"))
    print(f"pending domain page at {width} px: {height} px tall")
    assert height <= 1500, height
    audit = browser.find_element(By.ID, "vd-audit").text
    assert "Registered" in audit and "Certificate requested" in audit
    copy = browser.find_elements(By.CSS_SELECTOR, "#vd-records button.vd-copy")[1]
    copy.click()
    WebDriverWait(browser, WAIT).until(lambda b: copy.text == "Copied")
    _screenshot(browser, shots / f"admin-domain-pending-{width}.png", width)

    # The removed domain: no records to create, no "attached", who removed it and why.
    removed = fleet["removed"]
    _open(browser, f"{base}/admin/domains/customdomain/{removed.pk}/change/", "#vd-summary")
    text = browser.find_element(By.TAG_NAME, "body").text
    assert "records the customer must create" not in text.lower()
    assert "Attached" not in text
    assert "Detached" in text or "detaching" in text
    assert "moved the shop elsewhere" in browser.find_element(By.ID, "vd-reason").text
    assert "staff" in browser.find_element(By.ID, "vd-audit").text
    assert not browser.find_elements(By.CSS_SELECTOR, SAVE_BUTTONS)
    assert not browser.find_elements(By.CSS_SELECTOR, "#vd-records")
    _screenshot(browser, shots / f"admin-domain-removed-{width}.png", width)

    # The dashboard: capacity and failure reasons, no sideways scrolling.
    _open(browser, f"{base}/admin/domains/dashboard/", "#vd-capacity")
    assert "Domains setting up (certificate requested or not yet)" in browser.find_element(
        By.ID, "vd-capacity").text
    assert "pointed elsewhere" in browser.find_element(By.ID, "vd-failures").text
    _no_horizontal_scroll(browser)
    # Its screenshot, with a realistic fleet, is docs/dashboard.png (tests/test_dashboard.py).
