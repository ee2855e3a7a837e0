"""The monthly balance file: one BalanceReported per row, idempotent per account and date."""

from __future__ import annotations

import io
from typing import Any

import pytest

from api.balance_file import (
    BalanceFileError,
    balance_event_id,
    balance_rows_to_envelopes,
    read_balance_file,
)
from api.bootstrap import Platform
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
