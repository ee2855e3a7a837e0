"""Who lives together: the link graph around some customers and its partition.

Links: the same address key; a declared relationship with same_household true;
being one person (same national ID hash; a merged-away duplicate's links count
as its survivor's). A pair whose relationship says same_household false is never
joined by the *address* rule. When that conflicts with explicit links (an
explicit or same-person path joins the pair anyway), the explicit links win:
they are applied first and unconditionally; the exclusion only stops address
links. For one unordered pair the latest declaration still in force decides.

Address links are applied greedily in a fixed order (address key, then
registration position), and a link is skipped when it would put an excluded pair
in one household, so the outcome depends only on the current state, never on the
order events arrived: a rebuild gives the same partition.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from api.store.database import Cursor
from projections import household_sql as sql


@dataclass
class Person:
    customer_id: str
    address: str
    address_key: str
    national_id_hash: str | None
    branch_code: str
    region_code: str | None
    deceased: bool
    merged_into: str | None
    registered_position: int
    head_designated_position: int | None
    balance_cents: int
    household_id: str | None

    @property
    def order(self) -> tuple[int, str]:
        return (self.registered_position, self.customer_id)


Pair = frozenset[str]


class UnionFind:
    def __init__(self, items: Iterable[str]) -> None:
        self.parent = {item: item for item in items}
        self.members = {item: [item] for item in self.parent}

    def find(self, item: str) -> str:
        while self.parent[item] != item:
            self.parent[item] = self.parent[self.parent[item]]
            item = self.parent[item]
        return item

    def union(self, first: str, second: str) -> None:
        a, b = self.find(first), self.find(second)
        if a == b:
            return
        if len(self.members[a]) < len(self.members[b]):
            a, b = b, a
        self.parent[b] = a
        self.members[a].extend(self.members.pop(b))


def partition(
    people: dict[str, Person], decisions: dict[Pair, bool]
) -> list[list[str]]:
    """The households of `people` (live, a closed set), each sorted by registration."""
    ordered = sorted(people.values(), key=lambda p: p.order)
    found = UnionFind(p.customer_id for p in ordered)
    for pair, together in sorted(decisions.items(), key=lambda item: sorted(item[0])):
        if together:
            first, second = sorted(pair)
            found.union(first, second)
    by_national_id: dict[str, str] = {}
    for person in ordered:
        if person.national_id_hash:
            first = by_national_id.setdefault(
                person.national_id_hash, person.customer_id
            )
            found.union(first, person.customer_id)
    excluded = {pair for pair, together in decisions.items() if not together}
    by_address: dict[str, list[str]] = {}
    for person in ordered:
        by_address.setdefault(person.address_key, []).append(person.customer_id)
    for key in sorted(by_address):
        group = by_address[key]
        for index, customer in enumerate(group):
            for earlier in group[:index]:
                _join_unless_excluded(found, customer, earlier, excluded)
    components: dict[str, list[str]] = {}
    for person in ordered:
        components.setdefault(found.find(person.customer_id), []).append(
            person.customer_id
        )
    return sorted(components.values(), key=lambda c: people[c[0]].order)


def _join_unless_excluded(
    found: UnionFind, first: str, second: str, excluded: set[Pair]
) -> None:
    a, b = found.find(first), found.find(second)
    if a == b:
        return
    if excluded and any(
        frozenset((x, y)) in excluded
        for x in found.members[a]
        for y in found.members[b]
    ):
        return
    found.union(a, b)


# loading from the tables --------------------------------------------------------


def _row_person(row: dict[str, object]) -> Person:
    head = row["head_designated_position"]
    return Person(
        customer_id=str(row["customer_id"]),
        address=str(row["address"]),
        address_key=str(row["address_key"]),
        national_id_hash=row["national_id_hash"],  # type: ignore[arg-type]
        branch_code=str(row["branch_code"]),
        region_code=row["region_code"],  # type: ignore[arg-type]
        deceased=bool(row["deceased"]),
        merged_into=row["merged_into"],  # type: ignore[arg-type]
        registered_position=int(row["registered_position"]),  # type: ignore[call-overload]
        head_designated_position=None if head is None else int(head),  # type: ignore[call-overload]
        balance_cents=int(row["balance_cents"]),  # type: ignore[call-overload]
        household_id=row["household_id"],  # type: ignore[arg-type]
    )


def load_people(cur: Cursor, ids: Iterable[str]) -> dict[str, Person]:
    wanted = sorted(set(ids))
    people: dict[str, Person] = {}
    for start in range(0, len(wanted), 500):
        chunk = wanted[start : start + 500]
        placeholders = "(" + ",".join(["%s"] * len(chunk)) + ")"
        for row in cur.execute(sql.SELECT_PEOPLE_IN + placeholders, chunk).fetchall():
            person = _row_person(row)
            people[person.customer_id] = person
    return people


def survivor_of(cur: Cursor, customer_id: str) -> str | None:
    """The live record a customer id now stands for (follows merges)."""
    seen = set()
    current: str | None = customer_id
    while current is not None and current not in seen:
        seen.add(current)
        row = cur.execute(sql.SELECT_PERSON, (current,)).fetchone()
        if row is None:
            return None
        if row["merged_into"] is None:
            return current
        current = row["merged_into"]
    return None


@dataclass
class Neighbourhood:
    people: dict[str, Person]
    decisions: dict[Pair, bool]


def load_neighbourhood(cur: Cursor, seeds: Iterable[str]) -> Neighbourhood:
    """Every live customer linked (by any raw link, exclusions ignored) to a seed.

    The result is closed under links, so its partition equals the global one.
    It also pulls in whole current households, so a household that splits is
    loaded entirely. It walks the links a level at a time, with one query per
    kind of link per level.
    """
    alias_of: dict[str, str] = {}
    relations: dict[tuple[str, str], tuple[bool, int]] = {}
    people: dict[str, Person] = {}
    todo = sorted({s for s in (survivor_of(cur, seed) for seed in seeds) if s})
    seen: dict[str, set[str]] = {
        "address": set(),
        "national_id": set(),
        "household": set(),
    }
    while todo:
        level = sorted(
            load_people(cur, [t for t in todo if t not in people]).values(),
            key=lambda p: p.order,
        )
        for person in level:
            people[person.customer_id] = person
        aliases = _aliases_of(cur, [p.customer_id for p in level])
        for customer_id, names in aliases.items():
            for alias in names:
                alias_of[alias] = customer_id
        linked = _linked_level(cur, level, seen)
        linked += _relation_links(
            cur, [a for n in aliases.values() for a in n], relations, alias_of
        )
        todo = sorted({t for t in linked if t not in people})
    decisions: dict[Pair, tuple[int, bool]] = {}
    for (first, second), (together, position) in relations.items():
        a, b = alias_of.get(first), alias_of.get(second)
        if a is None or b is None or a == b:
            continue
        pair = frozenset((a, b))
        if pair not in decisions or decisions[pair][0] < position:
            decisions[pair] = (position, together)
    return Neighbourhood(
        people=people,
        decisions={pair: together for pair, (_, together) in decisions.items()},
    )


def rows_in(cur: Cursor, query: str, values: Iterable[str]) -> list[dict[str, Any]]:
    """Rows of `query` (with an `{ids}` placeholder) for every value, 500 at a time."""
    wanted = sorted(set(values))
    rows: list[dict[str, object]] = []
    for start in range(0, len(wanted), 500):
        chunk = wanted[start : start + 500]
        placeholders = "(" + ",".join(["%s"] * len(chunk)) + ")"
        rows += cur.execute(query.format(ids=placeholders), chunk).fetchall()
    return rows


def _aliases_of(cur: Cursor, customer_ids: list[str]) -> dict[str, list[str]]:
    """Each customer and every record merged (directly or not) into it."""
    found = {c: [c] for c in customer_ids}
    root = {c: c for c in customer_ids}
    todo = list(customer_ids)
    while todo:
        rows = rows_in(cur, sql.MERGED_INTO_ANY, todo)
        todo = []
        for row in rows:
            duplicate, into = str(row["customer_id"]), str(row["merged_into"])
            if duplicate in root:
                continue
            root[duplicate] = root[into]
            found[root[into]].append(duplicate)
            todo.append(duplicate)
    return found


def _linked_level(
    cur: Cursor, level: list[Person], seen: dict[str, set[str]]
) -> list[str]:
    """Customers at the same addresses, with the same national IDs, in the same households."""
    wanted = {
        "address": ({p.address_key for p in level}, sql.LIVE_AT_ADDRESSES),
        "national_id": (
            {p.national_id_hash for p in level if p.national_id_hash},
            sql.LIVE_WITH_NATIONAL_IDS,
        ),
        "household": (
            {p.household_id for p in level if p.household_id},
            sql.LIVE_IN_HOUSEHOLDS,
        ),
    }
    linked: list[str] = []
    for kind, (values, query) in wanted.items():
        fresh = {str(v) for v in values} - seen[kind]
        seen[kind] |= fresh
        linked += [str(row["customer_id"]) for row in rows_in(cur, query, fresh)]
    return linked


def _relation_links(
    cur: Cursor,
    aliases: list[str],
    relations: dict[tuple[str, str], tuple[bool, int]],
    alias_of: dict[str, str],
) -> list[str]:
    linked: list[str] = []
    for start in range(0, len(aliases), 250):
        chunk = aliases[start : start + 250]
        placeholders = "(" + ",".join(["%s"] * len(chunk)) + ")"
        rows = cur.execute(
            sql.RELATIONS_OF.format(ids=placeholders), (*chunk, *chunk)
        ).fetchall()
        for row in rows:
            key = (row["customer_id"], row["related_customer_id"])
            relations[key] = (bool(row["same_household"]), int(row["position"]))
            if row["same_household"]:
                for end in key:
                    if end not in alias_of:
                        survivor = survivor_of(cur, end)
                        if survivor:
                            linked.append(survivor)
    return linked
