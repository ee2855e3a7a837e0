"""Views do not depend on how the log was cut into batches: small live batches
give exactly the rows a rebuild in large batches gives (a realistic demo log)."""

from __future__ import annotations

import pytest

from api.audit.rebuild_check import rebuild_check
from api.bootstrap import Platform
from api.demo_data import generate_demo_events
from projections.registry import all_projections
from projections.runner import ProjectionRunner


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
