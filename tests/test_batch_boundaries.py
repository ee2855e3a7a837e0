"""Views do not depend on how the log was cut into batches: small live batches
give exactly the rows a rebuild in large batches gives (a realistic demo log)."""

from __future__ import annotations

from typing import Any

import pytest

from api.audit.rebuild_check import rebuild_check
from api.bootstrap import Platform
from api.demo_data import generate_demo_events
from projections import runner as runner_module
from projections.base import Projection, types_read_by
from projections.customers import CustomersProjection
from projections.households import HouseholdsProjection
from projections.mailing_decisions import MailingDecisionsProjection
from projections.records import decode_row
from projections.registry import all_projections
from projections.runner import ProjectionRunner
from tests.factories import envelope, new_id, registered


@pytest.mark.parametrize("batch_size", [3, 7])
def test_small_live_batches_equal_a_rebuild(
    platform: Platform, batch_size: int
) -> None:
    events = list(generate_demo_events(households=6, seed=11, months=3))
    live = ProjectionRunner(
        platform.app, platform.db, all_projections(), batch_size=batch_size
    )
    for start in range(0, len(events), 50):
        report = platform.ingestor.ingest(events[start : start + 50], atomic=False)
        assert report.count("rejected") == 0
        live.catch_up()
    report = rebuild_check(platform, all_projections())
    assert report.identical, report.as_json()
    assert report.rows_compared > 100


def _readers_of_some_types() -> list[Projection]:
    chosen: list[Projection] = [
        HouseholdsProjection(),
        CustomersProjection(),
        MailingDecisionsProjection(),
    ]
    assert types_read_by(chosen) is not None  # the runner skips the other types
    return chosen


def test_views_fed_only_the_types_they_read_equal_a_replay_of_everything(
    platform: Platform,
) -> None:
    """As `crm rebuild --jobs 2` feeds households and customers: a replay hands
    every event to every view, the runner only the types they read."""
    events = list(generate_demo_events(households=6, seed=11, months=3))
    assert platform.ingestor.ingest(events, atomic=False).count("rejected") == 0
    chosen = _readers_of_some_types()
    runner = ProjectionRunner(platform.app, platform.db, chosen, batch_size=7)
    runner.catch_up()
    assert runner.min_position() == platform.app.recorder.max_notification_id()
    report = rebuild_check(platform, chosen)
    assert report.identical, report.as_json()
    assert report.rows_compared > 100


def test_events_no_view_reads_are_not_decoded_yet_passed(
    platform: Platform, monkeypatch: pytest.MonkeyPatch
) -> None:
    people = [registered() for _ in range(3)]
    contacts = [
        envelope(
            "ContactLogged",
            {
                "contact_id": new_id(),
                "customer_id": people[0]["data"]["customer_id"],
                "channel": "phone",
                "direction": "inbound",
                "topic": "询问理财产品",
            },
        )
        for _ in range(4)
    ]
    platform.ingestor.ingest(people + contacts, atomic=False)
    decoded: list[int] = []

    def counted(app: Any, row: Any) -> Any:
        decoded.append(row[0])
        return decode_row(app, row)

    monkeypatch.setattr(runner_module, "decode_row", counted)
    runner = ProjectionRunner(
        platform.app, platform.db, _readers_of_some_types(), batch_size=2
    )
    runner.catch_up()
    assert len(decoded) == 3
    # The log ends with events these views do not read: they still reach its end.
    assert runner.min_position() == platform.app.recorder.max_notification_id() == 7
