"""The monthly balance file: CSV rows (account_id, balance, as_of) -> BalanceReported.

Each row's event id is derived from the account and the date, so feeding the same
file (or an overlapping one) again stores nothing twice: the ingest path reports
the repeats as duplicates. A row's time is the end of its day in China Standard
Time, when the balance was struck.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterable, Iterator
from datetime import date
from decimal import Decimal, InvalidOperation
from functools import partial
from typing import Any, TextIO
from uuid import UUID, uuid5

from api.store.prepare import Unreadable

NAMESPACE = UUID("6f0c2a4e-8d1b-5c3a-9e7f-2b4d6a8c0e1f")
"""Fixed forever: changing it would make every balance file import twice."""

COLUMNS = ("account_id", "balance", "as_of")


class BalanceFileError(ValueError):
    """A row that cannot become an event; names the row (1 = first data row)."""

    def __init__(self, row_number: int, message: str) -> None:
        super().__init__(f"row {row_number}: {message}")
        self.row_number = row_number
        self.problem = message


def balance_event_id(account_id: str, as_of: str) -> str:
    return str(uuid5(NAMESPACE, f"balance/{account_id}/{as_of}"))


def _field(row: dict[str, Any], name: str, number: int) -> str:
    value = row.get(name)
    if value is None or not str(value).strip():
        raise BalanceFileError(number, f"{name} is missing")
    return str(value).strip()


def _row_to_envelope(row: dict[str, Any], number: int, source: str) -> dict[str, Any]:
    try:
        account_id = str(UUID(_field(row, "account_id", number)))
    except ValueError as error:
        if isinstance(error, BalanceFileError):
            raise
        raise BalanceFileError(number, "account_id is not a UUID") from None
    try:
        as_of = date.fromisoformat(_field(row, "as_of", number)).isoformat()
    except ValueError as error:
        if isinstance(error, BalanceFileError):
            raise
        raise BalanceFileError(number, "as_of is not a date (YYYY-MM-DD)") from None
    try:
        balance = Decimal(_field(row, "balance", number))
    except InvalidOperation:
        raise BalanceFileError(number, "balance is not a decimal number") from None
    if not balance.is_finite() or balance != balance.quantize(Decimal("0.01")):
        raise BalanceFileError(number, "balance must have at most 2 decimals")
    return {
        "event_id": balance_event_id(account_id, as_of),
        "type": "BalanceReported",
        "occurred_at": f"{as_of}T23:59:59+08:00",
        "source": source,
        "data": {
            "account_id": account_id,
            "balance": str(balance.quantize(Decimal("0.01"))),
            "as_of": as_of,
        },
    }


def balance_rows_to_envelopes(
    rows: Iterable[dict[str, Any]], source: str
) -> Iterator[dict[str, Any]]:
    """One BalanceReported envelope per row; raises BalanceFileError on a bad row."""
    for number, row in enumerate(rows, start=1):
        yield _row_to_envelope(row, number, source)


def balance_row_parser(header: list[str], source: str) -> Callable[[list[str]], Any]:
    """Turns one row (as `csv.reader` gives it, under `header`) into its envelope,
    or raises Unreadable naming the problem. Picklable: `crm ingest` sends the
    rows to its validation worker, which parses them."""
    return partial(_parse_row, tuple(header), source)


def _parse_row(header: tuple[str, ...], source: str, row: list[str]) -> dict[str, Any]:
    try:
        return _row_to_envelope(dict(zip(header, row, strict=False)), 0, source)
    except BalanceFileError as error:
        raise Unreadable(error.problem) from None


def read_balance_file(stream: TextIO, source: str) -> Iterator[dict[str, Any]]:
    """Envelopes from an open CSV file with a header naming the three columns."""
    reader = csv.DictReader(stream)
    missing = [c for c in COLUMNS if c not in (reader.fieldnames or [])]
    if missing:
        raise BalanceFileError(0, f"header lacks {', '.join(missing)}")
    yield from balance_rows_to_envelopes(reader, source)
