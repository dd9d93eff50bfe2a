"""Rate limits for registering and verifying domains, per user and per workspace.

The per-user verify limit runs as an ordinary DRF throttle (before the view). The per-user
register limit runs inside the view once the input is valid, so bad input answers 400 and
is not counted (a developer trying bad input must not be locked out for an hour). The
per-workspace limits run inside the view, only after the caller is known to have write
access: counting earlier would let an outsider spend another workspace's budget by sending
requests naming it.
"""

from __future__ import annotations

from typing import Any

from rest_framework import exceptions
from rest_framework.request import Request
from rest_framework.settings import api_settings
from rest_framework.throttling import SimpleRateThrottle

from domains.models import Workspace

REGISTER_WORKSPACE_SCOPE = "domain_register_workspace"
VERIFY_WORKSPACE_SCOPE = "domain_verify_workspace"


class _SettingsRateThrottle(SimpleRateThrottle):
    """Reads its rate from the current settings on every request.

    DRF binds `THROTTLE_RATES` once at import, so rates overridden later (tests, or a
    settings reload) would be ignored.
    """

    def get_rate(self) -> str | None:
        # The stubs type these rates as numbers; DRF's are strings such as "100/min".
        rates: dict[str, str | None] = (
            api_settings.DEFAULT_THROTTLE_RATES or {}  # type: ignore[assignment]
        )
        return rates.get(self.scope) if self.scope is not None else None


class _UserThrottle(_SettingsRateThrottle):
    def get_cache_key(self, request: Request, view: Any) -> str | None:
        user = request.user
        if not getattr(user, "is_authenticated", False):
            return None  # the permission check has answered 401 already
        return self.cache_format % {"scope": self.scope, "ident": user.pk}


class RegisterUserThrottle(_UserThrottle):
    scope = "domain_register_user"


class VerifyUserThrottle(_UserThrottle):
    scope = "domain_verify_user"


class WorkspaceThrottle(_SettingsRateThrottle):
    def __init__(self, *, scope: str, workspace: Workspace) -> None:
        self.scope = scope
        self.workspace = workspace
        super().__init__()

    def get_cache_key(self, request: Request, view: Any) -> str | None:
        return self.cache_format % {"scope": self.scope, "ident": self.workspace.pk}


def workspace_throttle_allows(
    request: Request, view: Any, *, scope: str, workspace: Workspace
) -> float | None:
    """None when allowed (and counted), else the seconds to wait."""
    throttle = WorkspaceThrottle(scope=scope, workspace=workspace)
    if throttle.rate is None or throttle.allow_request(request, view):
        return None
    return throttle.wait() or 1.0


def throttle_workspace(request: Request, view: Any, *, scope: str, workspace: Workspace) -> None:
    wait = workspace_throttle_allows(request, view, scope=scope, workspace=workspace)
    if wait is not None:
        raise exceptions.Throttled(
            wait=wait, detail="Too many requests for this workspace; try again later."
        )


def user_throttle_allows(request: Request, view: Any, throttle_class: type[_UserThrottle]) -> bool:
    throttle = throttle_class()
    return throttle.rate is None or throttle.allow_request(request, view)


def throttle_user(request: Request, view: Any, throttle_class: type[_UserThrottle]) -> None:
    throttle = throttle_class()
    if throttle.rate is None or throttle.allow_request(request, view):
        return
    raise exceptions.Throttled(wait=throttle.wait() or 1.0)
