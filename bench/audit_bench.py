"""Benchmark of the auditors' tools (not a test): chain verification and export on a large log.

    python bench/audit_bench.py --events 100000 \
        --database-url postgresql://postgres@127.0.0.1:5432/crm_bench

Creates the database (dropping an old one of that name), fills it through the
ingest path in batches of 1000, then runs `verify` and a JSON Lines export in
child processes, reporting events/s and each child's peak RSS.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

SURNAMES = "王李张刘陈杨赵黄周吴徐孙胡朱高林何郭马罗"
GIVEN = ["芳", "伟", "娜", "敏", "静", "磊", "洋", "婷", "强", "军", "杰", "丽"]
STREETS = ["建国路", "世纪大道", "天河路", "中关村大街", "解放路", "人民路", "长安街"]
CITIES = [
    "北京市朝阳区",
    "上海市浦东新区",
    "广州市天河区",
    "深圳市南山区",
    "杭州市西湖区",
]
SECRET = secrets.token_hex(16)  # the bench never looks national IDs up


def envelopes(count: int) -> Iterator[dict[str, Any]]:
    """Customers, each with an account, balances and a contact: 6 events per customer."""
    made = 0
    n = 0
    while made < count:
        n += 1
        customer, account = str(uuid.uuid4()), str(uuid.uuid4())
        name = SURNAMES[n % len(SURNAMES)] + GIVEN[n % len(GIVEN)]
        line = f"{CITIES[n % len(CITIES)]}{STREETS[n % len(STREETS)]}{n % 500 + 1}号{n % 30 + 1}楼{n % 9 + 1}01室"
        base = {"source": "branch:BJ001", "actor": "officer:王芳"}
        day = f"2025-{n % 12 + 1:02d}-{n % 28 + 1:02d}"
        batch = [
            (
                "CustomerRegistered",
                {
                    "customer_id": customer,
                    "name": name,
                    "address": {"line": line},
                    "branch_code": "BJ001",
                },
            ),
            (
                "AccountOpened",
                {
                    "account_id": account,
                    "customer_id": customer,
                    "product": "deposit",
                    "branch_code": "BJ001",
                },
            ),
            (
                "BalanceReported",
                {"account_id": account, "balance": f"{n % 100000}.00", "as_of": day},
            ),
            (
                "BalanceReported",
                {"account_id": account, "balance": f"{n % 90000}.50", "as_of": day},
            ),
            ("FeeCharged", {"account_id": account, "amount": "12.00", "kind": "年费"}),
            (
                "ContactLogged",
                {
                    "contact_id": str(uuid.uuid4()),
                    "customer_id": customer,
                    "channel": "phone",
                    "direction": "outbound",
                    "topic": "理财到期提醒",
                },
            ),
        ]
        for type_, data in batch:
            if made >= count:
                return
            made += 1
            yield {
                "event_id": str(uuid.uuid4()),
                "type": type_,
                "occurred_at": f"{day}T10:00:00+08:00",
                "data": data,
                **base,
            }


def recreate(url: str) -> None:
    admin, name = url.rsplit("/", 1)
    with psycopg.connect(admin + "/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')


def platform_for(url: str) -> Any:
    from api.bootstrap import build_platform
    from api.logging import configure_logging
    from api.settings import Settings

    configure_logging("json", "WARNING")

    return build_platform(
        Settings(
            database_url=url, secret_key=SECRET, log_level="WARNING", log_format="json"
        )
    )


def fill(url: str, count: int) -> float:
    platform = platform_for(url)
    started = time.perf_counter()
    batch: list[dict[str, Any]] = []
    try:
        for envelope in envelopes(count):
            batch.append(envelope)
            if len(batch) == 1000:
                platform.ingestor.ingest(batch, atomic=True)
                batch = []
        if batch:
            platform.ingestor.ingest(batch, atomic=True)
    finally:
        platform.close()
    return time.perf_counter() - started


class PeakRss:
    """This process's peak resident memory while it runs, sampled every 20 ms.

    Not getrusage's ru_maxrss: a child keeps its parent's high-water mark
    through fork and exec, so it would report the (larger) filling process."""

    def __init__(self) -> None:
        import psutil

        self._process = psutil.Process()
        self.peak = self.now()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()

    def now(self) -> float:
        return float(self._process.memory_info().rss) / 2**20

    def _watch(self) -> None:
        while not self._stop.wait(0.02):
            self.peak = max(self.peak, self.now())

    def stop(self) -> float:
        self._stop.set()
        self._thread.join()
        return max(self.peak, self.now())


def phase(url: str, name: str) -> dict[str, Any]:
    """Runs in a child process so its peak RSS is its own."""
    from api.audit.export import LogFilter, jsonl_lines, scan_log
    from api.audit.verify import verify_log

    platform = platform_for(url)
    memory = PeakRss()
    baseline = memory.peak
    started = time.perf_counter()
    try:
        if name == "verify":
            report = verify_log(platform.db)
            count, ok = report.checked, report.ok
        else:
            count, ok = 0, True
            with open(os.devnull, "wb") as sink:
                for line in jsonl_lines(scan_log(platform, LogFilter())):
                    sink.write(line)
                    count += 1
    finally:
        platform.close()
    seconds = time.perf_counter() - started
    return {
        "phase": name,
        "events": count,
        "ok": ok,
        "seconds": round(seconds, 2),
        "events_per_second": round(count / seconds) if seconds else None,
        "peak_rss_mb": round(memory.stop(), 1),
        "rss_before_mb": round(baseline, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument(
        "--database-url", default="postgresql://postgres@127.0.0.1:5432/crm_bench"
    )
    parser.add_argument(
        "--reuse",
        action="store_true",
        help="Keep the database and its events (no refill)",
    )
    parser.add_argument(
        "--drop", action="store_true", help="Drop the database afterwards"
    )
    parser.add_argument("--phase", choices=["verify", "export"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.phase:
        sys.stdout.write(json.dumps(phase(args.database_url, args.phase)) + "\n")
        return
    results: dict[str, Any] = {
        "events": args.events,
        "database": args.database_url.rsplit("@", 1)[-1],
    }
    if not args.reuse:
        if args.database_url.startswith("postgresql://"):
            recreate(args.database_url)
        seconds = fill(args.database_url, args.events)
        results["fill"] = {
            "seconds": round(seconds, 1),
            "events_per_second": round(args.events / seconds),
        }
    for name in ("verify", "export"):
        child = subprocess.run(
            [
                sys.executable,
                __file__,
                "--phase",
                name,
                "--database-url",
                args.database_url,
            ],
            check=True,
            capture_output=True,
            text=True,
        )
        results[name] = json.loads(child.stdout.strip().splitlines()[-1])
    if args.drop and args.database_url.startswith("postgresql://"):
        admin, name = args.database_url.rsplit("/", 1)
        with psycopg.connect(admin + "/postgres", autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    sys.stdout.write(json.dumps(results, indent=2, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    main()
