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


def wait_for_views(base: str, key: str, position: int) -> None:
    """The projections (run by the parent) reach `position`, as /readyz reports."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        body = httpx.get(
            f"{base}/readyz", headers={"Authorization": f"Bearer {key}"}
        ).json()
        if all(p["position"] >= position for p in body["projections"]):
            return
        time.sleep(0.2)
    raise AssertionError(f"views did not reach {position}")


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
    key = make_keys(postgres_url, ["admin"])["admin"]
    port = free_port()
    server = start_server(
        postgres_url, port, tmp_path / "serve.log", CRM_WEB_WORKERS="2"
    )
    base = f"http://127.0.0.1:{port}"
    rng = random.Random(7)
    events = [registration(rng) for _ in range(60)]
    try:

        def post(event: dict[str, object]) -> tuple[int, int | None]:
            with httpx.Client(timeout=30) as client:
                response = client.post(
                    f"{base}/v1/events",
                    json=event,
                    headers={"Authorization": f"Bearer {key}"},
                )
                return response.status_code, response.json().get("position")

        with ThreadPoolExecutor(8) as pool:
            answers = list(pool.map(post, events))
        assert [status for status, _ in answers] == [201] * len(events)
        positions = [position for _, position in answers]
        workers = children_of(server.pid)
        # Two HTTP workers (the parent runs the projections; uvicorn may add a helper).
        assert len(workers) >= 2, workers
        wait_for_views(base, key, max(p for p in positions if p is not None))
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
