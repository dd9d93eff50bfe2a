"""The admin in headless Chromium: log in, find a domain, "Check now", read its page.

Debian's own Chromium and chromedriver (`apt-get install chromium chromium-driver`, which
`./dev test` does), driven by Selenium with both paths given, so Selenium Manager never
downloads a browser or a driver. The app runs in pytest-django's `live_server` (a thread
of this process) on the test database; the domain is registered through the service with
a real certificate request to moto, so the page shows real ACM validation records. The
queued check goes to this test's own Redis database; no worker runs it.

Saves a screenshot of the domain page to artifacts/admin-domain.png (gitignored).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from domains.models import CustomDomain, DomainEvent, EventKind
from tests.factories import UserFactory, WorkspaceFactory
from workflow import certificates, services

# Real ACM validation records on the page: the per-domain strategy's certificate request.
pytestmark = [pytest.mark.browser, pytest.mark.integration, pytest.mark.slow,
              pytest.mark.per_domain]

ROOT = Path(__file__).resolve().parents[2]
ARTIFACT = ROOT / "artifacts" / "admin-domain.png"
CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
PASSWORD = "pw-12345-long"  # UserFactory's
HOST = "gallery.browser-example.com"
WAIT = 20


@pytest.fixture
def domain(
    transactional_db: None, aws_stack: dict[str, str], clean_redis: str, settings: Any
) -> CustomDomain:
    settings.CELERY_BROKER_URL = clean_redis
    staff = UserFactory(username="staff", is_staff=True, is_superuser=True)
    workspace = WorkspaceFactory(slug="browser", name="Browser Studio", plan="pro")
    domain = services.domain_register(workspace=workspace, hostname=HOST, by=staff, source="admin")
    # What the worker would do next: request the certificate (moto publishes the
    # validation CNAME at once).
    assert certificates.domain_request_certificate(domain_id=domain.pk) == "requested"
    domain.refresh_from_db()
    assert domain.validation_records
    return domain


def test_admin_find_check_and_read_a_domain(
    live_server: Any, browser: Any, domain: CustomDomain
) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.select import Select
    from selenium.webdriver.support.ui import WebDriverWait

    wait = WebDriverWait(browser, WAIT)

    def page_text() -> str:
        return str(browser.find_element(By.TAG_NAME, "body").text)

    # Log in.
    browser.get(f"{live_server.url}/admin/")
    wait.until(ec.presence_of_element_located((By.ID, "id_username"))).send_keys("staff")
    browser.find_element(By.ID, "id_password").send_keys(PASSWORD)
    browser.find_element(By.CSS_SELECTOR, "input[type=submit]").click()
    wait.until(ec.presence_of_element_located((By.ID, "user-tools")))

    # Find the domain with the changelist search.
    browser.get(f"{live_server.url}/admin/domains/customdomain/")
    search = wait.until(ec.presence_of_element_located((By.ID, "searchbar")))
    search.send_keys("browser-example")
    search.submit()
    wait.until(ec.presence_of_element_located((By.LINK_TEXT, HOST)))
    assert len(browser.find_elements(By.CSS_SELECTOR, "#result_list tbody tr")) == 1

    # "Check now" on it, from the actions menu.
    browser.find_element(By.CSS_SELECTOR, "input.action-select").click()
    Select(browser.find_element(By.NAME, "action")).select_by_value("check_now")
    browser.find_element(By.CSS_SELECTOR, "button[name=index]").click()
    message = wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, "ul.messagelist")))
    assert "Check queued: 1 domain(s)." in message.text

    # Its page: the DNS records to create and the audit trail, including our check.
    browser.find_element(By.LINK_TEXT, HOST).click()
    wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, "fieldset")))
    text = page_text()
    assert "dns records the customer must create" in text.lower()  # headings are uppercased
    validation = domain.validation_records[0]
    for expected in (
        HOST,
        "domain.ve.ai",
        validation["name"].rstrip("."),
        validation["value"].rstrip("."),
    ):
        assert expected in text, expected
    for kind in ("Registered", "Certificate requested", "Check requested"):
        assert kind in text, f"audit trail lacks {kind!r}"
    assert DomainEvent.objects.filter(
        domain=domain, kind=EventKind.CHECK_REQUESTED, source="admin", actor__username="staff"
    ).exists()

    # A full-page screenshot, kept as a test artifact.
    height = int(browser.execute_script("return document.documentElement.scrollHeight"))
    browser.set_window_size(1280, min(max(height, 1000), 6000))
    ARTIFACT.parent.mkdir(parents=True, exist_ok=True)
    assert browser.save_screenshot(str(ARTIFACT))
    assert ARTIFACT.stat().st_size > 10_000
