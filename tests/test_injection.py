"""Queries are parameterised everywhere: injection strings in every parameter of every read.

Every GET route of the OpenAPI schema is called with each injection string in
each of its query parameters (and in its free-text path parameters). Nothing
answers 5xx, every table still exists with the same rows, and a LIKE wildcard
matches only itself.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.bootstrap import Platform
from api.http import create_app
from api.http.views import id_of
from api.keys import create_key
from api.logging import configure_logging
from projections import households
from tests.factories import account_opened, envelope, new_id, registered

INJECTIONS = [
    "' OR '1'='1",
    "'; DROP TABLE customers; --",
    '" OR 1=1 --',
    "1; DELETE FROM crm_event_log",
    "1) OR (1=1",
    "王芳' UNION SELECT national_id_hash, name FROM customers --",
    "%' OR name LIKE '%",
    "%",
    "_",
    "\\",
    "$1",
    "%s",
    "?",
    "' ; SELECT pg_sleep(10) --",
    "../../../../etc/passwd",
    "0x27",
]


@pytest.fixture
def client(platform: Platform) -> Iterator[TestClient]:
    app = create_app(platform)
    with TestClient(app, raise_server_exceptions=False) as test_client:
        test_client.headers["Authorization"] = (
            f"Bearer {create_key(platform.db, 'admin')}"
        )
        yield test_client


@pytest.fixture
def ids(platform: Platform) -> dict[str, str]:
    """A small world: two customers, an account, an order, a complaint, a contact, a campaign."""
    wang = registered(name="王芳", line="北京市朝阳区建国路88号3号楼2单元501室")
    li = registered(name="李娜", line="上海市浦东新区世纪大道100弄5号1202室")
    customer_id = wang["data"]["customer_id"]
    account = account_opened(customer_id)
    order_id, complaint_id, campaign_id = new_id(), new_id(), new_id()
    events = [
        wang,
        li,
        account,
        envelope(
            "OrderPlaced",
            {
                "order_id": order_id,
                "customer_id": customer_id,
                "product": "稳健理财A款",
                "amount": "50000.00",
            },
        ),
        envelope(
            "ComplaintFiled",
            {
                "complaint_id": complaint_id,
                "customer_id": customer_id,
                "channel": "phone",
                "category": "理财产品",
                "description": "收益与宣传不符",
            },
        ),
        envelope(
            "ContactLogged",
            {
                "contact_id": new_id(),
                "customer_id": customer_id,
                "channel": "phone",
                "direction": "inbound",
                "topic": "理财咨询",
            },
        ),
        envelope(
            "CampaignLaunched",
            {
                "campaign_id": campaign_id,
                "name": "春节理财推广",
                "channel": "mail",
                "purpose": "marketing",
            },
        ),
    ]
    report = platform.ingestor.ingest(events, atomic=True)
    assert report.count("stored") == len(events)
    platform.runner.catch_up()
    with platform.db.transaction() as cur:
        household_id = id_of(households.household_of(cur, customer_id), "household_id")
    return {
        "customer_id": customer_id,
        "subject_id": customer_id,
        "household_id": household_id or new_id(),
        "account_id": account["data"]["account_id"],
        "order_id": order_id,
        "complaint_id": complaint_id,
        "campaign_id": campaign_id,
        "period": "2025-03",
    }


def table_rows(platform: Platform) -> dict[str, int]:
    with platform.db.transaction() as cur:
        if platform.settings.is_postgres:
            names = [
                r["table_name"]
                for r in cur.execute(
                    "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'"
                ).fetchall()
            ]
        else:
            names = [
                r["name"]
                for r in cur.execute(
                    "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
                ).fetchall()
            ]
        counts = {}
        for name in names:
            row = cur.execute(f'SELECT count(*) AS n FROM "{name}"').fetchone()
            counts[name] = int(row["n"]) if row else 0
    return counts


def get_routes(client: TestClient) -> list[tuple[str, list[dict[str, Any]]]]:
    schema = client.app.openapi()  # type: ignore[attr-defined]
    return [
        (path, operation.get("parameters", []))
        for path, item in schema["paths"].items()
        for method, operation in item.items()
        if method == "get" and path not in {"/metrics", "/openapi.json"}
    ]


def fill_path(path: str, parameters: list[dict[str, Any]], ids: dict[str, str]) -> str:
    for parameter in parameters:
        if parameter["in"] != "path":
            continue
        name = parameter["name"]
        enum = parameter.get("schema", {}).get("enum")
        value = enum[0] if enum else ids.get(name, new_id())
        path = path.replace("{" + name + "}", value)
    return path


def calls(
    client: TestClient, ids: dict[str, str], values: list[str]
) -> Iterator[tuple[str, dict[str, str]]]:
    for template, parameters in get_routes(client):
        url = fill_path(template, parameters, ids)
        for parameter in parameters:
            if parameter["in"] == "query":
                for value in values:
                    yield url, {parameter["name"]: value}
            elif parameter["in"] == "path" and "enum" not in parameter.get(
                "schema", {}
            ):
                for value in values:
                    injected = fill_path(
                        template.replace("{" + parameter["name"] + "}", value),
                        parameters,
                        ids,
                    )
                    yield injected, {}


def test_injection_strings_in_every_read_parameter_change_nothing(
    client: TestClient, platform: Platform, ids: dict[str, str]
) -> None:
    before = table_rows(platform)
    assert before["customers"] == 2
    failures = []
    count = 0
    for url, query in calls(client, ids, INJECTIONS):
        response = client.get(url, params=query)
        count += 1
        if response.status_code >= 500:
            failures.append((url, query, response.status_code, response.text[:200]))
    assert count > 300
    assert not failures
    assert table_rows(platform) == before
    assert client.get("/healthz").status_code == 200


def test_like_wildcards_match_only_themselves(
    client: TestClient, ids: dict[str, str]
) -> None:
    assert ids
    for wildcard in ["%", "_", "%%", "王%", "_芳"]:
        response = client.get("/v1/customers/search", params={"name": wildcard})
        assert response.status_code == 200
        assert response.json()["customers"] == [], wildcard
    found = client.get("/v1/customers/search", params={"name": "王芳"}).json()
    assert [c["customer_id"] for c in found["customers"]] == [ids["customer_id"]]


def test_nul_bytes_in_read_parameters_are_never_a_server_error(
    client: TestClient,
    platform: Platform,
    ids: dict[str, str],
    request: pytest.FixtureRequest,
) -> None:
    configure_logging("json")  # a plain traceback for the 500s, not a rich one
    count = 0
    for url, query in calls(client, ids, ["\x00", "王\x00芳", "\x1b[2J"]):
        if not query:
            continue  # a control character cannot even be sent in a path
        response = client.get(url, params=query)
        count += 1
        assert response.status_code < 500, (url, query, response.text[:200])
    assert count > 50
