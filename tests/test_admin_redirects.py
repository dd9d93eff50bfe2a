"""Redirect domains in the staff admin: add with a redirect or as a pair, set one on a
domain's page, and removal that asks before taking the redirects with it."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.messages import get_messages
from django.test import Client

from domains.models import CustomDomain, DomainStatus, EventKind, Plan
from tests.factories import CustomDomainFactory, WorkspaceFactory

pytestmark = pytest.mark.django_db

CHANGELIST = "/admin/domains/customdomain/"


@pytest.fixture
def staff(staff_user: Any) -> Client:
    client = Client()
    client.force_login(staff_user)
    return client


def messages_of(response: Any) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


def test_add_page_registers_a_redirect(staff: Client) -> None:
    ws = WorkspaceFactory(slug="acme", plan=Plan.PRO)
    CustomDomainFactory(workspace=ws, hostname="www.new.com")
    page = staff.get(CHANGELIST + "add/").content.decode()
    assert 'name="redirect_to"' in page and 'name="include_www"' in page
    r = staff.post(CHANGELIST + "add/", {"hostname": "old.new.com", "workspace": ws.pk,
                                         "redirect_to": "www.new.com", "redirect_code": "301"})
    assert r.status_code == 302, r.content.decode()[:2000]
    old = CustomDomain.objects.get(hostname="old.new.com")
    assert (old.redirect_to.hostname, old.redirect_code) == ("www.new.com", 301)


def test_add_page_shows_a_bad_target(staff: Client) -> None:
    ws = WorkspaceFactory(plan=Plan.PRO)
    CustomDomainFactory(workspace=WorkspaceFactory(), hostname="theirs.com")
    r = staff.post(CHANGELIST + "add/", {"hostname": "a.mine.com", "workspace": ws.pk,
                                         "redirect_to": "theirs.com", "redirect_code": "308"})
    assert r.status_code == 200
    assert "is not a custom domain of this workspace" in r.content.decode()
    assert not CustomDomain.objects.filter(hostname="a.mine.com").exists()


def test_add_page_pair_without_apex_support_says_to_forward(staff: Client) -> None:
    ws = WorkspaceFactory(plan=Plan.PRO)
    r = staff.post(CHANGELIST + "add/", {"hostname": "client.com", "workspace": ws.pk,
                                         "include_www": "on", "redirect_code": "308"},
                   follow=True)
    assert r.status_code == 200
    assert any("forward it to https://www.client.com" in m for m in messages_of(r))
    assert list(CustomDomain.objects.values_list("hostname", flat=True)) == ["www.client.com"]


def test_page_sets_and_clears_a_redirect(staff: Client) -> None:
    ws = WorkspaceFactory(plan=Plan.PRO)
    CustomDomainFactory(workspace=ws, hostname="www.mine.com")
    old = CustomDomainFactory(workspace=ws, hostname="old.mine.com")
    page = staff.get(f"{CHANGELIST}{old.pk}/change/").content.decode()
    url = f"{CHANGELIST}{old.pk}/redirect/"
    assert url in page
    form = staff.post(url)
    assert form.status_code == 200 and 'name="redirect_to"' in form.content.decode()
    bad = staff.post(url, {"apply": "1", "redirect_to": "old.mine.com", "redirect_code": "308"})
    assert "cannot redirect to itself" in bad.content.decode()
    r = staff.post(url, {"apply": "1", "redirect_to": "www.mine.com", "redirect_code": "308"})
    assert r.status_code == 302
    old.refresh_from_db()
    assert old.redirect_to is not None and old.redirect_to.hostname == "www.mine.com"
    assert old.events.filter(kind=EventKind.REDIRECT_CHANGED, source="admin").exists()
    page = staff.get(f"{CHANGELIST}{old.pk}/change/").content.decode()
    assert "www.mine.com (not yet" in page
    staff.post(url, {"apply": "1", "redirect_to": "", "redirect_code": "308"})
    old.refresh_from_db()
    assert old.redirect_to is None


def test_remove_action_asks_before_removing_redirects(staff: Client) -> None:
    ws = WorkspaceFactory(plan=Plan.PRO)
    www = CustomDomainFactory(workspace=ws, hostname="www.mine.com", status=DomainStatus.ACTIVE)
    CustomDomainFactory(workspace=ws, hostname="mine.com", redirect_to=www, redirect_code=308,
                        status=DomainStatus.ACTIVE)
    r = staff.post(CHANGELIST, {"action": "remove_domains", "_selected_action": [www.pk]})
    page = r.content.decode()
    assert r.status_code == 200 and "Remove the redirects too?" in page and "mine.com" in page
    assert not CustomDomain.objects.filter(status=DomainStatus.REMOVED).exists()

    r = staff.post(CHANGELIST, {"action": "remove_domains", "_selected_action": [www.pk],
                                "remove_redirects": "yes"}, follow=True)
    assert "Removed: 1 domain(s)." in messages_of(r)
    assert set(CustomDomain.objects.values_list("status", flat=True)) == {DomainStatus.REMOVED}


def test_remove_action_without_redirects_needs_no_confirmation(staff: Client) -> None:
    domain = CustomDomainFactory(status=DomainStatus.ACTIVE)
    r = staff.post(CHANGELIST, {"action": "remove_domains", "_selected_action": [domain.pk]},
                   follow=True)
    assert "Removed: 1 domain(s)." in messages_of(r)


def test_removing_a_target_and_its_redirect_together_reports_both_removed(staff: Client) -> None:
    ws = WorkspaceFactory(plan=Plan.PRO)
    www = CustomDomainFactory(workspace=ws, hostname="www.mine.com", status=DomainStatus.ACTIVE)
    apex = CustomDomainFactory(workspace=ws, hostname="mine.com", redirect_to=www,
                               redirect_code=308, status=DomainStatus.ACTIVE)
    r = staff.post(CHANGELIST, {"action": "remove_domains", "_selected_action": [www.pk, apex.pk],
                                "remove_redirects": "yes"}, follow=True)
    msgs = messages_of(r)
    assert "Removed: 2 domain(s)." in msgs and not any("failed" in m for m in msgs), msgs
    assert set(CustomDomain.objects.values_list("status", flat=True)) == {DomainStatus.REMOVED}


def test_add_page_refuses_a_pair_with_a_redirect_target(staff: Client) -> None:
    ws = WorkspaceFactory(plan=Plan.PRO)
    CustomDomainFactory(workspace=ws, hostname="www.mine.com")
    r = staff.post(CHANGELIST + "add/", {"hostname": "client.com", "workspace": ws.pk,
                                         "include_www": "on", "redirect_to": "www.mine.com",
                                         "redirect_code": "308"})
    assert r.status_code == 200
    assert "cannot be combined" in r.content.decode()
    assert not CustomDomain.objects.filter(hostname__endswith="client.com").exists()
