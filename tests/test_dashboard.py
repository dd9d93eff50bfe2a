"""The staff dashboard: aggregate queries only, so 10,000 domains cost what 10 do."""

from __future__ import annotations

import os
import random
import shutil
import subprocess
from datetime import timedelta
from pathlib import Path

import django
import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from domains.models import CustomDomain, DomainEvent, DomainStatus, EventKind, Workspace
from staff import dashboard, support
from tests.factories import WorkspaceFactory
from tests.needs import need_programs

pytestmark = [pytest.mark.django_db]

URL = "/admin/domains/dashboard/"
ROOT = Path(__file__).resolve().parent.parent

# Roughly a real fleet: mostly active, some waiting, a few in trouble.
MIX = ([DomainStatus.ACTIVE] * 70 + [DomainStatus.PENDING_VALIDATION] * 10
       + [DomainStatus.MISCONFIGURED] * 5 + [DomainStatus.FAILED] * 5
       + [DomainStatus.REMOVED] * 10)


def make_fleet(count: int, *, workspaces: int = 20, seed: int = 8) -> list[Workspace]:
    """`count` domains registered over the last 40 days, created with bulk_create.

    created_at is auto_now_add, so each day's share is inserted with the clock moved to that
    day; activation takes minutes to hours, the slow tail being DNS set up late.
    """
    rng = random.Random(seed)
    spaces = [Workspace.objects.get_or_create(slug=f"studio{i}",
                                              defaults={"name": f"Studio {i}", "plan": "pro"})[0]
              for i in range(workspaces)]
    now = timezone.now()
    per_day = max(1, count // 40)
    made = 0
    for day in range(40, -1, -1):
        batch = []
        created = now - timedelta(days=day, hours=rng.randint(0, 6))
        for _ in range(min(per_day, count - made) if day else count - made):
            status = rng.choice(MIX)
            if status == DomainStatus.PENDING_VALIDATION and day > 2 and rng.random() < 0.85:
                status = DomainStatus.ACTIVE  # most domains stop waiting within a day or two
            minutes = rng.choice([2, 3, 5, 8, 12, 20, 45, 90, 240, 900])
            activated = created + timedelta(minutes=minutes * rng.uniform(0.7, 1.3))
            routed = status in (DomainStatus.ACTIVE, DomainStatus.MISCONFIGURED,
                                DomainStatus.REMOVED)
            trouble = status == DomainStatus.ACTIVE and made % 97 == 0
            batch.append(CustomDomain(
                hostname=f"site{made}.client{made % 300}.com",
                workspace=spaces[made % workspaces],
                status=status,
                ownership_token="t",
                activated_at=activated if routed and activated <= now else None,
                misconfigured_at=now - timedelta(hours=5) if status == "misconfigured" else None,
                failed_at=created + timedelta(hours=72) if status == "failed" else None,
                last_checked_at=now - timedelta(hours=rng.randint(0, 40)),
                last_error=("The CNAME chain ends at old-host.example.net, which does not exist."
                            if status == "misconfigured" else
                            "The domain was never pointed at us within 3 days."
                            if status == "failed" else ""),
                certificate_trouble=("The CAA records at client.com allow only letsencrypt.org "
                                     "to issue certificates, not Amazon." if trouble else ""),
                certificate_trouble_at=now - timedelta(hours=3) if trouble else None,
            ))
            made += 1
        with time_machine.travel(created, tick=False):
            CustomDomain.objects.bulk_create(batch, batch_size=2000)
    return spaces


def _queries_for_dashboard(client) -> tuple[int, str]:
    with CaptureQueriesContext(connection) as ctx:
        response = client.get(URL)
    assert response.status_code == 200
    return len(ctx.captured_queries), response.content.decode()


def test_dashboard_renders_10000_domains_in_a_bounded_number_of_queries(
    client, staff_user, django_assert_max_num_queries,
):
    make_fleet(10)
    client.force_login(staff_user)
    small, _ = _queries_for_dashboard(client)

    CustomDomain.objects.all().delete()
    make_fleet(10_000, workspaces=50)
    assert CustomDomain.objects.count() == 10_000
    # 4 of them are the capacity rows and the failure breakdown.
    with django_assert_max_num_queries(16):
        response = client.get(URL)
    page = response.content.decode()
    large, _ = _queries_for_dashboard(client)
    assert large == small  # independent of the number of domains

    counts = dict(CustomDomain.objects.values_list("status").annotate(
        n=django.db.models.Count("id")).values_list("status", "n"))
    for status in DomainStatus:
        label = support.state_words(status)
        assert f'<div class="vd-n">{counts.get(status, 0)}</div><div class="vd-l">{label}' in page
    assert "<svg" in page and page.count("<rect") > 20
    assert "Certificate trouble" in page and "Pending for more than a day" in page
    # The attention list is capped; the counts are complete.
    assert page.count('class="vd-detail"') == dashboard.ATTENTION_LIST_LIMIT


def test_dashboard_numbers(client, staff_user):
    now = timezone.now()
    ws = WorkspaceFactory()
    made = {}
    for name, fields in {
        "fresh_pending": {"status": DomainStatus.PENDING_VALIDATION},
        "ok": {"status": DomainStatus.ACTIVE, "last_checked_at": now},
        "broken": {"status": DomainStatus.MISCONFIGURED, "last_checked_at": now,
                   "last_error": "points elsewhere"},
        "cert": {"status": DomainStatus.ACTIVE, "certificate_trouble": "CAA forbids Amazon",
                 "certificate_trouble_at": now},
        "gone": {"status": DomainStatus.REMOVED, "certificate_trouble_at": now},
    }.items():
        made[name] = CustomDomain.objects.create(hostname=f"{name}.client.com", workspace=ws,
                                                 ownership_token="t", **fields)
    with time_machine.travel(now - timedelta(days=2), tick=False):
        made["old_pending"] = CustomDomain.objects.create(hostname="old.client.com", workspace=ws,
                                                          ownership_token="t")
    DomainEvent.objects.create(domain=made["broken"], kind=EventKind.STATUS_CHANGED,
                               source="test", from_status="active", to_status="misconfigured")
    data = dashboard.dashboard_data(now)
    attention = {a["name"]: a["count"] for a in data["attention"]}
    assert attention == {"misconfigured": 1, "failing": 0, "certificate_trouble": 1,
                         "pending_over_a_day": 1}
    assert data["checks"]["checked_24h"] == 2 and data["checks"]["errors_24h"] == 1
    assert data["checks"]["events_misconfigured"] == 1
    flagged = {r["domain"].hostname: r["reasons"] for r in data["attention_rows"]}
    assert flagged == {"broken.client.com": ["Misconfigured"],
                       "cert.client.com": ["Certificate trouble"],
                       "old.client.com": ["Pending for more than a day"]}

    # The admin index links to the dashboard, and its counts link to the same lists.
    client.force_login(staff_user)
    assert URL in client.get("/admin/").content.decode()
    listed = client.get("/admin/domains/customdomain/", {"attention": "pending_over_a_day"})
    assert "old.client.com" in listed.content.decode()
    assert "fresh_pending.client.com" not in listed.content.decode()


def test_activation_chart_series(db):
    ws = WorkspaceFactory()
    now = timezone.now().replace(hour=12)
    for day, minutes in ((0, 10), (0, 30), (3, 120), (40, 5)):
        created = now - timedelta(days=day, minutes=minutes)
        with time_machine.travel(created, tick=False):
            CustomDomain.objects.create(hostname=f"d{day}-{minutes}.client.com", workspace=ws,
                                        ownership_token="t", status=DomainStatus.ACTIVE,
                                        activated_at=created + timedelta(minutes=minutes))
    series = dashboard.activation_series(now)
    assert len(series) == dashboard.CHART_DAYS
    by_day = {p.day: p for p in series if p.count}
    today, three_days_ago = by_day[now.date()], by_day[(now - timedelta(days=3)).date()]
    assert today.count == 2 and round(today.average.total_seconds()) == 20 * 60
    assert today.longest == timedelta(minutes=30)
    assert three_days_ago.count == 1 and three_days_ago.longest == timedelta(minutes=120)
    assert sum(p.count for p in series) == 3  # the one from 40 days ago is outside
    chart = dashboard.activation_chart(now)
    assert chart["unit"] == "hours" and chart["activated"] == 3  # the slowest took 2 h


def test_dashboard_needs_staff(client, db):
    response = client.get(URL)
    assert response.status_code == 302 and "/admin/login/" in response["Location"]


@pytest.mark.browser
def test_dashboard_screenshot(client, staff_user, settings, tmp_path):
    """Headless Chromium renders the page; VEDOMAINS_DASHBOARD_SCREENSHOT=path keeps the PNG.

    `VEDOMAINS_DASHBOARD_SCREENSHOT=docs/dashboard.png pytest -m browser tests/test_dashboard.py`
    regenerates the README's screenshot. The page is rendered by the test client and loaded
    from a file, with the admin's static files from the installed Django.
    """
    [chromium] = need_programs("chromium|chromium-browser",
                               install="Debian's chromium; ./dev test installs it")
    make_fleet(1200, workspaces=12, seed=3)
    # The last day's status changes, as the engine would have recorded them.
    recent = CustomDomain.objects.filter(activated_at__gte=timezone.now() - timedelta(hours=24))
    DomainEvent.objects.bulk_create(
        DomainEvent(domain=d, kind=EventKind.STATUS_CHANGED, source="system:check",
                    from_status="pending_validation", to_status="active") for d in recent)
    # And why the others failed or broke, worded as the engine words it (the dashboard's breakdown).
    broke = CustomDomain.objects.filter(status__in=["failed", "misconfigured"]).order_by("id")
    DomainEvent.objects.bulk_create(
        DomainEvent(domain=d, kind=EventKind.STATUS_CHANGED, source="system:check",
                    from_status="pending_validation" if d.status == "failed" else "active",
                    to_status=d.status, message=d.last_error if i % 4 else
                    "The certificate was not validated within 3 days; the validation CNAME is "
                    "missing.", data={} if d.status == "failed" else
                    {"reason": ("wrong_target", "nxdomain", "no_cname")[i % 3]})
        for i, d in enumerate(broke))
    admin_static = Path(django.__file__).parent / "contrib" / "admin" / "static"
    client.force_login(staff_user)
    html = client.get(URL).content.decode()
    # Served from a file, so the admin's CSS and JS come from the installed Django.
    static_url = settings.STATIC_URL if settings.STATIC_URL.startswith("/") else "/" + (
        settings.STATIC_URL)
    for attribute in ("href", "src"):
        html = html.replace(f'{attribute}="{static_url}', f'{attribute}="{admin_static.as_uri()}/')
    page = tmp_path / "dashboard.html"
    page.write_text(html)
    shot = tmp_path / "dashboard.png"
    subprocess.run(
        [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
         f"--screenshot={shot}", "--window-size=1280,1800", page.as_uri()],
        check=True, capture_output=True, timeout=90,
    )
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 20_000
    target = os.environ.get("VEDOMAINS_DASHBOARD_SCREENSHOT")
    if target:
        shutil.copyfile(shot, ROOT / target)
