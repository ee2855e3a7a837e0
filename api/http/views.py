"""What every read shares: waiting for a position, 404s, and what may leave."""

from __future__ import annotations

from typing import Any

from api.bootstrap import Platform
from api.http.errors import ApiError

RETRY_AFTER = "1"


def wait_for_position(platform: Platform, min_position: int | None) -> None:
    """Read-your-writes: waits (bounded) until the views reflect `min_position`."""
    if min_position is None or min_position <= 0:
        return
    timeout = platform.settings.read_wait_seconds
    if not platform.runner.wait_for(min_position, timeout):
        raise ApiError(
            503,
            "not_caught_up",
            f"the views have not reached position {min_position} yet",
            [{"field": "query.min_position", "message": "not reached yet"}],
            headers={"Retry-After": RETRY_AFTER},
        )


def not_found(kind: str, id_: str) -> ApiError:
    return ApiError(404, "not_found", f"no {kind} {id_}")


def _private(key: str) -> bool:
    return "hash" in key or key == "national_id"


def public(row: dict[str, Any]) -> dict[str, Any]:
    """Drops what must never leave: national-ID hashes and full national IDs."""
    return {key: value for key, value in row.items() if not _private(key)}


def public_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """`public` of each row of one statement: rows sharing their columns, the
    columns are looked at once (a page of contact history has fifty rows)."""
    if rows and any(_private(key) for key in rows[0]):
        return [public(row) for row in rows]
    return rows


def id_of(value: Any, key: str) -> str | None:
    """A view helper may return an id, or a row holding it."""
    if isinstance(value, dict):
        value = value.get(key)
    return None if value is None else str(value)


def page_of(result: Any) -> tuple[list[dict[str, Any]], str | None]:
    if isinstance(result, tuple):
        rows, cursor = result
        return list(rows), None if cursor is None else str(cursor)
    return list(result), None
