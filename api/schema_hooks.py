"""drf-spectacular hooks (SPECTACULAR_SETTINGS["PREPROCESSING_HOOKS"])."""

from __future__ import annotations

from typing import Any


def drop_alternate_spellings(endpoints: list[tuple[Any, ...]], **kwargs: Any
                             ) -> list[tuple[Any, ...]]:
    """Document each path once: the slash-less (or slashed) twin answers the same view."""
    return [e for e in endpoints if not getattr(e[3], "vedomains_alternate_spelling", False)]
