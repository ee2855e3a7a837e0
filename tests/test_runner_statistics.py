"""The runner refreshes the views' statistics as they grow, not on every wake-up."""

from __future__ import annotations

import pytest

from api.bootstrap import Platform
from tests.factories import registered


def test_statistics_are_refreshed_at_pages_1_2_4_8_of_the_runners_life(
    platform: Platform, monkeypatch: pytest.MonkeyPatch
) -> None:
    refreshed: list[int] = []
    runner = platform.runner
    monkeypatch.setattr(
        runner,
        "_refresh_statistics",
        lambda projections: refreshed.append(runner._pages_applied),
    )
    for _ in range(9):  # nine wake-ups, one new event (one page) each
        platform.ingestor.ingest([registered()], atomic=False)
        runner.catch_up()
    assert refreshed == [1, 2, 4, 8]
    runner.rebuild()  # emptied tables: counting starts again (one page here)
    assert refreshed == [1, 2, 4, 8, 1]


@pytest.mark.postgres
def test_a_refresh_analyzes_every_view_table(postgres_url: str) -> None:
    from api.bootstrap import build_platform
    from api.settings import Settings

    platform = build_platform(Settings(database_url=postgres_url, secret_key="k"))
    try:
        platform.ingestor.ingest([registered()], atomic=False)
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
