"""Auditors read any view as it was answered at a moment (`as_of`), with late arrivals."""

from __future__ import annotations

import time
from datetime import UTC, datetime

from fastapi.testclient import TestClient

from api.bootstrap import Platform
from api.http import create_app
from api.keys import create_key
from tests.factories import envelope, registered


def test_household_and_customer_views_as_of_a_past_moment(platform: Platform) -> None:
    wang = registered(name="王建国", line="北京市朝阳区建国路88号3号楼2单元501室")
    li = registered(name="李秀英", line="上海市浦东新区世纪大道100弄5号1202室")
    wid, lid = wang["data"]["customer_id"], li["data"]["customer_id"]
    platform.ingestor.ingest([wang, li], atomic=True)
    time.sleep(0.05)
    moment = datetime.now(UTC)
    time.sleep(0.05)
    moved = envelope(
        "CustomerMoved",
        {
            "customer_id": lid,
            "address": {"line": "北京市朝阳区建国路８８号3栋2单元501房"},
        },
        occurred_at="2025-03-02T09:00:00+08:00",
    )
    late = envelope(
        "ContactLogged",
        {
            "contact_id": registered()["data"]["customer_id"],
            "customer_id": wid,
            "channel": "phone",
            "direction": "inbound",
            "topic": "补录来电",
        },
        occurred_at="2020-01-01T09:00:00+08:00",
    )
    platform.ingestor.ingest([moved, late], atomic=True)
    platform.runner.catch_up()
    audit = {"Authorization": f"Bearer {create_key(platform.db, 'audit')}"}
    reader = {"Authorization": f"Bearer {create_key(platform.db, 'read')}"}
    with TestClient(create_app(platform)) as client:
        now = client.get(f"/v1/customers/{wid}/household", headers=audit).json()
        then = client.get(
            f"/v1/customers/{wid}/household",
            params={"as_of": moment.isoformat(), "include_late": "true"},
            headers=audit,
        ).json()
        refused = client.get(
            f"/v1/customers/{wid}/household",
            params={"as_of": moment.isoformat()},
            headers=reader,
        )
        history_then = client.get(
            f"/v1/customers/{wid}/contact-history",
            params={"as_of": moment.isoformat()},
            headers=audit,
        ).json()
    assert {m["customer_id"] for m in now["members"]} == {wid, lid}
    assert {m["customer_id"] for m in then["members"]} == {wid}
    assert then["as_of_position"] == 2
    assert [e["event_id"] for e in then["late_events"]] == [late["event_id"]]
    assert refused.status_code == 403
    assert [e["type"] for e in history_then["entries"]] == ["CustomerRegistered"]
