"""The shortcut past FastAPI's routing answers exactly as the ordinary way does.

Each request is sent twice: as it is, which the shortcut takes when it may,
and with a query parameter no route knows, which FastAPI ignores but which
sends the request the ordinary way. The answers must match in status, body
and headers (the date and request id aside).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.bootstrap import Platform
from api.http import create_app
from api.http.shortcuts import Shortcuts
from api.keys import create_key, revoke_key
from tests.factories import contact_logged, envelope, new_id, registered

ORDINARY = "via=fastapi"
VARYING = {"date", "x-request-id"}


@pytest.fixture
def taken(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The paths the shortcut served."""
    served: list[str] = []
    serve = Shortcuts._serve

    async def counted(self: Shortcuts, *args: Any) -> None:
        served.append(args[2]["path"])
        await serve(self, *args)

    monkeypatch.setattr(Shortcuts, "_serve", counted)
    return served


@pytest.fixture
def client(platform: Platform, taken: list[str]) -> Iterator[TestClient]:
    with TestClient(create_app(platform)) as test_client:
        yield test_client


@pytest.fixture
def keys(platform: Platform) -> dict[str, str]:
    revoked = create_key(platform.db, "read")
    revoke_key(platform.db, revoked)
    return {
        "admin": create_key(platform.db, "admin"),
        "read": create_key(platform.db, "read"),
        "ingest": create_key(platform.db, "ingest"),
        "mailing": create_key(platform.db, "mailing"),
        "revoked": revoked,
    }


@pytest.fixture
def family(
    client: TestClient, platform: Platform, keys: dict[str, str], taken: list[str]
) -> str:
    wife, husband = registered(name="张丽华"), registered(name="李建国")
    wife_id = wife["data"]["customer_id"]
    declared = envelope(
        "RelationshipDeclared",
        {
            "customer_id": wife_id,
            "related_customer_id": husband["data"]["customer_id"],
            "relation": "spouse",
            "same_household": True,
        },
    )
    events = [wife, husband, declared, contact_logged(wife_id), contact_logged(wife_id)]
    response = client.post(
        "/v1/events",
        json={"events": events},
        headers={"Authorization": f"Bearer {keys['admin']}"},
    )
    assert response.status_code == 201, response.text
    platform.runner.catch_up()
    taken.clear()
    return str(wife_id)


def _both_ways(
    client: TestClient, method: str, path: str, **options: Any
) -> tuple[Any, Any]:
    short = client.request(method, path, **options)
    ordinary = client.request(method, f"{path}?{ORDINARY}", **options)
    return short, ordinary


def _without_request_id(response: Any) -> Any:
    """The body, an error's request id aside (each request has its own)."""
    if response.status_code < 400:
        return response.content
    body = response.json()
    assert body["error"].pop("request_id") == response.headers["x-request-id"]
    return body


def _same(short: Any, ordinary: Any) -> None:
    assert short.status_code == ordinary.status_code, (short.text, ordinary.text)
    assert _without_request_id(short) == _without_request_id(ordinary)
    assert {k: v for k, v in short.headers.items() if k not in VARYING} == {
        k: v for k, v in ordinary.headers.items() if k not in VARYING
    }


def _bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


@pytest.mark.parametrize("view", ["household", "contact-history"])
def test_a_customer_read_answers_the_same_both_ways(
    client: TestClient,
    keys: dict[str, str],
    family: str,
    view: str,
    taken: list[str],
) -> None:
    unknown = new_id()
    cases = [
        (f"/v1/customers/{family}/{view}", _bearer(keys["read"]), 200),
        (f"/v1/customers/{unknown}/{view}", _bearer(keys["admin"]), 404),
        (f"/v1/customers/{family}/{view}", {}, 401),
        (f"/v1/customers/{family}/{view}", {"Authorization": "Basic eDp5"}, 401),
        (f"/v1/customers/{family}/{view}", _bearer("crm_not_a_key"), 401),
        (f"/v1/customers/{family}/{view}", _bearer(keys["revoked"]), 401),
        (f"/v1/customers/{family}/{view}", _bearer(keys["ingest"]), 403),
        (f"/v1/customers/{family}/{view}", _bearer(keys["mailing"]), 403),
    ]
    for path, headers, status in cases:
        short, ordinary = _both_ways(client, "GET", path, headers=headers)
        assert short.status_code == status, (path, headers, short.text)
        _same(short, ordinary)
    assert taken == [path for path, _, _ in cases]
    body = client.get(
        f"/v1/customers/{family}/{view}", headers=_bearer(keys["read"])
    ).json()
    if view == "household":
        assert sorted(m["name"] for m in body["members"]) == ["张丽华", "李建国"]
    else:
        assert [e["type"] for e in body["entries"]].count("ContactLogged") == 2


def test_a_household_read_by_its_id_answers_the_same_both_ways(
    client: TestClient, keys: dict[str, str], family: str, taken: list[str]
) -> None:
    household = client.get(
        f"/v1/customers/{family}/household", headers=_bearer(keys["read"])
    ).json()["household_id"]
    taken.clear()
    path = f"/v1/households/{household}"
    cases = [
        (path, _bearer(keys["read"]), 200),
        (f"/v1/households/{new_id()}", _bearer(keys["read"]), 404),
        (path, {}, 401),
        (path, _bearer(keys["ingest"]), 403),
    ]
    for path_, headers, status in cases:
        short, ordinary = _both_ways(client, "GET", path_, headers=headers)
        assert short.status_code == status, (path_, headers, short.text)
        _same(short, ordinary)
    assert taken == [path_ for path_, _, _ in cases]
    body = client.get(path, headers=_bearer(keys["read"])).json()
    assert sorted(m["name"] for m in body["members"]) == ["张丽华", "李建国"]


def test_a_customer_key_is_refused_the_same_both_ways(
    client: TestClient, platform: Platform, family: str, taken: list[str]
) -> None:
    own = create_key(platform.db, "customer", customer_id=family)
    for view in ("household", "contact-history"):
        short, ordinary = _both_ways(
            client, "GET", f"/v1/customers/{family}/{view}", headers=_bearer(own)
        )
        assert short.status_code == 403
        _same(short, ordinary)
    assert len(taken) == 2


def test_other_forms_of_a_read_go_the_ordinary_way(
    client: TestClient, keys: dict[str, str], family: str, taken: list[str]
) -> None:
    headers = _bearer(keys["read"])
    upper = family.upper()
    assert client.get(f"/v1/customers/{upper}/household", headers=headers).json()[
        "members"
    ]
    not_an_id = client.get("/v1/customers/12345/household", headers=headers)
    assert not_an_id.status_code == 422
    limited = client.get(
        f"/v1/customers/{family}/contact-history?limit=1", headers=headers
    )
    assert len(limited.json()["entries"]) == 1
    assert client.get(f"/v1/customers/{family}", headers=headers).status_code == 200
    assert client.get("/v1/households/top", headers=headers).status_code == 200
    assert taken == [f"/v1/customers/{upper}/household"]  # a canonical UUID


def test_a_post_answers_the_same_both_ways(
    client: TestClient,
    platform: Platform,
    keys: dict[str, str],
    family: str,
    taken: list[str],
) -> None:
    stored = contact_logged(family)
    first = client.post("/v1/events", json=stored, headers=_bearer(keys["ingest"]))
    assert first.status_code == 201 and taken == ["/v1/events"]
    changed = dict(stored, source="branch:SH001")
    bad_type = envelope("NoSuchThing", {"customer_id": family})
    cases: list[tuple[dict[str, Any], dict[str, str], int]] = [
        ({"json": stored}, _bearer(keys["ingest"]), 201),  # a repeat: duplicate
        ({"json": changed}, _bearer(keys["ingest"]), 409),
        ({"json": bad_type}, _bearer(keys["ingest"]), 422),
        ({"json": {"events": []}}, _bearer(keys["ingest"]), 422),
        ({"content": b"{not json"}, _bearer(keys["ingest"]), 400),
        ({"json": stored}, _bearer(keys["read"]), 403),
        ({"json": stored}, {}, 401),
    ]
    for body, headers, status in cases:
        short, ordinary = _both_ways(
            client, "POST", "/v1/events", headers=headers, **body
        )
        assert short.status_code == status, (body, short.text)
        _same(short, ordinary)
    assert first.json()["results"][0]["status"] == "stored"
    repeat = client.post("/v1/events", json=stored, headers=_bearer(keys["ingest"]))
    assert repeat.json()["results"][0] == {
        **first.json()["results"][0],
        "status": "duplicate",
    }
    assert len(taken) == 1 + len(cases) + 1


def test_requests_taken_the_short_way_are_counted_under_their_route(
    client: TestClient, keys: dict[str, str], family: str, taken: list[str]
) -> None:
    client.get(f"/v1/customers/{family}/household", headers=_bearer(keys["read"]))
    metrics = client.get("/metrics", headers=_bearer(keys["admin"])).text
    assert taken == [f"/v1/customers/{family}/household"]
    assert 'route="/v1/customers/{customer_id}/household",status="200"' in metrics, (
        metrics
    )
