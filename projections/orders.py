"""The order information flow: every order with its timeline, placed to delivered.

An order's household is the one its customer belonged to when the order was
placed, looked up at read time in the households view's membership history
(so rebuilding either view alone gives the same answer).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from api.store.database import Cursor
from projections import orders_sql as sql
from projections.base import ReadsAhead
from projections.batch import PageTable, Statements, Writes
from projections.records import EventRecord
from projections.service_values import (
    cents,
    dumps,
    hours_between,
    loads,
    money_text,
    utc_text,
)

STATUSES = ("placed", "approved", "rejected", "shipped", "delivered", "cancelled")
_STEP_OF = {
    "OrderPlaced": "placed",
    "OrderReviewed": "reviewed",
    "OrderShipped": "shipped",
    "OrderDelivered": "delivered",
    "OrderCancelled": "cancelled",
}


class OrdersProjection(ReadsAhead):
    """Writes go out in log order at the end of each page; the customers' branches
    a page's orders need are read once, up front."""

    name = "orders"
    tables: tuple[str, ...] = ("orders", "order_steps", "order_customers")

    def __init__(self) -> None:
        self._out = Statements()
        self._steps = Writes()  # inserted only, and read by no statement of a page
        self._branches = PageTable(sql.BRANCHES_IN, "customer_id")

    def _read(self, cur: Cursor, records: list[EventRecord]) -> None:
        self._branches.clear()
        self._branches.load(
            cur, {r.data["customer_id"] for r in records if r.type == "OrderPlaced"}
        )

    def _write(self, cur: Cursor, records: list[EventRecord]) -> None:
        self._out.clear()
        self._steps.clear()
        for record in records:
            if record.type == "CustomerRegistered":
                data = record.data
                self._out.add(
                    sql.UPSERT_CUSTOMER,
                    (data["customer_id"], data["branch_code"], data.get("region_code")),
                )
                self._branches.put(
                    data["customer_id"], {"branch_code": data["branch_code"]}
                )
            elif record.type in _STEP_OF:
                self._step(cur, record)
        self._out.flush(cur)
        self._steps.flush(cur)

    def _step(self, cur: Cursor, record: EventRecord) -> None:
        data = record.data
        order_id = data["order_id"]
        details = {k: v for k, v in data.items() if k not in ("order_id",)}
        if record.type == "OrderPlaced":
            branch = self._branches.get(cur, data["customer_id"])
            self._out.add(
                sql.INSERT_ORDER,
                (
                    order_id,
                    data["customer_id"],
                    None if branch is None else branch["branch_code"],
                    data["product"],
                    cents(data["amount"]),
                    "CNY",  # OrderPlaced carries no currency: orders are in yuan
                    data.get("channel"),
                    utc_text(record.occurred_at),
                    record.position,
                    record.position,
                ),
            )
        elif record.type == "OrderReviewed":
            decision = "approved" if data["approved"] else "rejected"
            details["decision"] = decision
            self._out.add(
                sql.REVIEW_ORDER,
                (
                    decision,
                    decision,
                    data["reviewer"],
                    utc_text(record.occurred_at),
                    record.position,
                    order_id,
                ),
            )
        else:
            self._out.add(
                sql.SET_STATUS, (_STEP_OF[record.type], record.position, order_id)
            )
        self._steps.add(
            sql.INSERT_STEP,
            (
                order_id,
                record.position,
                _STEP_OF[record.type],
                record.event_id,
                utc_text(record.occurred_at),
                record.recorded_at,
                record.actor,
                dumps(details),
            ),
        )


# reads ---------------------------------------------------------------------------


def _public(cur: Cursor, row: dict[str, Any], steps: bool) -> dict[str, Any]:
    order = {
        "order_id": row["order_id"],
        "customer_id": row["customer_id"],
        "household_id": household_at_placement(
            cur, row["customer_id"], row["placed_position"]
        ),
        "branch_code": row["branch_code"],
        "product": row["product"],
        "amount": money_text(row["amount_cents"]),
        "amount_cents": int(row["amount_cents"]),
        "currency": row["currency"],
        "channel": row["channel"],
        "status": row["status"],
        "decision": row["decision"],
        "reviewer": row["reviewer"],
        "placed_at": row["placed_at"],
        "reviewed_at": row["reviewed_at"],
        "placed_position": int(row["placed_position"]),
        "position": int(row["updated_position"]),
    }
    if steps:
        order["timeline"] = timeline(cur, row["order_id"])
    return order


def household_at_placement(cur: Cursor, customer_id: str, position: int) -> str | None:
    row = cur.execute(sql.HOUSEHOLD_AT, (customer_id, position, position)).fetchone()
    return None if row is None else row["household_id"]


def timeline(cur: Cursor, order_id: str) -> list[dict[str, Any]]:
    rows = cur.execute(sql.SELECT_STEPS, (order_id,)).fetchall()
    return [
        {**{k: v for k, v in row.items() if k != "details"}, **loads(row["details"])}
        | {"position": int(row["position"])}
        for row in rows
    ]


def get_order(cur: Cursor, order_id: str) -> dict[str, Any] | None:
    """One order with its timeline, or None."""
    row = cur.execute(sql.SELECT_ORDER, (order_id,)).fetchone()
    return None if row is None else _public(cur, row, steps=True)


def owner_of(cur: Cursor, order_id: str) -> str | None:
    row = cur.execute(
        "SELECT customer_id FROM orders WHERE order_id = %s", (order_id,)
    ).fetchone()
    return None if row is None else row["customer_id"]


def list_orders(
    cur: Cursor,
    *,
    status: str | None = None,
    customer_id: str | None = None,
    branch_code: str | None = None,
    cursor: str | None = None,
    limit: int = 50,
) -> tuple[list[dict[str, Any]], str | None]:
    """Orders newest first; `cursor` is the opaque `next_cursor` of the previous page.

    Raises ValueError for a cursor this function did not issue.
    """
    conditions: list[str] = ["1 = 1"]
    params: list[Any] = []
    for column, value in (
        ("status", status),
        ("customer_id", customer_id),
        ("branch_code", branch_code),
    ):
        if value is not None:
            conditions.append(f"{column} = %s")
            params.append(value)
    if cursor is not None:
        conditions.append("placed_position < %s")
        params.append(_decode_cursor(cursor))
    limit = max(1, min(limit, 500))
    rows = cur.execute(
        f"SELECT * FROM orders WHERE {' AND '.join(conditions)} "
        "ORDER BY placed_position DESC LIMIT %s",
        (*params, limit + 1),
    ).fetchall()
    more = len(rows) > limit
    rows = rows[:limit]
    next_cursor = f"o{rows[-1]['placed_position']}" if more else None
    return [_public(cur, row, steps=False) for row in rows], next_cursor


def _decode_cursor(cursor: str) -> int:
    if not cursor.startswith("o") or not cursor[1:].isdigit():
        raise ValueError(f"not an orders cursor: {cursor!r}")
    return int(cursor[1:])


def review_queue(
    cur: Cursor, *, now: datetime | None = None, limit: int = 100
) -> list[dict[str, Any]]:
    """Placed orders not yet reviewed (nor cancelled), oldest first, aged at `now`."""
    now = now or datetime.now(UTC)
    rows = cur.execute(sql.REVIEW_QUEUE, (max(1, min(limit, 500)),)).fetchall()
    queue = []
    for row in rows:
        order = _public(cur, row, steps=False)
        order["age_hours"] = round(hours_between(row["placed_at"], now), 2)
        queue.append(order)
    return queue
