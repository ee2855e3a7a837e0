"""The monthly balance file: one BalanceReported per row, idempotent per account and date."""

from __future__ import annotations

import io
from datetime import date
from decimal import Decimal
from typing import Any
from uuid import UUID

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from api.balance_file import (
    COLUMNS,
    LEAN_LIMIT,
    BalanceFileError,
    balance_event_id,
    balance_row_parser,
    balance_rows_to_envelopes,
    read_balance_file,
)
from api.bootstrap import Platform
from api.store.prepare import Invalid, Prepared, prepare, prepare_items
from tests.factories import account_opened, new_id, registered

SOURCE = "core-banking:monthly-balance"


def accounts(platform: Platform, count: int) -> list[str]:
    events, ids = [], []
    for i in range(count):
        customer_id = new_id()
        opened = account_opened(customer_id)
        ids.append(str(opened["data"]["account_id"]))
        events += [registered(customer_id, name=f"刘{'伟芳娜敏静'[i % 5]}"), opened]
    report = platform.ingestor.ingest(events, atomic=True)
    assert all(o.status == "stored" for o in report.outcomes)
    return ids


def csv_text(rows: list[tuple[str, str, str]]) -> str:
    lines = ["account_id,balance,as_of", *(",".join(row) for row in rows)]
    return "\n".join(lines) + "\n"


def test_rows_become_balance_reported_envelopes() -> None:
    account = new_id()
    [event] = balance_rows_to_envelopes(
        [{"account_id": account.upper(), "balance": " 1234.5 ", "as_of": "2025-03-31"}],
        SOURCE,
    )
    assert event["type"] == "BalanceReported"
    assert event["event_id"] == balance_event_id(account, "2025-03-31")
    assert event["occurred_at"] == "2025-03-31T23:59:59+08:00"
    assert event["source"] == SOURCE
    assert event["data"] == {
        "account_id": account,
        "balance": "1234.50",
        "as_of": "2025-03-31",
    }
    assert balance_event_id(account, "2025-03-31") != balance_event_id(
        account, "2025-04-30"
    )


def test_balance_event_ids_are_fixed_forever() -> None:
    """Stored ids: a file fed again must find them, in any later release."""
    assert (
        balance_event_id("5b1c2a3e-9f8d-4c7b-a6e5-d4c3b2a1f0e9", "2025-03-31")
        == "09f53ef0-42a3-5556-8437-1e908f60a3f7"
    )
    assert (
        balance_event_id("00000000-0000-4000-8000-000000000000", "2024-02-29")
        == "7ee69c04-4d47-58ce-838c-0362da51c39e"
    )


@pytest.mark.parametrize(
    ("row", "problem"),
    [
        ({"account_id": "不是编号", "balance": "1.00", "as_of": "2025-03-31"}, "UUID"),
        ({"account_id": new_id(), "balance": "abc", "as_of": "2025-03-31"}, "decimal"),
        (
            {"account_id": new_id(), "balance": "1.005", "as_of": "2025-03-31"},
            "2 decimals",
        ),
        ({"account_id": new_id(), "balance": "1.00", "as_of": "31/03/2025"}, "date"),
        ({"account_id": new_id(), "balance": "", "as_of": "2025-03-31"}, "missing"),
        ({"account_id": new_id(), "balance": "1e40", "as_of": "2025-03-31"}, "large"),
        ({"account_id": new_id(), "balance": "NaN", "as_of": "2025-03-31"}, "decimals"),
    ],
)
def test_bad_rows_are_named(row: dict[str, str], problem: str) -> None:
    good = {"account_id": new_id(), "balance": "1.00", "as_of": "2025-03-31"}
    with pytest.raises(BalanceFileError, match=problem) as raised:
        list(balance_rows_to_envelopes([good, row], SOURCE))
    assert raised.value.row_number == 2


def test_a_header_without_the_columns_is_refused() -> None:
    with pytest.raises(BalanceFileError, match="as_of"):
        list(read_balance_file(io.StringIO("account_id,balance\n"), SOURCE))


def test_the_same_file_twice_stores_nothing_the_second_time(platform: Platform) -> None:
    ids = accounts(platform, 4)
    text = csv_text(
        [(a, f"{1000 * (n + 1)}.00", "2025-03-31") for n, a in enumerate(ids)]
        + [(ids[0], "900.00", "2025-02-28")]
    )

    def run() -> list[Any]:
        events = list(read_balance_file(io.StringIO(text), SOURCE))
        return platform.ingestor.ingest(events, atomic=False).outcomes

    first = run()
    assert [o.status for o in first] == ["stored"] * 5
    second = run()
    assert [o.status for o in second] == ["duplicate"] * 5
    assert [o.event_id for o in second] == [o.event_id for o in first]


KEY = b"k" * 32


def _balance_text(value: Decimal, form: int) -> str:
    text = [str(value), f"{value:f}", f"{value:E}", f" {value} "][form]
    return text


@settings(max_examples=300, deadline=None)
@given(
    account=st.uuids(),
    value=st.decimals(min_value=-(10**22), max_value=10**22, places=2, allow_nan=False),
    form=st.integers(0, 3),
    day=st.dates(),
    upper=st.booleans(),
    source=st.one_of(st.just(SOURCE), st.text(max_size=210)),
)
@example(
    account=UUID(int=1),
    value=Decimal("-0.00"),
    form=0,
    day=date(1, 1, 1),
    upper=False,
    source=SOURCE,
)
def test_a_row_is_prepared_as_the_catalogue_prepares_its_envelope(
    account: Any,
    value: Decimal,
    form: int,
    day: date,
    upper: bool,
    source: str,
) -> None:
    """The parser's shortcut past the catalogue makes exactly what the catalogue
    makes of the row's envelope: the same stored fields, hash and bytes, or
    (for a row it leaves to the catalogue) the same refusal."""
    account_text = str(account).upper() if upper else str(account)
    row = [account_text, _balance_text(value, form), day.isoformat()]
    parse = balance_row_parser(list(COLUMNS), source)
    [got] = prepare_items([row], KEY, parse)
    envelope = balance_rows_to_envelopes([dict(zip(COLUMNS, row, strict=True))], source)
    expected = prepare(next(envelope), KEY)
    assert got == expected
    shortcut = isinstance(parse(row), Prepared)
    if abs(value) >= LEAN_LIMIT:
        assert not shortcut
    elif source == SOURCE:
        assert shortcut
    if abs(value) >= Decimal(10) ** 18:  # more than the catalogue's 20 digits
        assert isinstance(got, Invalid)
        assert "data.balance" in [field for field, _ in got.problems]
