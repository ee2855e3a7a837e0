"""Concurrent plans on PostgreSQL never schedule a household twice for one campaign.

Counts come from the stored events themselves, not from a view.
"""

from __future__ import annotations

import random
import socket
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest
import uvicorn

from api.bootstrap import Platform, build_platform
from api.http.app import create_app
from api.http.routes import mailings
from api.keys import create_key
from api.settings import Settings
from api.store.mailing_plans import MailingPlanner
from tests.factories import envelope, new_id, registered

SECRET = "test-secret-key"
STREETS = ["建国路", "世纪大道", "天河路", "解放西路", "人民南路", "中山东一路"]
NAMES = ["王伟", "李娜", "张强", "刘洋", "陈静", "杨帆", "赵敏", "黄磊", "周杰", "吴芳"]

pytestmark = pytest.mark.postgres


def households(platform: Platform, count: int, seed: int) -> dict[str, str]:
    """customer_id -> address line; 2-3 members per address."""
    rng = random.Random(seed)
    lines: dict[str, str] = {}
    events = []
    for index in range(count):
        line = f"{STREETS[index % len(STREETS)]}{index + 1}号{rng.randint(1, 30)}楼{index + 101}室"
        for _ in range(rng.choice((2, 3))):
            customer_id = new_id()
            lines[customer_id] = line
            events.append(registered(customer_id, name=rng.choice(NAMES), line=line))
    report = platform.ingestor.ingest(events, atomic=True)
    assert report.count("stored") == len(events)
    return lines


def launch(platform: Platform) -> str:
    campaign_id = new_id()
    data = {
        "campaign_id": campaign_id,
        "name": "中秋客户关怀",
        "channel": "mail",
        "purpose": "marketing",
    }
    platform.ingestor.ingest([envelope("CampaignLaunched", data)], atomic=True)
    return campaign_id


def stored(platform: Platform, type_: str) -> list[dict[str, Any]]:
    notifications = platform.app.recorder.select_notifications(
        1, 1_000_000, topics=[f"crm.{type_}"]
    )
    return [platform.app.mapper.to_domain_event(n).data for n in notifications]  # type: ignore[attr-defined]


def check_no_household_twice(
    platform: Platform, campaign_id: str, lines: dict[str, str], targeted: set[str]
) -> None:
    pieces = [
        f
        for f in stored(platform, "MailingScheduled")
        if f["campaign_id"] == campaign_id
    ]
    suppressed = [
        f
        for f in stored(platform, "MailingSuppressed")
        if f["campaign_id"] == campaign_id
    ]
    per_household = Counter(f["household_id"] for f in pieces)
    assert per_household and max(per_household.values()) == 1
    per_address = Counter(lines[f["customer_id"]] for f in pieces)
    assert max(per_address.values()) == 1
    decided = Counter(f["customer_id"] for f in pieces + suppressed)
    assert max(decided.values()) == 1
    assert set(decided) == targeted
    assert {lines[c] for c in targeted} == set(per_address)
    assert {f["reason"] for f in suppressed} == {"household_already_scheduled"}


def test_parallel_plans_never_schedule_a_household_twice(postgres_url: str) -> None:
    settings = Settings(database_url=postgres_url, secret_key=SECRET)
    platforms = [build_platform(settings, migrate=(i == 0)) for i in range(8)]
    try:
        lines = households(platforms[0], 50, seed=7)
        customers = sorted(lines)
        for round_ in range(3):
            campaign_id = launch(platforms[0])
            rng = random.Random(round_)
            lists = [rng.sample(customers, 60) for _ in platforms]
            barrier = threading.Barrier(len(platforms))

            def run(
                index: int,
                campaign_id: str = campaign_id,
                lists: Any = lists,
                barrier: threading.Barrier = barrier,
            ) -> dict[str, Any]:
                planner = MailingPlanner(platforms[index])
                barrier.wait(timeout=30)
                return planner.plan(campaign_id, lists[index], str(uuid.uuid4()))

            with ThreadPoolExecutor(len(platforms)) as pool:
                answers = list(pool.map(run, range(len(platforms)), timeout=120))
            targeted = {c for chosen in lists for c in chosen}
            check_no_household_twice(platforms[0], campaign_id, lines, targeted)
            mailing_ids = {p["mailing_id"] for a in answers for p in a["scheduled"]}
            assert len(mailing_ids) == len({lines[c] for c in targeted})
    finally:
        for platform in platforms:
            platform.close()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def served(postgres_url: str) -> Iterator[tuple[str, Platform]]:
    platform = build_platform(Settings(database_url=postgres_url, secret_key=SECRET))
    app = create_app(platform)
    if not any(getattr(r, "path", "").startswith("/v1/campaigns") for r in app.routes):
        app.include_router(mailings.router)
    port = _free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        assert time.monotonic() < deadline, "server did not start"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}", platform
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        platform.close()


def test_parallel_http_plans_never_schedule_a_household_twice(
    served: tuple[str, Platform],
) -> None:
    base, platform = served
    key = create_key(platform.db, "mailing", label="营销部")
    reader = create_key(platform.db, "read")
    lines = households(platform, 30, seed=11)
    customers = sorted(lines)
    campaign_id = launch(platform)
    rng = random.Random(3)
    lists = [rng.sample(customers, 40) for _ in range(8)]
    url = f"{base}/v1/campaigns/{campaign_id}/mailing-plans"
    headers = {"Authorization": f"Bearer {key}"}

    def post(targets: list[str]) -> httpx.Response:
        body = {"request_id": str(uuid.uuid4()), "customer_ids": targets}
        return httpx.post(url, json=body, headers=headers, timeout=60)

    with ThreadPoolExecutor(8) as pool:
        responses = list(pool.map(post, lists, timeout=120))

    assert [r.status_code for r in responses] == [200] * 8
    targeted = {c for chosen in lists for c in chosen}
    check_no_household_twice(platform, campaign_id, lines, targeted)

    with httpx.Client(base_url=base, headers=headers, timeout=30) as client:
        some = lists[0][0]
        why = client.get(f"/v1/campaigns/{campaign_id}/decisions/{some}")
        assert why.status_code == 200
        assert why.json()["customer_id"] == some
        report = client.get(f"/v1/campaigns/{campaign_id}/report").json()
        assert report["pieces"]["scheduled"] == len({lines[c] for c in targeted})
        assert report["violations"] == []
        assert client.get(f"/v1/campaigns/{new_id()}/report").status_code == 404
        unknown = client.post(
            f"/v1/campaigns/{new_id()}/mailing-plans",
            json={"request_id": str(uuid.uuid4()), "customer_ids": [some]},
        )
        assert unknown.status_code == 404
        forbidden = client.get(
            f"/v1/campaigns/{campaign_id}/report",
            headers={"Authorization": f"Bearer {reader}"},
        )
        assert forbidden.status_code == 403
