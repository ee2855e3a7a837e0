"""Hostile and broken input: a table of bad requests against POST /v1/events, the reads and `crm ingest`.

Every bad request gets a 4xx naming the field, stores nothing, and leaves the
service healthy. Valid but unusual text (emoji, combining marks, right-to-left,
SQL-looking strings) is stored and read back exactly.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from api.bootstrap import Platform
from api.cli import cli
from api.http import create_app
from api.keys import create_key
from tests.factories import envelope, new_id, registered

MIB = 1024 * 1024
Mutation = Callable[[dict[str, Any]], None]


def _set(path: str, value: Any) -> Mutation:
    def mutate(event: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        target = event
        for part in parents:
            target = target[part]
        target[last] = value

    return mutate


def _drop(path: str) -> Mutation:
    def mutate(event: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        target = event
        for part in parents:
            target = target[part]
        del target[last]

    return mutate


def _nested(depth: int) -> Any:
    value: Any = "底"
    for _ in range(depth):
        value = {"x": value}
    return value


# (case id, mutation of a valid CustomerRegistered envelope, field named in the 422)
BAD_REGISTRATIONS: list[tuple[str, Mutation, str]] = [
    ("event_id not a uuid", _set("event_id", "not-a-uuid"), "event_id"),
    ("event_id a number", _set("event_id", 12345), "event_id"),
    ("event_id path-like", _set("event_id", "../../etc/passwd"), "event_id"),
    ("missing event_id", _drop("event_id"), "event_id"),
    ("missing data", _drop("data"), "data"),
    ("type unknown", _set("type", "CustomerTeleported"), "type"),
    ("type a list", _set("type", ["CustomerRegistered"]), "type"),
    ("unknown envelope field", _set("priority", "high"), "priority"),
    (
        "occurred_at Feb 30",
        _set("occurred_at", "2025-02-30T10:00:00+08:00"),
        "occurred_at",
    ),
    (
        "occurred_at without offset",
        _set("occurred_at", "2025-03-01T10:00:00"),
        "occurred_at",
    ),
    ("occurred_at a number", _set("occurred_at", 1740794400), "occurred_at"),
    ("source empty", _set("source", ""), "source"),
    ("source with NUL", _set("source", "branch:\x00BJ001"), "source"),
    ("actor with escape", _set("actor", "officer:\x1b[31m王芳"), "actor"),
    ("customer_id not a uuid", _set("data.customer_id", "123"), "data.customer_id"),
    (
        "customer_id path-like",
        _set("data.customer_id", "../../customers/1"),
        "data.customer_id",
    ),
    ("customer_id a number", _set("data.customer_id", 42), "data.customer_id"),
    ("missing customer_id", _drop("data.customer_id"), "data.customer_id"),
    ("unknown data field", _set("data.vip", True), "data.vip"),
    ("name a number", _set("data.name", 42), "data.name"),
    ("name with NUL", _set("data.name", "王\x00芳"), "data.name"),
    ("name with bell", _set("data.name", "王\x07芳"), "data.name"),
    ("name 1 MiB", _set("data.name", "王" * (MIB // 3)), "data.name"),
    ("address a string", _set("data.address", "北京市朝阳区"), "data.address"),
    (
        "address line 1 MiB",
        _set("data.address.line", "路" * (MIB // 3)),
        "data.address.line",
    ),
    ("address deeply nested", _set("data.address", _nested(200)), "data.address"),
    ("birth date Feb 30", _set("data.birth_date", "1990-02-30"), "data.birth_date"),
    ("birth date a number", _set("data.birth_date", 19900101), "data.birth_date"),
    (
        "branch code SQL",
        _set("data.branch_code", "BJ001'; DROP TABLE customers;--"),
        "data.branch_code",
    ),
]

# Money: (case id, balance value) on a BalanceReported
BAD_MONEY: list[tuple[str, Any]] = [
    ("float", 1234.5),
    ("integer", 1234),
    ("NaN string", "NaN"),
    ("Infinity string", "Infinity"),
    ("-Infinity string", "-Infinity"),
    ("three decimals", "1.234"),
    ("too many digits", "1" * 30),
    ("words", "一千元"),
    ("empty", ""),
]

# Bodies that are not JSON at all, or not an event: (case id, raw body, status, field)
BAD_BODIES: list[tuple[str, bytes, int, str]] = [
    ("empty body", b"", 400, "body"),
    ("malformed", b'{"event_id": ', 400, "body"),
    ("truncated event", orjson.dumps(registered())[:-7], 400, "body"),
    ("not UTF-8", b'{"type": "\xff\xfe"}', 400, "body"),
    ("NaN literal", b'{"events": [NaN]}', 400, "body"),
    ("nested 100000 deep", b"[" * 100_000 + b"]" * 100_000, 400, "body"),
    ("a JSON array", b"[1, 2, 3]", 422, "body"),
    ("a JSON string", b'"CustomerRegistered"', 422, "body"),
    ("events not a list", b'{"events": {"a": 1}}', 422, "events"),
    ("events empty", b'{"events": []}', 422, "events"),
    (
        "100000 events",
        b'{"events": [' + b",".join([b"{}"] * 100_000) + b"]}",
        422,
        "events",
    ),
    ("1001 events", b'{"events": [' + b",".join([b"{}"] * 1001) + b"]}", 422, "events"),
]

# Strings that must be stored and read back byte for byte.
EXACT_TEXT = [
    "王芳😀🏦",
    "Zoë e\u0301 ñ\u0303",  # combining marks, not normalised
    "مرحبا بالعالم",  # right to left
    "\u202e张伟\u202c",  # right-to-left override around a name
    "Robert'); DROP TABLE customers;--",
    "' OR '1'='1",
    "张\u200d伟",  # zero-width joiner
    "𠀀𪚥",  # outside the basic multilingual plane
]


@pytest.fixture
def client(platform: Platform) -> Iterator[TestClient]:
    with TestClient(create_app(platform)) as test_client:
        test_client.headers["Authorization"] = (
            f"Bearer {create_key(platform.db, 'admin')}"
        )
        yield test_client


def logged(platform: Platform) -> int:
    with platform.db.transaction() as cur:
        row = cur.execute("SELECT count(*) AS n FROM crm_event_log").fetchone()
    return int(row["n"]) if row else 0


def fields(response: Any) -> list[str]:
    return [d.get("field") for d in response.json()["error"]["details"]]


def names(found: list[str], field: str) -> bool:
    """The field, or one inside it (data.address names data.address.line too)."""
    return any(f == field or f.startswith(field + ".") for f in found)


def assert_rejected(
    client: TestClient,
    platform: Platform,
    body: bytes,
    status: int,
    field: str,
    case: str = "",
) -> None:
    before = logged(platform)
    response = client.post(
        "/v1/events", content=body, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == status, (case, response.text[:500])
    assert names(fields(response), field), (case, response.text[:500])
    assert logged(platform) == before
    assert client.get("/healthz").status_code == 200


def test_bad_envelopes_are_rejected_naming_the_field(
    client: TestClient, platform: Platform
) -> None:
    good = registered(name="陈静")
    for case, mutate, field in BAD_REGISTRATIONS:
        event = orjson.loads(orjson.dumps(good))
        mutate(event)
        # Alone, and as the second event of a batch whose first event is valid.
        assert_rejected(client, platform, orjson.dumps(event), 422, field, case)
        batch = {"events": [registered(name="周杰"), event]}
        assert_rejected(client, platform, orjson.dumps(batch), 422, field, case)
    assert logged(platform) == 0


def test_bad_money_is_rejected_naming_the_field(
    client: TestClient, platform: Platform
) -> None:
    for case, balance in BAD_MONEY:
        event = envelope(
            "BalanceReported",
            {"account_id": new_id(), "balance": balance, "as_of": "2025-02-28"},
        )
        assert_rejected(
            client, platform, orjson.dumps(event), 422, "data.balance", case
        )
    fee = envelope(
        "FeeCharged", {"account_id": new_id(), "amount": "-5.00", "kind": "年费"}
    )
    assert_rejected(client, platform, orjson.dumps(fee), 422, "data.amount")


def test_bodies_that_are_not_events(client: TestClient, platform: Platform) -> None:
    for case, body, status, field in BAD_BODIES:
        assert_rejected(client, platform, body, status, field, case)


def test_a_body_over_the_limit_is_413_and_stores_nothing(
    client: TestClient, platform: Platform
) -> None:
    limit = platform.settings.max_body_bytes
    events = [registered(name="王芳") for _ in range(limit // 250)]
    body = orjson.dumps({"events": events})
    assert len(body) > limit
    response = client.post("/v1/events", content=body)
    assert response.status_code == 413
    assert logged(platform) == 0


def test_unusual_valid_text_is_stored_and_read_back_exactly(
    client: TestClient, platform: Platform
) -> None:
    posted = []
    for text in EXACT_TEXT:
        event = registered(name=text[:200], line=f"北京市朝阳区{text}路1号")
        event["actor"] = f"officer:{text}"[:200]
        response = client.post("/v1/events", json=event)
        assert response.status_code == 201, response.text
        posted.append((event, response.json()["position"]))
    platform.runner.catch_up()
    for event, _ in posted:
        customer_id = event["data"]["customer_id"]
        profile = client.get(f"/v1/customers/{customer_id}")
        assert profile.status_code == 200, profile.text
        assert profile.json()["name"] == event["data"]["name"]
        assert (
            orjson.dumps(profile.json()).count(
                orjson.dumps(event["data"]["address"]["line"])
            )
            >= 1
        )
    audit = client.get("/v1/audit/events", params={"limit": 100})
    if audit.status_code == 200:  # the audit log, where present, keeps the envelope
        actors = {e.get("actor") for e in audit.json()["events"]}
        assert {e["actor"] for e, _ in posted} <= actors


# reads ---------------------------------------------------------------------------

SOME_ID = "0d7c1f5a-3b2e-4c8d-9e6f-1a2b3c4d5e6f"

# (path, query, field named in the 422)
BAD_READS: list[tuple[str, dict[str, Any], str]] = [
    ("/v1/customers/not-a-uuid", {}, "path.customer_id"),
    ("/v1/customers/1%27%20OR%201=1", {}, "path.customer_id"),
    (f"/v1/customers/{SOME_ID}", {"min_position": -1}, "query.min_position"),
    (f"/v1/customers/{SOME_ID}", {"min_position": "abc"}, "query.min_position"),
    (
        f"/v1/customers/{SOME_ID}/household",
        {"min_position": "1e3"},
        "query.min_position",
    ),
    ("/v1/customers/search", {}, "query"),
    ("/v1/customers/search", {"name": "王" * 201}, "query.name"),
    ("/v1/customers/search", {"name": "王芳", "limit": 501}, "query.limit"),
    ("/v1/households", {"limit": 0}, "query.limit"),
    ("/v1/households", {"limit": 100_000}, "query.limit"),
    ("/v1/households", {"limit": "ten"}, "query.limit"),
    ("/v1/households", {"branch_code": "B" * 33}, "query.branch_code"),
    ("/v1/households", {"cursor": "c" * 201}, "query.cursor"),
    ("/v1/households/..%2F..%2Fetc", {}, "path.household_id"),
    (
        f"/v1/customers/{SOME_ID}/contact-history",
        {"since": "2025-02-30T00:00:00+08:00"},
        "query.since",
    ),
    (
        f"/v1/customers/{SOME_ID}/contact-history",
        {"since": "2025-03-01T10:00:00"},
        "query.since",
    ),
    (
        f"/v1/households/{SOME_ID}/contact-history",
        {"until": "yesterday"},
        "query.until",
    ),
    (f"/v1/households/{SOME_ID}/contact-history", {"limit": 501}, "query.limit"),
    ("/v1/orders", {"customer_id": "../../x"}, "query.customer_id"),
    ("/v1/orders", {"limit": -5}, "query.limit"),
    ("/v1/orders/not-a-uuid", {}, "path.order_id"),
    ("/v1/complaints", {"status": "open' OR '1'='1"}, "query.status"),
    ("/v1/complaints/not-a-uuid", {}, "path.complaint_id"),
    ("/v1/accounts/not-a-uuid", {}, "path.account_id"),
    (f"/v1/accounts/{SOME_ID}/statements/2025-13", {}, "path.period"),
    (f"/v1/accounts/{SOME_ID}/statements/2025-02-30", {}, "path.period"),
    ("/v1/households/top", {"limit": 501}, "query.limit"),
    (f"/v1/campaigns/{SOME_ID}/decisions/not-a-uuid", {}, "path.customer_id"),
    ("/v1/campaigns/x/report", {}, "path.campaign_id"),
]


def test_bad_read_parameters_are_422_naming_the_field(client: TestClient) -> None:
    for path, query, field in BAD_READS:
        response = client.get(path, params=query)
        if response.status_code == 404 and field.startswith("path."):
            continue  # an id with a slash never reaches the route: 404 is fine
        assert response.status_code == 422, (path, query, response.text[:300])
        assert names(fields(response), field), (path, response.text)
    assert client.get("/healthz").status_code == 200


def test_bad_mailing_plan_bodies(client: TestClient, platform: Platform) -> None:
    url = f"/v1/campaigns/{SOME_ID}/mailing-plans"
    cases: list[tuple[bytes, int]] = [
        (b'{"request_id": ', 422),
        (orjson.dumps({"request_id": "x", "customer_ids": [SOME_ID]}), 422),
        (orjson.dumps({"request_id": new_id(), "customer_ids": ["../etc"]}), 422),
        (orjson.dumps({"request_id": new_id()}), 422),
        (orjson.dumps({"request_id": new_id(), "customer_ids": [], "x": 1}), 422),
        (orjson.dumps({"request_id": new_id(), "value_tiers": ["gold"]}), 422),
    ]
    for body, status in cases:
        before = logged(platform)
        response = client.post(
            url, content=body, headers={"Content-Type": "application/json"}
        )
        assert response.status_code == status, response.text
        assert logged(platform) == before
    too_many = {"request_id": new_id(), "customer_ids": [SOME_ID] * 100_001}
    response = client.post(url, json=too_many)
    assert response.status_code in (413, 422)


# crm ingest ------------------------------------------------------------------------


def test_crm_ingest_reports_bad_lines_by_number_and_stores_the_good_ones(
    platform: Platform, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    good = [registered(name="王芳"), registered(name="李娜")]
    bad_event = registered(name="张伟")
    bad_event["data"]["birth_date"] = "1990-02-30"
    money = envelope(
        "BalanceReported",
        {"account_id": new_id(), "balance": 1.5, "as_of": "2025-02-28"},
    )
    lines = [
        orjson.dumps(good[0]),  # 1
        b'{"event_id": "truncated',  # 2
        orjson.dumps(bad_event),  # 3
        b"",  # 4: blank lines are skipped
        orjson.dumps(good[1]),  # 5
        orjson.dumps(money),  # 6
        b'["not", "an", "object"]',  # 7
        b'{"events": ' + b"[" * 5000,  # 8
    ]
    path = tmp_path / "events.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    monkeypatch.setenv("CRM_DATABASE_URL", platform.settings.database_url)
    monkeypatch.setenv("CRM_SECRET_KEY", "test-secret-key")
    monkeypatch.setenv("CRM_LOG_FORMAT", "json")
    result = CliRunner().invoke(cli, ["ingest", str(path)])
    assert result.exit_code == 1
    errors = result.output
    assert "line 2:" in errors
    assert "line 3: data.birth_date" in errors
    assert "line 6: data.balance" in errors
    assert "line 7:" in errors
    assert "line 8:" in errors
    assert "stored 2, duplicates 0, rejected 5" in errors
    assert "Traceback" not in errors
    assert logged(platform) == 2
    strict = CliRunner().invoke(cli, ["ingest", "--strict", str(path)])
    assert strict.exit_code == 1
    assert logged(platform) == 2


def test_crm_ingest_reports_a_line_that_is_not_utf8(
    platform: Platform, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    good = [registered(name="王芳"), registered(name="李娜")]
    lines = [orjson.dumps(good[0]), b'{"name": "\xff\xfe"}', orjson.dumps(good[1])]
    path = tmp_path / "events.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    monkeypatch.setenv("CRM_DATABASE_URL", platform.settings.database_url)
    monkeypatch.setenv("CRM_SECRET_KEY", "test-secret-key")
    result = CliRunner().invoke(cli, ["ingest", str(path)])
    assert result.exit_code == 1
    assert "line 2: not valid JSON" in result.output
    assert "stored 2, duplicates 0, rejected 1" in result.output
    assert logged(platform) == 2


def test_every_body_over_the_limit_is_413(
    client: TestClient, platform: Platform
) -> None:
    limit = platform.settings.max_body_bytes
    body = b'{"request_id": "' + b"x" * (limit + 1) + b'"}'
    response = client.post(
        f"/v1/campaigns/{SOME_ID}/mailing-plans",
        content=body,
        headers={"Content-Type": "application/json"},
    )
    assert response.status_code == 413
