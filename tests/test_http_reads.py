"""Reads of the views over HTTP (skipped until the view modules are part of the build)."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal

import pytest
from fastapi.testclient import TestClient

from api.bootstrap import Platform
from api.http import create_app
from api.keys import create_key
from projections import contact_history, customers, households
from projections.household_value import TierSettings
from projections.runner import ProjectionRunner
from tests.factories import account_opened, envelope, new_id, registered

NATIONAL_ID = "110105198203154321"


# Half private, half premier: every household is in `Tiers.top`, so counting it
# shows whether the cache ranked them again.
EVERY_HOUSEHOLD_TOP = TierSettings(private_pct=Decimal("50"), premier_pct=Decimal("50"))


@pytest.fixture
def client(platform: Platform) -> Iterator[TestClient]:
    platform.runner = ProjectionRunner(
        platform.app,
        platform.db,
        [
            customers.CustomersProjection(),
            households.HouseholdsProjection(),
            contact_history.ContactHistoryProjection(),
        ],
    )
    with TestClient(create_app(platform)) as test_client:
        key = create_key(platform.db, "admin")
        test_client.headers["Authorization"] = f"Bearer {key}"
        yield test_client


@pytest.fixture
def wang_fang(client: TestClient, platform: Platform) -> str:
    event = registered(name="王芳", national_id=NATIONAL_ID, phone="+86 138 0013 8000")
    spouse = registered(name="李强")
    contact = envelope(
        "ContactLogged",
        {
            "contact_id": new_id(),
            "customer_id": event["data"]["customer_id"],
            "channel": "phone",
            "direction": "inbound",
            "topic": "咨询理财产品",
        },
    )
    declared = envelope(
        "RelationshipDeclared",
        {
            "customer_id": event["data"]["customer_id"],
            "related_customer_id": spouse["data"]["customer_id"],
            "relation": "spouse",
            "same_household": True,
        },
    )
    response = client.post(
        "/v1/events", json={"events": [event, spouse, declared, contact]}
    )
    assert response.status_code == 201, response.text
    platform.runner.catch_up()
    return str(event["data"]["customer_id"])


def test_profile_shows_only_the_last_four_of_the_national_id(
    client: TestClient, wang_fang: str
) -> None:
    response = client.get(f"/v1/customers/{wang_fang}")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["customer_id"] == wang_fang
    assert body["national_id_last4"] == NATIONAL_ID[-4:]
    assert NATIONAL_ID not in response.text
    assert "hash" not in response.text
    assert body["household_id"]


def test_search_by_national_id_matches_by_hash_and_never_echoes(
    client: TestClient, wang_fang: str
) -> None:
    found = client.get("/v1/customers/search", params={"national_id": NATIONAL_ID})
    assert found.status_code == 200
    assert [c["customer_id"] for c in found.json()["customers"]] == [wang_fang]
    assert NATIONAL_ID not in found.text
    other = client.get(
        "/v1/customers/search", params={"national_id": "110105199001011234"}
    )
    assert other.json()["customers"] == []


def test_household_of_a_customer_lists_both_spouses(
    client: TestClient, wang_fang: str, platform: Platform
) -> None:
    response = client.get(f"/v1/customers/{wang_fang}/household")
    assert response.status_code == 200, response.text
    body = response.json()
    assert {m["name"] for m in body["members"]} == {"王芳", "李强"}
    assert body["position"] == platform.runner.position("households")
    again = client.get(f"/v1/households/{body['household_id']}")
    assert again.json()["household_id"] == body["household_id"]


def test_contact_history_of_a_customer(client: TestClient, wang_fang: str) -> None:
    response = client.get(
        f"/v1/customers/{wang_fang}/contact-history", params={"limit": 500}
    )
    assert response.status_code == 200, response.text
    entries = response.json()["entries"]
    assert entries
    naive = client.get(
        f"/v1/customers/{wang_fang}/contact-history",
        params={"since": "2025-03-01T00:00:00"},
    )
    assert naive.status_code == 422


def test_unknown_ids_are_404(client: TestClient, wang_fang: str) -> None:
    for path in (
        f"/v1/customers/{new_id()}",
        f"/v1/customers/{new_id()}/household",
        f"/v1/households/{new_id()}",
        f"/v1/customers/{new_id()}/contact-history",
        f"/v1/households/{new_id()}/contact-history",
    ):
        response = client.get(path)
        assert response.status_code == 404, path
        assert response.json()["error"]["code"] == "not_found"


def test_min_position_waits_for_the_views(
    client: TestClient, platform: Platform
) -> None:
    event = registered(name="赵敏")
    position = client.post("/v1/events", json=event).json()["position"]
    platform.runner.start()
    try:
        customer_id = event["data"]["customer_id"]
        response = client.get(
            f"/v1/customers/{customer_id}", params={"min_position": position}
        )
    finally:
        platform.runner.stop()
    assert response.status_code == 200
    assert response.json()["name"] == "赵敏"


def test_the_household_view_summarises_holdings_complaints_and_contacts(
    platform: Platform,
) -> None:
    husband = registered(name="王建国", line="北京市朝阳区建国路88号3号楼2单元501室")
    wife = registered(name="李秀英", line="北京市朝阳区建国路８８号3栋2单元501房")
    hid, wid = husband["data"]["customer_id"], wife["data"]["customer_id"]
    deposit, fund = account_opened(hid), account_opened(wid, product="fund")
    balance = envelope(
        "BalanceReported",
        {
            "account_id": deposit["data"]["account_id"],
            "balance": "250000.00",
            "as_of": "2025-02-28",
        },
    )
    complaint = envelope(
        "ComplaintFiled",
        {
            "complaint_id": new_id(),
            "customer_id": wid,
            "channel": "phone",
            "category": "fees",
            "description": "年费扣款有误",
        },
    )
    contact = envelope(
        "ContactLogged",
        {
            "contact_id": new_id(),
            "customer_id": hid,
            "channel": "visit",
            "direction": "outbound",
            "topic": "理财回访",
        },
        occurred_at="2025-03-05T15:00:00+08:00",
    )
    platform.ingestor.ingest(
        [husband, wife, deposit, fund, balance, complaint, contact], atomic=True
    )
    platform.runner.catch_up()
    key = create_key(platform.db, "read")
    with TestClient(create_app(platform)) as client:
        body = client.get(
            f"/v1/customers/{hid}/household", headers={"Authorization": f"Bearer {key}"}
        ).json()
    assert {m["customer_id"] for m in body["members"]} == {hid, wid}
    assert body["accounts"] == {
        "count": 2,
        "total_balance": "250000.00",
        "products": ["deposit", "fund"],
    }
    assert body["open_complaints"] == 1
    assert body["last_contact"]["type"] == "ContactLogged"
    assert body["value_tier"] in {"private", "premier", "mass"}
    assert body["primary_recipient_id"] == hid  # the higher balance


def test_tier_cache_recomputes_only_when_views_moved_and_old(
    platform: Platform,
) -> None:
    from projections.household_overview import TierCache

    now = [0.0]
    cache = TierCache(max_age=5.0, clock=lambda: now[0], settings=EVERY_HOUSEHOLD_TOP)
    first = registered(name="钱多多", line="深圳市南山区科技园路1号")
    platform.ingestor.ingest([first], atomic=True)
    platform.runner.catch_up()
    assert len(cache.tiers(platform.db).top) == 1
    platform.ingestor.ingest(
        [registered(name="孙少", line="深圳市南山区科技园路2号")], atomic=True
    )
    platform.runner.catch_up()
    now[0] = 1.0
    assert len(cache.tiers(platform.db).top) == 1  # moved, but computed 1 s ago
    now[0] = 6.0
    assert len(cache.tiers(platform.db).top) == 2


def test_listing_households_by_value_tier_pages_through_all_of_them(
    platform: Platform,
) -> None:
    events = []
    for i in range(30):
        person = registered(name=f"吴{i}", line=f"杭州市西湖区文三路{i + 1}号")
        account = account_opened(person["data"]["customer_id"])
        balance = "8000000.00" if i < 3 else f"{100 + i}.00"
        report = envelope(
            "BalanceReported",
            {
                "account_id": account["data"]["account_id"],
                "balance": balance,
                "as_of": "2025-02-28",
            },
        )
        events += [person, account, report]
    platform.ingestor.ingest(events, atomic=True)
    platform.runner.catch_up()
    key = {"Authorization": f"Bearer {create_key(platform.db, 'read')}"}
    seen: list[str] = []
    with TestClient(create_app(platform)) as client:
        cursor = None
        while True:
            params = {
                "value_tier": "premier",
                "limit": 1,
                **({"cursor": cursor} if cursor else {}),
            }
            body = client.get("/v1/households", params=params, headers=key).json()
            seen += [h["household_id"] for h in body["households"]]
            assert all(h["value_tier"] == "premier" for h in body["households"])
            cursor = body["next_cursor"]
            if cursor is None:
                break
        everyone = client.get(
            "/v1/households", params={"limit": 500}, headers=key
        ).json()["households"]
        bad = client.get("/v1/households", params={"value_tier": "gold"}, headers=key)
    assert len(seen) == len(set(seen)) == 3  # top 10% of 30 households
    assert len(everyone) == 30
    assert bad.status_code == 422
