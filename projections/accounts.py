"""Account services for customers: balance history, fees, statements, reconciliation.

Periods are calendar months in China Standard Time (+08:00): a fee belongs to
period 2025-03 when it occurred in [2025-03-01T00:00+08:00, 2025-04-01T00:00+08:00);
a balance report belongs to it when its `as_of` date falls in March.

Reconciliation rule (balance reports carry no movements, so the platform checks
what it can): the expected closing balance is the last BalanceReported whose
`as_of` is within the period; the statement reconciles when its closing balance
equals it, and `difference` = statement closing - expected. Without a report in
the period there is nothing to check against (`reconciled` is null). Separately,
when the statement carries `fees_total`, `fees_agree` compares it with the sum
of the FeeCharged events of the period.

The view also keeps the latest event time seen in the log (`account_clock`):
household value measures "the last 12 months" from it, not from the wall clock,
so a rebuild gives the same figures.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

from api.store.database import Cursor
from projections import accounts_sql as sql
from projections.base import ReadsAhead
from projections.batch import Writes
from projections.records import EventRecord
from projections.service_values import cents, dumps, loads, money_text, utc_text

CHINA = timezone(timedelta(hours=8))
RECONCILIATION_RULE = (
    "expected_closing = the last BalanceReported with as_of within the period; "
    "reconciled = (closing_balance == expected_closing); "
    "difference = closing_balance - expected_closing"
)


class AccountsProjection(ReadsAhead):
    name = "accounts"
    tables: tuple[str, ...] = (
        "service_accounts",
        "service_account_holders",
        "account_balance_reports",
        "account_fees",
        "account_statements",
        "account_clock",
    )

    def __init__(self) -> None:
        # Accounts are inserted before anything else of a page touches them.
        self._writes = Writes(first=(sql.INSERT_ACCOUNT, sql.INSERT_HOLDER))
        # account -> (as_of, position, cents) of the page's latest report: only
        # that one can be the latest balance (see _flush)
        self._latest: dict[str, tuple[str, int, int]] = {}
        self._updated: set[str] = set()  # accounts with updates not yet sent
        self._clock: datetime | None = None  # the latest event time kept so far

    def _read(self, cur: Cursor, records: list[EventRecord]) -> None:
        row = cur.execute(sql.SELECT_CLOCK).fetchone()
        self._clock = (
            None if row is None else datetime.fromisoformat(row["latest_occurred_at"])
        )

    def _write(self, cur: Cursor, records: list[EventRecord]) -> None:
        self._writes.clear()
        self._latest, self._updated = {}, set()
        for record in records:
            handler = getattr(self, f"_on_{record.type}", None)
            if handler is not None:
                handler(cur, record, record.data)
        self._flush(cur)
        self._advance_clock(cur, records)

    def _flush(self, cur: Cursor) -> None:
        """Sends the page's writes. Reports apply in log order only when their
        as_of is not older than the kept one, so of a page's reports for one
        account only the one with the latest (as_of, position) can be kept."""
        for account_id, (as_of, position, amount) in self._latest.items():
            self._writes.add(
                sql.UPDATE_LATEST_BALANCE,
                (amount, as_of, position, account_id, as_of),
            )
        self._latest = {}
        self._updated = set()
        self._writes.flush(cur)

    def _advance_clock(self, cur: Cursor, records: list[EventRecord]) -> None:
        if not records:
            return
        latest = max(datetime.fromisoformat(r.occurred_at) for r in records)
        if self._clock is not None and self._clock >= latest:
            return
        cur.execute(sql.UPSERT_CLOCK, (utc_text(latest),))

    def _on_AccountOpened(
        self, cur: Cursor, record: EventRecord, data: dict[str, Any]
    ) -> None:
        if data["account_id"] in self._updated:
            self._flush(cur)  # updates sent before the opening found no account
        holders = [data["customer_id"], *data.get("joint_holder_ids", [])]
        self._writes.add(
            sql.INSERT_ACCOUNT,
            (
                data["account_id"],
                data["customer_id"],
                dumps(holders),
                data["product"],
                data.get("currency", "CNY"),
                data["branch_code"],
                "open",
                utc_text(record.occurred_at),
                record.position,
            ),
        )
        self._writes.extend(
            sql.INSERT_HOLDER, [(data["account_id"], holder) for holder in holders]
        )

    def _on_BalanceReported(
        self, cur: Cursor, record: EventRecord, data: dict[str, Any]
    ) -> None:
        amount = cents(data["balance"])
        self._writes.add(
            sql.INSERT_BALANCE_REPORT,
            (
                data["account_id"],
                record.position,
                record.event_id,
                data["as_of"],
                amount,
                utc_text(record.occurred_at),
                record.recorded_at,
            ),
        )
        report = (data["as_of"], record.position, amount)
        kept = self._latest.get(data["account_id"])
        if kept is None or report[:2] >= kept[:2]:
            self._latest[data["account_id"]] = report
        self._updated.add(data["account_id"])

    def _on_FeeCharged(
        self, cur: Cursor, record: EventRecord, data: dict[str, Any]
    ) -> None:
        self._writes.add(
            sql.INSERT_FEE,
            (
                data["account_id"],
                record.position,
                record.event_id,
                data["kind"],
                cents(data["amount"]),
                utc_text(record.occurred_at),
                record.recorded_at,
            ),
        )

    def _on_StatementIssued(
        self, cur: Cursor, record: EventRecord, data: dict[str, Any]
    ) -> None:
        fees = data.get("fees_total")
        self._writes.add(
            sql.UPSERT_STATEMENT,
            (
                data["account_id"],
                data["period"],
                cents(data["closing_balance"]),
                None if fees is None else cents(fees),
                record.position,
                record.event_id,
                utc_text(record.occurred_at),
                record.recorded_at,
            ),
        )

    def _on_AccountClosed(
        self, cur: Cursor, record: EventRecord, data: dict[str, Any]
    ) -> None:
        self._writes.add(
            sql.CLOSE_ACCOUNT, (utc_text(record.occurred_at), data["account_id"])
        )
        self._updated.add(data["account_id"])

    def _on_CustomersMerged(
        self, cur: Cursor, _record: EventRecord, data: dict[str, Any]
    ) -> None:
        # The survivor now holds the duplicate's accounts (for access and household value).
        self._flush(cur)
        rows = cur.execute(sql.HOLDINGS_OF, (data["duplicate_id"],)).fetchall()
        for row in rows:
            cur.execute(sql.INSERT_HOLDER.one, (row["account_id"], data["survivor_id"]))
        cur.execute(sql.DELETE_HOLDINGS_OF, (data["duplicate_id"],))


# reads ---------------------------------------------------------------------------


def latest_event_time(cur: Cursor) -> datetime | None:
    """The latest occurred_at the view has seen (UTC), or None on an empty log."""
    row = cur.execute(sql.SELECT_CLOCK).fetchone()
    return None if row is None else datetime.fromisoformat(row["latest_occurred_at"])


def holders_of(cur: Cursor, account_id: str) -> list[str]:
    return [
        r["customer_id"]
        for r in cur.execute(sql.SELECT_HOLDERS, (account_id,)).fetchall()
    ]


def get_account(cur: Cursor, account_id: str) -> dict[str, Any] | None:
    """The account, its holders, balance history (BalanceReported series) and statements."""
    row = cur.execute(sql.SELECT_ACCOUNT, (account_id,)).fetchone()
    if row is None:
        return None
    history = cur.execute(sql.BALANCE_HISTORY, (account_id,)).fetchall()
    statements = cur.execute(sql.STATEMENTS, (account_id,)).fetchall()
    return {
        "account_id": row["account_id"],
        "customer_id": row["customer_id"],
        "holder_ids": loads(row["holder_ids"]),
        "current_holder_ids": holders_of(cur, account_id),
        "product": row["product"],
        "currency": row["currency"],
        "branch_code": row["branch_code"],
        "status": row["status"],
        "opened_at": row["opened_at"],
        "closed_at": row["closed_at"],
        "balance": money_text(row["balance_cents"]),
        "balance_as_of": row["balance_as_of"],
        "balance_history": [
            {
                "as_of": h["as_of"],
                "balance": money_text(h["balance_cents"]),
                "position": int(h["position"]),
                "occurred_at": h["occurred_at"],
                "recorded_at": h["recorded_at"],
            }
            for h in history
        ],
        "statements": [
            {
                "period": s["period"],
                "closing_balance": money_text(s["closing_balance_cents"]),
                "fees_total": money_text(s["fees_total_cents"]),
                "position": int(s["position"]),
            }
            for s in statements
        ],
    }


def period_bounds(period: str) -> tuple[datetime, datetime]:
    """[start, end) of a YYYY-MM period in China Standard Time."""
    year, month = (int(part) for part in period.split("-"))
    start = datetime(year, month, 1, tzinfo=CHINA)
    end = datetime(year + month // 12, month % 12 + 1, 1, tzinfo=CHINA)
    return start, end


def statement(cur: Cursor, account_id: str, period: str) -> dict[str, Any] | None:
    """The statement of `period` with opening balance, fees and reconciliation."""
    row = cur.execute(sql.STATEMENT, (account_id, period)).fetchone()
    if row is None:
        return None
    start, end = period_bounds(period)
    first_day, next_first_day = start.date().isoformat(), end.date().isoformat()
    opening, opening_source = _opening(cur, account_id, period, first_day)
    fees = cur.execute(
        sql.FEES_BETWEEN, (account_id, utc_text(start), utc_text(end))
    ).fetchall()
    fees_cents = sum(int(f["amount_cents"]) for f in fees)
    reported = cur.execute(
        sql.LAST_REPORT_BETWEEN, (account_id, first_day, next_first_day)
    ).fetchone()
    closing = int(row["closing_balance_cents"])
    expected = None if reported is None else int(reported["balance_cents"])
    stated_fees = row["fees_total_cents"]
    return {
        "account_id": account_id,
        "period": period,
        "period_start": start.isoformat(),
        "period_end": end.isoformat(),
        "opening_balance": money_text(opening),
        "opening_source": opening_source,
        "closing_balance": money_text(closing),
        "net_change": None if opening is None else money_text(closing - opening),
        "fees": [
            {
                "kind": f["kind"],
                "amount": money_text(f["amount_cents"]),
                "occurred_at": f["occurred_at"],
                "position": int(f["position"]),
                "event_id": f["event_id"],
            }
            for f in fees
        ],
        "fees_total": money_text(fees_cents),
        "stated_fees_total": money_text(stated_fees),
        "fees_agree": None if stated_fees is None else int(stated_fees) == fees_cents,
        "reconciliation": {
            "rule": RECONCILIATION_RULE,
            "expected_closing": money_text(expected),
            "expected_as_of": None if reported is None else reported["as_of"],
            "reconciled": None if expected is None else closing == expected,
            "difference": None if expected is None else money_text(closing - expected),
        },
        "position": int(row["position"]),
    }


def _opening(
    cur: Cursor, account_id: str, period: str, first_day: str
) -> tuple[int | None, str | None]:
    previous = cur.execute(sql.PREVIOUS_STATEMENT, (account_id, period)).fetchone()
    if previous is not None:
        return int(previous["closing_balance_cents"]), f"statement:{previous['period']}"
    before = cur.execute(
        sql.LAST_REPORT_BETWEEN, (account_id, "0000-01-01", first_day)
    ).fetchone()
    if before is not None:
        return int(before["balance_cents"]), f"balance_report:{before['as_of']}"
    return None, None
