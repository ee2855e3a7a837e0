"""The monthly balance file: CSV rows (account_id, balance, as_of) -> BalanceReported.

Each row's event id is derived from the account and the date, so feeding the same
file (or an overlapping one) again stores nothing twice: the ingest path reports
the repeats as duplicates. A row's time is the end of its day in China Standard
Time, when the balance was struck.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import date
from decimal import Decimal, InvalidOperation
from functools import partial
from typing import Any, TextIO
from uuid import UUID

from pydantic import TypeAdapter, ValidationError

from api.store.prepare import Prepared, Unreadable, prepared_from_fields
from domain.catalogue import ShortText
from domain.name_ids import CANONICAL_UUID, uuid5_text

NAMESPACE = UUID("6f0c2a4e-8d1b-5c3a-9e7f-2b4d6a8c0e1f")
"""Fixed forever: changing it would make every balance file import twice."""

COLUMNS = ("account_id", "balance", "as_of")


class BalanceFileError(ValueError):
    """A row that cannot become an event; names the row (1 = first data row)."""

    def __init__(self, row_number: int, message: str) -> None:
        super().__init__(f"row {row_number}: {message}")
        self.row_number = row_number
        self.problem = message


_NAMESPACE_BYTES = NAMESPACE.bytes


def balance_event_id(account_id: str, as_of: str) -> str:
    """`str(uuid5(NAMESPACE, ...))` of the account and the date."""
    return uuid5_text(_NAMESPACE_BYTES, f"balance/{account_id}/{as_of}")


def canonical_uuid(text: str) -> str:
    """`str(UUID(text))`: the files' ids are nearly always in that form already,
    and checking the form costs a seventh of parsing and formatting it again."""
    return text if CANONICAL_UUID.fullmatch(text) else str(UUID(text))


def _field(row: dict[str, Any], name: str, number: int) -> str:
    value = row.get(name)
    if value is None or not str(value).strip():
        raise BalanceFileError(number, f"{name} is missing")
    return str(value).strip()


CENT = Decimal("0.01")


def _checked_row(row: dict[str, Any], number: int) -> tuple[str, Decimal, str]:
    """The row's account id and date in their canonical forms, and its balance."""
    try:
        account_id = canonical_uuid(_field(row, "account_id", number))
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
    if not balance.is_finite():
        raise BalanceFileError(number, "balance must have at most 2 decimals")
    try:
        cents = balance.quantize(CENT)
    except InvalidOperation:  # more digits than decimal arithmetic holds
        raise BalanceFileError(number, "balance is too large") from None
    if balance != cents:
        raise BalanceFileError(number, "balance must have at most 2 decimals")
    return account_id, cents, as_of


def _envelope(
    account_id: str, balance: Decimal, as_of: str, source: str
) -> dict[str, Any]:
    return {
        "event_id": balance_event_id(account_id, as_of),
        "type": "BalanceReported",
        "occurred_at": f"{as_of}T23:59:59+08:00",
        "source": source,
        "data": {"account_id": account_id, "balance": str(balance), "as_of": as_of},
    }


def _row_to_envelope(row: dict[str, Any], number: int, source: str) -> dict[str, Any]:
    return _envelope(*_checked_row(row, number), source)


def balance_rows_to_envelopes(
    rows: Iterable[dict[str, Any]], source: str
) -> Iterator[dict[str, Any]]:
    """One BalanceReported envelope per row; raises BalanceFileError on a bad row."""
    for number, row in enumerate(rows, start=1):
        yield _row_to_envelope(row, number, source)


def balance_row_parser(header: list[str], source: str) -> Callable[[list[str]], Any]:
    """Turns one row (as `csv.reader` gives it, under `header`) into its event,
    or raises Unreadable naming the problem. Picklable: `crm ingest` sends the
    rows to its validation worker, which parses them.

    An ordinary row becomes its `Prepared` form directly. The envelope made of
    it holds only canonical values (a UUID's string, an ISO date, a balance with
    two decimals), which the catalogue would take as they are: validating them
    again through it was more than half of a row's validation. A balance near
    the catalogue's 20 digits, or a source it might refuse, goes through the
    catalogue, which names the problem. A test holds the two paths equal."""
    return partial(_parse_row, tuple(header), source, _plain(source))


LEAN_LIMIT = Decimal("1e15")
"""Balances below this in size are far inside the catalogue's 20 digits."""


def _plain(source: str) -> bool:
    """A source the catalogue takes as it is (valid, nothing to strip)."""
    try:
        return checked_source(source) == source
    except ValueError:
        return False


def _parse_row(
    header: tuple[str, ...], source: str, lean: bool, row: list[str]
) -> dict[str, Any] | Prepared:
    try:
        account_id, balance, as_of = _checked_row(
            dict(zip(header, row, strict=False)), 0
        )
    except BalanceFileError as error:
        raise Unreadable(error.problem) from None
    envelope = _envelope(account_id, balance, as_of, source)
    if not lean or abs(balance) >= LEAN_LIMIT:
        return envelope  # validated by the catalogue where it is prepared
    fields = {
        "event_id": envelope["event_id"],
        "occurred_at": envelope["occurred_at"],
        "source": source,
        "actor": None,
        "data": envelope["data"],
    }
    return prepared_from_fields(
        "BalanceReported", envelope["event_id"], envelope["data"], fields
    )


def missing_columns(header: Sequence[str]) -> list[str]:
    """The balance file's columns that `header` lacks."""
    return [name for name in COLUMNS if name not in header]


_SOURCE = TypeAdapter(ShortText)


def checked_source(source: str) -> str:
    """The file's source as the catalogue stores it (stripped), or ValueError
    naming the problem: every row carries it, so it is checked once."""
    try:
        return str(_SOURCE.validate_python(source.strip()))
    except ValidationError as error:
        raise ValueError(error.errors()[0]["msg"]) from None


def read_balance_file(stream: TextIO, source: str) -> Iterator[dict[str, Any]]:
    """Envelopes from an open CSV file with a header naming the three columns."""
    reader = csv.DictReader(stream)
    missing = missing_columns(reader.fieldnames or [])
    if missing:
        raise BalanceFileError(0, f"header lacks {', '.join(missing)}")
    yield from balance_rows_to_envelopes(reader, source)
