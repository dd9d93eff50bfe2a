"""Admin hardening: API tokens are never shown, webhook secrets only to staff
who may change the endpoint.

Imported at the end of `domains.admin`, after `rest_framework.authtoken` registered its own
TokenAdmin (INSTALLED_APPS order), which lists every token's key to anyone with view
permission on tokens: a view-only staff user could act as any API user.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
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
