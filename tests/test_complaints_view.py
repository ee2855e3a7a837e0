"""Complaints: lifecycle, officer, escalation, SLA flags, open counts, rebuild."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from api.bootstrap import Platform
from projections.complaints import (
    ComplaintSlaSettings,
    ComplaintsProjection,
    get_complaint,
    list_complaints,
    open_complaints,
    open_complaints_of_household,
)
from projections.households import HouseholdsProjection, household_of
from projections.runner import ProjectionRunner
from tests.factories import envelope, new_id, registered

NOW = datetime(2025, 6, 10, 12, 0, tzinfo=UTC)


def ago(hours: float) -> str:
    return (NOW - timedelta(hours=hours)).astimezone().isoformat()


class Desk:
    def __init__(self, platform: Platform) -> None:
        self.platform = platform
        self.runner = ProjectionRunner(
            platform.app,
            platform.db,
            [HouseholdsProjection(), ComplaintsProjection()],
        )

    def post(self, *envelopes: dict[str, Any]) -> None:
        report = self.platform.ingestor.ingest(list(envelopes), atomic=True)
        assert all(o.status == "stored" for o in report.outcomes), report.outcomes
        self.runner.catch_up()

    def query(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        with self.platform.db.transaction() as cur:
            return fn(cur, *args, **kwargs)

    def customer(self, name: str, line: str) -> str:
        customer_id = new_id()
        self.post(registered(customer_id, name=name, line=line))
        return customer_id

    def file(
        self, customer_id: str, hours_ago: float, category: str = "服务态度"
    ) -> str:
        complaint_id = new_id()
        self.post(
            envelope(
                "ComplaintFiled",
                {
                    "complaint_id": complaint_id,
                    "customer_id": customer_id,
                    "channel": "95588热线",
                    "category": category,
                    "description": "柜台办理业务等候时间过长，工作人员态度冷淡",
                },
                occurred_at=ago(hours_ago),
            )
        )
        return complaint_id

    def act(self, type_: str, complaint_id: str, hours_ago: float, **data: Any) -> None:
        self.post(
            envelope(
                type_,
                {"complaint_id": complaint_id, **data},
                occurred_at=ago(hours_ago),
            )
        )


@pytest.fixture
def desk(platform: Platform) -> Desk:
    return Desk(platform)


def test_lifecycle_officer_escalation_and_timeline(desk: Desk) -> None:
    li = desk.customer("李娜", "上海市浦东新区世纪大道100号8楼")
    complaint = desk.file(li, 100)
    desk.act("ComplaintAssigned", complaint, 90, officer="客服专员刘洋")
    desk.act("ComplaintEscalated", complaint, 80, level=2, reason="客户要求主管回复")
    desk.act("ComplaintAssigned", complaint, 79, officer="客服主管周敏")
    desk.act("ComplaintResolved", complaint, 70, resolution="致歉并优化排队流程")
    found = desk.query(get_complaint, complaint, now=NOW)
    assert found["status"] == "resolved"
    assert found["officer"] == "客服主管周敏"
    assert found["escalation_level"] == 2
    assert found["first_assigned_at"] == (NOW - timedelta(hours=90)).isoformat()
    assert found["sla"]["breached"] is False
    assert [s["step"] for s in found["timeline"]] == [
        "filed",
        "assigned",
        "escalated",
        "assigned",
        "resolved",
    ]
    desk.act("ComplaintReopened", complaint, 10, reason="问题再次出现")
    reopened = desk.query(get_complaint, complaint, now=NOW)
    assert reopened["status"] == "open"
    assert reopened["reopen_count"] == 1
    assert reopened["resolved_at"] is None
    assert desk.query(get_complaint, new_id()) is None


def test_sla_flags_an_unassigned_complaint_older_than_48_hours(desk: Desk) -> None:
    wang = desk.customer("王芳", "北京市朝阳区建国路88号3号楼2单元501室")
    late = desk.file(wang, 50)
    fresh = desk.file(wang, 10)
    assigned_in_time = desk.file(wang, 60)
    desk.act("ComplaintAssigned", assigned_in_time, 50, officer="客服专员刘洋")
    old_open = desk.file(wang, 16 * 24)
    desk.act("ComplaintAssigned", old_open, 16 * 24 - 1, officer="客服专员刘洋")

    rows = {c["complaint_id"]: c for c in desk.query(list_complaints, now=NOW)}
    assert rows[late]["sla"]["assign_breached"] is True
    assert rows[late]["sla"]["breached"] is True
    assert rows[fresh]["sla"]["breached"] is False
    assert rows[assigned_in_time]["sla"]["assign_breached"] is False
    assert rows[assigned_in_time]["sla"]["breached"] is False
    assert rows[old_open]["sla"]["assign_breached"] is False
    assert rows[old_open]["sla"]["resolve_breached"] is True
    assert rows[late]["age_hours"] == 50.0


def test_sla_hours_per_category_and_from_the_environment(
    desk: Desk, monkeypatch: pytest.MonkeyPatch
) -> None:
    zhang = desk.customer("张伟", "北京市海淀区中关村大街27号1101室")
    wealth = desk.file(zhang, 10, category="理财产品")
    strict = ComplaintSlaSettings(categories={"理财产品": {"assign_hours": 4}})
    assert desk.query(get_complaint, wealth, now=NOW)["sla"]["breached"] is False
    flagged = desk.query(get_complaint, wealth, now=NOW, settings=strict)
    assert flagged["sla"]["assign_breached"] is True
    monkeypatch.setenv("CRM_SLA_ASSIGN_HOURS", "8")
    monkeypatch.setenv("CRM_SLA_RESOLVE_HOURS", "9")
    from_env = ComplaintSlaSettings()
    assert from_env.hours_for("服务态度") == (8.0, 9.0)
    assert desk.query(get_complaint, wealth, now=NOW, settings=from_env)["sla"][
        "resolve_breached"
    ]


def test_open_list_is_oldest_first_and_filters(desk: Desk) -> None:
    chen = desk.customer("陈静", "上海市徐汇区漕溪北路18号")
    newer = desk.file(chen, 5, category="理财产品")
    older = desk.file(chen, 30)
    done = desk.file(chen, 40)
    desk.act("ComplaintAssigned", older, 29, officer="客服专员刘洋")
    desk.act("ComplaintResolved", done, 20, resolution="已退还手续费")

    open_ids = [c["complaint_id"] for c in desk.query(list_complaints, status="open")]
    assert open_ids == [older, newer]
    by_officer = desk.query(list_complaints, officer="客服专员刘洋")
    assert [c["complaint_id"] for c in by_officer] == [older]
    by_category = desk.query(list_complaints, category="理财产品")
    assert [c["complaint_id"] for c in by_category] == [newer]
    everything = [c["complaint_id"] for c in desk.query(list_complaints)]
    assert everything == [done, older, newer]


def test_open_complaints_per_customer_and_household(desk: Desk) -> None:
    home = "广州市天河区天河路385号2栋1203"
    husband = desk.customer("赵强", home)
    wife = desk.customer("钱丽", home)
    stranger = desk.customer("孙明", "深圳市南山区科技园南路15号")
    desk.file(husband, 3)
    desk.file(husband, 2)
    closed = desk.file(wife, 4)
    desk.file(wife, 1)
    desk.act("ComplaintResolved", closed, 0.5, resolution="已解释费用构成")
    counts = desk.query(open_complaints, [husband, wife, stranger])
    assert counts == {husband: 2, wife: 1, stranger: 0}
    household = desk.query(household_of, husband)
    assert household == desk.query(household_of, wife)
    assert desk.query(open_complaints_of_household, household) == 3
    assert desk.query(open_complaints, []) == {}


def test_rebuild_gives_the_rows_of_live_processing(desk: Desk) -> None:
    zhou = desk.customer("周杰", "南京市鼓楼区中山路321号")
    first, second = desk.file(zhou, 70), desk.file(zhou, 20)
    desk.act("ComplaintAssigned", first, 60, officer="客服专员刘洋")
    desk.act("ComplaintEscalated", second, 10, level=3)
    desk.act("ComplaintResolved", first, 5, resolution="已处理")

    def snapshot() -> list[list[dict[str, Any]]]:
        return [
            desk.query(lambda cur, q=q: cur.execute(q).fetchall())
            for q in (
                "SELECT * FROM complaints ORDER BY complaint_id",
                "SELECT * FROM complaint_steps ORDER BY complaint_id, position",
            )
        ]

    live = snapshot()
    assert len(live[1]) == 5
    desk.runner.rebuild(["complaints"])
    assert snapshot() == live
