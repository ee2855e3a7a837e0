"""Raw ceilings on this machine with rows of the events table's shape and size.

The rows are real stored events (originator id, version, topic, state bytes)
sampled from the bench's own log, cycled with fresh originator ids up to the
wanted count, so the bytes per row match what the platform writes.
"""

from __future__ import annotations

import itertools
import os
import sqlite3
import time
import uuid
from pathlib import Path
from typing import Any

import psycopg

EVENTS_SHAPE = """
CREATE TABLE {name} (
    originator_id uuid NOT NULL,
    originator_version bigint NOT NULL,
    topic text,
    state bytea,
    notification_id bigserial,
    PRIMARY KEY (originator_id, originator_version)
);
CREATE UNIQUE INDEX {name}_notification_id_idx ON {name} (notification_id ASC);
"""

Row = tuple[uuid.UUID, int, str, bytes]


def sample_rows(url: str, wanted: int = 20_000) -> list[tuple[int, str, bytes]]:
    """An even sample of stored events: (version, topic, state)."""
    with psycopg.connect(url) as conn:
        total = conn.execute("SELECT count(*) FROM crm_events").fetchone()[0]  # type: ignore[index]
        step = max(1, total // wanted)
        return [
            (int(v), str(t), bytes(s))
            for v, t, s in conn.execute(
                "SELECT originator_version, topic, state FROM crm_events WHERE notification_id %% %s = 0",
                (step,),
            )
        ]


def build_rows(sample: list[tuple[int, str, bytes]], count: int) -> list[Row]:
    return [
        (uuid.UUID(bytes=os.urandom(16)), v, t, s)
        for (v, t, s), _ in zip(itertools.cycle(sample), range(count), strict=False)
    ]


def _fresh_table(conn: psycopg.Connection[Any], name: str) -> None:
    conn.execute(f"DROP TABLE IF EXISTS {name}")
    for statement in EVENTS_SHAPE.format(name=name).split(";"):
        if statement.strip():
            conn.execute(statement)
    conn.commit()


def raw_copy(url: str, rows: list[Row]) -> float:
    """Binary COPY of every row in one transaction; rows/s."""
    with psycopg.connect(url) as conn:
        _fresh_table(conn, "bench_raw_copy")
        started = time.perf_counter()
        with (
            conn.cursor() as cur,
            cur.copy(
                "COPY bench_raw_copy (originator_id, originator_version, topic, state) FROM STDIN (FORMAT BINARY)"
            ) as copy,
        ):
            copy.set_types(["uuid", "int8", "text", "bytea"])
            for row in rows:
                copy.write_row(row)
        conn.commit()
        seconds = time.perf_counter() - started
        conn.execute("DROP TABLE bench_raw_copy")
        conn.commit()
    return len(rows) / seconds


def raw_unnest(url: str, rows: list[Row], batch: int = 1000) -> float:
    """INSERT ... SELECT FROM unnest(arrays) of `batch` rows, one commit per batch; rows/s."""
    with psycopg.connect(url) as conn:
        _fresh_table(conn, "bench_raw_unnest")
        started = time.perf_counter()
        for start in range(0, len(rows), batch):
            chunk = rows[start : start + batch]
            conn.execute(
                "INSERT INTO bench_raw_unnest (originator_id, originator_version, topic, state) "
                "SELECT * FROM unnest(%s::uuid[], %s::int8[], %s::text[], %s::bytea[])",
                (
                    [r[0] for r in chunk],
                    [r[1] for r in chunk],
                    [r[2] for r in chunk],
                    [r[3] for r in chunk],
                ),
            )
            conn.commit()
        seconds = time.perf_counter() - started
        conn.execute("DROP TABLE bench_raw_unnest")
        conn.commit()
    return len(rows) / seconds


def raw_sqlite(path: Path, rows: list[Row], batch: int = 1000) -> float:
    """SQLite (WAL, as the platform opens it): executemany of `batch` rows per commit."""
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute(
        "CREATE TABLE raw (originator_id TEXT, originator_version INTEGER, topic TEXT, state BLOB, "
        "notification_id INTEGER PRIMARY KEY AUTOINCREMENT, UNIQUE (originator_id, originator_version))"
    )
    started = time.perf_counter()
    for start in range(0, len(rows), batch):
        conn.executemany(
            "INSERT INTO raw (originator_id, originator_version, topic, state) VALUES (?, ?, ?, ?)",
            [(str(r[0]), r[1], r[2], r[3]) for r in rows[start : start + batch]],
        )
        conn.commit()
    seconds = time.perf_counter() - started
    conn.close()
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    return len(rows) / seconds
