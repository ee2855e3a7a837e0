"""PostgreSQL stopped and started under load: 503 + Retry-After meanwhile, recovery, nothing lost.

    python scripts/pg_restart_check.py [--down-seconds 5] [--report pg_restart.json]

STOPS THE SHARED LOCAL CLUSTER (`pg_ctlcluster --skip-systemctl-redirect 15 main
stop`) for a few seconds: every other user of the server sees it go away. Not
part of the pytest suite for that reason; run it by hand, as root or postgres.

Starts `crm serve` on a scratch database, runs writers (single events and small
batches, retried with the same event_ids until acknowledged) and readers, stops
the cluster, starts it again, keeps the load on, then checks: no 5xx other than
503, every 503 carries Retry-After, no request outlived the client timeout, the
API answers 2xx again by itself, and every acknowledged event is stored once.
"""

from __future__ import annotations

import argparse
import random
import subprocess
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from scripts.soak import (
    free_port,
    make_keys,
    registration,
    scratch_postgres,
    start_server,
    stop_server,
    stored_counts,
)

CLUSTER = ["pg_ctlcluster", "--skip-systemctl-redirect", "15", "main"]
CLIENT_TIMEOUT = 15.0


@dataclass
class Observed:
    lock: threading.Lock = field(default_factory=threading.Lock)
    statuses: Counter[str] = field(default_factory=Counter)
    missing_retry_after: int = 0
    slowest_s: float = 0.0
    acknowledged: list[str] = field(default_factory=list)
    last_success: float = 0.0
    timeline: list[tuple[float, str, int | str]] = field(default_factory=list)

    def record(self, kind: str, began: float, status: int | str, headers: Any) -> None:
        now = time.monotonic()
        with self.lock:
            self.statuses[f"{kind} {status}"] += 1
            self.slowest_s = max(self.slowest_s, now - began)
            self.timeline.append((now, kind, status))
            if status == 503 and "retry-after" not in headers:
                self.missing_retry_after += 1
            if isinstance(status, int) and status < 400:
                self.last_success = now


def writer(
    base: str, key: str, seed: int, stop: threading.Event, seen: Observed
) -> None:
    rng = random.Random(seed)
    headers = {"Authorization": f"Bearer {key}"}
    with httpx.Client(base_url=base, timeout=CLIENT_TIMEOUT, headers=headers) as http:
        while not stop.is_set():
            events = [registration(rng) for _ in range(rng.choice([1, 1, 4]))]
            body: Any = events[0] if len(events) == 1 else {"events": events}
            for _attempt in range(200):
                began = time.monotonic()
                try:
                    response = http.post("/v1/events", json=body)
                except httpx.HTTPError as error:
                    seen.record("write", began, type(error).__name__, {})
                    time.sleep(0.2)
                    continue
                seen.record("write", began, response.status_code, response.headers)
                if response.status_code == 201:
                    with seen.lock:
                        seen.acknowledged += [e["event_id"] for e in events]
                    break
                time.sleep(float(response.headers.get("retry-after", "0.2")) / 4)
            time.sleep(0.02)


def reader(base: str, key: str, stop: threading.Event, seen: Observed) -> None:
    headers = {"Authorization": f"Bearer {key}"}
    with httpx.Client(base_url=base, timeout=CLIENT_TIMEOUT, headers=headers) as http:
        while not stop.is_set():
            for kind, url in (
                ("readyz", "/readyz"),
                ("read", "/v1/households?limit=5"),
            ):
                began = time.monotonic()
                try:
                    response = http.get(url)
                    seen.record(kind, began, response.status_code, response.headers)
                except httpx.HTTPError as error:
                    seen.record(kind, began, type(error).__name__, {})
            time.sleep(0.05)


def cluster(action: str) -> None:
    subprocess.run([*CLUSTER, action], check=True, timeout=60)


def run(args: argparse.Namespace) -> dict[str, Any]:
    with scratch_postgres("crm_pgrestart") as database_url:
        keys = make_keys(database_url, ["ingest", "read"])
        port = free_port()
        server = start_server(database_url, port, Path(args.server_log))
        base = f"http://127.0.0.1:{port}"
        seen = Observed()
        stop = threading.Event()
        threads = [
            threading.Thread(target=writer, args=(base, keys["ingest"], s, stop, seen))
            for s in range(3)
        ] + [threading.Thread(target=reader, args=(base, keys["read"], stop, seen))]
        for thread in threads:
            thread.start()
        try:
            time.sleep(args.warmup_seconds)
            before = dict(seen.statuses)
            stopped_at = time.monotonic()
            try:
                cluster("stop")
                time.sleep(args.down_seconds)
            finally:
                cluster("start")  # whatever happened, the shared server comes back
            started_at = time.monotonic()
            time.sleep(args.after_seconds)
        finally:
            stop.set()
            for thread in threads:
                thread.join(timeout=120)
            server_alive = server.poll() is None
            stop_server(server)
        copies = stored_counts(database_url, seen.acknowledged)
    during = Counter(
        f"{kind} {status}"
        for at, kind, status in seen.timeline
        if stopped_at <= at <= started_at
    )
    recovered = [
        at - started_at
        for at, _kind, status in seen.timeline
        if at > started_at and isinstance(status, int) and status < 400
    ]
    server_errors = {
        k: v
        for k, v in seen.statuses.items()
        if k.split()[-1].isdigit()
        and int(k.split()[-1]) >= 500
        and not k.endswith(" 503")
    }
    hangs = {k: v for k, v in seen.statuses.items() if "Timeout" in k}
    report = {
        "down_seconds": args.down_seconds,
        "statuses_before_stop": before,
        "statuses_while_down": dict(during),
        "statuses_total": dict(seen.statuses),
        "non_503_server_errors": server_errors,
        "client_timeouts": hangs,
        "503_without_retry_after": seen.missing_retry_after,
        "slowest_request_s": round(seen.slowest_s, 2),
        "first_success_after_start_s": round(min(recovered), 2) if recovered else None,
        "server_alive": server_alive,
        "acknowledged_events": len(seen.acknowledged),
        "lost": copies.get(0, 0),
        "stored_more_than_once": sum(v for k, v in copies.items() if k > 1),
    }
    report["ok"] = (
        not server_errors
        and not hangs
        and report["503_without_retry_after"] == 0
        and report["first_success_after_start_s"] is not None
        and report["lost"] == 0
        and report["stored_more_than_once"] == 0
        and server_alive
    )
    return report


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--down-seconds", type=float, default=5)
    parser.add_argument("--warmup-seconds", type=float, default=5)
    parser.add_argument("--after-seconds", type=float, default=15)
    parser.add_argument("--report", help="write the JSON report here")
    parser.add_argument("--server-log", default="/tmp/crm-pg-restart-server.log")
    args = parser.parse_args()
    report = run(args)
    text = orjson.dumps(report, option=orjson.OPT_INDENT_2)
    print(text.decode())
    if args.report:
        Path(args.report).write_bytes(text)
    return 0 if report["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
