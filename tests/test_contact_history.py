"""Contact history: attribution, summaries, pages, filters, merges, households, rebuild."""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from api.bootstrap import Platform
from projections.contact_history import (
    ContactHistoryProjection,
    InvalidCursor,
    customer_history,
    household_history,
)
from projections.contact_summaries import SUMMARIES
from projections.runner import ProjectionRunner
from tests.factories import address, envelope, new_id

NATIONAL_ID = "110101199003071234"
PHONE = "13800138000"
EMAIL = "wangfang@example.cn"
START = datetime(2025, 3, 1, 0, 0, tzinfo=UTC)
JOINED = "2025-03-01T00:00:00+00:00"


@dataclass
class Scenario:
    """Envelopes in log order, each tagged with the customers whose history holds it."""

    envelopes: list[dict[str, Any]] = field(default_factory=list)
    owners: list[set[str]] = field(default_factory=list)
    positions: list[int] = field(default_factory=list)

    def add(self, type_: str, data: dict[str, Any], *owners: str) -> None:
        when = START + timedelta(hours=len(self.envelopes))
        # Alternate offsets so client strings do not sort in time order.
        if len(self.envelopes) % 2:
            text = when.isoformat().replace("+00:00", "Z")
        else:
            text = when.astimezone(_CST).isoformat()
        self.envelopes.append(envelope(type_, data, occurred_at=text))
        self.owners.append(set(owners))

    def expected(self, *customer_ids: str) -> list[int]:
        wanted = set(customer_ids)
        found = [
            p for p, o in zip(self.positions, self.owners, strict=True) if o & wanted
        ]
        return sorted(found, reverse=True)


_CST = datetime.fromisoformat("2025-01-01T00:00:00+08:00").tzinfo


def register(s: Scenario, customer_id: str, name: str, line: str, **extra: Any) -> None:
    data = {
        "customer_id": customer_id,
        "name": name,
        "address": address(line),
        "branch_code": "BJ001",
        **extra,
    }
    s.add("CustomerRegistered", data, customer_id)


def build_scenario() -> tuple[Scenario, dict[str, str]]:
    ids = {k: new_id() for k in ("wang", "li", "dup", "chen", "acct", "camp")}
    wang, li, dup, chen = ids["wang"], ids["li"], ids["dup"], ids["chen"]
    s = Scenario()
    register(s, wang, "王芳", "北京市海淀区中关村大街27号", national_id=NATIONAL_ID)
    register(s, li, "李强", "北京市海淀区中关村大街27号", phone=PHONE, email=EMAIL)
    register(s, dup, "王芳", "北京市东城区东直门内大街5号")
    register(s, chen, "陈静", "上海市浦东新区世纪大道100号")
    s.add("CustomerDetailsCorrected", {"customer_id": li, "phone": "13900139000"}, li)
    s.add(
        "CustomerMoved",
        {"customer_id": wang, "address": address("北京市朝阳区建国路88号")},
        wang,
    )
    consent = {"channel": "sms", "purpose": "marketing", "granted": False}
    s.add("ConsentChanged", {"customer_id": wang, **consent}, wang)
    related = {"relation": "spouse", "same_household": True}
    s.add(
        "RelationshipDeclared",
        {"customer_id": wang, "related_customer_id": li, **related},
        wang,
        li,
    )
    s.add("HouseholdHeadDesignated", {"customer_id": wang}, wang)
    account = {"account_id": ids["acct"], "customer_id": wang, "product": "deposit"}
    s.add(
        "AccountOpened",
        {**account, "joint_holder_ids": [li], "branch_code": "BJ001"},
        wang,
        li,
    )
    acct = {"account_id": ids["acct"]}
    s.add("BalanceReported", {**acct, "balance": "5000.00", "as_of": "2025-03-31"})
    s.add("FeeCharged", {**acct, "amount": "10.00", "kind": "年费"})
    s.add(
        "StatementIssued",
        {**acct, "period": "2025-03", "closing_balance": "4990.00"},
        wang,
        li,
    )
    order = new_id()
    placed = {"product": "基金定投", "amount": "1200.00", "channel": "web"}
    s.add("OrderPlaced", {"order_id": order, "customer_id": wang, **placed}, wang)
    s.add(
        "OrderReviewed", {"order_id": order, "approved": True, "reviewer": "张伟"}, wang
    )
    s.add("OrderShipped", {"order_id": order, "tracking_ref": "SF7654321"}, wang)
    s.add("OrderDelivered", {"order_id": order}, wang)
    order2 = new_id()
    placed2 = {"product": "理财产品A", "amount": "50000.00"}
    s.add("OrderPlaced", {"order_id": order2, "customer_id": li, **placed2}, li)
    s.add("OrderCancelled", {"order_id": order2, "reason": "客户改变主意"}, li)
    complaint = new_id()
    filed = {"channel": "phone", "category": "fees", "description": f"电话{PHONE}"}
    s.add(
        "ComplaintFiled",
        {"complaint_id": complaint, "customer_id": wang, **filed},
        wang,
    )
    c = {"complaint_id": complaint}
    s.add("ComplaintAssigned", {**c, "officer": "刘洋"}, wang)
    s.add("ComplaintEscalated", {**c, "level": 2}, wang)
    s.add("ComplaintResolved", {**c, "resolution": "退还手续费"}, wang)
    s.add("ComplaintReopened", c, wang)
    contact = {"direction": "inbound", "topic": "理财咨询", "officer": "赵敏"}
    s.add(
        "ContactLogged",
        {"contact_id": new_id(), "customer_id": li, "channel": "branch", **contact},
        li,
    )
    campaign = {"name": "春节理财", "channel": "mail", "purpose": "marketing"}
    s.add("CampaignLaunched", {"campaign_id": ids["camp"], **campaign})
    mail1, mail2 = new_id(), new_id()
    camp = {"campaign_id": ids["camp"]}
    s.add("MailingSent", {"mailing_id": mail1, "customer_id": wang, **camp}, wang)
    s.add("MailingReturned", {"mailing_id": mail1, "reason": "查无此人"}, wang)
    s.add("MailingSent", {"mailing_id": mail2, "customer_id": li, **camp}, li)
    s.add("MailingResponded", {"mailing_id": mail2, "response": "有兴趣"}, li)
    dup_order = new_id()
    dup_placed = {"product": "信用卡", "amount": "0.00", "channel": "branch"}
    s.add("OrderPlaced", {"order_id": dup_order, "customer_id": dup, **dup_placed}, dup)
    s.add(
        "ContactLogged",
        {"contact_id": new_id(), "customer_id": dup, "channel": "phone", **contact},
        dup,
    )
    s.add("CustomersMerged", {"survivor_id": wang, "duplicate_id": dup}, wang, dup)
    s.add(
        "OrderReviewed",
        {"order_id": dup_order, "approved": False, "reviewer": "张伟"},
        dup,
    )
    s.add(
        "RelationshipEnded", {"customer_id": wang, "related_customer_id": li}, wang, li
    )
    s.add("AccountClosed", acct, wang, li)
    s.add(
        "CustomerDeceased", {"customer_id": chen, "date_of_death": "2025-03-02"}, chen
    )
    return s, ids


def ingest(
    platform: Platform, s: Scenario, chunk: int | None = None
) -> ProjectionRunner:
    runner = ProjectionRunner(
        platform.app,
        platform.db,
        [ContactHistoryProjection()],
        batch_size=chunk or 1000,
    )
    step = chunk or len(s.envelopes)
    for start in range(0, len(s.envelopes), step):
        report = platform.ingestor.ingest(
            s.envelopes[start : start + step], atomic=True
        )
        assert [o.status for o in report.outcomes] == ["stored"] * len(report.outcomes)
        s.positions += [int(o.position) for o in report.outcomes]  # type: ignore[arg-type]
        runner.catch_up()
    return runner


Loaded = tuple[Platform, Scenario, dict[str, str]]


@pytest.fixture
def loaded(platform: Platform) -> Loaded:
    s, ids = build_scenario()
    ingest(platform, s)
    return platform, s, ids


def history(platform: Platform, customer_id: str, **kw: Any) -> list[dict[str, Any]]:
    with platform.db.transaction() as cur:
        rows, cursor = customer_history(cur, customer_id, limit=500, **kw)
    assert cursor is None
    return rows


def test_every_touchpoint_type_has_a_summary_without_personal_data(
    loaded: Loaded,
) -> None:
    platform, _, _ = loaded
    with platform.db.transaction() as cur:
        rows = cur.execute("SELECT * FROM contact_history").fetchall()
    assert {r["type"] for r in rows} == set(SUMMARIES)
    assert {r["type"] for r in rows}.isdisjoint({"BalanceReported", "FeeCharged"})
    summaries = {r["summary"] for r in rows}
    assert all(r["summary"].strip() and "\n" not in r["summary"] for r in rows)
    for secret in (NATIONAL_ID, NATIONAL_ID[-4:], PHONE, "13900139000", EMAIL):
        assert not any(secret in text for text in summaries)
    assert "王芳 changed address to 北京市朝阳区建国路88号" in summaries
    assert "Order 1,200.00 CNY for 基金定投 placed via web" in summaries
    assert "Complaint (fees) filed by phone" in summaries
    assert "Order for 基金定投 shipped (tracking SF7654321)" in summaries
    by_type = {r["type"]: r for r in rows}
    assert by_type["MailingSent"]["channel"] == "mail"
    assert by_type["ComplaintFiled"]["channel"] == "phone"
    assert by_type["OrderShipped"]["channel"] == "system"


def test_events_naming_only_an_order_complaint_or_mailing_reach_the_customer(
    loaded: Loaded,
) -> None:
    platform, _, ids = loaded
    wang = {r["type"]: r for r in history(platform, ids["wang"])}
    for type_ in (
        "OrderShipped",
        "OrderDelivered",
        "ComplaintResolved",
        "MailingReturned",
    ):
        assert wang[type_]["customer_id"] == ids["wang"]
    li = {r["type"] for r in history(platform, ids["li"])}
    assert {"OrderCancelled", "MailingResponded"} <= li
    assert "OrderShipped" not in li


def test_joint_account_touchpoints_appear_in_each_holders_history(
    loaded: Loaded,
) -> None:
    platform, _, ids = loaded
    for holder in (ids["wang"], ids["li"]):
        rows = [
            r
            for r in history(platform, holder)
            if r["type"].startswith(("Account", "Statement"))
        ]
        assert [r["type"] for r in rows] == [
            "AccountClosed",
            "StatementIssued",
            "AccountOpened",
        ]
        assert {r["customer_id"] for r in rows} == {holder}
    assert "joint with 李强" in rows[-1]["summary"]


@pytest.mark.parametrize("limit", [1, 4, 7])
def test_pages_walk_every_row_once_newest_first(loaded: Loaded, limit: int) -> None:
    platform, s, ids = loaded
    seen: list[int] = []
    cursor = None
    with platform.db.transaction() as cur:
        while True:
            rows, cursor = customer_history(
                cur, ids["wang"], cursor=cursor, limit=limit
            )
            assert len(rows) <= limit
            seen += [r["position"] for r in rows]
            if cursor is None:
                break
    assert seen == s.expected(ids["wang"], ids["dup"])


def test_filters_by_channel_type_and_utc_time_range(loaded: Loaded) -> None:
    platform, _, ids = loaded
    every = history(platform, ids["wang"])
    mail = history(platform, ids["wang"], channel="mail")
    assert mail
    assert mail == [r for r in every if r["channel"] == "mail"]
    several = history(platform, ids["wang"], channel=["phone", "web"])
    assert several == [r for r in every if r["channel"] in ("phone", "web")]
    assert {r["channel"] for r in several} == {"phone", "web"}
    types = ["OrderPlaced", "OrderShipped"]
    picked = history(platform, ids["wang"], types=types)
    assert {r["type"] for r in picked} == set(types)
    assert history(platform, ids["wang"], types="OrderShipped") == [
        r for r in every if r["type"] == "OrderShipped"
    ]
    since, until = "2025-03-01T10:30:00Z", "2025-03-02T04:00:00+08:00"
    low, high = datetime.fromisoformat(since), datetime.fromisoformat(until)
    ranged = history(platform, ids["wang"], since=since, until=until)
    expected = [
        r for r in every if low <= datetime.fromisoformat(r["occurred_at"]) < high
    ]
    assert ranged == expected
    assert 0 < len(ranged) < len(every)


def test_survivor_sees_the_duplicates_rows_and_the_duplicate_stays_readable(
    loaded: Loaded,
) -> None:
    platform, s, ids = loaded
    survivor = history(platform, ids["wang"])
    duplicate = history(platform, ids["dup"])
    assert [r["position"] for r in duplicate] == s.expected(ids["dup"])
    assert {r["customer_id"] for r in duplicate} == {ids["dup"]}
    dup_positions = {r["position"] for r in duplicate}
    assert dup_positions <= {r["position"] for r in survivor}
    merge = [r for r in survivor if r["type"] == "CustomersMerged"]
    assert len(merge) == 1
    assert merge[0]["customer_id"] == ids["wang"]


def test_household_history_respects_membership_periods(loaded: Loaded) -> None:
    platform, s, ids = loaded
    declared = s.positions[
        [e["type"] for e in s.envelopes].index("RelationshipDeclared")
    ]
    ended = s.positions[[e["type"] for e in s.envelopes].index("RelationshipEnded")]
    household = new_id()
    with platform.db.transaction() as cur:
        # Migration 0002 makes this table; the fallback keeps the test independent.
        cur.execute(
            "CREATE TABLE IF NOT EXISTS household_memberships (household_id TEXT, "
            "customer_id TEXT, from_position BIGINT, to_position BIGINT NULL, "
            "since TEXT, occurred_since TEXT, joined_by_event_id TEXT, "
            "joined_by_type TEXT, reason TEXT)"
        )
        cur.executemany(
            "INSERT INTO household_memberships (household_id, customer_id, "
            "from_position, to_position, since, occurred_since, joined_by_event_id, "
            "joined_by_type, reason) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)",
            [
                (*member, JOINED, JOINED, new_id(), "RelationshipDeclared", "test")
                for member in (
                    (household, ids["wang"], s.positions[0], None),
                    (household, ids["li"], declared, ended),
                    (new_id(), ids["chen"], s.positions[0], None),
                )
            ],
        )
    with platform.db.transaction() as cur:
        rows, cursor = household_history(cur, household, limit=500)
        page, next_cursor = household_history(cur, household, limit=3)
        rest, _ = household_history(cur, household, cursor=next_cursor, limit=500)
    assert cursor is None
    li_while_member = {
        p
        for p, o in zip(s.positions, s.owners, strict=True)
        if ids["li"] in o and declared <= p < ended
    }
    wang_rows = {
        p for p, o in zip(s.positions, s.owners, strict=True) if ids["wang"] in o
    }
    assert [r["position"] for r in rows] == sorted(
        wang_rows | li_while_member, reverse=True
    )
    assert page + rest == rows
    assert not {r["customer_id"] for r in rows} - {ids["wang"], ids["li"]}


@pytest.mark.parametrize(
    "cursor",
    [
        "not-a-cursor!",
        base64.urlsafe_b64encode(b"ch1:" + b"9" * 30).decode(),
        base64.urlsafe_b64encode(b"other:5").decode(),
    ],
)
def test_a_bad_cursor_is_refused(loaded: Loaded, cursor: str) -> None:
    platform, _, ids = loaded
    with platform.db.transaction() as cur, pytest.raises(InvalidCursor):
        customer_history(cur, ids["wang"], cursor=cursor)


def _snapshot(platform: Platform) -> dict[str, list[dict[str, Any]]]:
    with platform.db.transaction() as cur:
        return {
            table: cur.execute(f"SELECT * FROM {table} ORDER BY 1, 2").fetchall()
            for table in ContactHistoryProjection.tables
        }


def test_rebuild_gives_the_rows_of_live_processing(platform: Platform) -> None:
    s, _ = build_scenario()
    runner = ingest(platform, s, chunk=3)
    live = _snapshot(platform)
    assert live["contact_history"]
    runner.batch_size = 1000
    runner.rebuild()
    assert _snapshot(platform) == live
