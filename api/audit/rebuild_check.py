"""Replay equivalence: rebuild every view from the log in a scratch database and diff it with the live one.

The scratch is built by the same migrations (a temporary SQLite file, or a temporary
PostgreSQL database on the same server) and fed by the projections' own code up to
exactly the live projections' positions, read inside one snapshot of the live
views; so the check runs while the platform is serving.
"""

from __future__ import annotations

import secrets
import shutil
import sqlite3
import tempfile
import uuid
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import psycopg
from psycopg.rows import dict_row

from api.audit.replay import default_projections, feed, scratch_database
from api.bootstrap import Platform, postgres_conninfo
from api.settings import Settings
from api.store.database import Cursor, Database, PostgresDatabase
from api.store.migrate import apply_migrations
from projections.base import Projection
from projections.runner import read_position

FETCH = 1000
MAX_LISTED = 50


@dataclass
class Difference:
    projection: str
    table: str
    kind: str  # missing_in_live | extra_in_live
    row: dict[str, Any]

    def as_json(self) -> dict[str, Any]:
        return {
            "projection": self.projection,
            "table": self.table,
            "kind": self.kind,
            "row": self.row,
        }


@dataclass
class RebuildReport:
    positions: dict[str, int] = field(default_factory=dict)
    rows_compared: int = 0
    differences: list[Difference] = field(default_factory=list)
    difference_count: int = 0

    @property
    def identical(self) -> bool:
        return self.difference_count == 0

    def as_json(self) -> dict[str, Any]:
        return {
            "identical": self.identical,
            "positions": self.positions,
            "rows_compared": self.rows_compared,
            "difference_count": self.difference_count,
            "differences": [d.as_json() for d in self.differences],
        }


@contextmanager
def _scratch(platform: Platform) -> Iterator[Database]:
    if not platform.settings.is_postgres:
        directory = Path(tempfile.mkdtemp(prefix="crm-rebuild-"))
        db: Database = scratch_database(directory)
        try:
            yield db
        finally:
            db.close()
            shutil.rmtree(directory, ignore_errors=True)
        return
    name = f"crm_rebuild_check_{uuid.uuid4().hex[:12]}"
    admin = postgres_conninfo(platform.settings)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = platform.settings.database_url.rsplit("/", 1)[0] + "/" + name
    settings = Settings(database_url=url, secret_key=secrets.token_hex(16))
    pg = PostgresDatabase(postgres_conninfo(settings), max_size=2)
    try:
        apply_migrations(settings)
        yield pg
    finally:
        pg.close()
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextmanager
def _live_snapshot(platform: Platform) -> Iterator[Cursor]:
    """A read-only, consistent view of the live tables that does not block writers."""
    if platform.settings.is_postgres:
        conninfo = postgres_conninfo(platform.settings)
        with psycopg.connect(conninfo, row_factory=dict_row) as conn:
            conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
            with conn.cursor() as raw:
                yield Cursor(raw, sqlite=False)
            conn.rollback()
        return
    lite = sqlite3.connect(
        platform.settings.sqlite_path, isolation_level=None, timeout=30
    )
    lite.row_factory = sqlite3.Row
    try:
        lite.execute("BEGIN")  # deferred: a WAL snapshot from the first read on
        yield Cursor(lite.cursor(), sqlite=True)
        lite.execute("ROLLBACK")
    finally:
        lite.close()


def _key(row: dict[str, Any]) -> bytes:
    return orjson.dumps(list(row.values()), default=str)


def _rows(cur: Cursor, table: str) -> Iterator[dict[str, Any]]:
    raw = cur.raw
    raw.execute(f"SELECT * FROM {table} WHERE 1 = 0")
    count = len(raw.description)
    order = ", ".join(str(i) for i in range(1, count + 1))
    raw.execute(f"SELECT * FROM {table} ORDER BY {order}")
    while batch := raw.fetchmany(FETCH):
        for row in batch:
            yield dict(row)


def _compare_table(
    report: RebuildReport, projection: str, table: str, live: Cursor, scratch: Cursor
) -> None:
    # Both sides are sorted by the same backend, so equal tables cancel row by row and
    # only real differences (and rows they displace) are held in memory.
    only_live: Counter[bytes] = Counter()
    only_scratch: Counter[bytes] = Counter()
    rows: dict[bytes, dict[str, Any]] = {}
    live_rows, scratch_rows = _rows(live, table), _rows(scratch, table)
    for pair in _zip_longest(live_rows, scratch_rows):
        report.rows_compared += 1
        left, right = pair
        if left is not None and right is not None and _key(left) == _key(right):
            continue
        for row, mine, other in (
            (left, only_live, only_scratch),
            (right, only_scratch, only_live),
        ):
            if row is None:
                continue
            key = _key(row)
            if other[key]:
                other[key] -= 1
                if not other[key]:
                    del other[key]
                    rows.pop(key, None)
            else:
                mine[key] += 1
                rows[key] = row
    for counter, kind in (
        (only_scratch, "missing_in_live"),
        (only_live, "extra_in_live"),
    ):
        for key, times in counter.items():
            report.difference_count += times
            if len(report.differences) < MAX_LISTED:
                report.differences.append(
                    Difference(projection, table, kind, rows[key])
                )


def _zip_longest(
    left: Iterator[Any], right: Iterator[Any]
) -> Iterator[tuple[Any, Any]]:
    while True:
        a, b = next(left, None), next(right, None)
        if a is None and b is None:
            return
        yield a, b


def rebuild_check(
    platform: Platform, projections: Sequence[Projection] | None = None
) -> RebuildReport:
    """Diffs every table of every projection with a fresh replay up to the same positions."""
    chosen = list(projections) if projections is not None else default_projections()
    report = RebuildReport()
    with _scratch(platform) as scratch:
        with platform.db.transaction() as cur:
            targets = {p.name: read_position(cur, p.name) for p in chosen}
        feed(
            platform.app, scratch, chosen, targets
        )  # most of the work, outside the snapshot
        with _live_snapshot(platform) as live:
            targets = {p.name: read_position(live, p.name) for p in chosen}
            feed(platform.app, scratch, chosen, targets)
            report.positions = targets
            with scratch.transaction() as other:
                for projection in chosen:
                    for table in projection.tables:
                        _compare_table(report, projection.name, table, live, other)
    return report
