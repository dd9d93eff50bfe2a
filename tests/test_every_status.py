"""Every status has words on every page and API answer that shows a domain.

Iterates over `DomainStatus` itself, so a status another branch adds fails here until the
admin (list, filter, domain page, dashboard) and the API (our paths and the seed's) answer
for it. Before this test a `deploying` domain made the admin answer 500.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone
from rest_framework.test import APIClient

from domains.models import CustomDomain, DomainEvent, DomainStatus, EventKind, Workspace
from staff import support
from tests.factories import CustomDomainFactory

pytestmark = pytest.mark.django_db

CHANGELIST = "/admin/domains/customdomain/"
SEED_STATUSES = {"verified", "invalid_cname", "pending_validation", "error"}


@pytest.fixture
def staff(staff_user: Any) -> Client:
    client = Client()
    client.force_login(staff_user)
    return client


def _domain_in(status: DomainStatus, workspace: Workspace) -> CustomDomain:
    """A domain in `status` with the fields a domain in that status carries."""
    now = timezone.now()
    domain = CustomDomainFactory(
        workspace=workspace, hostname=f"{status.value.replace('_', '-')}.client.com",
        status=status, next_check_at=now + timedelta(minutes=5),
        certificate_status="ISSUED" if status != DomainStatus.PENDING_VALIDATION else "",
        checks={"dns": {"ok": status != DomainStatus.MISCONFIGURED, "detail": "checked",
                        "reason": "points_to_target", "at": now.isoformat()}},
        removed_at=now if status == DomainStatus.REMOVED else None,
        failed_at=now if status == DomainStatus.FAILED else None,
        misconfigured_at=now if status == DomainStatus.MISCONFIGURED else None,
    )
    DomainEvent.objects.create(domain=domain, kind=EventKind.STATUS_CHANGED, source="system:check",
                               from_status=DomainStatus.PENDING_VALIDATION, to_status=status,
                               message="")
    return domain


@pytest.mark.parametrize("status", list(DomainStatus), ids=lambda s: s.value)
def test_every_admin_page_answers_for_every_status(status: DomainStatus, staff: Client,
                                                   workspace: Workspace) -> None:
    domain = _domain_in(status, workspace)
    words = support.state_words(status)

    page = staff.get(f"{CHANGELIST}{domain.pk}/change/")
    assert page.status_code == 200
    html = page.content.decode()
    summary = support.domain_summary(domain=domain)
    assert (summary.state, summary.headline) != ("", "")
    assert f'vd-tone-{support.state_tone(status)}">{words}</span>' in html
    assert summary.headline in html.replace("&#x27;", "'")

    # The list shows every state with its badge when asked for every state...
    listed = staff.get(CHANGELIST, {"status__exact": "all"})
    assert listed.status_code == 200
    assert domain.hostname in listed.content.decode()
    # ...and the filter by this state, named in support's words.
    only = staff.get(CHANGELIST, {"status__exact": status.value})
    assert only.status_code == 200
    assert domain.hostname in only.content.decode()
    assert words in only.content.decode()
    assert support.domain_problem(domain) is not None

    dashboard = staff.get("/admin/domains/dashboard/")
    assert dashboard.status_code == 200
    assert f"?status__exact={status.value}" in dashboard.content.decode()


@pytest.mark.parametrize("status", list(DomainStatus), ids=lambda s: s.value)
def test_every_api_answer_for_every_status(status: DomainStatus, api: APIClient,
                                           workspace: Workspace) -> None:
    domain = _domain_in(status, workspace)

    listed = api.get("/api/domains/", {"status": status.value})
    assert listed.status_code == 200, listed.content
    assert [d["hostname"] for d in listed.json()["results"]] == [domain.hostname]
    assert listed.json()["results"][0]["status"] == status.value

    detail = api.get(f"/api/domains/{domain.hostname}/")
    seed = api.get(f"/api/domains/verify/{domain.hostname}")
    if status == DomainStatus.REMOVED:
        # A removed record is history: its hostname is free, so the name finds nothing.
        assert (detail.status_code, seed.status_code) == (404, 404)
        assert detail.json()["error"]["code"] == seed.json()["error"]["code"] == "not_found"
        return
    assert detail.status_code == 200, detail.content
    assert detail.json()["status"] == status.value
    assert seed.status_code == 200, seed.content
    body = seed.json()
    assert body["state"] == status.value
    assert body["status"] in SEED_STATUSES and body["message"]


def test_state_words_cover_every_status_once() -> None:
    words = [support.state_words(s) for s in DomainStatus]
    assert len(set(words)) == len(words) and all(words)
    assert support.state_words(DomainStatus.DEPLOYING) == "Deploying"


def test_list_hides_removed_domains_unless_asked(staff: Client, workspace: Workspace) -> None:
    live = _domain_in(DomainStatus.ACTIVE, workspace)
    gone = _domain_in(DomainStatus.REMOVED, workspace)
    default = staff.get(CHANGELIST).content.decode()
    assert live.hostname in default and gone.hostname not in default
    assert "All but removed" in default
    assert gone.hostname in staff.get(CHANGELIST, {"status__exact": "removed"}).content.decode()
    # A search is a look-up of a name: its history shows, removed included.
    assert gone.hostname in staff.get(CHANGELIST, {"q": gone.hostname}).content.decode()


def test_cname_pointing_elsewhere_says_where_and_what_to_change(workspace: Workspace) -> None:
    domain = CustomDomainFactory(workspace=workspace, hostname="shop.client.com", checks={
        "dns": {"ok": False, "reason": "wrong_target", "detail": "x",
                "chain": ["shop.client.com", "old-host.example.net"]}})
    summary = support.domain_summary(domain=domain)
    routing = next(r for r in summary.records if r.type == "CNAME")
    assert (routing.found, routing.found_words) == (
        "missing", "points at old-host.example.net, must point at domain.ve.ai")


def test_removed_reason_names_who_once(workspace: Workspace, staff_user: Any) -> None:
    domain = _domain_in(DomainStatus.REMOVED, workspace)
    DomainEvent.objects.filter(domain=domain).update(actor=staff_user, source="admin",
                                                     message="Removed")
    reason = support.domain_summary(domain=domain).reason
    assert reason == f"Removed by {staff_user.username}, in the admin."


def test_next_check_note_never_contradicts_the_time(workspace: Workspace) -> None:
    now = timezone.now()
    domain = CustomDomainFactory(workspace=workspace, status=DomainStatus.ACTIVE,
                                 next_check_at=now + timedelta(hours=23),
                                 fast_checks_until=now + timedelta(minutes=10))
    moment = next(m for m in support.domain_summary(domain=domain).moments
                  if m.label == "Next check")
    assert moment.note == ""
    domain.next_check_at = now + timedelta(seconds=3)
    moment = next(m for m in support.domain_summary(domain=domain, now=now).moments
                  if m.label == "Next check")
    assert moment.note.startswith("checked every")


def test_ownership_txt_says_why(workspace: Workspace) -> None:
    domain = CustomDomainFactory(workspace=workspace, ownership_required=True, checks={
        "dns": {"ok": True, "reason": "points_to_target", "detail": "ok"}})
    summary = support.domain_summary(domain=domain)
    assert "another workspace has held this hostname" in summary.reason
    assert "another workspace has held this hostname" in summary.action


def test_record_values_break_only_after_a_dot_or_equals_sign() -> None:
    value = "_3f1e.gallery.client.com."
    assert support.wrap_parts(value) == ["_3f1e.", "gallery.", "client.", "com."]
    assert "".join(support.wrap_parts("vedomains-verification=abc")) == (
        "vedomains-verification=abc")
    assert support.wrap_parts("vedomains-verification=abc") == ["vedomains-verification=",
                                                                "abc"]


def test_a_managed_certificate_reads_in_words_and_counts_as_issued(workspace: Workspace) -> None:
    assert support.certificate_status_words("pending-validation") == "Waiting for validation"
    domain = CustomDomainFactory(workspace=workspace, certificate_status="issued", checks={
        "dns": {"ok": True, "reason": "points_to_target", "detail": "ok"},
        "cdn": {"ok": False, "detail": "Tenant is InProgress."}})
    summary = support.domain_summary(domain=domain)
    assert summary.headline == "DNS and certificate are ready; attaching to the CDN."
    assert support.domain_problem(domain) == ""


def test_a_managed_certificate_status_has_the_acm_status_of_its_name() -> None:
    """support.managed_status_words reads ACM's words by member name: the two enums must
    name the same states, each with its own spelling."""
    from domains.integrations.acm import AcmStatus
    from domains.integrations.cdn import ManagedCertificateStatus

    assert [s.name for s in ManagedCertificateStatus] == [s.name for s in AcmStatus]
    for status in ManagedCertificateStatus:
        assert support.managed_status_words(status) == support.acm_status_words(
            AcmStatus[status.name])
        assert status.value == AcmStatus[status.name].value.lower().replace("_", "-")
