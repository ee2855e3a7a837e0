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
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from projections.household_store import HouseholdStore


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
        if not excluded:
            # Every link holds: one pass, not one per pair (an address shared
            # by a thousand customers made each registration there cost 500,000
            # lookups).
            for customer in group[1:]:
                found.union(group[0], customer)
            continue
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


# the neighbourhood of a change -------------------------------------------------


def survivor_of(store: HouseholdStore, customer_id: str) -> str | None:
    """The live record a customer id now stands for (follows merges)."""
    seen = set()
    current: str | None = customer_id
    while current is not None and current not in seen:
        seen.add(current)
        person = store.person(current)
        if person is None:
            return None
        if person.merged_into is None:
            return current
        current = person.merged_into
    return None


@dataclass
class Neighbourhood:
    people: dict[str, Person]
    decisions: dict[Pair, bool]


def load_neighbourhood(store: HouseholdStore, seeds: Iterable[str]) -> Neighbourhood:
    """Every live customer linked (by any raw link, exclusions ignored) to a seed.

    The result is closed under links, so its partition equals the global one.
    It also pulls in whole current households, so a household that splits is
    loaded entirely. It walks the links a level at a time; the people are copies,
    as they were before the change is written.
    """
    alias_of: dict[str, str] = {}
    relations: dict[tuple[str, str], tuple[bool, int]] = {}
    people: dict[str, Person] = {}
    todo = sorted({s for s in (survivor_of(store, seed) for seed in seeds) if s})
    seen: dict[str, set[str]] = {column: set() for column in _LINK_COLUMNS}
    while todo:
        store.load_people(todo)
        level = sorted(
            (p for t in todo if t not in people and (p := store.snapshot(t))),
            key=lambda p: p.order,
        )
        for person in level:
            people[person.customer_id] = person
        aliases = _aliases_of(store, [p.customer_id for p in level])
        for customer_id, names in aliases.items():
            for alias in names:
                alias_of[alias] = customer_id
        linked = _linked_level(store, level, seen)
        linked += _relation_links(
            store, [a for n in aliases.values() for a in n], relations, alias_of
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


def _aliases_of(store: HouseholdStore, customer_ids: list[str]) -> dict[str, list[str]]:
    """Each customer and every record merged (directly or not) into it."""
    found = {c: [c] for c in customer_ids}
    root = {c: c for c in customer_ids}
    todo = list(customer_ids)
    while todo:
        duplicates = sorted(store.people_with("merged_into", todo))
        todo = []
        for duplicate in duplicates:
            person = store.person(duplicate)
            if duplicate in root or person is None or person.merged_into not in root:
                continue
            into = person.merged_into
            root[duplicate] = root[into]
            found[root[into]].append(duplicate)
            todo.append(duplicate)
    return found


# Links a level of the walk follows, by the column that holds them.
_LINK_COLUMNS = ("address_key", "national_id_hash", "household_id")


def _linked_level(
    store: HouseholdStore, level: list[Person], seen: dict[str, set[str]]
) -> list[str]:
    """Customers at the same addresses, with the same national IDs, in the same households."""
    linked: list[str] = []
    for column in _LINK_COLUMNS:
        values = {v for p in level if (v := getattr(p, column)) is not None}
        fresh = values - seen[column]
        seen[column] |= fresh
        if fresh:
            linked += store.live_with(column, fresh)
    return linked


def _relation_links(
    store: HouseholdStore,
    aliases: list[str],
    relations: dict[tuple[str, str], tuple[bool, int]],
    alias_of: dict[str, str],
) -> list[str]:
    linked: list[str] = []
    for key, relation in store.relations_of(aliases):
        relations[key] = (relation.same_household, relation.position)
        if relation.same_household:
            for end in key:
                if end not in alias_of:
                    survivor = survivor_of(store, end)
                    if survivor:
                        linked.append(survivor)
    return linked
