"""The read path's cost: how many statements a household or contact-history read runs."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from api.bootstrap import Platform
from api.store.database import Cursor
from projections.household_overview import TierCache
from tests.factories import registered


@contextmanager
def counting_statements(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    statements: list[str] = []
    real = Cursor.execute

    def execute(self: Cursor, sql: str, params: Any = ()) -> Cursor:
        statements.append(sql)
        return real(self, sql, params)

    monkeypatch.setattr(Cursor, "execute", execute)
    yield statements
    monkeypatch.setattr(Cursor, "execute", real)


def test_tier_cache_looks_at_the_views_at_most_once_per_max_age(
    platform: Platform, monkeypatch: pytest.MonkeyPatch
) -> None:
    now = [0.0]
    cache = TierCache(max_age=5.0, clock=lambda: now[0])
    platform.ingestor.ingest([registered(name="钱多多")], atomic=True)
    platform.runner.catch_up()
    assert len(cache.tiers(platform.db)) == 1
    with counting_statements(monkeypatch) as statements:
        now[0] = 4.9
        assert len(cache.tiers(platform.db)) == 1
        assert statements == []
        now[0] = 5.0
        cache.tiers(platform.db)
        assert len(statements) == 1  # the views' positions: not moved, not ranked again
        now[0] = 9.9
        cache.tiers(platform.db)
        assert len(statements) == 1
