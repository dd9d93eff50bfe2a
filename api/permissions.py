"""Who may see and change which workspace's domains.

Reads: members of the workspace (any role) and staff with the view (or change) permission
on custom domains. Writes: owners and admins (`services.workspace_check_write_access`), and staff
holding Django's add (register), change (verify) or delete permission. A domain the caller
cannot see answers 404, so its existence never leaks; a workspace the caller is not a member
of answers 403 `not_member` whether or not it exists, for the same reason.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import AnonymousUser, User
from rest_framework.permissions import BasePermission
from rest_framework.request import Request

from domains import selectors
from domains.errors import NotFound, PermissionDeniedError
from domains.hostnames import HostnameError, normalize_hostname
from domains.models import CustomDomain, DomainStatus, Workspace
from workflow import services


class CanWriteDomain(BasePermission):
    """Object permission for register/verify/delete: owner, admin or staff.

    Raises the project error itself so the answer says which rule failed
    (`not_member` or `role_read_only`), not just "permission denied".
    """

    def has_object_permission(self, request: Request, view: Any, obj: Any) -> bool:
        workspace = obj if isinstance(obj, Workspace) else obj.workspace
        services.workspace_check_write_access(
            user=request.user, workspace=workspace, action=staff_action(request, view)
        )
        return True


def staff_action(request: Request, view: Any) -> str:
    """The Django permission (add/change/delete on CustomDomain) staff need for this write."""
    if request.method == "DELETE":
        return "delete"
    return str(getattr(view, "staff_action", "change"))


def visible_workspace(
    *, user: User | AnonymousUser, slug: str, field: str = "workspace"
) -> Workspace:
    workspace = selectors.workspaces_visible_to(user).filter(slug=slug).first()
    if workspace is None:
        raise PermissionDeniedError(
            f"You are not a member of a workspace '{slug}'.", code="not_member", field=field
        )
    return workspace


def visible_domain(*, user: User | AnonymousUser, hostname: str) -> CustomDomain:
    """The caller's live record for `hostname` (normalized first), or 404."""
    try:
        host = normalize_hostname(hostname)
    except HostnameError:
        # Not a hostname at all, so certainly not a domain we hold: the same 404.
        raise NotFound(f"No custom domain '{hostname[:100]}' in your workspaces.") from None
    domain = (
        selectors.domains_visible_to(user)
        .exclude(status=DomainStatus.REMOVED)
        .filter(hostname=host)
        .first()
    )
    if domain is None:
        raise NotFound(f"No custom domain '{host}' in your workspaces.")
    return domain
