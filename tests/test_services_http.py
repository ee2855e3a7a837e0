"""The service endpoints over HTTP, and the two kinds of user: staff and a customer."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from api.bootstrap import Platform
from api.http import create_app
from api.http.routes import services
from api.keys import create_key
from projections.accounts import AccountsProjection
from projections.complaints import ComplaintsProjection
from projections.households import HouseholdsProjection
from projections.orders import OrdersProjection
from projections.runner import ProjectionRunner
from tests.factories import account_opened, envelope, new_id, registered


def service_app(platform: Platform) -> FastAPI:
    """The app with the service routes ahead of /v1/households/{household_id}."""
    app = create_app(platform)
    paths = {getattr(r, "path", None) for r in app.router.routes}
    if "/v1/orders/review-queue" not in paths:
        before = len(app.router.routes)
        app.include_router(services.router)
        added = app.router.routes[before:]
        del app.router.routes[before:]
        app.router.routes[0:0] = added
    return app


class World:
    def __init__(self, platform: Platform, client: TestClient) -> None:
        self.platform = platform
        self.client = client
        self.runner = ProjectionRunner(
            platform.app,
            platform.db,
            [
                HouseholdsProjection(),
                OrdersProjection(),
                ComplaintsProjection(),
                AccountsProjection(),
            ],
        )
        self.staff = self.headers("read")

    def headers(self, role: str, customer_id: str | None = None) -> dict[str, str]:
        return {
            "Authorization": f"Bearer {create_key(self.platform.db, role, customer_id)}"
        }

    def post(self, *envelopes: dict[str, Any]) -> None:
        report = self.platform.ingestor.ingest(list(envelopes), atomic=True)
        assert all(o.status == "stored" for o in report.outcomes), report.outcomes
        self.runner.catch_up()

    def get(self, path: str, headers: dict[str, str], **params: Any) -> Any:
        return self.client.get(path, headers=headers, params=params)


@pytest.fixture
def world(platform: Platform) -> Iterator[World]:
    with TestClient(service_app(platform)) as client:
        yield World(platform, client)


def order(customer_id: str, amount: str = "20000.00") -> dict[str, Any]:
    return envelope(
        "OrderPlaced",
        {
            "order_id": new_id(),
            "customer_id": customer_id,
            "product": "安心理财三号",
            "amount": amount,
            "channel": "手机银行",
        },
        source="app:mobile",
    )


def complaint(customer_id: str) -> dict[str, Any]:
    return envelope(
        "ComplaintFiled",
        {
            "complaint_id": new_id(),
            "customer_id": customer_id,
            "channel": "app",
            "category": "服务态度",
            "description": "柜台办理业务等候时间过长",
        },
        occurred_at="2025-01-01T09:00:00+08:00",
    )


@pytest.fixture
def two_customers(world: World) -> dict[str, Any]:
    li, zhang = new_id(), new_id()
    li_account, zhang_account = account_opened(li), account_opened(zhang)
    li_order, zhang_order = order(li, "888.80"), order(zhang)
    li_complaint, zhang_complaint = complaint(li), complaint(zhang)
    account_id = li_account["data"]["account_id"]
    world.post(
        registered(li, name="李娜", line="上海市浦东新区世纪大道100号8楼"),
        registered(zhang, name="张伟", line="北京市海淀区中关村大街27号1101室"),
        li_account,
        zhang_account,
        li_order,
        zhang_order,
        li_complaint,
        zhang_complaint,
        envelope(
            "BalanceReported",
            {"account_id": account_id, "balance": "3000.00", "as_of": "2025-03-31"},
        ),
        envelope(
            "StatementIssued",
            {
                "account_id": account_id,
                "period": "2025-03",
                "closing_balance": "3000.00",
            },
        ),
    )
    return {
        "li": li,
        "zhang": zhang,
        "li_account": account_id,
        "zhang_account": zhang_account["data"]["account_id"],
        "li_order": li_order["data"]["order_id"],
        "zhang_order": zhang_order["data"]["order_id"],
        "li_complaint": li_complaint["data"]["complaint_id"],
        "zhang_complaint": zhang_complaint["data"]["complaint_id"],
    }


def test_staff_read_every_service(world: World, two_customers: dict[str, Any]) -> None:
    ids, staff = two_customers, world.staff
    found = world.get(f"/v1/orders/{ids['li_order']}", staff)
    assert found.status_code == 200
    assert found.json()["amount"] == "888.80"
    assert found.json()["timeline"][0]["step"] == "placed"
    listed = world.get("/v1/orders", staff, customer_id=ids["zhang"])
    assert [o["order_id"] for o in listed.json()["orders"]] == [ids["zhang_order"]]
    queue = world.get("/v1/orders/review-queue", staff).json()["orders"]
    assert {o["order_id"] for o in queue} == {ids["li_order"], ids["zhang_order"]}
    assert all(o["age_hours"] > 0 for o in queue)
    complaints = world.get("/v1/complaints", staff, status="open").json()["complaints"]
    assert len(complaints) == 2
    assert all(c["sla"]["assign_breached"] for c in complaints)  # filed in January
    one = world.get(f"/v1/complaints/{ids['li_complaint']}", staff)
    assert one.json()["customer_id"] == ids["li"]
    account = world.get(f"/v1/accounts/{ids['li_account']}", staff).json()
    assert account["balance_history"][0]["balance"] == "3000.00"
    statement = world.get(f"/v1/accounts/{ids['li_account']}/statements/2025-03", staff)
    assert statement.json()["reconciliation"]["reconciled"] is True
    top = world.get("/v1/households/top", staff, limit=1).json()["households"]
    assert top[0]["total_balance"] == "3000.00"
    assert world.get(f"/v1/orders/{new_id()}", staff).status_code == 404
    assert (
        world.get(
            f"/v1/accounts/{ids['li_account']}/statements/2025-13", staff
        ).status_code
        == 422
    )
    assert (
        world.get(
            f"/v1/accounts/{ids['li_account']}/statements/2025-02", staff
        ).status_code
        == 404
    )
    assert world.get("/v1/orders", staff, cursor="bogus").status_code == 422


def test_a_customer_reads_only_their_own(
    world: World, two_customers: dict[str, Any]
) -> None:
    ids = two_customers
    mine = world.headers("customer", ids["li"])
    own = [
        f"/v1/orders/{ids['li_order']}",
        f"/v1/complaints/{ids['li_complaint']}",
        f"/v1/accounts/{ids['li_account']}",
        f"/v1/accounts/{ids['li_account']}/statements/2025-03",
    ]
    for path in own:
        assert world.get(path, mine).status_code == 200, path
    theirs = [
        f"/v1/orders/{ids['zhang_order']}",
        f"/v1/complaints/{ids['zhang_complaint']}",
        f"/v1/accounts/{ids['zhang_account']}",
        f"/v1/accounts/{ids['zhang_account']}/statements/2025-03",
        f"/v1/orders/{new_id()}",  # absent ids are refused alike: nothing leaks
        "/v1/orders/review-queue",
        "/v1/households/top",
    ]
    for path in theirs:
        assert world.get(path, mine).status_code == 403, path
    orders = world.get("/v1/orders", mine).json()["orders"]
    assert [o["order_id"] for o in orders] == [ids["li_order"]]
    complaints = world.get("/v1/complaints", mine).json()["complaints"]
    assert [c["complaint_id"] for c in complaints] == [ids["li_complaint"]]
    assert world.get("/v1/orders", mine, customer_id=ids["zhang"]).status_code == 403
    assert (
        world.get("/v1/complaints", mine, customer_id=ids["zhang"]).status_code == 403
    )


def test_a_customer_posts_orders_and_complaints_only_for_themselves(
    world: World, two_customers: dict[str, Any]
) -> None:
    mine = world.headers("customer", two_customers["li"])
    for event in (order(two_customers["li"]), complaint(two_customers["li"])):
        response = world.client.post("/v1/events", json=event, headers=mine)
        assert response.status_code == 201
    for event in (order(two_customers["zhang"]), complaint(two_customers["zhang"])):
        response = world.client.post("/v1/events", json=event, headers=mine)
        assert response.status_code == 403


def test_no_key_is_a_401(world: World) -> None:
    for path in ("/v1/orders", "/v1/complaints", "/v1/households/top"):
        assert world.get(path, {}).status_code == 401
