"""`crm serve` killed with SIGKILL during concurrent ingest loses no acknowledged event.

A few client threads post single events and small batches; the server is killed
at random moments and restarted. Clients retry whatever was not acknowledged
with the same event_ids, as a real client would. In the end every acknowledged
event is stored exactly once, and no retry stored anything twice.
"""

from __future__ import annotations

import random
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from scripts.soak import free_port, make_keys, registration, start_server, stop_server

pytestmark = pytest.mark.postgres

KILLS = 3
CLIENTS = 4


class Client(threading.Thread):
    """Posts events until told to stop; a request not answered 201 is retried as is."""

    def __init__(self, base: str, key: str, seed: int) -> None:
        super().__init__(daemon=True)
        self.base = base
        self.key = key
        self.rng = random.Random(seed)
        self.stop = threading.Event()
        self.acknowledged: list[str] = []
        self.attempted: set[str] = set()
        self.retries = 0
        self.statuses: list[str] = []
        self.unexpected: list[str] = []

    def run(self) -> None:
        headers = {"Authorization": f"Bearer {self.key}"}
        with httpx.Client(base_url=self.base, timeout=10, headers=headers) as http:
            while not self.stop.is_set():
                events = [
                    registration(self.rng) for _ in range(self.rng.choice([1, 1, 3, 8]))
                ]
                self.attempted.update(e["event_id"] for e in events)
                body: Any = events[0] if len(events) == 1 else {"events": events}
                self._post_until_acknowledged(http, body, events)

    def _post_until_acknowledged(
        self, http: httpx.Client, body: Any, events: list[dict[str, Any]]
    ) -> None:
        deadline = time.monotonic() + 90
        first = True
        while time.monotonic() < deadline:
            if not first:
                self.retries += 1
                time.sleep(0.05)
            first = False
            try:
                response = http.post("/v1/events", json=body)
            except httpx.HTTPError:
                continue  # the server died under us: retry the very same events
            if response.status_code == 201:
                self.acknowledged += [e["event_id"] for e in events]
                self.statuses += [r["status"] for r in response.json()["results"]]
                return
            if response.status_code != 503:
                self.unexpected.append(f"{response.status_code} {response.text[:200]}")
                return
        self.unexpected.append("never acknowledged within 90 s")


def log_copies(conn: psycopg.Connection[Any], event_ids: list[str]) -> dict[str, int]:
    rows = conn.execute(
        "SELECT e.id::text, count(l.event_id) FROM unnest(%s::uuid[]) AS e(id) "
        "LEFT JOIN crm_event_log l ON l.event_id = e.id GROUP BY e.id",
        (event_ids,),
    ).fetchall()
    return {row[0]: int(row[1]) for row in rows}


def test_sigkill_of_serve_loses_no_acknowledged_event(
    postgres_url: str, tmp_path: Path
) -> None:
    keys = make_keys(postgres_url, ["ingest"])
    port = free_port()
    log_path = tmp_path / "serve.log"
    server = start_server(postgres_url, port, log_path)
    clients = [
        Client(f"http://127.0.0.1:{port}", keys["ingest"], seed)
        for seed in range(CLIENTS)
    ]
    rng = random.Random(uuid.uuid4().int)
    try:
        for client in clients:
            client.start()
        for _ in range(KILLS):
            time.sleep(rng.uniform(0.5, 2.0))
            server.kill()
            server.wait()
            time.sleep(rng.uniform(0.0, 0.5))
            server = start_server(postgres_url, port, log_path)
        time.sleep(1.0)
    finally:
        for client in clients:
            client.stop.set()
        for client in clients:
            client.join(timeout=120)
        stop_server(server)

    assert not [u for c in clients for u in c.unexpected]
    acknowledged = [e for c in clients for e in c.acknowledged]
    attempted = sorted({e for c in clients for e in c.attempted})
    assert len(acknowledged) == len(set(acknowledged)) > 100
    assert sum(c.retries for c in clients) > 0, "no request was interrupted by a kill"
    with psycopg.connect(postgres_url) as conn:
        copies = log_copies(conn, attempted)
        assert all(copies[e] == 1 for e in acknowledged)
        assert max(copies.values()) == 1  # no retry stored anything twice
        stored = conn.execute(
            "SELECT count(*) FROM crm_events e JOIN crm_event_log l "
            "ON l.position = e.notification_id WHERE l.event_id = ANY(%s::uuid[])",
            (acknowledged,),
        ).fetchone()
        totals = conn.execute(
            "SELECT (SELECT count(*) FROM crm_events), (SELECT count(*) FROM crm_event_log)"
        ).fetchone()
    assert stored is not None and stored[0] == len(acknowledged)
    # Nothing was stored that no client sent, and the log indexes every stored event.
    assert totals is not None and totals[0] == totals[1] == len(acknowledged)
