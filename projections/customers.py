"""The customer directory: one row per customer, their accounts and total balance."""

from __future__ import annotations

import re
from typing import Any

import orjson

from api.store.database import Cursor
from projections import customers_sql as sql
from projections.base import DispatchesByType, ReadsAhead
from projections.batch import PageTable, Writes
from projections.records import EventRecord
from projections.service_values import cents

try:
    from projections.address_key import address_key
except ImportError:  # pragma: no cover - only while the normaliser is being written
    import unicodedata

    def address_key(address: Any) -> str:  # type: ignore[misc]
        parts = (address.get(k) or "" for k in ("country", "province", "city", "line"))
        return "|".join(unicodedata.normalize("NFKC", p).strip() for p in parts)


CORRECTABLE = (
    "name",
    "national_id_hash",
    "national_id_last4",
    "birth_date",
    "gender",
    "phone",
    "email",
    "handling_officer",
)

_NOT_DIGIT = re.compile(r"\D")


def phone_digits(phone: str | None) -> str | None:
    return None if phone is None else _NOT_DIGIT.sub("", phone)


def dumps(value: Any) -> str:
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()


class CustomersProjection(DispatchesByType, ReadsAhead):
    """Writes go out at the end of each page, one statement per kind (`Writes`):
    new rows first, updates (which move `position` forward only, so their order
    does not matter), then each moved holder's total once. The consents and
    account holders a page needs are read once, up front."""

    name = "customers"
    tables: tuple[str, ...] = ("customers", "accounts", "account_holders")

    def __init__(self) -> None:
        # Totals last: they read the page's accounts, holders and balances.
        self._out = Writes(
            first=(
                sql.INSERT_CUSTOMER,
                sql.INSERT_ACCOUNT,
                sql.INSERT_HOLDER,
                sql.UPDATE_BALANCE,
                sql.CLOSE_ACCOUNT,
                sql.REFRESH_TOTAL_BALANCE,
            )
        )
        self._consents = PageTable(sql.CONSENTS_IN, "customer_id")
        self._holders = PageTable(sql.HOLDERS_IN, "account_id", many=True)
        # account -> position of the page's last event that moved its balance
        self._moved_accounts: dict[str, int] = {}
        # account -> (as_of, position, cents) of the page's report that ends up
        # kept: reports apply in log order only when not older (by as_of) than
        # the kept one, so the latest (as_of, position) of a page wins
        self._latest: dict[str, tuple[str, int, int]] = {}

    def _write(self, cur: Cursor, records: list[EventRecord]) -> None:
        self._out.clear()
        self._moved_accounts, self._latest = {}, {}
        for record in records:
            handler = getattr(self, f"_on_{record.type}", None)
            if handler is not None:
                handler(cur, record, record.data)
        self._refresh_totals()
        self._out.flush(cur)

    def _read(self, cur: Cursor, records: list[EventRecord]) -> None:
        self._consents.clear()
        self._holders.clear()
        customers = set()
        accounts = set()
        for record in records:
            if record.type in ("ConsentChanged", "CustomerRegistered"):
                customers.add(record.data["customer_id"])
            elif record.type in ("BalanceReported", "AccountClosed", "AccountOpened"):
                accounts.add(record.data["account_id"])
        self._consents.load(cur, customers)
        self._holders.load(cur, accounts)

    # customers -------------------------------------------------------------

    def _on_CustomerRegistered(
        self, cur: Cursor, record: EventRecord, data: dict[str, Any]
    ) -> None:
        self._out.add(
            sql.INSERT_CUSTOMER,
            (
                data["customer_id"],
                data["name"],
                dumps(data["address"]),
                address_key(data["address"]),
                data.get("national_id_hash"),
                data.get("national_id_last4"),
                data.get("birth_date"),
                data.get("gender"),
                data.get("phone"),
                phone_digits(data.get("phone")),
                data.get("email"),
                data["branch_code"],
                data.get("region_code"),
                data.get("handling_officer"),
                "{}",
                0,
                record.occurred_at,
                record.position,
                0,
                record.position,
            ),
        )
        if self._consents.get(cur, data["customer_id"]) is None:
            self._consents.put(data["customer_id"], {"consents": "{}"})

    def _on_CustomerDetailsCorrected(
        self, cur: Cursor, record: EventRecord, data: dict[str, Any]
    ) -> None:
        changes = {k: data[k] for k in CORRECTABLE if k in data}
        if "phone" in changes:
            changes["phone_digits"] = phone_digits(changes["phone"])
        if not changes:
            return
        assignments = ", ".join(f"{column} = %s" for column in changes)
        self._out.add(
            sql.CORRECT_CUSTOMER.format(assignments=assignments),
            (*changes.values(), record.position, record.position, data["customer_id"]),
        )

    def _on_CustomerMoved(
        self, cur: Cursor, record: EventRecord, data: dict[str, Any]
    ) -> None:
        self._out.add(
            sql.UPDATE_ADDRESS,
            (
                dumps(data["address"]),
                address_key(data["address"]),
                record.position,
                data["customer_id"],
            ),
        )

    def _on_ConsentChanged(
        self, cur: Cursor, record: EventRecord, data: dict[str, Any]
    ) -> None:
        row = self._consents.get(cur, data["customer_id"])
        if row is None:
            return
        consents = orjson.loads(row["consents"])
        consents[f"{data['channel']}/{data['purpose']}"] = data["granted"]
        text = dumps(consents)
        self._consents.put(data["customer_id"], {"consents": text})
        self._out.add(sql.UPDATE_CONSENTS, (text, record.position, data["customer_id"]))

    def _on_CustomerDeceased(
        self, cur: Cursor, record: EventRecord, data: dict[str, Any]
    ) -> None:
        self._out.add(
            sql.UPDATE_DECEASED,
            (1, data.get("date_of_death"), record.position, data["customer_id"]),
        )

    def _on_CustomersMerged(
        self, cur: Cursor, record: EventRecord, data: dict[str, Any]
    ) -> None:
        self._out.add(
            sql.UPDATE_MERGED_INTO,
            (data["survivor_id"], record.position, data["duplicate_id"]),
        )

    # accounts --------------------------------------------------------------

    def _on_AccountOpened(
        self, cur: Cursor, record: EventRecord, data: dict[str, Any]
    ) -> None:
        account_id = data["account_id"]
        joint = data.get("joint_holder_ids", [])
        self._out.add(
            sql.INSERT_ACCOUNT,
            (
                account_id,
                data["customer_id"],
                dumps(joint),
                data["product"],
                data.get("currency", "CNY"),
                data["branch_code"],
                "open",
                record.position,
            ),
        )
        held = self._holders.get(cur, account_id)
        for holder in [data["customer_id"], *joint]:
            self._out.add(sql.INSERT_HOLDER, (account_id, holder))
            if all(row["customer_id"] != holder for row in held):
                held.append({"account_id": account_id, "customer_id": holder})

    def _on_BalanceReported(
        self, cur: Cursor, record: EventRecord, data: dict[str, Any]
    ) -> None:
        account_id = data["account_id"]
        report = (data["as_of"], record.position, cents(data["balance"]))
        kept = self._latest.get(account_id)
        if kept is None or report[:2] >= kept[:2]:
            self._latest[account_id] = report
        self._moved_accounts[account_id] = record.position

    def _on_AccountClosed(
        self, cur: Cursor, record: EventRecord, data: dict[str, Any]
    ) -> None:
        position = record.position
        self._out.add(sql.CLOSE_ACCOUNT, (position, position, data["account_id"]))
        self._moved_accounts[data["account_id"]] = position

    def _refresh_totals(self) -> None:
        """Each holder's total once per page, not once per report."""
        if not self._moved_accounts:
            return
        moved, self._moved_accounts = self._moved_accounts, {}
        latest_reports, self._latest = self._latest, {}
        for account_id, (as_of, position, amount) in latest_reports.items():
            self._out.add(
                sql.UPDATE_BALANCE,
                (amount, as_of, position, position, account_id, as_of),
            )
        latest: dict[str, int] = {}
        for account_id, position in moved.items():
            for row in self._holders.rows.get(account_id, ()):
                customer_id = row["customer_id"]
                latest[customer_id] = max(position, latest.get(customer_id, 0))
        for customer_id in sorted(latest):
            self._out.add(sql.REFRESH_TOTAL_BALANCE, (latest[customer_id], customer_id))


# queries ---------------------------------------------------------------------


def _customer_row(row: dict[str, Any]) -> dict[str, Any]:
    row = dict(row)
    row["address"] = orjson.loads(row["address"])
    row["consents"] = orjson.loads(row["consents"])
    row["deceased"] = bool(row["deceased"])
    row.pop("phone_digits", None)
    return row


def get_customer(cur: Cursor, customer_id: str) -> dict[str, Any] | None:
    row = cur.execute(sql.SELECT_CUSTOMER, (customer_id,)).fetchone()
    return None if row is None else _customer_row(row)


def _like_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def search_customers(
    cur: Cursor,
    name: str | None = None,
    phone: str | None = None,
    national_id_hash: str | None = None,
    limit: int = 50,
) -> list[dict[str, Any]]:
    """Customers matching every given criterion; name prefix matches come first.

    The national ID is matched by its keyed hash only (the platform never keeps
    the number itself); phones are compared by their digits.
    """
    conditions: list[str] = []
    params: list[Any] = []
    order = ""
    order_params: list[Any] = []
    if name:
        pattern = _like_escape(name.strip())
        conditions.append("name LIKE %s ESCAPE '\\'")
        params.append(f"%{pattern}%")
        order = "CASE WHEN name LIKE %s ESCAPE '\\' THEN 0 ELSE 1 END,"
        order_params.append(f"{pattern}%")
    if phone:
        conditions.append("phone_digits = %s")
        params.append(phone_digits(phone))
    if national_id_hash:
        conditions.append("national_id_hash = %s")
        params.append(national_id_hash)
    if not conditions:
        return []
    query = sql.SEARCH_CUSTOMERS.format(
        conditions=" AND ".join(conditions), order=order
    )
    rows = cur.execute(query, (*params, *order_params, max(1, min(limit, 500))))
    return [_customer_row(row) for row in rows.fetchall()]
