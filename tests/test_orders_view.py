"""The order information flow: timeline, filters, pagination, review queue, rebuild."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from api.bootstrap import Platform
from projections.households import HouseholdsProjection, household_of
from projections.orders import (
    OrdersProjection,
    get_order,
    list_orders,
    review_queue,
)
from projections.runner import ProjectionRunner
from tests.factories import envelope, new_id, registered


class Flow:
    def __init__(self, platform: Platform) -> None:
        self.platform = platform
        self.runner = ProjectionRunner(
            platform.app, platform.db, [HouseholdsProjection(), OrdersProjection()]
        )

    def post(self, *envelopes: dict[str, Any]) -> None:
        report = self.platform.ingestor.ingest(list(envelopes), atomic=True)
        assert all(o.status == "stored" for o in report.outcomes), report.outcomes
        self.runner.catch_up()

    def query(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        with self.platform.db.transaction() as cur:
            return fn(cur, *args, **kwargs)

    def customer(self, name: str, line: str, branch: str = "BJ001") -> str:
        customer_id = new_id()
        self.post(registered(customer_id, name=name, line=line, branch_code=branch))
        return customer_id


@pytest.fixture
def flow(platform: Platform) -> Flow:
    return Flow(platform)


def placed(
    customer_id: str, amount: str = "20000.00", at: str | None = None
) -> dict[str, Any]:
    return envelope(
        "OrderPlaced",
        {
            "order_id": new_id(),
            "customer_id": customer_id,
            "product": "安心理财三号",
            "amount": amount,
            "channel": "手机银行",
        },
        occurred_at=at or "2025-03-01T10:00:00+08:00",
        source="app:mobile",
        actor="customer:李娜",
    )


def step(type_: str, order_id: str, at: str, **data: Any) -> dict[str, Any]:
    return envelope(type_, {"order_id": order_id, **data}, occurred_at=at)


def test_an_order_is_tracked_from_placement_to_delivery(flow: Flow) -> None:
    li = flow.customer("李娜", "上海市浦东新区世纪大道100号8楼")
    order = placed(li, "12345.60")
    order_id = order["data"]["order_id"]
    flow.post(
        order,
        step(
            "OrderReviewed",
            order_id,
            "2025-03-01T15:00:00+08:00",
            approved=True,
            reviewer="审核员赵强",
        ),
        step("OrderShipped", order_id, "2025-03-02T09:00:00+08:00", tracking_ref="SF1"),
        step("OrderDelivered", order_id, "2025-03-03T17:30:00+08:00"),
    )
    found = flow.query(get_order, order_id)
    assert found["status"] == "delivered"
    assert found["amount"] == "12345.60"
    assert found["amount_cents"] == 1234560
    assert found["currency"] == "CNY"
    assert found["channel"] == "手机银行"
    assert found["decision"] == "approved"
    assert found["reviewer"] == "审核员赵强"
    assert found["household_id"] == flow.query(household_of, li)
    assert found["household_id"] is not None
    steps = found["timeline"]
    assert [s["step"] for s in steps] == ["placed", "reviewed", "shipped", "delivered"]
    assert steps[1]["decision"] == "approved"
    assert steps[1]["reviewer"] == "审核员赵强"
    assert steps[2]["tracking_ref"] == "SF1"
    assert steps[0]["occurred_at"] == "2025-03-01T02:00:00+00:00"
    assert all(s["recorded_at"] for s in steps)
    assert [s["position"] for s in steps] == sorted(s["position"] for s in steps)
    assert flow.query(get_order, new_id()) is None


def test_rejected_and_cancelled_orders(flow: Flow) -> None:
    wang = flow.customer("王芳", "北京市朝阳区建国路88号3号楼2单元501室")
    first, second = placed(wang), placed(wang)
    flow.post(
        first,
        second,
        step(
            "OrderReviewed",
            first["data"]["order_id"],
            "2025-03-01T11:00:00+08:00",
            approved=False,
            reviewer="审核员赵强",
            reason="风险评估不匹配",
        ),
        step(
            "OrderCancelled",
            second["data"]["order_id"],
            "2025-03-01T12:00:00+08:00",
            reason="客户改变主意",
        ),
    )
    rejected = flow.query(get_order, first["data"]["order_id"])
    assert rejected["status"] == "rejected"
    assert rejected["timeline"][1]["reason"] == "风险评估不匹配"
    cancelled = flow.query(get_order, second["data"]["order_id"])
    assert cancelled["status"] == "cancelled"
    assert [s["step"] for s in cancelled["timeline"]] == ["placed", "cancelled"]


def test_filters_and_cursor_pagination(flow: Flow) -> None:
    beijing = flow.customer("张伟", "北京市海淀区中关村大街27号1101室", "BJ001")
    shanghai = flow.customer("陈静", "上海市徐汇区漕溪北路18号", "SH002")
    bj_orders = [placed(beijing, f"{100 + i}.00") for i in range(5)]
    sh_order = placed(shanghai)
    flow.post(*bj_orders, sh_order)
    flow.post(
        step(
            "OrderReviewed",
            bj_orders[0]["data"]["order_id"],
            "2025-03-02T10:00:00+08:00",
            approved=True,
            reviewer="审核员赵强",
        )
    )
    by_branch, _ = flow.query(list_orders, branch_code="SH002")
    assert [o["order_id"] for o in by_branch] == [sh_order["data"]["order_id"]]
    approved, _ = flow.query(list_orders, status="approved")
    assert [o["order_id"] for o in approved] == [bj_orders[0]["data"]["order_id"]]

    seen: list[dict[str, Any]] = []
    cursor = None
    while True:
        page, cursor = flow.query(
            list_orders, customer_id=beijing, cursor=cursor, limit=2
        )
        assert len(page) <= 2
        seen += page
        if cursor is None:
            break
    assert [o["order_id"] for o in seen] != []
    assert sorted(o["order_id"] for o in seen) == sorted(
        o["data"]["order_id"] for o in bj_orders
    )
    positions = [o["placed_position"] for o in seen]
    assert positions == sorted(positions, reverse=True)
    with pytest.raises(ValueError):
        flow.query(list_orders, cursor="not-a-cursor")


def test_review_queue_is_oldest_first_with_age(flow: Flow) -> None:
    zhao = flow.customer("赵敏", "广州市天河区天河路385号")
    now = datetime(2025, 3, 5, 12, 0, tzinfo=UTC)
    ages = [30, 5, 72]
    orders = [
        placed(zhao, at=(now - timedelta(hours=h)).astimezone().isoformat())
        for h in ages
    ]
    reviewed, cancelled = placed(zhao), placed(zhao)
    flow.post(*orders, reviewed, cancelled)
    flow.post(
        step(
            "OrderReviewed",
            reviewed["data"]["order_id"],
            "2025-03-01T11:00:00+08:00",
            approved=True,
            reviewer="审核员赵强",
        ),
        step(
            "OrderCancelled", cancelled["data"]["order_id"], "2025-03-01T11:00:00+08:00"
        ),
    )
    queue = flow.query(review_queue, now=now)
    assert [o["age_hours"] for o in queue] == [72.0, 30.0, 5.0]
    assert [o["order_id"] for o in queue] == [
        orders[2]["data"]["order_id"],
        orders[0]["data"]["order_id"],
        orders[1]["data"]["order_id"],
    ]


def _snapshot(flow: Flow) -> dict[str, list[dict[str, Any]]]:
    order_by = {
        "orders": "order_id",
        "order_steps": "order_id, position",
        "order_customers": "customer_id",
    }
    return {
        table: flow.query(
            lambda cur, t=table, o=key: cur.execute(
                f"SELECT * FROM {t} ORDER BY {o}"
            ).fetchall()
        )
        for table, key in order_by.items()
    }


def test_rebuild_gives_the_rows_of_live_processing(flow: Flow) -> None:
    sun = flow.customer("孙丽", "杭州市西湖区文三路90号")
    orders = [placed(sun, f"{i}88.00") for i in range(1, 6)]
    for order in orders:
        flow.post(order)
    flow.post(
        step(
            "OrderReviewed",
            orders[1]["data"]["order_id"],
            "2025-03-02T10:00:00+08:00",
            approved=True,
            reviewer="审核员赵强",
        ),
        step(
            "OrderShipped", orders[1]["data"]["order_id"], "2025-03-03T10:00:00+08:00"
        ),
    )
    live = _snapshot(flow)
    assert len(live["order_steps"]) == 7
    flow.runner.rebuild(["orders"])
    assert _snapshot(flow) == live
