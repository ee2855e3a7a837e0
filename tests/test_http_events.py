"""POST /v1/events: validation, idempotency, atomic batches, size limits."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient

from api.bootstrap import Platform
from api.http import create_app
from api.keys import create_key
from tests.factories import account_opened, envelope, new_id, registered


@pytest.fixture
def client(platform: Platform) -> Iterator[TestClient]:
    with TestClient(create_app(platform)) as test_client:
        key = create_key(platform.db, "ingest")
        test_client.headers["Authorization"] = f"Bearer {key}"
        yield test_client


def head(platform: Platform) -> int:
    return int(platform.app.recorder.max_notification_id() or 0)


def error_fields(response: Any) -> list[str]:
    return [d["field"] for d in response.json()["error"]["details"]]


def test_one_event_is_stored_with_its_position(
    client: TestClient, platform: Platform
) -> None:
    event = registered(name="李娜", line="上海市浦东新区世纪大道100号15楼1502室")
    response = client.post("/v1/events", json=event)
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["results"] == [
        {"event_id": event["event_id"], "status": "stored", "position": head(platform)}
    ]
    assert body["position"] == head(platform)


def test_reposting_is_a_duplicate_stored_once(
    client: TestClient, platform: Platform
) -> None:
    customer = registered(name="张伟")
    batch = {"events": [customer, account_opened(customer["data"]["customer_id"])]}
    first = client.post("/v1/events", json=batch)
    assert first.status_code == 201
    before = head(platform)
    again = client.post("/v1/events", json=batch)
    assert again.status_code == 201
    assert [r["status"] for r in again.json()["results"]] == ["duplicate"] * 2
    assert again.json()["results"] == [
        {**r, "status": "duplicate"} for r in first.json()["results"]
    ]
    assert head(platform) == before


def test_same_event_id_other_content_is_a_409_naming_it(client: TestClient) -> None:
    event = registered(name="刘洋")
    assert client.post("/v1/events", json=event).status_code == 201
    changed = {**event, "data": {**event["data"], "name": "刘阳"}}
    response = client.post("/v1/events", json=changed)
    assert response.status_code == 409
    error = response.json()["error"]
    assert error["code"] == "event_id_conflict"
    assert error["details"][0]["event_id"] == event["event_id"]
    assert event["event_id"] in error["message"]


def test_one_bad_event_rejects_the_whole_batch(
    client: TestClient, platform: Platform
) -> None:
    good = [registered(name=name) for name in ("陈静", "杨磊", "赵敏")]
    bad = registered(name="黄勇")
    bad["data"]["address"] = {"line": ""}
    before = head(platform)
    response = client.post("/v1/events", json={"events": [*good[:2], bad, good[2]]})
    assert response.status_code == 422
    details = response.json()["error"]["details"]
    assert details[0]["index"] == 2
    assert details[0]["event_id"] == bad["event_id"]
    assert details[0]["field"] == "data.address.line"
    assert head(platform) == before
    stored = client.post("/v1/events", json={"events": good})
    assert [r["status"] for r in stored.json()["results"]] == ["stored"] * 3


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (lambda e: e["data"].update(nickname="小芳"), "data.nickname"),
        (lambda e: e["data"].pop("name"), "data.name"),
        (lambda e: e.update(occurred_at="2025-03-01T10:00:00"), "occurred_at"),
        (lambda e: e.update(type="MailingScheduled"), "type"),
    ],
    ids=["unknown-field", "missing-field", "no-offset", "platform-made-type"],
)
def test_invalid_event_is_a_422_naming_the_field(
    client: TestClient, platform: Platform, change: Any, field: str
) -> None:
    event = registered(name="周杰")
    change(event)
    response = client.post("/v1/events", json=event)
    assert response.status_code == 422, response.text
    assert response.json()["error"]["code"] == "invalid_event"
    assert field in error_fields(response)
    assert head(platform) == 0


def test_money_as_a_float_is_refused(client: TestClient) -> None:
    customer = registered(name="吴霞")
    assert client.post("/v1/events", json=customer).status_code == 201
    order = envelope(
        "OrderPlaced",
        {
            "order_id": new_id(),
            "customer_id": customer["data"]["customer_id"],
            "product": "安心理财三号",
            "amount": 50000.5,
        },
    )
    response = client.post("/v1/events", json=order)
    assert response.status_code == 422
    assert "data.amount" in error_fields(response)


def test_broken_rule_is_a_422_with_the_rule_code(
    client: TestClient, platform: Platform
) -> None:
    response = client.post("/v1/events", json=account_opened(new_id()))
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "unknown_entity"
    assert error_fields(response) == ["data.customer_id"]
    assert head(platform) == 0


def test_too_many_events_is_a_422_naming_events(
    client: TestClient, platform: Platform
) -> None:
    events = [registered() for _ in range(platform.settings.max_batch_events + 1)]
    response = client.post("/v1/events", json={"events": events})
    assert response.status_code == 422
    assert error_fields(response) == ["events"]
    assert head(platform) == 0


def test_a_body_that_is_not_an_event_is_a_422(client: TestClient) -> None:
    bodies: list[Any] = [[1, 2], {"events": "王芳"}, {"events": []}]
    for body in bodies:
        response = client.post("/v1/events", json=body)
        assert response.status_code == 422, body


def test_non_json_is_a_400_in_the_error_shape(client: TestClient) -> None:
    for body in (b"{not json", "王芳".encode("gbk"), b""):
        response = client.post(
            "/v1/events", content=body, headers={"Content-Type": "application/json"}
        )
        assert response.status_code == 400
        assert response.json()["error"]["code"] == "invalid_json"


def test_body_over_the_limit_is_a_413(client: TestClient, platform: Platform) -> None:
    platform.settings = platform.settings.model_copy(update={"max_body_bytes": 2000})
    events = {"events": [registered() for _ in range(10)]}
    body = orjson.dumps(events)
    assert len(body) > 2000
    declared = client.post("/v1/events", content=body)
    assert declared.status_code == 413
    assert declared.json()["error"]["code"] == "payload_too_large"

    def chunks() -> Iterator[bytes]:
        for start in range(0, len(body), 500):
            yield body[start : start + 500]

    streamed = client.post("/v1/events", content=chunks())
    assert streamed.status_code == 413
    assert head(platform) == 0
    small = client.post("/v1/events", json=registered())
    assert small.status_code == 201


def test_the_group_commit_gathers_on_the_event_loop(
    client: TestClient, platform: Platform
) -> None:
    """In an HTTP process a group waits for the posts the event loop is
    parsing (`api/http/gathering.py`), not a fixed time: the loop serving the
    requests goes round at once when idle."""
    gather = platform.committer.gather  # type: ignore[attr-defined]
    assert gather is not time.sleep
    started = time.monotonic()
    gather(10.0)
    assert time.monotonic() - started < 5
    response = client.post("/v1/events", json=registered(name="马超"))
    assert response.status_code == 201, response.text
