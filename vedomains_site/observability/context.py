"""What a log line is about: request id, task id, domain id, hostname.

Context variables, not thread locals: each gunicorn thread, each Celery task and each
asyncio task sees only its own values, and a value set for one request can never leak into
the next one handled by the same thread, because every setter resets what it set.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from contextvars import ContextVar, Token
from typing import Any, Final

FIELDS: Final = ("request_id", "task_id", "task", "domain_id", "hostname")

_vars: Final[dict[str, ContextVar[Any]]] = {
    name: ContextVar(f"vedomains_{name}", default=None) for name in FIELDS
}


def current() -> dict[str, Any]:
    return {name: var.get() for name, var in _vars.items()}


def set_values(**values: Any) -> list[Token[Any]]:
    unknown = set(values) - set(FIELDS)
    if unknown:
        raise ValueError(f"unknown log context fields: {sorted(unknown)}")
    return [_vars[name].set(value) for name, value in values.items()]


def reset(tokens: list[Token[Any]]) -> None:
    for token in reversed(tokens):
        token.var.reset(token)


@contextlib.contextmanager
def bind(**values: Any) -> Iterator[None]:
    """`with bind(domain_id=d.pk, hostname=d.hostname): ...` tags every line logged inside."""
    tokens = set_values(**values)
    try:
        yield
    finally:
        reset(tokens)
