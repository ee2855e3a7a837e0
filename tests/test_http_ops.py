"""Operations: health, readiness, metrics, request ids, and failures as clean errors."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient

from api.bootstrap import Platform
from api.http import create_app
from api.keys import create_key
from api.logging import configure_logging
from api.store.database import DatabaseUnavailable
from domain.catalogue import DATA_MODELS
from tests.factories import account_opened, new_id, registered


@pytest.fixture
def client(platform: Platform) -> Iterator[TestClient]:
    with TestClient(create_app(platform)) as test_client:
        key = create_key(platform.db, "admin")
        test_client.headers["Authorization"] = f"Bearer {key}"
        yield test_client


def assert_error_shape(body: dict[str, Any], code: str) -> None:
    assert set(body) == {"error"}
    assert set(body["error"]) == {"code", "message", "details", "request_id"}
    assert body["error"]["code"] == code
    assert "Traceback" not in body["error"]["message"]


def test_request_id_is_returned_and_a_sane_one_is_kept(client: TestClient) -> None:
    generated = client.get("/healthz").headers["X-Request-ID"]
    assert len(generated) >= 8
    mine = client.get("/healthz", headers={"X-Request-ID": "bad id; drop"})
    assert mine.headers["X-Request-ID"] not in ("bad id; drop", generated)
    kept = client.get("/readyz", headers={"X-Request-ID": "bj001-20250301-0001"})
    assert kept.headers["X-Request-ID"] == "bj001-20250301-0001"


def test_readyz_reports_the_log_head(client: TestClient) -> None:
    for name in ("孙丽", "马超"):
        assert client.post("/v1/events", json=registered(name=name)).status_code == 201
    body = client.get("/readyz").json()
    assert body["status"] == "ready"
    assert body["head"] == 2
    assert all(p["lag"] == 2 - p["position"] for p in body["projections"])


def test_metrics_expose_events_requests_and_projections(client: TestClient) -> None:
    singles = [registered(name=name) for name in ("朱红", "胡军", "郭敏")]
    for event in singles:
        client.post("/v1/events", json=event)
    first, second = registered(name="钱芳"), registered(name="秦岚")
    batch = [first, second, account_opened(first["data"]["customer_id"]), singles[0]]
    answer = client.post("/v1/events", json={"events": batch}).json()
    assert [r["status"] for r in answer["results"]][-1] == "duplicate"
    text = client.get("/metrics").text
    assert 'crm_events_stored_total{type="CustomerRegistered"} 5.0' in text
    assert 'crm_events_stored_total{type="AccountOpened"} 1.0' in text
    assert (
        'crm_http_requests_total{method="POST",route="/v1/events",status="201"} 4.0'
        in text
    )
    assert "crm_http_request_duration_seconds_bucket" in text
    assert "crm_event_log_head 6.0" in text
    # One post at a time: four groups of one, none of which waited.
    assert "crm_group_commit_groups_total 4.0" in text
    assert "crm_group_commit_requests_total 4.0" in text
    assert "crm_group_commit_waits_total 0.0" in text


def test_unknown_route_and_wrong_method_use_the_error_shape(
    client: TestClient,
) -> None:
    missing = client.get("/v1/nothing-here")
    assert missing.status_code == 404
    assert_error_shape(missing.json(), "not_found")
    wrong = client.delete("/v1/events")
    assert wrong.status_code == 405
    assert_error_shape(wrong.json(), "method_not_allowed")


def test_bad_query_parameter_is_a_422_naming_it(client: TestClient) -> None:
    response = client.get("/v1/households", params={"limit": 501})
    assert response.status_code == 422
    assert_error_shape(response.json(), "invalid_request")
    assert response.json()["error"]["details"][0]["field"] == "query.limit"


def test_min_position_not_reached_is_a_503_with_retry_after(
    client: TestClient, platform: Platform
) -> None:
    platform.settings = platform.settings.model_copy(update={"read_wait_seconds": 0.2})
    response = client.get(
        f"/v1/customers/{new_id()}", params={"min_position": 10_000_000}
    )
    assert response.status_code == 503
    assert int(response.headers["Retry-After"]) >= 1
    assert_error_shape(response.json(), "not_caught_up")


def test_database_gone_is_a_503_never_a_500(
    client: TestClient, platform: Platform, monkeypatch: pytest.MonkeyPatch
) -> None:
    @contextmanager
    def unavailable() -> Iterator[Any]:
        raise DatabaseUnavailable("connection refused")
        yield

    monkeypatch.setattr(platform.db, "transaction", unavailable)
    monkeypatch.setattr(platform.db, "read", unavailable)
    for response in (
        client.post("/v1/events", json=registered()),
        client.get("/readyz"),
        client.get(f"/v1/customers/{new_id()}"),
    ):
        assert response.status_code == 503
        assert response.headers["Retry-After"]
        assert_error_shape(response.json(), "unavailable")


@pytest.mark.parametrize(
    "error",
    [
        psycopg.OperationalError("server closed the connection unexpectedly"),
        sqlite3.OperationalError("database is locked"),
        DatabaseUnavailable("pool timeout"),
    ],
    ids=["psycopg", "sqlite-locked", "unavailable"],
)
def test_store_errors_while_writing_are_503(
    client: TestClient,
    platform: Platform,
    monkeypatch: pytest.MonkeyPatch,
    error: Exception,
) -> None:
    def fail(*_: Any, **__: Any) -> None:
        raise error

    monkeypatch.setattr(platform.ingestor, "ingest", fail)
    response = client.post("/v1/events", json=registered())
    assert response.status_code == 503
    assert_error_shape(response.json(), "unavailable")


def test_unexpected_error_is_a_500_with_the_request_id_and_no_trace(
    client: TestClient, platform: Platform, monkeypatch: pytest.MonkeyPatch
) -> None:
    def fail(*_: Any, **__: Any) -> None:
        raise RuntimeError("secret internals 110105198203154321")

    monkeypatch.setattr(platform.ingestor, "ingest", fail)
    response = client.post(
        "/v1/events", json=registered(), headers={"X-Request-ID": "trace-0000001"}
    )
    assert response.status_code == 500
    body = response.json()
    assert_error_shape(body, "internal_error")
    assert body["error"]["request_id"] == "trace-0000001"
    assert "secret" not in response.text
    assert 'route="/v1/events",status="500"' in client.get("/metrics").text


def test_openapi_publishes_every_event_type(client: TestClient) -> None:
    document = client.get("/openapi.json").json()
    schemas = document["components"]["schemas"]
    for name in DATA_MODELS:
        assert name in schemas
        assert schemas[f"{name}Event"]["properties"]["type"]["enum"] == [name]
    body = document["paths"]["/v1/events"]["post"]["requestBody"]
    content = body["content"]["application/json"]
    assert len(content["schema"]["oneOf"]) == 2
    assert content["examples"]["one"]["value"]["data"]["name"] == "王芳"
    assert schemas["OrderPlaced"]["properties"]["amount"]["type"] == "string"
    assert client.get("/docs").status_code == 200


@pytest.mark.parametrize("level", ["INFO", "WARNING"])
def test_each_request_is_logged_once_with_its_id_at_info_only(
    platform: Platform, capsys: pytest.CaptureFixture[str], level: str
) -> None:
    configure_logging("json", level)  # before the app: its request log is bound then
    with TestClient(create_app(platform)) as client:
        capsys.readouterr()
        assert client.get(
            "/healthz", headers={"X-Request-ID": "log-0000001"}
        ).is_success
        lines = [
            json.loads(line)
            for line in capsys.readouterr().err.splitlines()
            if line.startswith("{")
        ]
        key = create_key(platform.db, "admin")
        metrics = client.get("/metrics", headers={"Authorization": f"Bearer {key}"})
        assert 'route="/healthz",status="200"' in metrics.text
    logged = [line for line in lines if line["event"] == "http.request"]
    if level == "INFO":
        assert [
            (line["request_id"], line["route"], line["status"]) for line in logged
        ] == [("log-0000001", "/healthz", 200)]
    else:
        assert logged == []
