"""The runner refreshes the views' statistics as they grow, not on every wake-up."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from api.bootstrap import Platform
from tests.factories import registered


def test_statistics_are_refreshed_at_full_pages_1_2_4_8_of_a_backlog(
    platform: Platform, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[tuple[int, bool]] = []  # (pages applied, sampled) per refresh
    runner = platform.runner
    monkeypatch.setattr(
        runner,
        "_refresh_statistics",
        lambda projections, sampled=False, every_table=False: calls.append(
            (runner._pages_applied, sampled)
        ),
    )
    platform.ingestor.ingest([registered() for _ in range(9)], atomic=False)
    runner.batch_size = 1  # a backlog of nine full pages
    runner.catch_up()
    assert [pages for pages, _ in calls] == [1, 2, 4, 8]
    runner.batch_size = 1000
    for _ in range(5):  # following the log: one small page per wake-up
        platform.ingestor.ingest([registered()], atomic=False)
        runner.catch_up()
    assert [pages for pages, _ in calls] == [1, 2, 4, 8]
    runner.rebuild_batch_size = 2
    runner.rebuild()  # emptied tables: counting starts again
    # 15 events in pages of 2: seven full pages, then once more when done; a
    # rebuild samples while its tables grow, then refreshes them in full
    assert calls[4:] == [(1, True), (2, True), (4, True), (7, False)]
    assert not any(sampled for _, sampled in calls[:4])


@pytest.mark.postgres
def test_a_refresh_analyzes_every_view_table(postgres_url: str) -> None:
    from api.bootstrap import build_platform
    from api.settings import Settings

    platform = build_platform(Settings(database_url=postgres_url, secret_key="k"))
    try:
        platform.ingestor.ingest([registered()], atomic=False)
        platform.runner.batch_size = 1  # a full page: a backlog
        platform.runner.catch_up()
        with platform.db.read() as cur:
            rows = cur.execute(
                "SELECT relname FROM pg_stat_user_tables WHERE last_analyze IS NOT NULL"
            ).fetchall()
        analyzed = {row["relname"] for row in rows}
        tables = {t for p in platform.runner.projections for t in p.tables}
        assert tables <= analyzed
    finally:
        platform.close()


@pytest.mark.postgres
def test_a_rebuild_leaves_full_statistics(postgres_url: str) -> None:
    """Pages in between are analyzed on a small sample; the rebuilt tables end
    with statistics at the default detail (100 histogram buckets, not 10)."""
    from api.bootstrap import build_platform
    from api.settings import Settings

    platform = build_platform(Settings(database_url=postgres_url, secret_key="k"))
    try:
        platform.ingestor.ingest([registered() for _ in range(300)], atomic=False)
        platform.runner.rebuild_batch_size = 100
        platform.runner.rebuild(["customers"])
        with platform.db.read() as cur:
            row = cur.execute(
                "SELECT cardinality(histogram_bounds::text::text[]) AS buckets "
                "FROM pg_stats WHERE tablename = 'customers' "
                "AND attname = 'customer_id'"
            ).fetchone()
        assert row is not None and row["buckets"] > 50
    finally:
        platform.close()


def _analyses(platform: Platform) -> dict[str, int]:
    with platform.db.read() as cur:
        rows = cur.execute(
            "SELECT relname, analyze_count, n_mod_since_analyze FROM pg_stat_user_tables"
        ).fetchall()
    return {row["relname"]: int(row["analyze_count"]) for row in rows} | {
        f"changed:{row['relname']}": int(row["n_mod_since_analyze"]) for row in rows
    }


def _eventually(
    platform: Platform, ready: Callable[[dict[str, int]], bool]
) -> dict[str, int]:
    """The table counters once `ready`: each backend publishes its own a second
    or so after its transaction, not at its commit."""
    deadline = time.monotonic() + 10
    while not ready(counts := _analyses(platform)):
        assert time.monotonic() < deadline, "the table counters never arrived"
        time.sleep(0.1)
    return counts


@pytest.mark.postgres
def test_a_refresh_analyzes_only_the_tables_that_grew(postgres_url: str) -> None:
    """A burst of one kind of event must not ANALYZE the tables it left alone."""
    from api.bootstrap import build_platform
    from api.settings import Settings
    from projections.runner import STALE_AFTER_ROWS

    platform = build_platform(Settings(database_url=postgres_url, secret_key="k"))
    try:
        runner = platform.runner
        tables = {t for p in runner.projections for t in p.tables}
        runner.batch_size = 10
        platform.ingestor.ingest([registered() for _ in range(10)], atomic=False)
        runner.catch_up()  # one full page: every table is analyzed a first time
        first = _eventually(platform, lambda c: all(c[t] >= 1 for t in tables))
        count = STALE_AFTER_ROWS + 10
        families = [registered(line=f"北京市朝阳区建国路{n}号") for n in range(count)]
        platform.ingestor.ingest(families, atomic=False)
        runner.batch_size = 5000
        runner.catch_up()  # a partial page: no refresh
        _eventually(platform, lambda c: c["changed:customers"] >= count)
        runner._refresh_statistics(runner.projections)
        after = _eventually(platform, lambda c: c["customers"] > first["customers"])
        grew = {t for t in tables if after[t] > first[t]}
        assert {"customers", "households"} <= grew
        assert not grew & {"orders", "order_steps", "complaints", "complaint_steps"}
    finally:
        platform.close()
