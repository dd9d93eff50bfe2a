"""Admin hardening: API tokens are never shown, webhook secrets only to staff
who may change the endpoint, and password guessing at the admin sign-in is throttled.

Imported at the end of `staff.admin`, after `rest_framework.authtoken` registered its own
TokenAdmin (INSTALLED_APPS order), which lists every token's key to anyone with view
permission on tokens: a view-only staff user could act as any API user.
"""

from __future__ import annotations

import hashlib
import logging
import time
from datetime import UTC, datetime
from typing import Any

from django.conf import settings
from django.contrib import admin, messages
from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.auth import get_user_model
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import reverse
from rest_framework.authtoken.admin import TokenAdmin
from rest_framework.authtoken.models import TokenProxy


def mask_secret(value: str, *, keep: int = 4) -> str:
    """Enough to tell two secrets apart, never enough to use one."""
    return f"{value[:keep]}…" if value else ""


class MaskedTokenAdmin(TokenAdmin):
    """Tokens listed by user with a masked key; the key is shown once, to its creator.

    A token's primary key IS its key, and Django's object pages put the primary key in
    titles, links and form values, so there are no object pages at all: list and add only.
    Rotate a token with `manage.py drf_create_token -r <username>`.
    """

    list_display = ("masked_key", "user", "created")
    list_display_links = None
    fields = ("user",)
    actions = None

    @admin.display(description="Key")
    def masked_key(self, obj: TokenProxy) -> str:
        return mask_secret(obj.key)

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return obj is None and super().has_view_permission(request, obj)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        super().save_model(request, obj, form, change)
        if not change:
            # The only time the key is displayed: the creator hands it to its user.
            self.message_user(request, f"Token for {obj.user}: {obj.key} (shown only now).",
                              messages.WARNING)

    def response_add(self, request: HttpRequest, obj: Any, post_url_continue: Any = None
                     ) -> HttpResponse:
        # Django's default message names the object, i.e. str(token) == its key, and
        # links to its (non-existent) change page.
        return HttpResponseRedirect(reverse("admin:authtoken_tokenproxy_changelist"))


if admin.site.is_registered(TokenProxy):
    admin.site.unregister(TokenProxy)
admin.site.register(TokenProxy, MaskedTokenAdmin)



# --- admin sign-in throttle ---------------------------------------------------------------------
#
# The admin sits behind the internet-facing load balancer, and Django checks passwords
# without any limit. Failures are counted in the shared cache (Redis in production; a
# system check refuses a per-process cache there) per account and per client address: past
# VEDOMAINS_ADMIN_LOGIN_FAILURES_PER_ACCOUNT (or ..._PER_ADDRESS) failures within
# VEDOMAINS_ADMIN_LOGIN_LOCKOUT_SECONDS, sign-in is refused, even with the right password,
# until the lock expires, and the form says until when. Every failure and lock is a
# WARNING on `vedomains.security` (the audit trail, in the JSON logs). Our ~60 lines rather
# than django-axes: that is a new dependency with its own tables, and it would need
# configuring for the ALB's X-Forwarded-For anyway.

security_log = logging.getLogger("vedomains.security")
_PREFIX = "vedomains:admin-login"


def client_address(request: HttpRequest) -> str:
    """The viewer's address: behind the ALB (DJANGO_BEHIND_TLS_PROXY), the last entry of
    X-Forwarded-For, the one the ALB appended; anything left of it is the viewer's own."""
    if settings.DJANGO_BEHIND_TLS_PROXY:
        forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
        last = forwarded.rsplit(",", 1)[-1].strip()
        if last:
            return last[:64]
    return str(request.META.get("REMOTE_ADDR", ""))[:64]


def _keys(username: str, address: str) -> list[tuple[str, int]]:
    account = hashlib.sha256(username.strip().lower().encode()).hexdigest()[:32]
    return [(f"{_PREFIX}:account:{account}", settings.VEDOMAINS_ADMIN_LOGIN_FAILURES_PER_ACCOUNT),
            (f"{_PREFIX}:address:{address}", settings.VEDOMAINS_ADMIN_LOGIN_FAILURES_PER_ADDRESS)]


def admin_login_locked_until(*, username: str, address: str) -> float | None:
    """When the lock on this account or address ends (epoch seconds), or None."""
    ends = [until for key, _ in _keys(username, address)
            if (until := cache.get(f"{key}:lock")) is not None]
    return max(ends) if ends else None


def admin_login_failed(*, username: str, address: str) -> float | None:
    """Count one failure for the account and the address; the lock's end if one starts."""
    window = settings.VEDOMAINS_ADMIN_LOGIN_LOCKOUT_SECONDS
    locked_until = None
    for key, limit in _keys(username, address):
        cache.add(key, 0, timeout=window)
        try:
            count = cache.incr(key)
        except ValueError:  # expired between add and incr
            cache.add(key, 1, timeout=window)
            count = 1
        if count >= limit:
            locked_until = time.time() + window
            cache.set(f"{key}:lock", locked_until, timeout=window)
            cache.delete(key)
    security_log.warning("admin sign-in failed for %s from %s%s", _loggable(username), address,
                         " (locked)" if locked_until else "")
    return locked_until


def _loggable(username: str) -> str:
    """The typed name if such an account exists, else a short hash of it: people paste
    passwords into the username box, and the log must not keep them."""
    model = get_user_model()
    if model._default_manager.filter(**{model.USERNAME_FIELD: username}).exists():
        return repr(username[:150])
    return "unknown name sha256:" + hashlib.sha256(username.encode()).hexdigest()[:12]


def admin_login_succeeded(*, username: str) -> None:
    # The account's count starts again; the address's keeps counting (spraying).
    cache.delete(_keys(username, "")[0][0])


class ThrottledAdminAuthenticationForm(AdminAuthenticationForm):
    def clean(self) -> dict[str, Any]:
        username = str(self.cleaned_data.get("username") or "")
        address = client_address(self.request) if self.request is not None else ""
        until = admin_login_locked_until(username=username, address=address)
        if until is not None:
            security_log.warning("admin sign-in refused for %s from %s: locked",
                                 _loggable(username), address)
            raise ValidationError(_lockout_message(until), code="locked")
        try:
            cleaned = super().clean()
        except ValidationError:
            until = admin_login_failed(username=username, address=address)
            if until is not None:
                raise ValidationError(_lockout_message(until), code="locked") from None
            raise
        admin_login_succeeded(username=username)
        return cleaned


def _lockout_message(until: float) -> str:
    at = datetime.fromtimestamp(until, UTC)
    minutes = max(1, round((until - time.time()) / 60))
    return (f"Too many failed sign-ins for this account or from your address. Try again "
            f"after {at:%H:%M:%S} UTC (in about {minutes} minute{'s' if minutes > 1 else ''}).")


admin.site.login_form = ThrottledAdminAuthenticationForm
