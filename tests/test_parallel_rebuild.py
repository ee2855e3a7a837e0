"""`crm rebuild --jobs N`: views rebuilt side by side equal views rebuilt one after another."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from api.audit.rebuild_check import rebuild_check
from api.bootstrap import Platform
from api.cli import cli
from api.demo_data import generate_demo_events
from api.parallel_rebuild import COST, shares
from tests.conftest import SECRET
from tests.factories import registered


def test_shares_hold_every_view_once_and_balance_the_cost() -> None:
    names = list(COST)
    for jobs in (1, 2, 3, 7, 20):
        groups = shares(names, jobs)
        assert sorted(n for g in groups for n in g) == sorted(names)
        assert len(groups) == min(jobs, len(names))
    two = [sum(COST[n] for n in g) for g in shares(names, 2)]
    assert max(two) - min(two) <= 0.1 * sum(COST.values())
    assert shares(["a_new_view"], 4) == [["a_new_view"]]


def _rebuild(platform: Platform, monkeypatch: pytest.MonkeyPatch, *args: str) -> str:
    monkeypatch.setenv("CRM_DATABASE_URL", platform.settings.database_url)
    monkeypatch.setenv("CRM_SECRET_KEY", SECRET)
    monkeypatch.setenv("CRM_LOG_LEVEL", "WARNING")
    result = CliRunner().invoke(cli, ["rebuild", *args])
    assert result.exit_code == 0, result.output
    return result.output


def test_views_rebuilt_in_several_processes_equal_a_replay(
    platform: Platform, monkeypatch: pytest.MonkeyPatch
) -> None:
    events = list(generate_demo_events(households=6, seed=3, months=2))
    report = platform.ingestor.ingest(events, atomic=False)
    assert report.count("stored") == len(events)
    platform.runner.catch_up()
    with platform.db.transaction() as cur:
        cur.execute("DELETE FROM customers")  # damage that the rebuild must repair
    output = _rebuild(platform, monkeypatch, "--jobs", "3")
    assert f"from {len(events)} event(s)" in output
    check = rebuild_check(platform, platform.runner.projections)
    assert check.identical, check.as_json()
    assert check.rows_compared > len(events) // 4
    assert set(check.positions.values()) == {report.position}


def test_a_small_log_is_rebuilt_in_one_process_unless_asked(
    platform: Platform, monkeypatch: pytest.MonkeyPatch
) -> None:
    from api import parallel_rebuild

    platform.ingestor.ingest([registered(), registered()], atomic=True)
    assert parallel_rebuild.default_jobs(platform, 8) == 1
    monkeypatch.setattr(parallel_rebuild, "PARALLEL_FROM_EVENTS", 2)
    assert parallel_rebuild.default_jobs(platform, 8) == 8
