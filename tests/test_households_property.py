"""Random histories: the projection's partition matches a tiny reference model,
and rebuilding or re-batching the log reproduces the household tables exactly."""

from __future__ import annotations

import itertools
import random
from typing import Any

from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from api.bootstrap import Platform
from projections.address_key import address_key
from projections.customers import CustomersProjection
from projections.households import HouseholdsProjection
from projections.runner import ProjectionRunner
from tests.factories import envelope, new_id, registered

# Hypothesis repeats drawn values between examples, and all examples of one test
# share one database: each example needs addresses and national IDs of its own,
# or customers left by an earlier example link into this one behind the model.
EXAMPLE_TAGS = itertools.count(1)

OPERATION = st.one_of(
    st.tuples(
        st.just("register"), st.integers(0, 2), st.sampled_from([None, None, 0, 1])
    ),
    st.tuples(st.just("register"), st.integers(0, 2), st.none()),
    st.tuples(st.just("move"), st.integers(0, 5), st.integers(0, 2)),
    st.tuples(st.just("relate"), st.integers(0, 5), st.integers(0, 5), st.booleans()),
    st.tuples(st.just("end"), st.integers(0, 5), st.integers(0, 5)),
    st.tuples(st.just("merge"), st.integers(0, 5), st.integers(0, 5)),
    st.tuples(st.just("head"), st.integers(0, 5)),
)


class Model:
    """The current links, kept naively; households by a plain union-find."""

    def __init__(self, tag: int) -> None:
        self.lines = [
            f"北京市朝阳区建国路{tag}号{n + 1}号楼1单元101室" for n in range(3)
        ]
        self.national_ids = [f"ID{tag}N{n}" for n in range(2)]
        self.ids: list[str] = []
        self.address: dict[str, int] = {}
        self.national_id: dict[str, int | None] = {}
        self.merged_into: dict[str, str] = {}
        self.relations: dict[tuple[str, str], tuple[int, bool]] = {}

    def live(self, index: int) -> str | None:
        customer = self.ids[index % len(self.ids)] if self.ids else None
        return None if customer in self.merged_into else customer

    def envelope_for(self, step: int, op: tuple[Any, ...]) -> dict[str, Any] | None:
        kind = op[0]
        if kind == "register" and len(self.ids) < 6:
            customer = new_id()
            self.ids.append(customer)
            self.address[customer], self.national_id[customer] = op[1], op[2]
            extra = {} if op[2] is None else {"national_id": self.national_ids[op[2]]}
            return registered(customer, name="测试", line=self.lines[op[1]], **extra)
        if kind == "move" and (customer := self.live(op[1])):
            self.address[customer] = op[2]
            return envelope(
                "CustomerMoved",
                {"customer_id": customer, "address": {"line": self.lines[op[2]]}},
            )
        if kind == "register":
            return None
        if kind == "head" and (customer := self.live(op[1])):
            return envelope("HouseholdHeadDesignated", {"customer_id": customer})
        first, second = self.live(op[1]), (self.live(op[2]) if len(op) > 2 else None)
        if kind == "relate" and first and second and first != second:
            self.relations[(first, second)] = (step, op[3])
            return envelope(
                "RelationshipDeclared",
                {
                    "customer_id": first,
                    "related_customer_id": second,
                    "relation": "other",
                    "same_household": op[3],
                },
            )
        if kind == "end" and first:
            related = self.ids[op[2] % len(self.ids)]
            if self.relations.pop((first, related), None) is not None:
                return envelope(
                    "RelationshipEnded",
                    {"customer_id": first, "related_customer_id": related},
                )
        if kind == "merge" and first and second and first != second:
            self.merged_into[second] = first
            return envelope(
                "CustomersMerged", {"survivor_id": first, "duplicate_id": second}
            )
        return None

    def canonical(self, customer: str) -> str:
        while customer in self.merged_into:
            customer = self.merged_into[customer]
        return customer

    def households(self) -> set[frozenset[str]]:
        live = [c for c in self.ids if c not in self.merged_into]  # registration order
        parent = {c: c for c in live}

        def find(c: str) -> str:
            while parent[c] != c:
                c = parent[c]
            return c

        def members(root: str) -> list[str]:
            return [c for c in live if find(c) == root]

        latest: dict[frozenset[str], tuple[int, bool]] = {}
        for (a, b), (step, same) in self.relations.items():
            pair = frozenset((self.canonical(a), self.canonical(b)))
            if len(pair) == 2 and (pair not in latest or latest[pair][0] < step):
                latest[pair] = (step, same)
        for pair, (_, same) in latest.items():
            if same:
                a, b = sorted(pair)
                parent[find(a)] = find(b)
        for a in live:
            for b in live:
                nid = self.national_id[a]
                if nid is not None and nid == self.national_id[b]:
                    parent[find(a)] = find(b)
        apart = {pair for pair, (_, same) in latest.items() if not same}
        keys = {c: address_key({"line": self.lines[self.address[c]]}) for c in live}
        for key in sorted(set(keys.values())):
            group = [c for c in live if keys[c] == key]
            for i, c in enumerate(group):
                for earlier in group[:i]:
                    ra, rb = find(c), find(earlier)
                    blocked = any(
                        frozenset((x, y)) in apart
                        for x in members(ra)
                        for y in members(rb)
                    )
                    if ra != rb and not blocked:
                        parent[ra] = rb
        return {frozenset(members(root)) for root in {find(c) for c in live}}


def snapshot(platform: Platform) -> dict[str, list[dict[str, Any]]]:
    with platform.db.transaction() as cur:
        return {
            table: cur.execute(f"SELECT * FROM {table} ORDER BY {order}").fetchall()
            for table, order in (
                ("households", "household_id"),
                ("household_memberships", "household_id, customer_id, from_position"),
                ("household_people", "customer_id"),
            )
        }


def projected_households(platform: Platform, ids: list[str]) -> set[frozenset[str]]:
    with platform.db.transaction() as cur:
        placeholders = ",".join(["%s"] * len(ids))
        rows = cur.execute(
            "SELECT customer_id, household_id FROM household_people "
            f"WHERE customer_id IN ({placeholders}) AND merged_into IS NULL",
            ids,
        ).fetchall()
    groups: dict[str, set[str]] = {}
    for row in rows:
        assert row["household_id"] is not None
        groups.setdefault(row["household_id"], set()).add(row["customer_id"])
    return {frozenset(g) for g in groups.values()}


@settings(
    max_examples=30,
    deadline=None,
    # each example replays the whole log twice: shrinking would take minutes
    phases=[Phase.explicit, Phase.reuse, Phase.generate],
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    ops=st.lists(OPERATION, min_size=3, max_size=30),
    seed=st.integers(0, 10**6),
)
def test_random_histories(
    platform: Platform, ops: list[tuple[Any, ...]], seed: int
) -> None:
    shuffle = random.Random(seed)
    model = Model(next(EXAMPLE_TAGS))
    envelopes = [
        e for step, op in enumerate(ops) if (e := model.envelope_for(step, op))
    ]
    live = ProjectionRunner(
        platform.app, platform.db, [CustomersProjection(), HouseholdsProjection()]
    )
    live.catch_up()  # earlier examples' events, so this one starts clean
    start = 0
    while start < len(envelopes):
        size = shuffle.randint(1, 4)
        report = platform.ingestor.ingest(envelopes[start : start + size], atomic=True)
        assert all(o.status == "stored" for o in report.outcomes)
        start += size
        live.catch_up()
    if model.ids:
        assert projected_households(platform, model.ids) == model.households()
    expected = snapshot(platform)
    batched = ProjectionRunner(
        platform.app,
        platform.db,
        [HouseholdsProjection()],
        batch_size=shuffle.randint(1, 7),
    )
    batched.rebuild()
    assert snapshot(platform) == expected
    with platform.db.transaction() as cur:
        counts = cur.execute(
            "SELECT h.household_id, h.member_count, COUNT(p.customer_id) AS n "
            "FROM households h LEFT JOIN household_people p "
            "ON p.household_id = h.household_id AND p.merged_into IS NULL "
            "GROUP BY h.household_id, h.member_count"
        ).fetchall()
    assert all(row["member_count"] == row["n"] > 0 for row in counts)
