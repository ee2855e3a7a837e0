"""The role matrix: every endpoint by every role, plus missing, unknown and revoked keys."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from fastapi.testclient import TestClient
from httpx import Response

from api.bootstrap import Platform
from api.http import create_app
from api.http.security import ROUTE_ROLES
from api.keys import ROLES, create_key, revoke_key
from tests.factories import envelope, new_id, registered

Call = Callable[[TestClient, dict[str, str], str], Response]


def order(customer_id: str) -> dict[str, object]:
    return envelope(
        "OrderPlaced",
        {
            "order_id": new_id(),
            "customer_id": customer_id,
            "product": "安心理财三号",
            "amount": "20000.00",
        },
        source="app:mobile",
        actor="customer:王芳",
    )


CALLS: dict[str, Call] = {
    "events.post": lambda c, h, cid: c.post("/v1/events", json=order(cid), headers=h),
    "customers.get": lambda c, h, cid: c.get(f"/v1/customers/{cid}", headers=h),
    "customers.search": lambda c, h, _: c.get(
        "/v1/customers/search", params={"name": "王芳"}, headers=h
    ),
    "customers.household": lambda c, h, cid: c.get(
        f"/v1/customers/{cid}/household", headers=h
    ),
    "customers.contact_history": lambda c, h, cid: c.get(
        f"/v1/customers/{cid}/contact-history", headers=h
    ),
    "households.list": lambda c, h, _: c.get("/v1/households", headers=h),
    "households.get": lambda c, h, _: c.get(f"/v1/households/{new_id()}", headers=h),
    "households.contact_history": lambda c, h, _: c.get(
        f"/v1/households/{new_id()}/contact-history", headers=h
    ),
    "orders.get": lambda c, h, _: c.get(f"/v1/orders/{new_id()}", headers=h),
    "orders.list": lambda c, h, _: c.get("/v1/orders", headers=h),
    "orders.review_queue": lambda c, h, _: c.get("/v1/orders/review-queue", headers=h),
    "complaints.get": lambda c, h, _: c.get(f"/v1/complaints/{new_id()}", headers=h),
    "complaints.list": lambda c, h, _: c.get("/v1/complaints", headers=h),
    "accounts.get": lambda c, h, _: c.get(f"/v1/accounts/{new_id()}", headers=h),
    "accounts.statement": lambda c, h, _: c.get(
        f"/v1/accounts/{new_id()}/statements/2025-03", headers=h
    ),
    "households.top": lambda c, h, _: c.get("/v1/households/top", headers=h),
    "mailings.plan": lambda c, h, cid: c.post(
        f"/v1/campaigns/{new_id()}/mailing-plans",
        json={"request_id": new_id(), "customer_ids": [cid]},
        headers=h,
    ),
    "mailings.decision": lambda c, h, cid: c.get(
        f"/v1/campaigns/{new_id()}/decisions/{cid}", headers=h
    ),
    "mailings.report": lambda c, h, _: c.get(
        f"/v1/campaigns/{new_id()}/report", headers=h
    ),
    "audit.events": lambda c, h, _: c.get("/v1/audit/events", headers=h),
    "audit.verify": lambda c, h, _: c.get("/v1/audit/verify", headers=h),
    "households.history": lambda c, h, _: c.get(
        f"/v1/households/{new_id()}/history", headers=h
    ),
    "ops.readyz": lambda c, h, _: c.get("/readyz", headers=h),
    "ops.metrics": lambda c, h, _: c.get("/metrics", headers=h),
}


@pytest.fixture
def client(platform: Platform) -> Iterator[TestClient]:
    with TestClient(create_app(platform)) as test_client:
        yield test_client


@pytest.fixture
def customer_id(client: TestClient, platform: Platform) -> str:
    admin = {"Authorization": f"Bearer {create_key(platform.db, 'admin')}"}
    event = registered(name="王芳")
    assert client.post("/v1/events", json=event, headers=admin).status_code == 201
    return str(event["data"]["customer_id"])


def bearer(platform: Platform, role: str, customer_id: str) -> dict[str, str]:
    key = create_key(platform.db, role, customer_id if role == "customer" else None)
    return {"Authorization": f"Bearer {key}"}


# A customer key may use these routes, but only for its own records: asked for
# someone else's (here: an id that is not theirs) it is refused, never told 404.
OWN_RECORDS_ONLY = {
    "orders.get",
    "complaints.get",
    "accounts.get",
    "accounts.statement",
}


def test_every_route_is_in_the_matrix_and_tested() -> None:
    assert set(CALLS) == set(ROUTE_ROLES)


def test_each_role_on_each_endpoint(
    client: TestClient, platform: Platform, customer_id: str
) -> None:
    outcomes = {}
    for role in ROLES:
        headers = bearer(platform, role, customer_id)
        for route, call in CALLS.items():
            outcomes[route, role] = call(client, headers, customer_id).status_code
    for (route, role), status in outcomes.items():
        if role == "customer" and route in OWN_RECORDS_ONLY:
            assert status == 403, (route, role, status)
        elif role in ROUTE_ROLES[route]:
            # Reads may be 404/501 while views are empty or absent: never refused.
            assert status not in (401, 403) and status < 500, (route, role, status)
        else:
            assert status == 403, (route, role, status)
    assert outcomes["events.post", "ingest"] == 201
    assert outcomes["events.post", "customer"] == 201


def test_no_key_or_an_unknown_key_is_a_401(
    client: TestClient, customer_id: str
) -> None:
    for route, call in CALLS.items():
        for headers in (
            {},
            {"Authorization": "Bearer crm_not-a-real-key"},
            {"Authorization": "Basic d2FuZzpmYW5n"},
        ):
            response = call(client, headers, customer_id)
            assert response.status_code == 401, (route, headers)
            assert response.json()["error"]["code"] == "unauthorized"


def test_a_revoked_key_is_a_401(client: TestClient, platform: Platform) -> None:
    key = create_key(platform.db, "admin")
    headers = {"Authorization": f"Bearer {key}"}
    assert client.get("/readyz", headers=headers).status_code == 200
    assert revoke_key(platform.db, key) == 1
    assert client.get("/readyz", headers=headers).status_code == 401


def test_healthz_needs_no_key(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}


def test_a_customer_key_is_bound_to_its_customer(
    client: TestClient, platform: Platform, customer_id: str
) -> None:
    headers = bearer(platform, "customer", customer_id)
    other = new_id()
    assert (
        client.post("/v1/events", json=order(other), headers=headers).status_code == 403
    )
    assert client.get(f"/v1/customers/{other}", headers=headers).status_code == 403
    not_theirs = registered(customer_id, name="王芳")
    response = client.post("/v1/events", json=not_theirs, headers=headers)
    assert response.status_code == 403
    mixed = {"events": [order(customer_id), order(other)]}
    assert client.post("/v1/events", json=mixed, headers=headers).status_code == 403
    complaint = envelope(
        "ComplaintFiled",
        {
            "complaint_id": new_id(),
            "customer_id": customer_id,
            "channel": "app",
            "category": "服务态度",
            "description": "柜台办理业务等候时间过长",
        },
    )
    both = {"events": [order(customer_id), complaint]}
    assert client.post("/v1/events", json=both, headers=headers).status_code == 201
