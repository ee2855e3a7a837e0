"""SQLite: `crm serve` and `crm ingest` writing one file at once neither corrupt it nor lose events."""

from __future__ import annotations

import random
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

import httpx
import orjson

from scripts.soak import (
    free_port,
    make_keys,
    registration,
    server_env,
    start_server,
    stop_server,
)

FILE_EVENTS = 1500


def test_serve_and_ingest_share_one_sqlite_file(tmp_path: Path) -> None:
    database_url = f"sqlite:///{tmp_path / 'crm.db'}"
    keys = make_keys(database_url, ["ingest"])
    rng = random.Random(5)
    file_events = [registration(rng) for _ in range(FILE_EVENTS)]
    jsonl = tmp_path / "events.jsonl"
    jsonl.write_bytes(b"\n".join(orjson.dumps(e) for e in file_events) + b"\n")
    port = free_port()
    server = start_server(database_url, port, tmp_path / "serve.log")
    acknowledged: list[str] = []
    failures: list[str] = []
    done = threading.Event()

    def post_over_http() -> None:
        headers = {"Authorization": f"Bearer {keys['ingest']}"}
        with httpx.Client(
            base_url=f"http://127.0.0.1:{port}", headers=headers, timeout=60
        ) as http:
            while not done.is_set() or len(acknowledged) < 200:
                events = [registration(rng) for _ in range(rng.choice([1, 5]))]
                response = http.post("/v1/events", json={"events": events})
                if response.status_code == 201:
                    acknowledged.extend(e["event_id"] for e in events)
                else:
                    failures.append(f"{response.status_code} {response.text[:200]}")

    poster = threading.Thread(target=post_over_http)
    try:
        poster.start()
        crm = Path(sys.executable).parent / "crm"
        ingest = subprocess.run(
            [str(crm), "ingest", str(jsonl), "--batch-size", "50"],
            env=server_env(database_url),
            capture_output=True,
            timeout=180,
            check=False,
        )
        done.set()
        poster.join(timeout=120)
    finally:
        done.set()
        stop_server(server)
    assert ingest.returncode == 0, ingest.stderr.decode()[-2000:]
    assert f"stored {FILE_EVENTS}, duplicates 0, rejected 0" in ingest.stdout.decode()
    assert not failures
    with sqlite3.connect(tmp_path / "crm.db") as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        logged = {row[0] for row in conn.execute("SELECT event_id FROM crm_event_log")}
        stored = conn.execute("SELECT count(*) FROM stored_events").fetchone()[0]
    expected = {e["event_id"] for e in file_events} | set(acknowledged)
    assert logged == expected
    assert stored == len(expected) == FILE_EVENTS + len(acknowledged)
