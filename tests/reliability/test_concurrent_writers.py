"""Concurrent writers that linger inside their transactions: projections skip and repeat nothing.

Each writer is its own platform (as separate processes would be) and sleeps a
random while after its events got their positions but before it commits. A
projection that records every position it is fed, in a table where a position
can appear only once, follows the log meanwhile. In the end it has seen exactly
the log's positions, each once, in increasing order.
"""

from __future__ import annotations

import random
import threading
import time
from typing import Any

from api.bootstrap import Platform, build_platform, postgres_conninfo
from api.settings import Settings
from api.store.database import Cursor
from projections.records import EventRecord
from projections.runner import ProjectionRunner
from tests.factories import registered

WRITERS = 4
BATCHES = 20

SEEN_TABLE = """
CREATE TABLE IF NOT EXISTS reliability_seen_positions (
    position BIGINT PRIMARY KEY,
    seen_order INTEGER NOT NULL UNIQUE,
    event_id TEXT NOT NULL UNIQUE
)
"""


class PositionRecorder:
    """Records each position it is given, with the order it was given in."""

    name = "reliability_seen_positions"
    tables: tuple[str, ...] = ("reliability_seen_positions",)

    def apply(self, cur: Cursor, records: list[EventRecord]) -> None:
        row = cur.execute(
            "SELECT count(*) AS n FROM reliability_seen_positions"
        ).fetchone()
        seen = int(row["n"]) if row else 0
        cur.executemany(
            "INSERT INTO reliability_seen_positions (position, seen_order, event_id) VALUES (%s, %s, %s)",
            [(r.position, seen + i + 1, r.event_id) for i, r in enumerate(records)],
        )


def linger_inside_transactions(platform: Platform, rng: random.Random) -> None:
    """Sleeps after the events got their positions, before the commit."""
    recorder: Any = platform.app.recorder
    name = (
        "_fetch_ids_after_insert_events"
        if platform.settings.is_postgres
        else "_insert_events"
    )
    original = getattr(recorder, name)

    def slow(*args: Any, **kwargs: Any) -> Any:
        result = original(*args, **kwargs)
        time.sleep(rng.uniform(0, 0.03))
        return result

    setattr(recorder, name, slow)


def write(
    settings: Settings, seed: int, acknowledged: list[str], errors: list[str]
) -> None:
    rng = random.Random(seed)
    writer = build_platform(settings, migrate=False)
    linger_inside_transactions(writer, rng)
    try:
        for _ in range(BATCHES):
            events = [
                registered(name=rng.choice(["王芳", "李娜", "张伟", "刘洋", "陈静"]))
                for _ in range(rng.randint(1, 5))
            ]
            report = writer.ingestor.ingest(events, atomic=True)
            acknowledged += [o.event_id for o in report.outcomes if o.event_id]
    except Exception as error:
        errors.append(repr(error))
    finally:
        writer.close()


def test_projections_see_every_position_once_in_order(
    platform: Platform, settings: Settings
) -> None:
    with platform.db.transaction() as cur:
        cur.execute(SEEN_TABLE)
    runner = ProjectionRunner(
        platform.app,
        platform.db,
        [PositionRecorder()],
        batch_size=7,  # many small batches: many chances to read past a gap
        poll_seconds=0.005,
        listen_conninfo=postgres_conninfo(settings) if settings.is_postgres else None,
    )
    runner.start()
    acknowledged: list[str] = []
    errors: list[str] = []
    writers = [
        threading.Thread(target=write, args=(settings, seed, acknowledged, errors))
        for seed in range(WRITERS)
    ]
    try:
        for writer in writers:
            writer.start()
        for writer in writers:
            writer.join(timeout=120)
        head = int(platform.app.recorder.max_notification_id() or 0)
        assert runner.wait_for(head, 30)
    finally:
        runner.stop()
    assert not errors
    with platform.db.transaction() as cur:
        seen = cur.execute(
            "SELECT position, event_id FROM reliability_seen_positions ORDER BY seen_order"
        ).fetchall()
        logged = cur.execute(
            "SELECT position, event_id FROM crm_event_log ORDER BY position"
        ).fetchall()
    positions = [row["position"] for row in seen]
    assert positions == sorted(positions)  # in order
    assert [(r["position"], str(r["event_id"])) for r in seen] == [
        (r["position"], str(r["event_id"])) for r in logged
    ]  # nothing skipped, nothing repeated
    assert sorted(str(r["event_id"]) for r in seen) == sorted(acknowledged)
    assert len(seen) >= WRITERS * BATCHES
