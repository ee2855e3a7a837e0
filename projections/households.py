"""Households: who lives together, with stable ids and the history of membership.

Per event, only the households around the customers it concerns are recomputed
(see `household_graph` for the linking rules and `household_assign` for the id
rules); attribute changes (deceased, head, balances) only refresh the row.
"""

from __future__ import annotations

from typing import Any

import orjson

from api.store.database import Cursor
from projections import household_sql as sql
from projections.customers import cents
from projections.household_assign import Change, reassign
from projections.household_graph import load_neighbourhood, rows_in, survivor_of
from projections.household_queries import (
    get_household,
    household_of,
    list_households,
    members,
    members_at,
    membership_history,
    memberships_of,
)
from projections.household_summary import refresh_household
from projections.records import EventRecord

try:
    from projections.address_key import address_key
except ImportError:  # pragma: no cover - only while the normaliser is being written
    import unicodedata

    def address_key(address: Any) -> str:  # type: ignore[misc]
        parts = (address.get(k) or "" for k in ("country", "province", "city", "line"))
        return "|".join(unicodedata.normalize("NFKC", p).strip() for p in parts)


__all__ = [
    "HouseholdsProjection",
    "get_household",
    "household_of",
    "list_households",
    "members",
    "members_at",
    "membership_history",
    "memberships_of",
]


def _dumps(value: Any) -> str:
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()


class HouseholdsProjection:
    name = "households"
    tables: tuple[str, ...] = (
        "households",
        "household_memberships",
        "household_people",
        "household_relations",
        "household_accounts",
        "household_account_holders",
    )

    def __init__(self) -> None:
        # account -> position of its latest balance report not yet rolled into
        # its holders' balances and households (see _flush_balances)
        self._reported: dict[str, int] = {}

    def apply(self, cur: Cursor, records: list[EventRecord]) -> None:
        self._reported = {}
        for record in records:
            handler = getattr(self, f"_on_{record.type}", None)
            if handler is None:
                continue
            if record.type != "BalanceReported":
                self._flush_balances(cur)
            handler(cur, record, record.data)
        self._flush_balances(cur)

    def _flush_balances(self, cur: Cursor) -> None:
        """Rolls a run of balance reports into balances and households once.

        Monthly files are long runs of reports; refreshing per report would cost
        several statements each. A reported balance always moves its households'
        position (even when nothing shown changed), so the result is the same
        however the log is cut into batches.
        """
        if not self._reported:
            return
        reported, self._reported = self._reported, {}
        holders = rows_in(cur, sql.HOLDERS_OF_ACCOUNTS, list(reported))
        latest: dict[str, int] = {}
        for row in holders:
            position = reported[row["account_id"]]
            latest[row["customer_id"]] = max(
                position, latest.get(row["customer_id"], 0)
            )
        for customer_id in sorted(latest):
            cur.execute(sql.REFRESH_BALANCE, (customer_id,))
        households: dict[str, int] = {}
        for row in rows_in(cur, sql.HOUSEHOLDS_OF_PEOPLE, sorted(latest)):
            position = latest[row["customer_id"]]
            households[row["household_id"]] = max(
                position, households.get(row["household_id"], 0)
            )
        for household_id in sorted(households):
            refresh_household(cur, household_id, households[household_id], touched=True)

    # helpers -----------------------------------------------------------------

    @staticmethod
    def _household_of(cur: Cursor, customer_id: str) -> str | None:
        row = cur.execute(sql.SELECT_PERSON, (customer_id,)).fetchone()
        return None if row is None else row["household_id"]

    def _seeds(self, cur: Cursor, customer_ids: list[str]) -> list[str]:
        """The customers plus everyone in their current households and at their address."""
        seeds = list(customer_ids)
        for customer_id in customer_ids:
            row = cur.execute(sql.SELECT_PERSON, (customer_id,)).fetchone()
            if row is None:
                continue
            for query, value in (
                (sql.LIVE_IN_HOUSEHOLD, row["household_id"]),
                (sql.LIVE_AT_ADDRESS, row["address_key"]),
                (sql.LIVE_WITH_NATIONAL_ID, row["national_id_hash"]),
            ):
                if value is not None:
                    seeds += [
                        r["customer_id"]
                        for r in cur.execute(query, (value,)).fetchall()
                    ]
        return seeds

    @staticmethod
    def _recompute(cur: Cursor, seeds: list[str], change: Change) -> None:
        hood = load_neighbourhood(cur, seeds)
        for household_id in sorted(reassign(cur, hood, change)):
            refresh_household(cur, household_id, change.record.position)

    def _refresh_of(self, cur: Cursor, record: EventRecord, customer_id: str) -> None:
        household_id = self._household_of(cur, customer_id)
        if household_id is not None:
            refresh_household(cur, household_id, record.position)

    # customers -----------------------------------------------------------------

    def _on_CustomerRegistered(
        self, cur: Cursor, record: EventRecord, data: dict[str, Any]
    ) -> None:
        cur.execute(
            sql.INSERT_PERSON,
            (
                data["customer_id"],
                _dumps(data["address"]),
                address_key(data["address"]),
                data.get("national_id_hash"),
                data["branch_code"],
                data.get("region_code"),
                record.position,
            ),
        )
        change = Change(record, subject=data["customer_id"])
        self._recompute(cur, [data["customer_id"]], change)

    def _on_CustomerMoved(
        self, cur: Cursor, record: EventRecord, data: dict[str, Any]
    ) -> None:
        customer_id = data["customer_id"]
        seeds = self._seeds(cur, [customer_id])
        cur.execute(
            sql.UPDATE_ADDRESS,
            (_dumps(data["address"]), address_key(data["address"]), customer_id),
        )
        self._recompute(cur, seeds, Change(record, subject=customer_id))

    def _on_CustomerDetailsCorrected(
        self, cur: Cursor, record: EventRecord, data: dict[str, Any]
    ) -> None:
        if "national_id_hash" not in data:
            return
        customer_id = data["customer_id"]
        seeds = self._seeds(cur, [customer_id])
        cur.execute(sql.UPDATE_NATIONAL_ID, (data["national_id_hash"], customer_id))
        self._recompute(cur, seeds, Change(record, subject=customer_id))

    def _on_CustomerDeceased(
        self, cur: Cursor, record: EventRecord, data: dict[str, Any]
    ) -> None:
        cur.execute(sql.UPDATE_DECEASED, (data["customer_id"],))
        self._refresh_of(cur, record, data["customer_id"])

    def _on_HouseholdHeadDesignated(
        self, cur: Cursor, record: EventRecord, data: dict[str, Any]
    ) -> None:
        cur.execute(sql.UPDATE_HEAD, (record.position, data["customer_id"]))
        self._refresh_of(cur, record, data["customer_id"])

    def _on_RelationshipDeclared(
        self, cur: Cursor, record: EventRecord, data: dict[str, Any]
    ) -> None:
        cur.execute(
            sql.UPSERT_RELATION,
            (
                data["customer_id"],
                data["related_customer_id"],
                1 if data["same_household"] else 0,
                data["relation"],
                record.position,
            ),
        )
        self._relink(cur, record, [data["customer_id"], data["related_customer_id"]])

    def _on_RelationshipEnded(
        self, cur: Cursor, record: EventRecord, data: dict[str, Any]
    ) -> None:
        cur.execute(
            sql.DELETE_RELATION, (data["customer_id"], data["related_customer_id"])
        )
        self._relink(cur, record, [data["customer_id"], data["related_customer_id"]])

    def _relink(
        self, cur: Cursor, record: EventRecord, customer_ids: list[str]
    ) -> None:
        live = [s for s in (survivor_of(cur, c) for c in customer_ids) if s]
        self._recompute(cur, self._seeds(cur, live), Change(record))

    def _on_CustomersMerged(
        self, cur: Cursor, record: EventRecord, data: dict[str, Any]
    ) -> None:
        survivor, duplicate = data["survivor_id"], data["duplicate_id"]
        seeds = self._seeds(cur, [survivor, duplicate])
        cur.execute(sql.UPDATE_MERGED_INTO, (survivor, duplicate))
        self._recompute(cur, seeds, Change(record, leaving=duplicate))

    # accounts --------------------------------------------------------------------

    def _on_AccountOpened(
        self, cur: Cursor, record: EventRecord, data: dict[str, Any]
    ) -> None:
        holders = [data["customer_id"], *data.get("joint_holder_ids", [])]
        cur.execute(sql.INSERT_ACCOUNT, (data["account_id"], _dumps(holders)))
        for holder in holders:
            cur.execute(sql.INSERT_HOLDER, (data["account_id"], holder))

    def _on_BalanceReported(
        self, cur: Cursor, record: EventRecord, data: dict[str, Any]
    ) -> None:
        cur.execute(
            sql.UPDATE_BALANCE,
            (
                cents(data["balance"]),
                data["as_of"],
                record.position,
                data["account_id"],
                data["as_of"],
            ),
        )
        self._reported[data["account_id"]] = record.position

    def _on_AccountClosed(
        self, cur: Cursor, record: EventRecord, data: dict[str, Any]
    ) -> None:
        cur.execute(sql.CLOSE_ACCOUNT, (data["account_id"],))
        self._refresh_holders(cur, record, data["account_id"])

    def _refresh_holders(
        self, cur: Cursor, record: EventRecord, account_id: str
    ) -> None:
        rows = cur.execute(sql.HOLDERS_OF, (account_id,)).fetchall()
        for holder in sorted(row["customer_id"] for row in rows):
            cur.execute(sql.REFRESH_BALANCE, (holder,))
            self._refresh_of(cur, record, holder)
