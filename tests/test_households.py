"""Household resolution rules, one by one, on both backends."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import pytest

from api.bootstrap import Platform
from projections.customers import CustomersProjection
from projections.household_graph import Person
from projections.household_sql import PERSON_COLUMN_NAMES
from projections.households import (
    HouseholdsProjection,
    get_household,
    household_of,
    list_households,
    members,
    members_at,
    membership_history,
    memberships_of,
)
from projections.runner import ProjectionRunner
from tests.factories import account_opened, envelope, new_id, registered

HOME = "北京市朝阳区建国路88号3号楼2单元501室"
HOME_OTHER_SPELLING = "朝阳区建国路88号3栋2单元501"
ELSEWHERE = "北京市海淀区中关村大街27号1101室"
THIRD = "上海市浦东新区世纪大道100号8楼"


class Households:
    def __init__(self, platform: Platform) -> None:
        self.platform = platform
        self.runner = ProjectionRunner(
            platform.app,
            platform.db,
            [CustomersProjection(), HouseholdsProjection()],
        )

    def post(self, *envelopes: dict[str, Any]) -> list[dict[str, Any]]:
        report = self.platform.ingestor.ingest(list(envelopes), atomic=True)
        assert all(o.status == "stored" for o in report.outcomes)
        self.runner.catch_up()
        return list(envelopes)

    def register(self, name: str, line: str, **extra: Any) -> str:
        customer_id = new_id()
        self.post(registered(customer_id, name=name, line=line, **extra))
        return customer_id

    def query(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        with self.platform.db.transaction() as cur:
            return fn(cur, *args, **kwargs)

    def of(self, customer_id: str) -> str | None:
        return self.query(household_of, customer_id)

    def member_ids(self, household_id: str) -> set[str]:
        return {m["customer_id"] for m in self.query(members, household_id)}


@pytest.fixture
def hh(platform: Platform) -> Households:
    return Households(platform)


def relate(
    first: str, second: str, same: bool, relation: str = "spouse"
) -> dict[str, Any]:
    return envelope(
        "RelationshipDeclared",
        {
            "customer_id": first,
            "related_customer_id": second,
            "relation": relation,
            "same_household": same,
        },
    )


def end(first: str, second: str) -> dict[str, Any]:
    return envelope(
        "RelationshipEnded", {"customer_id": first, "related_customer_id": second}
    )


def moved(customer_id: str, line: str) -> dict[str, Any]:
    return envelope(
        "CustomerMoved", {"customer_id": customer_id, "address": {"line": line}}
    )


def head(customer_id: str) -> dict[str, Any]:
    return envelope("HouseholdHeadDesignated", {"customer_id": customer_id})


def balance(account_id: str, amount: str) -> dict[str, Any]:
    return envelope(
        "BalanceReported",
        {"account_id": account_id, "balance": amount, "as_of": "2025-02-28"},
    )


def test_same_address_written_differently_is_one_household(hh: Households) -> None:
    wang = hh.register("王伟", HOME)
    li = hh.register("李娜", HOME_OTHER_SPELLING)
    zhang = hh.register("张敏", ELSEWHERE)
    assert hh.of(wang) == hh.of(li) != hh.of(zhang)
    household = hh.query(get_household, hh.of(wang))
    assert household["member_count"] == 2
    assert household["primary_recipient_id"] == wang  # earliest registered
    assert household["mailable"] is True
    history = hh.query(membership_history, hh.of(wang))
    assert {(r["customer_id"], r["reason"]) for r in history} == {
        (wang, "registered"),
        (li, "same_address"),
    }


def test_lodger_declared_not_same_household_stays_apart(hh: Households) -> None:
    owner = hh.register("刘洋", HOME)
    lodger = hh.register("陈静", THIRD)
    hh.post(relate(owner, lodger, same=False, relation="other"))
    hh.post(moved(lodger, HOME))
    assert hh.of(owner) != hh.of(lodger)
    # a third resident joins the owner, never bridging the lodger in
    wife = hh.register("杨丽", HOME)
    assert hh.of(wife) in (hh.of(owner), hh.of(lodger))
    assert hh.of(owner) != hh.of(lodger)
    # ending the "not same household" relationship lets the address rule apply
    hh.post(end(owner, lodger))
    assert hh.of(owner) == hh.of(lodger) == hh.of(wife)


def test_declared_relationship_joins_different_addresses_older_id_survives(
    hh: Households,
) -> None:
    husband = hh.register("赵强", HOME)
    wife = hh.register("黄丽", ELSEWHERE)
    husband_household, wife_household = hh.of(husband), hh.of(wife)
    event = relate(wife, husband, same=True)
    hh.post(event)
    assert hh.of(husband) == hh.of(wife) == husband_household
    assert hh.query(get_household, wife_household) is None
    joined = [
        r
        for r in hh.query(membership_history, husband_household)
        if r["customer_id"] == wife
    ]
    assert joined[0]["joined_by_event_id"] == event["event_id"]
    assert joined[0]["joined_by_type"] == "RelationshipDeclared"
    assert joined[0]["reason"] == "declared_relationship"
    # relationship ended splits: the earliest registered keeps the id
    ended = end(wife, husband)
    hh.post(ended)
    assert hh.of(husband) == husband_household
    assert hh.of(wife) not in (None, husband_household)
    left = hh.query(members_at, husband_household, position=None)
    assert {r["customer_id"] for r in left} == {husband}
    history = hh.query(membership_history, husband_household)
    wife_row = next(r for r in history if r["customer_id"] == wife)
    assert wife_row["left_by_event_id"] == ended["event_id"]
    assert wife_row["left_reason"] == "relationship_ended"


def test_same_national_id_joins(hh: Households) -> None:
    first = hh.register("周杰", HOME, national_id="110101199003070011")
    second = hh.register("周杰", THIRD, national_id="1101 0119 9003 0700 11")
    other = hh.register("吴芳", ELSEWHERE, national_id="110101199003070029")
    assert hh.of(first) == hh.of(second) != hh.of(other)


def test_merge_removes_duplicate_and_joins_households(hh: Households) -> None:
    survivor = hh.register("孙丽", HOME)
    duplicate = hh.register("孙丽", ELSEWHERE)
    roommate = hh.register("郑军", ELSEWHERE)
    hh.post(relate(duplicate, roommate, same=True, relation="sibling"))
    old = hh.of(survivor)
    merge = envelope(
        "CustomersMerged", {"survivor_id": survivor, "duplicate_id": duplicate}
    )
    hh.post(merge)
    assert hh.of(duplicate) is None
    # the duplicate's declared sibling now counts for the survivor
    assert hh.of(roommate) == hh.of(survivor) == old
    assert hh.member_ids(old) == {survivor, roommate}
    rows = hh.query(memberships_of, duplicate)
    assert rows[-1]["to_position"] is not None
    gone = [r for r in rows if r["left_reason"] == "merged"]
    assert gone and gone[0]["left_by_event_id"] == merge["event_id"]


def test_move_splits_and_the_part_with_the_head_keeps_the_id(hh: Households) -> None:
    father = hh.register("马建国", HOME)
    mother = hh.register("林秀英", HOME)
    son = hh.register("马超", HOME)
    household = hh.of(father)
    hh.post(head(son))
    assert hh.query(get_household, household)["head_customer_id"] == son
    move = moved(son, THIRD)
    hh.post(move)
    assert hh.of(son) == household
    assert hh.of(father) == hh.of(mother) != household
    assert hh.query(get_household, hh.of(father))["created_position"] > 0
    son_rows = [
        r for r in hh.query(membership_history, household) if r["customer_id"] == son
    ]
    assert son_rows[0]["to_position"] is None
    parents = hh.query(membership_history, household)
    father_row = next(r for r in parents if r["customer_id"] == father)
    assert father_row["left_by_event_id"] == move["event_id"]
    assert father_row["left_reason"] == "split"
    # who was in the household before the move, and why
    before = hh.query(members_at, household, position=father_row["to_position"] - 1)
    assert {r["customer_id"] for r in before} == {father, mother, son}
    after = hh.query(members_at, household, position=father_row["to_position"])
    assert {r["customer_id"] for r in after} == {son}
    at_time = hh.query(members_at, household, recorded_before=father_row["until"])
    assert {r["customer_id"] for r in at_time} == {father, mother, son}


def test_primary_recipient_choices(hh: Households) -> None:
    grandpa = hh.register("钱德明", HOME)
    daughter = hh.register("钱芳", HOME)
    son_in_law = hh.register("何伟", HOME)
    household = hh.of(grandpa)
    assert hh.query(get_household, household)["primary_recipient_id"] == grandpa
    account = new_id()
    hh.post(account_opened(son_in_law, account), balance(account, "88000.50"))
    assert hh.query(get_household, household)["primary_recipient_id"] == son_in_law
    hh.post(head(grandpa))
    assert hh.query(get_household, household)["primary_recipient_id"] == grandpa
    hh.post(
        envelope(
            "CustomerDeceased", {"customer_id": grandpa, "date_of_death": "2025-02-01"}
        )
    )
    row = hh.query(get_household, household)
    assert row["head_customer_id"] == grandpa
    assert row["primary_recipient_id"] == son_in_law
    assert grandpa in hh.member_ids(household)
    hh.post(envelope("AccountClosed", {"account_id": account}))
    assert hh.query(get_household, household)["primary_recipient_id"] == daughter


def test_joint_holders_balance_counts(hh: Households) -> None:
    elder = hh.register("冯桂兰", HOME)
    younger = hh.register("冯磊", HOME)
    account = new_id()
    opened = account_opened(elder, account)
    opened["data"]["joint_holder_ids"] = [younger]
    hh.post(opened, balance(account, "500.00"))
    # equal balances: earliest registered wins the tie
    assert hh.query(get_household, hh.of(elder))["primary_recipient_id"] == elder


def test_no_eligible_member_is_not_mailable(hh: Households) -> None:
    alone = hh.register("韩梅", THIRD)
    hh.post(envelope("CustomerDeceased", {"customer_id": alone}))
    row = hh.query(get_household, hh.of(alone))
    assert row["primary_recipient_id"] is None
    assert row["mailable"] is False
    assert row["not_mailable_reason"] == "no_eligible_member"


def test_list_households_by_branch_with_keyset_pages(hh: Households) -> None:
    lines = [f"广州市天河区体育西路{n}号" for n in range(1, 6)]
    for index, line in enumerate(lines):
        hh.register(f"曹{index}", line, region_code="GD")
    hh.register("邓辉", HOME, region_code="BJ")
    pages, cursor = [], None
    while True:
        page = hh.query(list_households, region_code="GD", cursor=cursor, limit=2)
        if not page:
            break
        pages.append(page)
        cursor = page[-1]["household_id"]
    ids = [h["household_id"] for page in pages for h in page]
    assert len(ids) == 5 == len(set(ids))
    assert ids == sorted(ids)
    assert len(hh.query(list_households, branch_code="BJ001")) == 6


def test_rebuild_reproduces_household_ids(hh: Households) -> None:
    a = hh.register("许晴", HOME)
    b = hh.register("许亮", ELSEWHERE)
    hh.post(relate(a, b, same=True, relation="sibling"))
    hh.post(moved(a, THIRD), end(a, b))
    with hh.platform.db.transaction() as cur:
        before = cur.execute(
            "SELECT * FROM household_memberships ORDER BY household_id, customer_id, from_position"
        ).fetchall()
    hh.runner.rebuild()
    with hh.platform.db.transaction() as cur:
        after = cur.execute(
            "SELECT * FROM household_memberships ORDER BY household_id, customer_id, from_position"
        ).fetchall()
    assert before == after
    assert len({r["household_id"] for r in after}) >= 2


def _merge(survivor: str, duplicate: str) -> dict[str, Any]:
    return envelope(
        "CustomersMerged", {"survivor_id": survivor, "duplicate_id": duplicate}
    )


def _mover_history(tag: int, batch_sizes: list[int], hh: Households) -> list[str]:
    """The history tests/test_households_property.py reported; returns c0..c5."""
    b1, b2, b3 = (f"北京市朝阳区建国路{tag}号{n}号楼1单元101室" for n in (1, 2, 3))
    id_a, id_b = f"1101051982{tag:04d}0012", f"1101051979{tag:04d}0026"
    c = [new_id() for _ in range(6)]
    history = [
        registered(c[0], name="周建华", line=b1, national_id=id_a),
        registered(c[1], name="周建华", line=b1, national_id=id_a),
        moved(c[1], b2),
        _merge(c[1], c[0]),
        head(c[1]),
        registered(c[2], name="吴丽娟", line=b2, national_id=id_b),
        registered(c[3], name="吴昊", line=b2),
        registered(c[4], name="郑晓燕", line=b2),
        registered(c[5], name="郑晓燕", line=b1),
        relate(c[4], c[5], same=False, relation="other"),
        moved(c[1], b3),
        relate(c[3], c[4], same=False, relation="other"),
        _merge(c[5], c[4]),
        head(c[5]),
    ]
    start = 0
    for size in batch_sizes:
        hh.post(*history[start : start + size])
        start += size
    assert start == len(history)
    return c


def _groups(hh: Households, customers: list[str]) -> list[list[str]]:
    found: dict[str | None, set[str]] = {}
    for customer in customers:
        found.setdefault(hh.of(customer), set()).add(customer)
    assert None not in found
    for household_id, expected in found.items():
        assert hh.member_ids(household_id) == expected  # type: ignore[arg-type]
        row = hh.query(get_household, household_id)
        assert row["member_count"] == len(expected)
    return sorted(sorted(g) for g in found.values())


@pytest.mark.parametrize("batch_sizes", [[1] * 14, [2, 1, 3, 1, 4, 2, 1], [14]])
def test_mover_leaves_after_duplicate_merged_and_stays_out(
    hh: Households, batch_sizes: list[int]
) -> None:
    c = _mover_history(5774, batch_sizes, hh)
    assert hh.of(c[0]) is None and hh.of(c[4]) is None
    assert _groups(hh, [c[1], c[2], c[3], c[5]]) == sorted(
        sorted(g) for g in ({c[2], c[3]}, {c[1]}, {c[5]})
    )


def test_a_leftover_customer_sharing_address_and_national_id_links_the_mover(
    hh: Households,
) -> None:
    # Why the property test "failed": hypothesis reuses `tag` between examples on
    # one database, so an earlier example's customer (here 卫东: at 3号楼 with the
    # national ID of 吴丽娟 at 2号楼) links the mover back; the projection is right.
    tag = 5774
    leftover = hh.register(
        "卫东",
        f"北京市朝阳区建国路{tag}号3号楼1单元101室",
        national_id=f"1101051979{tag:04d}0026",
    )
    c = _mover_history(tag, [2, 1, 3, 1, 4, 2, 1], hh)
    assert _groups(hh, [leftover, c[1], c[2], c[3], c[5]]) == sorted(
        sorted(g) for g in ({leftover, c[1], c[2], c[3]}, {c[5]})
    )


def test_a_person_row_is_read_in_the_order_of_the_persons_fields() -> None:
    # The store reads people as tuples and builds each positionally.
    assert tuple(f.name for f in dataclasses.fields(Person)) == PERSON_COLUMN_NAMES


def _at(address_key: str, order: int) -> Person:
    return Person(
        customer_id=f"c{order:05d}",
        address="北京市海淀区学院路37号",
        address_key=address_key,
        national_id_hash=None,
        branch_code="BJ001",
        region_code=None,
        deceased=False,
        merged_into=None,
        registered_position=order,
        head_designated_position=None,
        balance_cents=0,
        household_id=None,
    )


def test_an_address_shared_by_a_thousand_customers_is_joined_in_one_pass(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A company or dormitory address is linked once per customer, not once per
    pair: each registration there partitions everyone at the address again."""
    from projections import household_graph

    people = {p.customer_id: p for p in (_at("k", n) for n in range(1000))}
    people |= {p.customer_id: p for p in (_at("other", n) for n in range(1000, 1003))}
    lookups = 0
    find = household_graph.UnionFind.find

    def counted(self: household_graph.UnionFind, item: str) -> str:
        nonlocal lookups
        lookups += 1
        return find(self, item)

    monkeypatch.setattr(household_graph.UnionFind, "find", counted)
    households = household_graph.partition(people, {})
    assert [len(h) for h in households] == [1000, 3]
    assert lookups < 10 * len(people)
    # An exclusion anywhere keeps the pairwise rule: the excluded pair stays apart.
    apart = frozenset(("c00000", "c00001"))
    households = household_graph.partition(people, {apart: False})
    together = [h for h in households if "c00000" in h or "c00001" in h]
    assert len(together) == 2
