"""Soak test: mixed load against a real `crm serve` on PostgreSQL for N minutes.

    python scripts/soak.py --minutes 30 [--threads 3] [--report soak.json]

Creates a scratch PostgreSQL database (on CRM_TEST_POSTGRES_URL's server), starts
`crm serve` on a free port, and runs ingest (single events and small batches),
reads (profiles, households, contact history, searches, lists, with min_position)
and mailing plans. Every interval it samples throughput by kind and the server's
RSS. At the end it checks that every acknowledged event is stored exactly once,
and prints errors by kind, throughput over time and RSS over time (JSON report
with --report). Exit code 1 on any 5xx, lost event or RSS growth after warm-up.
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import orjson
import psycopg

ROOT = Path(__file__).resolve().parent.parent
ADMIN_URL = os.environ.get(
    "CRM_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
SECRET = "soak-secret-key"
SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗"
GIVEN = [
    "伟",
    "芳",
    "娜",
    "秀英",
    "敏",
    "静",
    "丽",
    "强",
    "磊",
    "军",
    "洋",
    "勇",
    "艳",
    "杰",
]
STREETS = [
    "北京市朝阳区建国路{n}号{b}号楼{u}单元{r}室",
    "上海市浦东新区世纪大道{n}弄{b}号{r}室",
    "广州市天河区天河路{n}号{b}栋{r}房",
    "成都市武侯区人民南路四段{n}号{b}幢{u}单元{r}号",
]


# the server ------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def url_for(dbname: str, admin_url: str = ADMIN_URL) -> str:
    return admin_url.rsplit("/", 1)[0] + "/" + dbname


@contextmanager
def scratch_postgres(prefix: str = "crm_soak") -> Iterator[str]:
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    try:
        yield url_for(name)
    finally:
        with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def make_keys(database_url: str, roles: list[str]) -> dict[str, str]:
    """Migrates the database and creates one key per role."""
    from api.bootstrap import build_platform
    from api.keys import create_key
    from api.settings import Settings

    platform = build_platform(Settings(database_url=database_url, secret_key=SECRET))
    try:
        return {role: create_key(platform.db, role) for role in roles}
    finally:
        platform.close()


def server_env(database_url: str, **extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        CRM_DATABASE_URL=database_url,
        CRM_SECRET_KEY=SECRET,
        CRM_LOG_FORMAT="json",
        CRM_LOG_LEVEL="INFO",
    )
    env.update(extra)
    return env


def start_server(
    database_url: str,
    port: int,
    log_path: Path,
    args: Sequence[str] = (),
    **extra_env: str,
) -> subprocess.Popen[bytes]:
    """`crm serve --port PORT *args`, once it answers /healthz."""
    crm = Path(sys.executable).parent / "crm"
    log = log_path.open("ab")
    process = subprocess.Popen(
        [str(crm), "serve", "--port", str(port), *args],
        env=server_env(database_url, **extra_env),
        stdout=log,
        stderr=log,
        cwd=ROOT,
    )
    log.close()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"crm serve exited with {process.returncode}")
        try:
            if (
                httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code
                == 200
            ):
                return process
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    process.kill()
    raise RuntimeError("crm serve did not answer /healthz within 60 s")


def stop_server(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def rss_kib(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


# events ----------------------------------------------------------------------------


def chinese_name(rng: random.Random) -> str:
    return rng.choice(SURNAMES) + rng.choice(GIVEN)


def address_line(rng: random.Random) -> str:
    template = rng.choice(STREETS)
    return template.format(
        n=rng.randint(1, 300),
        b=rng.randint(1, 20),
        u=rng.randint(1, 6),
        r=rng.randint(101, 2805),
    )


def envelope(type_: str, data: dict[str, Any]) -> dict[str, Any]:
    return {
        "event_id": str(uuid.uuid4()),
        "type": type_,
        "occurred_at": "2025-03-01T10:00:00+08:00",
        "source": "branch:BJ001",
        "actor": "officer:王芳",
        "data": data,
    }


def registration(rng: random.Random) -> dict[str, Any]:
    return envelope(
        "CustomerRegistered",
        {
            "customer_id": str(uuid.uuid4()),
            "name": chinese_name(rng),
            "address": {"line": address_line(rng)},
            "phone": f"13{rng.randint(100000000, 999999999)}",
            "branch_code": rng.choice(["BJ001", "SH002", "GZ003", "CD004"]),
        },
    )


def contact(rng: random.Random, customer_id: str) -> dict[str, Any]:
    return envelope(
        "ContactLogged",
        {
            "contact_id": str(uuid.uuid4()),
            "customer_id": customer_id,
            "channel": rng.choice(["branch", "phone", "sms", "web"]),
            "direction": rng.choice(["inbound", "outbound"]),
            "topic": rng.choice(["理财咨询", "信用卡账单", "保险续保", "地址变更"]),
        },
    )


def move(rng: random.Random, customer_id: str) -> dict[str, Any]:
    return envelope(
        "CustomerMoved",
        {"customer_id": customer_id, "address": {"line": address_line(rng)}},
    )


# load ------------------------------------------------------------------------------


@dataclass
class Stats:
    lock: threading.Lock = field(default_factory=threading.Lock)
    requests: Counter[str] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    acknowledged: set[str] = field(default_factory=set)
    customers: list[str] = field(default_factory=list)
    head: int = 0
    server_errors: int = 0

    def record(self, kind: str, status: int | str) -> None:
        with self.lock:
            self.requests[kind] += 1
            if not (isinstance(status, int) and status < 400):
                self.errors[f"{kind} {status}"] += 1
            if isinstance(status, int) and status >= 500:
                self.server_errors += 1


class Load:
    def __init__(
        self, base: str, keys: dict[str, str], stats: Stats, seed: int, pause: float
    ) -> None:
        self.base = base
        self.pause = pause
        self.keys = keys
        self.stats = stats
        self.rng = random.Random(seed)
        self.stop = threading.Event()

    def client(self, role: str) -> httpx.Client:
        return httpx.Client(
            base_url=self.base,
            timeout=30,
            headers={"Authorization": f"Bearer {self.keys[role]}"},
        )

    def call(
        self, client: httpx.Client, kind: str, method: str, url: str, **kw: Any
    ) -> httpx.Response | None:
        try:
            response = client.request(method, url, **kw)
        except httpx.HTTPError as error:
            self.stats.record(kind, type(error).__name__)
            return None
        self.stats.record(kind, response.status_code)
        return response

    def post_events(self, client: httpx.Client, events: list[dict[str, Any]]) -> None:
        body = {"events": events} if len(events) > 1 else events[0]
        kind = "ingest.batch" if len(events) > 1 else "ingest.single"
        response = self.call(client, kind, "POST", "/v1/events", json=body)
        if response is None or response.status_code != 201:
            return
        with self.stats.lock:
            self.stats.acknowledged.update(e["event_id"] for e in events)
            self.stats.head = max(self.stats.head, response.json()["position"] or 0)
            self.stats.customers.extend(
                e["data"]["customer_id"]
                for e in events
                if e["type"] == "CustomerRegistered"
            )

    def known_customers(self, count: int) -> list[str]:
        with self.stats.lock:
            pool = self.stats.customers[-5000:]
        return self.rng.sample(pool, min(count, len(pool))) if pool else []

    def ingest_loop(self) -> None:
        with self.client("ingest") as client:
            while not self.stop.is_set():
                known = self.known_customers(3)
                roll = self.rng.random()
                # Mostly touchpoints with known customers; registrations are the
                # costliest events for the household view.
                if roll < 0.2 or not known:
                    events = [registration(self.rng)]
                elif roll < 0.35:
                    events = [
                        registration(self.rng) for _ in range(self.rng.randint(2, 5))
                    ]
                elif roll < 0.85:
                    events = [contact(self.rng, c) for c in known]
                else:
                    events = [move(self.rng, known[0])]
                self.post_events(client, events)
                # Paced: a sustained rate the views can follow (read-your-writes
                # answers 503 not_caught_up when they trail by more than 5 s).
                self.stop.wait(self.rng.uniform(0, 2 * self.pause))

    def read_loop(self) -> None:
        with self.client("read") as client:
            while not self.stop.is_set():
                known = self.known_customers(1)
                if not known:
                    time.sleep(0.1)
                    continue
                customer = known[0]
                head = self.stats.head
                choice = self.rng.randrange(6)
                if choice == 0:
                    self.call(
                        client,
                        "read.customer",
                        "GET",
                        f"/v1/customers/{customer}",
                        params={"min_position": head},
                    )
                elif choice == 1:
                    self.call(
                        client,
                        "read.household",
                        "GET",
                        f"/v1/customers/{customer}/household",
                        params={"min_position": head},
                    )
                elif choice == 2:
                    self.call(
                        client,
                        "read.contact_history",
                        "GET",
                        f"/v1/customers/{customer}/contact-history",
                        params={"limit": 20, "min_position": head},
                    )
                elif choice == 3:
                    self.call(
                        client,
                        "read.households",
                        "GET",
                        "/v1/households",
                        params={"limit": 50, "branch_code": "BJ001"},
                    )
                elif choice == 4:
                    self.call(
                        client,
                        "read.search",
                        "GET",
                        "/v1/customers/search",
                        params={"name": chinese_name(self.rng)},
                    )
                else:
                    self.call(client, "read.readyz", "GET", "/readyz")

    def mailing_loop(self) -> None:
        with self.client("ingest") as ingest, self.client("mailing") as mailing:
            while not self.stop.wait(5.0):
                targets = self.known_customers(200)
                if not targets:
                    continue
                campaign_id = str(uuid.uuid4())
                launch = envelope(
                    "CampaignLaunched",
                    {
                        "campaign_id": campaign_id,
                        "name": "春节理财推广",
                        "channel": "mail",
                        "purpose": "marketing",
                    },
                )
                self.post_events(ingest, [launch])
                body = {"request_id": str(uuid.uuid4()), "customer_ids": targets}
                self.call(
                    mailing,
                    "mailing.plan",
                    "POST",
                    f"/v1/campaigns/{campaign_id}/mailing-plans",
                    json=body,
                )
                self.call(
                    mailing,
                    "mailing.report",
                    "GET",
                    f"/v1/campaigns/{campaign_id}/report",
                )


# checks ----------------------------------------------------------------------------


def stored_counts(database_url: str, event_ids: list[str]) -> Counter[int]:
    """How many crm_event_log rows each acknowledged id has: {copies: ids}."""
    copies: Counter[int] = Counter()
    with psycopg.connect(database_url) as conn:
        for start in range(0, len(event_ids), 5000):
            chunk = event_ids[start : start + 5000]
            rows = conn.execute(
                "SELECT e.id, count(l.event_id) FROM unnest(%s::uuid[]) AS e(id) "
                "LEFT JOIN crm_event_log l ON l.event_id = e.id GROUP BY e.id",
                (chunk,),
            ).fetchall()
            copies.update(int(n) for _, n in rows)
    return copies


def projection_lag(base: str, admin_key: str) -> int | None:
    """How many events the slowest projection trails the log head."""
    try:
        ready = httpx.get(
            f"{base}/readyz",
            headers={"Authorization": f"Bearer {admin_key}"},
            timeout=10,
        ).json()
        return int(max(p["lag"] for p in ready["projections"]))
    except (httpx.HTTPError, KeyError, ValueError):
        return None


def rss_growth(samples: list[dict[str, Any]], warmup_fraction: float = 0.25) -> float:
    """Growth of RSS from the first to the last quarter after warm-up, in percent."""
    after = [s["rss_kib"] for s in samples[int(len(samples) * warmup_fraction) :]]
    if len(after) < 4:
        return 0.0
    quarter = max(1, len(after) // 4)
    early = sorted(after[:quarter])[quarter // 2]
    late = sorted(after[-quarter:])[quarter // 2]
    return float(100.0 * (late - early) / max(early, 1))


def run(args: argparse.Namespace) -> dict[str, Any]:
    log_path = Path(args.server_log)
    with scratch_postgres() as database_url:
        keys = make_keys(database_url, ["ingest", "read", "mailing", "admin"])
        port = free_port()
        server = start_server(database_url, port, log_path)
        stats = Stats()
        base = f"http://127.0.0.1:{port}"
        load = Load(base, keys, stats, seed=args.seed, pause=args.pause)
        workers = [
            threading.Thread(target=load.ingest_loop, daemon=True)
            for _ in range(args.threads)
        ]
        workers += [
            threading.Thread(target=load.read_loop, daemon=True)
            for _ in range(args.threads)
        ]
        workers.append(threading.Thread(target=load.mailing_loop, daemon=True))
        for worker in workers:
            worker.start()
        samples: list[dict[str, Any]] = []
        started = time.monotonic()
        last = Counter[str]()
        try:
            while time.monotonic() - started < args.minutes * 60:
                time.sleep(args.interval)
                with stats.lock:
                    now = Counter(stats.requests)
                    acknowledged = len(stats.acknowledged)
                delta = now - last
                last = now
                sample = {
                    "t_s": round(time.monotonic() - started),
                    "rss_kib": rss_kib(server.pid),
                    "requests_per_s": round(sum(delta.values()) / args.interval, 1),
                    "by_kind_per_s": {
                        k: round(v / args.interval, 1) for k, v in sorted(delta.items())
                    },
                    "acknowledged_events": acknowledged,
                    "server_errors": stats.server_errors,
                    "projection_lag": projection_lag(base, keys["admin"]),
                }
                samples.append(sample)
                print(orjson.dumps(sample).decode(), flush=True)
                if server.poll() is not None:
                    break
        finally:
            load.stop.set()
            for worker in workers:
                worker.join(timeout=60)
            alive = server.poll() is None
            stop_server(server)
        ids = sorted(stats.acknowledged)
        copies = stored_counts(database_url, ids)
    growth = rss_growth(samples)
    report = {
        "minutes": args.minutes,
        "threads": args.threads,
        "server_alive_at_end": alive,
        "requests": dict(stats.requests),
        "requests_total": sum(stats.requests.values()),
        "errors_by_kind": dict(stats.errors),
        "server_errors_5xx": stats.server_errors,
        "acknowledged_events": len(ids),
        "stored_exactly_once": copies.get(1, 0),
        "lost": copies.get(0, 0),
        "stored_more_than_once": sum(v for k, v in copies.items() if k > 1),
        "rss_kib_first": samples[0]["rss_kib"] if samples else None,
        "rss_kib_last": samples[-1]["rss_kib"] if samples else None,
        "rss_kib_max": max((s["rss_kib"] for s in samples), default=None),
        "rss_growth_after_warmup_pct": round(growth, 1),
        "samples": samples,
    }
    report["ok"] = (
        alive
        and report["server_errors_5xx"] == 0
        and report["lost"] == 0
        and report["stored_more_than_once"] == 0
        and growth < args.max_rss_growth_pct
    )
    return report


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=30)
    parser.add_argument(
        "--threads", type=int, default=3, help="ingest and read threads each"
    )
    parser.add_argument(
        "--interval", type=float, default=30, help="seconds between samples"
    )
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--pause",
        type=float,
        default=0.3,
        help="mean seconds between an ingest thread's posts",
    )
    parser.add_argument("--report", help="write the JSON report here")
    parser.add_argument("--server-log", default="/tmp/crm-soak-server.log")
    parser.add_argument("--max-rss-growth-pct", type=float, default=10.0)
    args = parser.parse_args()
    # Background jobs ignore SIGINT: let SIGTERM stop the run cleanly too.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    report = run(args)
    summary = {k: v for k, v in report.items() if k != "samples"}
    print(orjson.dumps(summary, option=orjson.OPT_INDENT_2).decode())
    if args.report:
        Path(args.report).write_bytes(orjson.dumps(report, option=orjson.OPT_INDENT_2))
    return 0 if report["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
