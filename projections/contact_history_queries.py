"""Reading contact history: newest first, keyset pages, filters on channel/type/time.

The cursor is an opaque string naming the position of the last row returned;
`since` is inclusive and `until` exclusive, both compared in UTC on occurred_at.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Sequence
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from api.store.database import Cursor
from projections import contact_history_read_sql as read_sql
from projections import contact_history_sql as sql

MAX_LIMIT = 500
_CURSOR_PREFIX = "ch1:"


class InvalidCursor(ValueError):
    """A cursor this module did not make (or one from another version)."""


def utc_text(value: str | datetime) -> str:
    """An aware time as fixed-width UTC ISO text, so it sorts as text on both backends."""
    if isinstance(value, str):
        return _utc_text_of(value)
    return _fixed_width_utc(value, value)


@lru_cache(maxsize=16384)  # statements and balances of one run share their times
def _utc_text_of(text: str) -> str:
    return _fixed_width_utc(datetime.fromisoformat(text), text)


def _fixed_width_utc(moment: datetime, value: str | datetime) -> str:
    if moment.tzinfo is None:
        raise ValueError(f"time {value!s} has no UTC offset")
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


def encode_cursor(position: int) -> str:
    raw = f"{_CURSOR_PREFIX}{position}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> int:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        text = base64.urlsafe_b64decode(padded.encode()).decode()
    except (binascii.Error, UnicodeError, ValueError):
        raise InvalidCursor("malformed cursor") from None
    number = text.removeprefix(_CURSOR_PREFIX)
    valid = number.isascii() and number.isdigit() and len(number) <= 18
    if not text.startswith(_CURSOR_PREFIX) or not valid:
        raise InvalidCursor("malformed cursor")
    return int(number)


def _several(value: str | Sequence[str] | None) -> list[str]:
    if value is None:
        return []
    return [value] if isinstance(value, str) else list(value)


def _filters(
    *,
    cursor: str | None,
    channel: str | Sequence[str] | None,
    types: str | Sequence[str] | None,
    since: str | datetime | None,
    until: str | datetime | None,
) -> tuple[str, list[Any]]:
    clauses: list[str] = ["1 = 1"]
    params: list[Any] = []
    if cursor is not None:
        clauses.append("h.position < %s")
        params.append(decode_cursor(cursor))
    for column, values in (
        ("h.channel", _several(channel)),
        ("h.type", _several(types)),
    ):
        if values:
            clauses.append(f"{column} IN ({','.join(['%s'] * len(values))})")
            params.extend(values)
    if since is not None:
        clauses.append("h.occurred_at_utc >= %s")
        params.append(utc_text(since))
    if until is not None:
        clauses.append("h.occurred_at_utc < %s")
        params.append(utc_text(until))
    return " AND ".join(clauses), params


def _check_limit(limit: int) -> None:
    if not 1 <= limit <= MAX_LIMIT:
        raise ValueError(f"limit must be between 1 and {MAX_LIMIT}")


def _page(
    rows: list[dict[str, Any]], limit: int
) -> tuple[list[dict[str, Any]], str | None]:
    for row in rows:
        row["position"] = int(row["position"])
    if len(rows) <= limit:
        return rows, None
    rows = rows[:limit]
    return rows, encode_cursor(rows[-1]["position"])


def customer_history_statement(
    customer_id: str, sqlite: bool, limit: int, filters: dict[str, Any]
) -> tuple[str, tuple[Any, ...]]:
    """The one statement of a customer's page: up to `limit` + 1 rows, each saying
    whether the customer is in the customers view (`customer_history_rows`)."""
    _check_limit(limit)
    where, params = _filters(**filters)
    query = read_sql.CUSTOMER_HISTORY[sqlite].format(filters=where)
    inner_limit = [] if sqlite else [limit + 1]
    return query, (customer_id, *params, *inner_limit, limit + 1, customer_id)


def customer_history_rows(
    rows: list[dict[str, Any]],
) -> tuple[bool, list[dict[str, Any]]]:
    """(whether the customer is known, the page's rows) from the statement's answer,
    however it was run (a `Cursor`, or `AsyncReads` on an event loop)."""
    known = bool(rows[0]["customer_known"])
    for row in rows:
        del row["customer_known"]
    return known, [row for row in rows if row["position"] is not None]


def customer_history_page(
    rows: list[dict[str, Any]], limit: int
) -> tuple[list[dict[str, Any]], str | None] | None:
    """`known_customer_history` from the statement's answer."""
    known, page = customer_history_rows(rows)
    return _page(page, limit) if known else None


def _customer_rows(
    cur: Cursor, customer_id: str, limit: int, filters: dict[str, Any]
) -> tuple[bool, list[dict[str, Any]]]:
    """(whether the customer is in the customers view, up to `limit` + 1 rows)."""
    query, params = customer_history_statement(customer_id, cur.sqlite, limit, filters)
    return customer_history_rows(cur.execute(query, params).fetchall())


def customer_history(
    cur: Cursor, customer_id: str, **options: Any
) -> tuple[list[dict[str, Any]], str | None]:
    """The customer's touchpoints, plus those of every record merged into it.

    `options`: cursor, limit (50), channel, types, since, until."""
    return _customer_page(cur, customer_id, **options)[1]


def known_customer_history(
    cur: Cursor, customer_id: str, **options: Any
) -> tuple[list[dict[str, Any]], str | None] | None:
    """`customer_history`, or None when the customer is not in the customers view
    (one statement for both)."""
    known, page = _customer_page(cur, customer_id, **options)
    return page if known else None


def _customer_page(
    cur: Cursor,
    customer_id: str,
    *,
    cursor: str | None = None,
    limit: int = 50,
    channel: str | Sequence[str] | None = None,
    types: str | Sequence[str] | None = None,
    since: str | datetime | None = None,
    until: str | datetime | None = None,
) -> tuple[bool, tuple[list[dict[str, Any]], str | None]]:
    filters = {
        "cursor": cursor,
        "channel": channel,
        "types": types,
        "since": since,
        "until": until,
    }
    known, rows = _customer_rows(cur, customer_id, limit, filters)
    return known, _page(rows, limit)


def household_history(
    cur: Cursor,
    household_id: str,
    *,
    cursor: str | None = None,
    limit: int = 50,
    channel: str | Sequence[str] | None = None,
    types: str | Sequence[str] | None = None,
    since: str | datetime | None = None,
    until: str | datetime | None = None,
) -> tuple[list[dict[str, Any]], str | None]:
    """Members' touchpoints while they were members (table `household_memberships`)."""
    _check_limit(limit)
    where, params = _filters(
        cursor=cursor, channel=channel, types=types, since=since, until=until
    )
    query = sql.HOUSEHOLD_HISTORY.format(filters=where, columns=sql.COLUMNS)
    rows = cur.execute(query, (household_id, *params, limit + 1)).fetchall()
    return _page(rows, limit)
