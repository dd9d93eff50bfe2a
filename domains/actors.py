"""Who acts on a record: a user, an anonymous caller or the system."""

from __future__ import annotations

from typing import TypeAlias

from django.contrib.auth.models import AnonymousUser, User

# Who asked for a change: a user, the anonymous user of a request (recorded as nobody), or
# None for the system. Services take any of them; the event row keeps only a real user.
Actor: TypeAlias = User | AnonymousUser | None
