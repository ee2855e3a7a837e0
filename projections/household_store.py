"""The household tables as one page of the log sees them.

Rows are read in bulk when first needed (by id, or every person with an
address key, national ID hash, household or merge target), changed in memory as
the page's events are applied in log order, and written back once at the end of
the page, one statement per kind. A row already in memory is the current one:
the database is only asked about rows the page has not touched, and nothing but
this page writes these tables during its transaction.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Collection, Iterable, Sequence
from typing import Any, NamedTuple

from api.store.database import Cursor
from projections import household_sql as sql
from projections.address_key import address_key
from projections.batch import Writes, rows_in
from projections.household_graph import Person
from projections.records import EventRecord

# Where household_id is in a row of `sql.PERSON_COLUMNS`.
PERSON_HOUSEHOLD = sql.PERSON_COLUMN_NAMES.index("household_id")

# Columns of household_people a person can be looked up by (besides its id).
INDEXED = ("address_key", "national_id_hash", "household_id", "merged_into")


class Relation(NamedTuple):
    same_household: bool
    relation: str
    position: int


def _row_person(row: Sequence[Any]) -> Person:
    """A person from a row of `sql.PERSON_COLUMNS`, read as a tuple (the
    columns are `Person`'s fields in their order; a test holds them so)."""
    (
        customer_id,
        address,
        key,
        national_id_hash,
        branch_code,
        region_code,
        deceased,
        merged_into,
        registered_position,
        head,
        balance_cents,
        household_id,
    ) = row
    return Person(
        customer_id=str(customer_id),
        address=str(address),
        address_key=str(key),
        national_id_hash=national_id_hash,
        branch_code=str(branch_code),
        region_code=region_code,
        deceased=bool(deceased),
        merged_into=merged_into,
        registered_position=int(registered_position),
        head_designated_position=None if head is None else int(head),
        balance_cents=int(balance_cents),
        household_id=household_id,
    )


class HouseholdStore:
    def __init__(self, cur: Cursor) -> None:
        self.cur = cur
        self._people: dict[str, Person | None] = {}  # None: no such customer
        self._index: dict[str, dict[str, set[str]]] = {c: {} for c in INDEXED}
        self._complete: dict[str, set[str]] = {c: set() for c in INDEXED}
        self._changed_people: set[str] = set()
        self._relations: dict[tuple[str, str], Relation | None] = {}
        self._relations_of: dict[str, set[tuple[str, str]]] = {}
        self._relations_read: set[str] = set()
        self._changed_relations: set[tuple[str, str]] = set()
        self._households: dict[str, dict[str, Any] | None] = {}
        self._stored_households: set[str] = set()
        self._changed_households: set[str] = set()
        self._accounts: dict[str, dict[str, Any] | None] = {}
        self._changed_accounts: set[str] = set()
        self._holders: dict[str, dict[str, set[str]]] = {
            "account_id": {},
            "customer_id": {},
        }
        self._holders_read: dict[str, set[str]] = {
            "account_id": set(),
            "customer_id": set(),
        }
        self._new_holders: list[tuple[str, str]] = []
        self._new_memberships: list[dict[str, Any]] = []
        self._open_new: dict[tuple[str, str], dict[str, Any]] = {}
        self._closed_memberships: list[tuple[Any, ...]] = []

    # people ------------------------------------------------------------------

    def _know(self, row: Sequence[Any]) -> None:
        """Keeps the person of a `sql.PERSON_COLUMNS` row unless the page already
        has them (its own version is newer)."""
        if str(row[0]) in self._people:
            return
        person = _row_person(row)
        self._people[person.customer_id] = person
        self._add_to_index(person)

    def _add_to_index(self, person: Person) -> None:
        for column in INDEXED:
            value = getattr(person, column)
            if value is not None:
                self._index[column].setdefault(value, set()).add(person.customer_id)

    def _drop_from_index(self, person: Person) -> None:
        for column in INDEXED:
            value = getattr(person, column)
            if value is not None:
                self._index[column][value].discard(person.customer_id)

    def load_people(self, customer_ids: Iterable[str]) -> None:
        missing = {c for c in customer_ids if c not in self._people}
        if not missing:
            return
        for row in rows_in(self.cur, sql.PEOPLE_IN, missing, tuples=True):
            self._know(row)
        for customer_id in missing:
            self._people.setdefault(customer_id, None)

    def load_people_and_housemates(self, customer_ids: Iterable[str]) -> None:
        """The people and everyone in their (stored) households, in one query."""
        missing = {c for c in customer_ids if c not in self._people}
        if not missing:
            return
        rows = rows_in(
            self.cur, sql.PEOPLE_AND_HOUSEMATES, missing, repeat=2, tuples=True
        )
        for row in rows:
            self._know(row)
            customer_id, household_id = row[0], row[PERSON_HOUSEHOLD]
            if customer_id in missing and household_id is not None:
                self._complete["household_id"].add(household_id)
        for customer_id in missing:
            self._people.setdefault(customer_id, None)

    def person(self, customer_id: str) -> Person | None:
        if customer_id not in self._people:
            self.load_people((customer_id,))
        return self._people[customer_id]

    def people_with(self, column: str, values: Collection[str]) -> set[str]:
        """Ids of everyone (live or merged) whose `column` is one of `values`."""
        missing = {v for v in values if v not in self._complete[column]}
        if missing:
            for row in rows_in(
                self.cur, sql.PEOPLE_WHERE[column], missing, tuples=True
            ):
                self._know(row)
            self._complete[column] |= missing
        found: set[str] = set()
        index = self._index[column]
        for value in values:
            found |= index.get(value, set())
        return found

    def live_with(self, column: str, values: Collection[str]) -> list[str]:
        people = self._people
        return sorted(
            c
            for c in self.people_with(column, values)
            if (p := people[c]) is not None and p.merged_into is None
        )

    def insert_person(self, person: Person) -> None:
        """A new customer; one already known keeps its row."""
        if self.person(person.customer_id) is not None:
            return
        self._people[person.customer_id] = person
        self._add_to_index(person)
        self._changed_people.add(person.customer_id)

    def update_person(self, customer_id: str, **changes: Any) -> None:
        person = self.person(customer_id)
        if person is None:
            return
        if all(getattr(person, k) == v for k, v in changes.items()):
            return
        self._drop_from_index(person)
        for column, value in changes.items():
            setattr(person, column, value)
        self._add_to_index(person)
        self._changed_people.add(customer_id)

    def snapshot(self, customer_id: str) -> Person | None:
        """A copy that later changes in this store do not reach."""
        person = self.person(customer_id)
        return None if person is None else dataclasses.replace(person)

    # relations ---------------------------------------------------------------

    def _index_relation(self, key: tuple[str, str]) -> None:
        for end in key:
            self._relations_of.setdefault(end, set()).add(key)

    def relations_of(
        self, customer_ids: Collection[str]
    ) -> list[tuple[tuple[str, str], Relation]]:
        """Every declared relationship either end of which is in `customer_ids`."""
        missing = {c for c in customer_ids if c not in self._relations_read}
        if missing:
            for row in rows_in(self.cur, sql.RELATIONS_OF, missing, repeat=2):
                key = (str(row["customer_id"]), str(row["related_customer_id"]))
                if key not in self._relations:
                    self._relations[key] = Relation(
                        bool(row["same_household"]),
                        str(row["relation"]),
                        int(row["position"]),
                    )
                    self._index_relation(key)
            self._relations_read |= missing
        keys: set[tuple[str, str]] = set()
        for customer_id in customer_ids:
            keys |= self._relations_of.get(customer_id, set())
        found = []
        for key in sorted(keys):
            relation = self._relations[key]
            if relation is not None:
                found.append((key, relation))
        return found

    def put_relation(self, key: tuple[str, str], relation: Relation | None) -> None:
        """Declares (or, with None, ends) the relationship of an ordered pair."""
        self._relations[key] = relation
        self._index_relation(key)
        self._changed_relations.add(key)

    # households --------------------------------------------------------------

    def load_households(self, household_ids: Iterable[str]) -> None:
        missing = {h for h in household_ids if h not in self._households}
        if not missing:
            return
        for row in rows_in(self.cur, sql.HOUSEHOLDS_IN, missing):
            self._households[row["household_id"]] = row  # a new dict, ours to change
            self._stored_households.add(row["household_id"])
        for household_id in missing:
            self._households.setdefault(household_id, None)

    def household(self, household_id: str) -> dict[str, Any] | None:
        if household_id not in self._households:
            self.load_households((household_id,))
        return self._households[household_id]

    def insert_household(self, row: dict[str, Any]) -> None:
        """A household with a new id (derived from the event that made it): the
        table has neither it nor anyone in it."""
        household_id = row["household_id"]
        self._households[household_id] = row
        self._complete["household_id"].add(household_id)
        self._changed_households.add(household_id)

    def update_household(self, household_id: str, **changes: Any) -> None:
        row = self.household(household_id)
        if row is not None:
            row.update(changes)
            self._changed_households.add(household_id)

    def delete_household(self, household_id: str) -> None:
        self.household(household_id)
        self._households[household_id] = None
        self._changed_households.add(household_id)

    # memberships (written, never read, by the projection) ----------------------

    def open_membership(self, row: dict[str, Any]) -> None:
        self._new_memberships.append(row)
        self._open_new[(row["household_id"], row["customer_id"])] = row

    def close_membership(
        self, household_id: str, customer_id: str, **ended: Any
    ) -> None:
        row = self._open_new.pop((household_id, customer_id), None)
        if row is not None:
            row.update(ended)
            return
        self._closed_memberships.append(
            (
                ended["to_position"],
                ended["until"],
                ended["occurred_until"],
                ended["left_by_event_id"],
                ended["left_by_type"],
                ended["left_reason"],
                household_id,
                customer_id,
            )
        )

    # accounts ----------------------------------------------------------------

    def load_accounts(self, account_ids: Iterable[str]) -> None:
        missing = {a for a in account_ids if a not in self._accounts}
        if not missing:
            return
        for row in rows_in(self.cur, sql.ACCOUNTS_IN, missing):
            self._accounts[row["account_id"]] = row  # a new dict, ours to change
        for account_id in missing:
            self._accounts.setdefault(account_id, None)

    def account(self, account_id: str) -> dict[str, Any] | None:
        if account_id not in self._accounts:
            self.load_accounts((account_id,))
        return self._accounts[account_id]

    def insert_account(self, account_id: str, holder_ids: str) -> None:
        """A new account; one already known keeps its row."""
        if self.account(account_id) is not None:
            return
        self._accounts[account_id] = {
            "account_id": account_id,
            "holder_ids": holder_ids,
            "is_open": 1,
            "balance_cents": None,
            "balance_as_of": None,
            "balance_position": None,
        }
        self._changed_accounts.add(account_id)

    def report_balance(
        self, account_id: str, balance_cents: int, as_of: str, position: int
    ) -> None:
        """Late back-office files with an older as_of must not roll a balance back."""
        account = self.account(account_id)
        if account is None:
            return
        if account["balance_as_of"] is None or account["balance_as_of"] <= as_of:
            account.update(
                balance_cents=balance_cents,
                balance_as_of=as_of,
                balance_position=position,
            )
            self._changed_accounts.add(account_id)

    def close_account(self, account_id: str) -> None:
        account = self.account(account_id)
        if account is not None:
            account["is_open"] = 0
            self._changed_accounts.add(account_id)

    def holders(self, column: str, values: Collection[str]) -> dict[str, set[str]]:
        """Account -> holders (column "account_id") or customer -> accounts
        (column "customer_id") for every given value."""
        missing = {v for v in values if v not in self._holders_read[column]}
        if missing:
            for account_id, customer_id in rows_in(
                self.cur, sql.HOLDERS_WHERE[column], missing, tuples=True
            ):
                self._add_holder(str(account_id), str(customer_id))
            self._holders_read[column] |= missing
        index = self._holders[column]
        return {value: set(index.get(value, ())) for value in values}

    def _add_holder(self, account_id: str, customer_id: str) -> None:
        self._holders["account_id"].setdefault(account_id, set()).add(customer_id)
        self._holders["customer_id"].setdefault(customer_id, set()).add(account_id)

    def insert_holder(self, account_id: str, customer_id: str) -> None:
        self._add_holder(account_id, customer_id)
        self._new_holders.append((account_id, customer_id))

    def refresh_balance(self, customer_id: str) -> None:
        """A person's balance: the latest balances of the open accounts they hold."""
        if self.person(customer_id) is None:
            return
        held = self.holders("customer_id", (customer_id,))[customer_id]
        self.load_accounts(held)
        total = 0
        for account_id in held:
            account = self._accounts[account_id]
            if account is not None and account["is_open"] == 1:
                total += int(account["balance_cents"] or 0)
        self.update_person(customer_id, balance_cents=total)

    # writing back --------------------------------------------------------------

    def flush(self) -> None:
        """Writes every changed row, one executemany per kind of statement."""
        writes = Writes()
        for customer_id in sorted(self._changed_people):
            person = self._people[customer_id]
            if person is not None:
                writes.add(sql.UPSERT_PERSON, _person_values(person))
        for key in sorted(self._changed_relations):
            relation = self._relations[key]
            if relation is None:
                writes.add(sql.DELETE_RELATION, key)
            else:
                same, kind, position = relation
                writes.add(
                    sql.UPSERT_RELATION, (*key, 1 if same else 0, kind, position)
                )
        for account_id in sorted(self._changed_accounts):
            account = self._accounts[account_id]
            if account is not None:
                writes.add(
                    sql.UPSERT_ACCOUNT,
                    tuple(account[c] for c, _ in sql.ACCOUNT_COLUMNS),
                )
        writes.extend(sql.INSERT_HOLDER, self._new_holders)
        self._households_to(writes)
        writes.extend(sql.CLOSE_MEMBERSHIP, self._closed_memberships)
        writes.extend(
            sql.INSERT_MEMBERSHIP,
            (
                tuple(m[c] for c, _ in sql.MEMBERSHIP_COLUMNS)
                for m in self._new_memberships
            ),
        )
        writes.flush(self.cur)

    def _households_to(self, writes: Writes) -> None:
        # Deletes first: an id is deleted, inserted or updated, never two of these.
        inserts, updates = [], []
        for household_id in sorted(self._changed_households):
            row = self._households[household_id]
            stored = household_id in self._stored_households
            if row is None:
                if stored:
                    writes.add(sql.DELETE_HOUSEHOLD, (household_id,))
            elif stored:
                updates.append(
                    (*(row[c] for c, _ in sql.HOUSEHOLD_SUMMARY_COLUMNS), household_id)
                )
            else:
                inserts.append(tuple(row[c] for c, _ in sql.HOUSEHOLD_COLUMNS))
        writes.extend(sql.INSERT_HOUSEHOLD, inserts)
        writes.extend(sql.UPDATE_HOUSEHOLD, updates)


def _person_values(person: Person) -> tuple[Any, ...]:
    return (
        person.customer_id,
        person.address,
        person.address_key,
        person.national_id_hash,
        person.branch_code,
        person.region_code,
        1 if person.deceased else 0,
        person.merged_into,
        person.registered_position,
        person.head_designated_position,
        person.balance_cents,
        person.household_id,
    )


# Events that change links between customers, so their neighbourhoods are walked.
_LINKING = frozenset(
    {
        "CustomerRegistered",
        "CustomerMoved",
        "CustomerDetailsCorrected",
        "RelationshipDeclared",
        "RelationshipEnded",
        "CustomersMerged",
    }
)
_CUSTOMER_FIELDS = ("customer_id", "related_customer_id", "survivor_id", "duplicate_id")
_ACCOUNT_EVENTS = frozenset({"AccountOpened", "BalanceReported", "AccountClosed"})
# Rounds of the link walk read ahead; anything further is read when reached.
_PREFETCH_ROUNDS = 6


def prefetch(store: HouseholdStore, records: Iterable[EventRecord]) -> None:
    """Reads, a few queries in all, the rows the page's events will look at: their
    customers, accounts and holders, the households of those customers, and the
    people linked to customers whose links change. The events then run in memory
    (a row missed here is read when first needed)."""
    linking: set[str] = set()
    others: set[str] = set()
    addresses: set[str] = set()
    national_ids: set[str] = set()
    accounts: set[str] = set()
    for record in records:
        data = record.data
        if record.type in _ACCOUNT_EVENTS:
            accounts.add(data["account_id"])
            others.update(data.get("joint_holder_ids", ()))
            if "customer_id" in data:
                others.add(data["customer_id"])
            continue
        ids = {data[f] for f in _CUSTOMER_FIELDS if f in data}
        if record.type not in _LINKING:
            others |= ids
            continue
        linking |= ids
        if "address" in data:
            addresses.add(address_key(data["address"]))
        if data.get("national_id_hash"):
            national_ids.add(data["national_id_hash"])
    if accounts:
        store.load_accounts(accounts)
        for holders in store.holders("account_id", accounts).values():
            others |= holders
        held = store.holders("customer_id", others)
        store.load_accounts(set().union(*held.values()))
    store.load_people_and_housemates(linking | others)
    linking |= store.people_with("address_key", addresses)
    linking |= store.people_with("national_id_hash", national_ids)
    _read_households_of(store, linking | others)
    _read_links_of(store, linking)


def _read_households_of(store: HouseholdStore, customer_ids: Iterable[str]) -> None:
    households = {
        p.household_id
        for c in customer_ids
        if (p := store.person(c)) is not None and p.household_id is not None
    }
    store.load_households(households)
    store.people_with("household_id", households)


def _read_links_of(store: HouseholdStore, customer_ids: set[str]) -> None:
    """People linked to `customer_ids` by any link, a round per step of the walk."""
    known: set[str] = set()
    todo = set(customer_ids)
    for _ in range(_PREFETCH_ROUNDS):
        todo -= known
        if not todo:
            return
        known |= todo
        store.load_people(todo)
        people = [p for c in todo if (p := store.person(c)) is not None]
        found = store.people_with("merged_into", todo)
        for column in ("address_key", "national_id_hash", "household_id"):
            values = {v for p in people if (v := getattr(p, column)) is not None}
            found |= store.people_with(column, values)
        store.load_households({p.household_id for p in people if p.household_id})
        for key, _relation in store.relations_of(todo | found):
            found.update(key)
        found |= {p.merged_into for p in people if p.merged_into}
        todo = found
