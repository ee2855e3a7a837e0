"""Value conversions shared by the service views (orders, complaints, accounts)."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from decimal import Decimal
from functools import lru_cache
from typing import Any

import orjson


def utc_text(moment: str | datetime) -> str:
    """An RFC 3339 time as UTC ISO text, so stored times sort the same on both backends."""
    if isinstance(moment, str):
        return _utc_text_of(moment)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat()


@lru_cache(maxsize=16384)
def _utc_text_of(text: str) -> str:
    # Cached: facts posted together (a statement run, a balance file, a plan's
    # decisions) share their times, and parsing one was 3 % of a rebuild.
    return utc_text(datetime.fromisoformat(text))


_PLAIN_MONEY = re.compile(r"(-?[0-9]+)(?:\.([0-9]{1,2}))?")


def cents(amount: str) -> int:
    """'1234.50' -> 123450 (the log stores money as decimal strings)."""
    plain = _PLAIN_MONEY.fullmatch(amount)
    if plain is not None:  # the usual form, read without a Decimal
        whole, fraction = plain.groups()
        return int(whole + (fraction or "").ljust(2, "0"))
    return int(Decimal(amount).scaleb(2).to_integral_value())


def money_text(amount_cents: int | None) -> str | None:
    """123450 -> '1234.50': the API publishes money as decimal strings."""
    if amount_cents is None:
        return None
    return str(Decimal(int(amount_cents)).scaleb(-2).quantize(Decimal("0.01")))


def dumps(value: Any) -> str:
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()


def loads(text: str | None) -> Any:
    return None if text is None else orjson.loads(text)


def hours_between(earlier: str, later: datetime) -> float:
    return (later - datetime.fromisoformat(earlier)).total_seconds() / 3600
