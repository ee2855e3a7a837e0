"""Following a busy log, the views gather the saves of a short while into one page;
an idle log is still seen at once (PostgreSQL, where every save wakes them)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from api.bootstrap import Platform, build_platform
from api.settings import Settings
from tests.conftest import SECRET
from tests.factories import registered

pytestmark = pytest.mark.postgres

GATHER = 1.0


@pytest.fixture
def gathering(postgres_url: str, tmp_path: Path) -> Iterator[Platform]:
    settings = Settings(
        database_url=postgres_url,
        secret_key=SECRET,
        secret_key_file=tmp_path / "key",
        projection_gather_seconds=GATHER,
    )
    built = build_platform(settings)
    yield built
    built.runner.stop()
    built.close()


def _store(platform: Platform, name: str) -> int:
    position = platform.ingestor.ingest([registered(name=name)], atomic=True).position
    assert position is not None
    return position


def test_saves_made_while_the_views_gather_come_in_one_page(
    gathering: Platform,
) -> None:
    runner = gathering.runner
    pages: list[int] = []
    apply = runner._apply

    def recording(projections: Any, positions: Any, page: Any) -> Any:
        pages.append(page.size)
        return apply(projections, positions, page)

    runner._apply = recording  # type: ignore[method-assign]
    first = _store(gathering, "赵敏")
    runner.start()
    assert runner.wait_for(first, timeout=10)
    # The views now gather for GATHER seconds: two saves, two notifications.
    _store(gathering, "钱多多")
    third = _store(gathering, "孙悟")
    assert runner.wait_for(third, timeout=10)
    assert pages == [1, 2]

    # Idle for longer than the gathering: the next save is read at once.
    time.sleep(GATHER * 1.5)
    saved = time.monotonic()
    fourth = _store(gathering, "李娜")
    assert runner.wait_for(fourth, timeout=10)
    assert time.monotonic() - saved < GATHER / 2
    assert pages == [1, 2, 1]
