"""`crm serve` with several HTTP worker processes (CRM_WEB_WORKERS).

Each worker has its own platform and group committer; they share the log
through PostgreSQL. Every acknowledged event is stored once, and the workers
do not outlive a parent killed with SIGKILL (the port is freed for a restart).
"""

from __future__ import annotations

import random
import socket
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import psycopg
import pytest

from scripts.soak import free_port, make_keys, registration, start_server, stop_server

pytestmark = pytest.mark.postgres


def children_of(pid: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


def port_is_free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def test_two_web_workers_store_every_post_once_and_die_with_their_parent(
    postgres_url: str, tmp_path: Path
) -> None:
    key = make_keys(postgres_url, ["ingest"])["ingest"]
    port = free_port()
    server = start_server(
        postgres_url, port, tmp_path / "serve.log", CRM_WEB_WORKERS="2"
    )
    base = f"http://127.0.0.1:{port}"
    rng = random.Random(7)
    events = [registration(rng) for _ in range(60)]
    try:

        def post(event: dict[str, object]) -> int:
            with httpx.Client(timeout=30) as client:
                response = client.post(
                    f"{base}/v1/events",
                    json=event,
                    headers={"Authorization": f"Bearer {key}"},
                )
                return response.status_code

        with ThreadPoolExecutor(8) as pool:
            statuses = list(pool.map(post, events))
        assert statuses == [201] * len(events)
        workers = children_of(server.pid)
        # Two HTTP workers and the projection worker (uvicorn may add a helper).
        assert len(workers) >= 3, workers
        with psycopg.connect(postgres_url) as conn:
            row = conn.execute(
                "SELECT count(*), count(DISTINCT event_id) FROM crm_event_log "
                "WHERE event_id = ANY(%s::uuid[])",
                ([e["event_id"] for e in events],),
            ).fetchone()
        assert row == (len(events), len(events))

        server.kill()
        server.wait()
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and not port_is_free(port):
            time.sleep(0.2)
        assert port_is_free(port), "a web worker outlived its killed parent"
    finally:
        stop_server(server)
