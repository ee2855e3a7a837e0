"""A mailing plan may target value tiers instead of customers: still one piece per household."""

from __future__ import annotations

from fastapi.testclient import TestClient

from api.bootstrap import Platform
from api.http import create_app
from api.http.routes.mailings import PlanResponse
from api.keys import create_key
from tests.factories import account_opened, envelope, new_id, registered


def household(line: str, balance: str, names: tuple[str, ...]) -> list[dict]:
    people = [registered(name=name, line=line) for name in names]
    account = account_opened(people[0]["data"]["customer_id"])
    report = envelope(
        "BalanceReported",
        {
            "account_id": account["data"]["account_id"],
            "balance": balance,
            "as_of": "2025-02-28",
        },
    )
    return [*people, account, report]


def test_a_plan_for_the_private_tier_mails_each_rich_household_once(
    platform: Platform,
) -> None:
    events: list[dict] = []
    events += household(
        "北京市朝阳区建国路88号1号楼101室", "9000000.00", ("王富贵", "李美丽")
    )
    for i in range(2, 101):  # 100 households: the top 1% is the one rich family
        events += household(
            f"成都市武侯区人民南路四段{i}号", f"{1000 + i}.00", (f"张{i}",)
        )
    campaign_id = new_id()
    events.append(
        envelope(
            "CampaignLaunched",
            {
                "campaign_id": campaign_id,
                "name": "私人银行尊享会",
                "channel": "mail",
                "purpose": "marketing",
            },
        )
    )
    platform.ingestor.ingest(events, atomic=True)
    key = create_key(platform.db, "mailing")
    request_id = new_id()
    with TestClient(create_app(platform)) as client:
        response = client.post(
            f"/v1/campaigns/{campaign_id}/mailing-plans",
            json={"request_id": request_id, "value_tiers": ["private"]},
            headers={"Authorization": f"Bearer {key}"},
        )
        assert response.status_code == 200, response.text
        assert response.headers["content-length"] == str(len(response.content))
        assert response.headers["content-type"] == "application/json"
        answer = response.json()
        # Published without FastAPI's validation: exactly what the model makes of it.
        assert PlanResponse.model_validate(answer).model_dump(mode="json") == answer
        again = client.post(
            f"/v1/campaigns/{campaign_id}/mailing-plans",
            json={"request_id": request_id, "value_tiers": ["private"]},
            headers={"Authorization": f"Bearer {key}"},
        )
        assert again.content == response.content  # the stored answer, the same bytes
        assert again.headers["content-length"] == str(len(again.content))
        both = client.post(
            f"/v1/campaigns/{campaign_id}/mailing-plans",
            json={
                "request_id": new_id(),
                "value_tiers": ["private"],
                "customer_ids": [new_id()],
            },
            headers={"Authorization": f"Bearer {key}"},
        )
    rich = {e["data"]["customer_id"] for e in events[:2]}
    assert len(answer["scheduled"]) == 1
    assert answer["scheduled"][0]["customer_id"] in rich
    assert {s["customer_id"] for s in answer["suppressed"]} == rich - {
        answer["scheduled"][0]["customer_id"]
    }
    assert both.status_code == 422
