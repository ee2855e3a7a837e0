"""`crm project` killed with SIGKILL while catching up: the views end equal to a full rebuild.

The log is filled first (the demo data set); the worker is started and killed at
random moments between commits, several times, then allowed to finish. Every
row of every projection's tables is then compared with a rebuild from the log.
"""

from __future__ import annotations

import random
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import psycopg
import pytest

from api.bootstrap import Platform, build_platform
from api.demo_data import generate_demo_events
from api.settings import Settings
from projections.registry import all_projections
from scripts.soak import SECRET, server_env

pytestmark = pytest.mark.postgres

KILLS = 3
HOUSEHOLDS = 30  # about 6,000 events: pages of 1,000 leave room between kills


def fill_log(platform: Platform) -> int:
    events = list(generate_demo_events(households=HOUSEHOLDS, seed=11))
    for start in range(0, len(events), 1000):
        report = platform.ingestor.ingest(events[start : start + 1000], atomic=False)
        assert report.count("rejected") == 0
    return int(platform.app.recorder.max_notification_id() or 0)


def progress(conn: psycopg.Connection[Any]) -> int:
    """The sum of every projection's position (each moves from 0 to the head)."""
    row = conn.execute(
        "SELECT coalesce(sum(position), 0) FROM projection_positions"
    ).fetchone()
    return int(row[0]) if row else 0


def start_worker(database_url: str, log_path: Path) -> subprocess.Popen[bytes]:
    crm = Path(sys.executable).parent / "crm"
    with log_path.open("ab") as log:
        return subprocess.Popen(
            [str(crm), "project"],
            env=server_env(database_url),
            stdout=log,
            stderr=log,
            cwd=Path(__file__).resolve().parents[2],
        )


def wait_for_progress(
    process: subprocess.Popen[bytes], database_url: str, target: int, timeout: float
) -> int:
    deadline = time.monotonic() + timeout
    # One connection, polled often: a page of the last few can take only a few
    # milliseconds once the work ahead is small.
    with psycopg.connect(database_url, autocommit=True) as conn:
        while time.monotonic() < deadline:
            reached = progress(conn)
            if reached >= target:
                return reached
            assert process.poll() is None, (
                f"crm project exited with {process.returncode}"
            )
            time.sleep(0.002)
    raise AssertionError(f"the worker did not reach {target} within {timeout} s")


def snapshot(platform: Platform) -> dict[str, list[tuple[Any, ...]]]:
    tables: dict[str, list[tuple[Any, ...]]] = {}
    with platform.db.transaction() as cur:
        for projection in all_projections():
            for table in projection.tables:
                rows = cur.execute(f"SELECT * FROM {table}").fetchall()
                tables[table] = sorted(
                    (tuple(sorted(r.items())) for r in rows), key=repr
                )
    return tables


def test_sigkill_of_the_projection_worker_converges_to_a_rebuild(
    postgres_url: str, tmp_path: Path
) -> None:
    settings = Settings(database_url=postgres_url, secret_key=SECRET)
    platform = build_platform(settings)
    try:
        head = fill_log(platform)
        names = [p.name for p in all_projections()]
        total = head * len(names)
        rng = random.Random(uuid.uuid4().int)
        log_path = tmp_path / "project.log"
        killed_at = []
        for round_ in range(KILLS):
            # Kill somewhere in the next slice of the work, never at the very end.
            low = total * round_ // (KILLS + 1)
            target = rng.randint(low + 1, total * (round_ + 1) // (KILLS + 1))
            worker = start_worker(postgres_url, log_path)
            try:
                killed_at.append(wait_for_progress(worker, postgres_url, target, 120))
            finally:
                worker.kill()
                worker.wait()
        assert killed_at[-1] < total, "the worker finished before the last kill"
        worker = start_worker(postgres_url, log_path)
        try:
            wait_for_progress(worker, postgres_url, total, 180)
        finally:
            worker.terminate()
            worker.wait(timeout=30)
        assert all(platform.runner.position(n) == head for n in names)
        after_kills = snapshot(platform)
        platform.runner.rebuild()
        rebuilt = snapshot(platform)
    finally:
        platform.close()
    assert sum(len(rows) for rows in rebuilt.values()) > 1000
    for table, rows in rebuilt.items():
        assert after_kills[table] == rows, f"{table} differs from a rebuild"
