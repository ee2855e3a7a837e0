"""Account services: balance history, fees, statements and their reconciliation."""

from __future__ import annotations

from typing import Any

import pytest

from api.bootstrap import Platform
from projections.accounts import (
    AccountsProjection,
    get_account,
    latest_event_time,
    statement,
)
from projections.runner import ProjectionRunner
from tests.factories import account_opened, envelope, new_id, registered


class Bank:
    def __init__(self, platform: Platform) -> None:
        self.platform = platform
        self.runner = ProjectionRunner(
            platform.app, platform.db, [AccountsProjection()]
        )

    def post(self, *envelopes: dict[str, Any]) -> None:
        report = self.platform.ingestor.ingest(list(envelopes), atomic=True)
        assert all(o.status == "stored" for o in report.outcomes), report.outcomes
        self.runner.catch_up()

    def query(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        with self.platform.db.transaction() as cur:
            return fn(cur, *args, **kwargs)

    def account(self, name: str = "李娜") -> str:
        customer_id = new_id()
        opened = account_opened(customer_id)
        self.post(registered(customer_id, name=name), opened)
        return str(opened["data"]["account_id"])


@pytest.fixture
def bank(platform: Platform) -> Bank:
    return Bank(platform)


def balance(account_id: str, amount: str, as_of: str) -> dict[str, Any]:
    return envelope(
        "BalanceReported",
        {"account_id": account_id, "balance": amount, "as_of": as_of},
        occurred_at=f"{as_of}T23:59:59+08:00",
        source="core-banking:monthly",
    )


def fee(
    account_id: str, amount: str, at: str, kind: str = "账户管理费"
) -> dict[str, Any]:
    return envelope(
        "FeeCharged",
        {"account_id": account_id, "amount": amount, "kind": kind},
        occurred_at=at,
    )


def issued(
    account_id: str, period: str, closing: str, fees_total: str | None = None
) -> dict[str, Any]:
    data = {"account_id": account_id, "period": period, "closing_balance": closing}
    if fees_total is not None:
        data["fees_total"] = fees_total
    return envelope("StatementIssued", data, occurred_at=f"{period}-28T09:00:00+08:00")


def test_balance_history_and_latest_balance(bank: Bank) -> None:
    account = bank.account()
    bank.post(
        balance(account, "1000.00", "2025-01-31"),
        balance(account, "1500.50", "2025-03-31"),
        balance(account, "1200.00", "2025-02-28"),  # late report of an earlier month
    )
    found = bank.query(get_account, account)
    assert found["balance"] == "1500.50"
    assert found["balance_as_of"] == "2025-03-31"
    assert [h["as_of"] for h in found["balance_history"]] == [
        "2025-01-31",
        "2025-02-28",
        "2025-03-31",
    ]
    assert [h["balance"] for h in found["balance_history"]] == [
        "1000.00",
        "1200.00",
        "1500.50",
    ]
    assert found["product"] == "deposit"
    assert found["status"] == "open"
    assert bank.query(get_account, new_id()) is None
    assert bank.query(latest_event_time).isoformat() == "2025-03-31T15:59:59+00:00"


def test_a_statement_that_reconciles(bank: Bank) -> None:
    account = bank.account("王芳")
    bank.post(
        balance(account, "8000.00", "2025-01-31"),
        fee(account, "10.00", "2025-02-03T10:00:00+08:00"),
        fee(account, "2.50", "2025-02-28T23:30:00+08:00", kind="短信通知费"),
        fee(account, "99.00", "2025-03-01T00:10:00+08:00"),  # March, not February
        balance(account, "7987.50", "2025-02-28"),
        issued(account, "2025-02", "7987.50", fees_total="12.50"),
    )
    found = bank.query(statement, account, "2025-02")
    assert found["opening_balance"] == "8000.00"
    assert found["opening_source"] == "balance_report:2025-01-31"
    assert found["closing_balance"] == "7987.50"
    assert found["net_change"] == "-12.50"
    assert [f["amount"] for f in found["fees"]] == ["10.00", "2.50"]
    assert found["fees_total"] == "12.50"
    assert found["fees_agree"] is True
    reconciliation = found["reconciliation"]
    assert reconciliation["expected_closing"] == "7987.50"
    assert reconciliation["reconciled"] is True
    assert reconciliation["difference"] == "0.00"
    assert bank.query(statement, account, "2025-03") is None


def test_a_statement_that_does_not_reconcile(bank: Bank) -> None:
    account = bank.account("张伟")
    bank.post(
        issued(account, "2025-02", "5000.00"),
        balance(account, "5200.00", "2025-03-15"),
        balance(account, "5300.00", "2025-03-31"),
        fee(account, "15.00", "2025-03-10T12:00:00+08:00"),
        issued(account, "2025-03", "5250.00", fees_total="20.00"),
    )
    found = bank.query(statement, account, "2025-03")
    assert found["opening_balance"] == "5000.00"
    assert found["opening_source"] == "statement:2025-02"
    assert found["fees_total"] == "15.00"
    assert found["stated_fees_total"] == "20.00"
    assert found["fees_agree"] is False
    reconciliation = found["reconciliation"]
    assert reconciliation["expected_closing"] == "5300.00"
    assert reconciliation["expected_as_of"] == "2025-03-31"
    assert reconciliation["reconciled"] is False
    assert reconciliation["difference"] == "-50.00"
    february = bank.query(statement, account, "2025-02")
    assert february["opening_balance"] is None
    assert february["reconciliation"]["reconciled"] is None


def test_rebuild_gives_the_rows_of_live_processing(bank: Bank) -> None:
    account = bank.account("陈静")
    for month in range(1, 7):
        bank.post(
            balance(account, f"{month}000.00", f"2025-0{month}-28"),
            fee(account, "5.00", f"2025-0{month}-15T10:00:00+08:00"),
            issued(account, f"2025-0{month}", f"{month}000.00"),
        )
    bank.post(envelope("AccountClosed", {"account_id": account}))

    def snapshot() -> list[list[dict[str, Any]]]:
        tables = {
            "service_accounts": "account_id",
            "service_account_holders": "account_id, customer_id",
            "account_balance_reports": "account_id, position",
            "account_fees": "account_id, position",
            "account_statements": "account_id, period",
            "account_clock": "name",
        }
        return [
            bank.query(
                lambda cur, t=t, o=o: cur.execute(
                    f"SELECT * FROM {t} ORDER BY {o}"
                ).fetchall()
            )
            for t, o in tables.items()
        ]

    live = snapshot()
    assert live[0][0]["status"] == "closed"
    assert len(live[3]) == 6
    bank.runner.rebuild(["accounts"])
    assert snapshot() == live
