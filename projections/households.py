"""Households: who lives together, with stable ids and the history of membership.

Per event, only the households around the customers it concerns are recomputed
(see `household_graph` for the linking rules and `household_assign` for the id
rules); attribute changes (deceased, head, balances) only refresh the row.
"""

from __future__ import annotations

from typing import Any

import orjson

from api.store.database import Cursor
from projections.base import DispatchesByType, ReadsAhead
from projections.household_assign import Change, reassign
from projections.household_graph import Person, load_neighbourhood, survivor_of
from projections.household_queries import (
    get_household,
    household_of,
    list_households,
    members,
    members_at,
    membership_history,
    memberships_of,
)
from projections.household_store import HouseholdStore, Relation, prefetch
from projections.household_summary import refresh_household
from projections.records import EventRecord
from projections.service_values import cents

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


class HouseholdsProjection(DispatchesByType, ReadsAhead):
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
        self._store: HouseholdStore | None = None

    def _read(self, cur: Cursor, records: list[EventRecord]) -> None:
        self._store = HouseholdStore(cur)
        prefetch(self._store, [r for r in records if r.type in self.reads_types])

    def _write(self, cur: Cursor, records: list[EventRecord]) -> None:
        """Applies the page in log order to the rows in memory (`HouseholdStore`),
        then writes them back."""
        store, self._store = self._store, None
        if store is None:
            raise RuntimeError("households: no rows were read for this page")
        self._reported = {}
        for record in records:
            handler = getattr(self, f"_on_{record.type}", None)
            if handler is None:
                continue
            if record.type != "BalanceReported":
                self._flush_balances(store)
            handler(store, record, record.data)
        self._flush_balances(store)
        store.flush()

    def _flush_balances(self, store: HouseholdStore) -> None:
        """Rolls a run of balance reports into balances and households once.

        Monthly files are long runs of reports; refreshing per report would cost
        several statements each. A reported balance always moves its households'
        position (even when nothing shown changed), so the result is the same
        however the log is cut into batches.
        """
        if not self._reported:
            return
        reported, self._reported = self._reported, {}
        latest: dict[str, int] = {}
        for account_id, holders in store.holders("account_id", reported).items():
            for customer_id in holders:
                latest[customer_id] = max(
                    reported[account_id], latest.get(customer_id, 0)
                )
        for customer_id in sorted(latest):
            store.refresh_balance(customer_id)
        households: dict[str, int] = {}
        for customer_id in sorted(latest):
            person = store.person(customer_id)
            if person is not None and person.household_id is not None:
                households[person.household_id] = max(
                    latest[customer_id], households.get(person.household_id, 0)
                )
        for household_id in sorted(households):
            refresh_household(
                store, household_id, households[household_id], touched=True
            )

    # helpers -----------------------------------------------------------------

    @staticmethod
    def _seeds(store: HouseholdStore, customer_ids: list[str]) -> list[str]:
        """The customers plus everyone in their current households and at their address."""
        seeds = list(customer_ids)
        for customer_id in customer_ids:
            person = store.person(customer_id)
            if person is None:
                continue
            for column in ("household_id", "address_key", "national_id_hash"):
                value = getattr(person, column)
                if value is not None:
                    seeds += store.live_with(column, (value,))
        return seeds

    @staticmethod
    def _recompute(store: HouseholdStore, seeds: list[str], change: Change) -> None:
        hood = load_neighbourhood(store, seeds)
        for household_id in sorted(reassign(store, hood, change)):
            refresh_household(store, household_id, change.record.position)

    @staticmethod
    def _refresh_of(
        store: HouseholdStore, record: EventRecord, customer_id: str
    ) -> None:
        person = store.person(customer_id)
        if person is not None and person.household_id is not None:
            refresh_household(store, person.household_id, record.position)

    # customers -----------------------------------------------------------------

    def _on_CustomerRegistered(
        self, store: HouseholdStore, record: EventRecord, data: dict[str, Any]
    ) -> None:
        store.insert_person(
            Person(
                customer_id=data["customer_id"],
                address=_dumps(data["address"]),
                address_key=address_key(data["address"]),
                national_id_hash=data.get("national_id_hash"),
                branch_code=data["branch_code"],
                region_code=data.get("region_code"),
                deceased=False,
                merged_into=None,
                registered_position=record.position,
                head_designated_position=None,
                balance_cents=0,
                household_id=None,
            )
        )
        change = Change(record, subject=data["customer_id"])
        self._recompute(store, [data["customer_id"]], change)

    def _on_CustomerMoved(
        self, store: HouseholdStore, record: EventRecord, data: dict[str, Any]
    ) -> None:
        customer_id = data["customer_id"]
        seeds = self._seeds(store, [customer_id])
        store.update_person(
            customer_id,
            address=_dumps(data["address"]),
            address_key=address_key(data["address"]),
        )
        self._recompute(store, seeds, Change(record, subject=customer_id))

    def _on_CustomerDetailsCorrected(
        self, store: HouseholdStore, record: EventRecord, data: dict[str, Any]
    ) -> None:
        if "national_id_hash" not in data:
            return
        customer_id = data["customer_id"]
        seeds = self._seeds(store, [customer_id])
        store.update_person(customer_id, national_id_hash=data["national_id_hash"])
        self._recompute(store, seeds, Change(record, subject=customer_id))

    def _on_CustomerDeceased(
        self, store: HouseholdStore, record: EventRecord, data: dict[str, Any]
    ) -> None:
        store.update_person(data["customer_id"], deceased=True)
        self._refresh_of(store, record, data["customer_id"])

    def _on_HouseholdHeadDesignated(
        self, store: HouseholdStore, record: EventRecord, data: dict[str, Any]
    ) -> None:
        store.update_person(
            data["customer_id"], head_designated_position=record.position
        )
        self._refresh_of(store, record, data["customer_id"])

    def _on_RelationshipDeclared(
        self, store: HouseholdStore, record: EventRecord, data: dict[str, Any]
    ) -> None:
        store.put_relation(
            (data["customer_id"], data["related_customer_id"]),
            Relation(data["same_household"], data["relation"], record.position),
        )
        self._relink(store, record, [data["customer_id"], data["related_customer_id"]])

    def _on_RelationshipEnded(
        self, store: HouseholdStore, record: EventRecord, data: dict[str, Any]
    ) -> None:
        store.put_relation((data["customer_id"], data["related_customer_id"]), None)
        self._relink(store, record, [data["customer_id"], data["related_customer_id"]])

    def _relink(
        self, store: HouseholdStore, record: EventRecord, customer_ids: list[str]
    ) -> None:
        live = [s for s in (survivor_of(store, c) for c in customer_ids) if s]
        self._recompute(store, self._seeds(store, live), Change(record))

    def _on_CustomersMerged(
        self, store: HouseholdStore, record: EventRecord, data: dict[str, Any]
    ) -> None:
        survivor, duplicate = data["survivor_id"], data["duplicate_id"]
        seeds = self._seeds(store, [survivor, duplicate])
        store.update_person(duplicate, merged_into=survivor)
        self._recompute(store, seeds, Change(record, leaving=duplicate))

    # accounts --------------------------------------------------------------------

    def _on_AccountOpened(
        self, store: HouseholdStore, record: EventRecord, data: dict[str, Any]
    ) -> None:
        holders = [data["customer_id"], *data.get("joint_holder_ids", [])]
        store.insert_account(data["account_id"], _dumps(holders))
        for holder in holders:
            store.insert_holder(data["account_id"], holder)

    def _on_BalanceReported(
        self, store: HouseholdStore, record: EventRecord, data: dict[str, Any]
    ) -> None:
        store.report_balance(
            data["account_id"], cents(data["balance"]), data["as_of"], record.position
        )
        self._reported[data["account_id"]] = record.position

    def _on_AccountClosed(
        self, store: HouseholdStore, record: EventRecord, data: dict[str, Any]
    ) -> None:
        store.close_account(data["account_id"])
        holders = store.holders("account_id", (data["account_id"],))
        for holder in sorted(holders[data["account_id"]]):
            store.refresh_balance(holder)
            self._refresh_of(store, record, holder)
