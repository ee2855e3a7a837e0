"""JSON responses rendered with orjson (decimals as strings, as the catalogue posts them)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import orjson
from starlette.responses import JSONResponse as StarletteJSONResponse


def _default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, bytes | memoryview):
        raise TypeError("binary values are never published")
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def dumps(content: Any) -> bytes:
    return orjson.dumps(content, default=_default, option=orjson.OPT_NON_STR_KEYS)


class JSONResponse(StarletteJSONResponse):
    def render(self, content: Any) -> bytes:
        return dumps(content)
