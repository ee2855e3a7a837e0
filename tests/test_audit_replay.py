"""Point in time: views as recorded by a past moment, late arrivals, membership history, replay equivalence."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from api.audit.rebuild_check import rebuild_check
from api.audit.replay import clear_cache, household_as_of, last_position_by, view_as_of
from api.bootstrap import Platform
from api.http import create_app
from api.http.routes import audit as audit_routes
from api.keys import create_key
from projections.households import household_of, members
from tests.factories import envelope, new_id, registered
from tests.test_audit_export import SHANGHAI, _app, cli_env, views  # noqa: F401

BEIJING = "北京市海淀区中关村大街27号中关村大厦1101室"


def _now() -> datetime:
    return datetime.now(UTC)


def _pause() -> datetime:
    """A moment strictly between two batches."""
    time.sleep(0.02)
    moment = _now()
    time.sleep(0.02)
    return moment


class Story:
    """周婷 and her brother 周杰 share a flat in Haidian until 周杰 moves to Shanghai."""

    def __init__(self, platform: Platform) -> None:
        self.platform = platform
        ting, jie = (
            registered(name="周婷", line=BEIJING),
            registered(name="周杰", line=BEIJING),
        )
        self.ting, self.jie = ting["data"]["customer_id"], jie["data"]["customer_id"]
        self.before_anything = _pause()
        self.post(ting, jie)
        self.together = _pause()
        moved = {"customer_id": self.jie, "address": {"line": SHANGHAI}}
        self.post(envelope("CustomerMoved", moved, occurred_at=_now().isoformat()))
        self.apart = _pause()
        self.late = envelope(
            "ContactLogged",
            {
                "contact_id": new_id(),
                "customer_id": self.ting,
                "channel": "branch",
                "direction": "inbound",
                "topic": "补登：开户咨询",
            },
            occurred_at=(self.together - timedelta(minutes=1)).isoformat(),
        )
        self.post(self.late)
        views(platform).catch_up()
        self.household = self.household_of(
            self.ting, self.together
        )  # the one they shared

    def household_of(self, customer_id: str, moment: datetime) -> str:
        db, _ = view_as_of(self.platform, moment)
        with db.transaction() as cur:
            found = household_of(cur, customer_id)
        assert found is not None
        return found

    def post(self, *events: dict[str, Any]) -> None:
        report = self.platform.ingestor.ingest(list(events), atomic=True)
        assert report.count("stored") == len(events)


@pytest.fixture(autouse=True)
def _fresh_cache() -> Iterator[None]:
    clear_cache()
    yield
    clear_cache()


def test_positions_are_found_by_recording_time(platform: Platform) -> None:
    story = Story(platform)
    assert last_position_by(platform, story.before_anything) == 0
    assert last_position_by(platform, story.together) == 2
    assert last_position_by(platform, story.apart) == 3
    assert last_position_by(platform, _now()) == 4


def test_the_household_as_it_was_answered_then(platform: Platform) -> None:
    story = Story(platform)
    then = household_as_of(platform, story.household, story.together)
    assert then is not None
    assert {m["customer_id"] for m in then["members"]} == {story.ting, story.jie}
    assert then["position"] == 2
    assert story.household == story.household_of(story.jie, story.together)
    later = household_as_of(
        platform, story.household_of(story.ting, story.apart), story.apart
    )
    assert later is not None
    assert {m["customer_id"] for m in later["members"]} == {story.ting}
    assert household_as_of(platform, story.household, story.before_anything) is None


def test_a_replay_to_now_equals_the_live_views(platform: Platform) -> None:
    story = Story(platform)
    db, position = view_as_of(platform, _now())
    assert position == 4
    household = story.household_of(story.ting, _now())
    with db.transaction() as then, platform.db.transaction() as live:
        assert members(then, household) == members(live, household)
        assert household_of(live, story.ting) == household


def test_late_arrivals_are_listed_on_request(platform: Platform) -> None:
    story = Story(platform)
    then = household_as_of(platform, story.household, story.together, include_late=True)
    assert then is not None
    assert [e["event_id"] for e in then["late_events"]] == [story.late["event_id"]]
    assert "late_events" not in (
        household_as_of(platform, story.household, story.together) or {}
    )


def test_the_replay_command_prints_the_same_answer(cli_env: Platform) -> None:  # noqa: F811
    story = Story(cli_env)
    result = CliRunner().invoke(
        _app(cli_env),
        [
            "audit",
            "replay",
            "--as-of",
            story.together.isoformat(),
            "--household",
            story.household,
        ],
    )
    assert result.exit_code == 0, result.output
    printed = orjson.loads(result.stdout)
    expected = household_as_of(cli_env, story.household, story.together)
    assert printed == orjson.loads(orjson.dumps(expected, default=str))


@pytest.fixture
def client(platform: Platform) -> Iterator[TestClient]:
    app = create_app(platform)
    if not any(getattr(r, "path", "") == "/v1/audit/events" for r in app.routes):
        app.include_router(audit_routes.router)
    with TestClient(app) as test_client:
        test_client.headers["Authorization"] = (
            f"Bearer {create_key(platform.db, 'audit')}"
        )
        yield test_client


def test_membership_history_and_as_of_over_http(
    client: TestClient, platform: Platform
) -> None:
    story = Story(platform)
    history = client.get(f"/v1/households/{story.household}/history")
    assert history.status_code == 200, history.text
    changes = [(c["change"], c["customer_id"]) for c in history.json()["changes"]]
    assert sorted(changes[:2]) == sorted(
        [("joined", story.ting), ("joined", story.jie)]
    )
    assert changes[2][0] == "left" and len(changes) == 3
    assert history.json()["changes"][2]["event_type"] == "CustomerMoved"
    then = client.get(
        f"/v1/households/{story.household}",
        params={"as_of": story.together.isoformat()},
    )
    assert then.status_code == 200, then.text
    assert len(then.json()["members"]) == 2
    naive = client.get(
        f"/v1/households/{story.household}",
        params={"as_of": "2025-03-01T10:00:00"},
    )
    assert naive.status_code == 422
    entries = client.get(
        f"/v1/customers/{story.ting}/contact-history",
        params={"as_of": story.together.isoformat()},
    ).json()["entries"]
    assert story.late["event_id"] not in {e["event_id"] for e in entries}
    assert len(entries) >= 1


def test_rebuilt_views_equal_the_live_ones(platform: Platform) -> None:
    Story(platform)
    report = rebuild_check(platform, views(platform).projections)
    assert report.identical, report.as_json()
    assert report.rows_compared > 0
    assert set(report.positions.values()) == {4}


def test_a_drifted_view_is_reported(platform: Platform) -> None:
    story = Story(platform)
    with platform.db.transaction() as cur:
        cur.execute(
            "UPDATE customers SET name = %s WHERE customer_id = %s",
            ("周婷婷", story.ting),
        )
    report = rebuild_check(platform, views(platform).projections)
    assert not report.identical
    kinds = sorted((d.table, d.kind, d.row["name"]) for d in report.differences)
    assert kinds == [
        ("customers", "extra_in_live", "周婷婷"),
        ("customers", "missing_in_live", "周婷"),
    ]
