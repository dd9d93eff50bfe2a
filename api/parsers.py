"""Request parsers that turn every malformed body into a 400, never a 500."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rest_framework import parsers
from rest_framework.exceptions import ParseError


class JSONParser(parsers.JSONParser):
    def parse(self, stream: Any, media_type: str | None = None,
              parser_context: Mapping[str, Any] | None = None) -> Any:
        try:
            return super().parse(stream, media_type, parser_context)
        except RecursionError:
            # json.loads recurses per nesting level; DRF catches only ValueError, so a body
            # like "[[[[...]]]]" would otherwise escape as a 500.
            raise ParseError("JSON parse error - the body is nested too deeply.") from None


# No multipart: the API takes no files, and a multipart parser is one more way to make the
# server buffer and parse a large body.
PARSER_CLASSES = [JSONParser, parsers.FormParser]
