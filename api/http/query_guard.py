"""Refuses query parameters holding NUL or other control characters, before routing.

A middleware rather than an app-wide FastAPI dependency: the dependency cost
every request its own round of dependency solving, and the raw query string
shows at a glance whether there is anything to look at. Decoding can yield a
control character only from a raw one or from `%00`-`%1F`/`%7F` (a UTF-8
sequence never decodes to one), so most requests are passed on after one search.
"""

from __future__ import annotations

import re
from urllib.parse import parse_qsl

from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from api.http.errors import error_response

_MAYBE_CONTROL = re.compile(
    rb"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]|%[01][0-9a-fA-F]|%7[fF]"
)
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
MESSAGE = "control characters are not allowed"


def parameter_with_control_character(query_string: bytes) -> str | None:
    """The name of the first parameter whose value holds a control character."""
    if not _MAYBE_CONTROL.search(query_string):
        return None
    # As Starlette's QueryParams decodes it, so the check sees what the route would.
    pairs = parse_qsl(query_string.decode("latin-1"), keep_blank_values=True)
    return next((name for name, value in pairs if _CONTROL.search(value)), None)


class QueryGuard:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            name = parameter_with_control_character(scope.get("query_string", b""))
            if name is not None:
                response = error_response(
                    Request(scope),
                    422,
                    "invalid_request",
                    f"query.{name}: {MESSAGE}",
                    [{"field": f"query.{name}", "message": MESSAGE}],
                )
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)
