"""Just the mailing plan workload, on a database holding only its population.

    .venv/bin/python -m bench.plan_only setup [--targets 100000] [--demo-households 5800]
    .venv/bin/python -m bench.plan_only http [--repeat 3]      # as bench.run does
    .venv/bin/python -m bench.plan_only inproc   # planner.plan_answer() read as the server sends it: time, CPU, RSS (py-spy, memray)

`setup` builds a template database (`crm_plan_tpl`) with N registrations in
families (the bench's `mailing_population`) and its views caught up; each run
copies it (`crm_plan_run`), so every run starts from the same state. With
`--demo-households` the population follows the demo log of that many
households (5,800: the full run's million events), as in `bench.run`.
"""

from __future__ import annotations

import argparse
import json
import signal
import subprocess
import threading
import time
import uuid

import psutil
import psycopg

from bench import data, workloads_http
from bench.common import (
    ROOT,
    SECRET,
    Server,
    create_key,
    migrate,
    pg_create,
    wait_caught_up,
)
from bench.workloads_http import write_bodies
from bench.workloads_store import ingest_file, rebuild

ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
TEMPLATE = "crm_plan_tpl"
RUN = "crm_plan_run"
WORK = ROOT / "bench-results" / "plan-only"
PY_SPY = [str(ROOT / ".venv/bin/py-spy"), "record", "--subprocesses", "--idle"]


def setup(targets: int, demo_households: int) -> None:
    WORK.mkdir(parents=True, exist_ok=True)
    url = pg_create(ADMIN, TEMPLATE)
    migrate(url)
    logged = 0
    if demo_households:
        demo = data.write_demo_jsonl(WORK / "demo.jsonl", demo_households, seed=7)
        print("demo", ingest_file(url, WORK / "demo.jsonl", demo.events))
        logged = demo.events
    ids, events = data.mailing_population(500, targets)
    write_bodies(WORK / "population.jsonl", events, 1)
    print("ingest", ingest_file(url, WORK / "population.jsonl", targets))
    print("rebuild", rebuild(url, logged + targets))
    (WORK / "targets.json").write_text(json.dumps(ids))
    (WORK / "key.txt").write_text(create_key(url))


def fresh_copy() -> str:
    with psycopg.connect(ADMIN, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{RUN}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{RUN}" TEMPLATE "{TEMPLATE}"')
    return ADMIN.rsplit("/", 1)[0] + "/" + RUN


def http(repeat: int, web_workers: int, profile: str | None) -> None:
    """Like bench.run: one server, `repeat` plans (new campaigns) over the same targets."""
    targets = json.loads((WORK / "targets.json").read_text())
    key = (WORK / "key.txt").read_text().strip()
    url = fresh_copy()
    with Server(url, CRM_WEB_WORKERS=str(web_workers)) as server:
        wait_caught_up(server.base, key)
        for r in range(repeat):
            spy = None
            if profile and server.proc is not None:
                pid = str(server.proc.pid)
                spy = subprocess.Popen(
                    [*PY_SPY, "-o", f"{profile}.{r}", "-p", pid, "--format", "raw"]
                )
            run = workloads_http.mailing_plan(server, key, targets, seed=600 + r)
            if spy is not None:
                spy.send_signal(signal.SIGINT)
                spy.wait()
            print(json.dumps({k: v for k, v in run.items() if k != "campaign_id"}))


def inproc() -> None:
    from api.bootstrap import build_platform
    from api.settings import Settings
    from api.store.mailing_plans import planner_of

    targets = json.loads((WORK / "targets.json").read_text())
    url = fresh_copy()
    platform = build_platform(
        Settings(database_url=url, secret_key=SECRET, log_level="WARNING")
    )
    launch = data.campaign(600)
    platform.ingestor.ingest([launch], atomic=True)
    planner = planner_of(platform)
    planner.catch_up(platform.app.recorder.max_notification_id() or 0)
    before = psutil.Process().memory_info().rss
    peak = _PeakRss()
    started, cpu = time.perf_counter(), time.process_time()
    # As the server answers: the answer read back in pieces and sent on, never
    # whole (parsing its 100,000 entries here would be most of the peak).
    answer = planner.plan_answer(
        launch["data"]["campaign_id"], targets, str(uuid.uuid4()), actor="bench"
    )
    try:
        answer_bytes = sum(len(piece) for piece in answer.pieces())
    finally:
        answer.close()
    seconds = time.perf_counter() - started
    cpu = time.process_time() - cpu
    peak.stop()
    print(
        json.dumps(
            {
                "seconds": round(seconds, 2),
                "cpu_seconds": round(cpu, 2),  # this process's, every thread's
                "answer_mb": round(answer_bytes / 2**20, 1),
                "rss_before_mb": round(before / 2**20, 1),
                "peak_rss_mb": round(peak.peak / 2**20, 1),
                "rss_after_mb": round(psutil.Process().memory_info().rss / 2**20, 1),
            }
        )
    )
    platform.close()


class _PeakRss:
    """This process's peak RSS, sampled every 10 ms on a thread."""

    def __init__(self) -> None:
        self.peak = 0
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()

    def _sample(self) -> None:
        process = psutil.Process()
        while not self._done.wait(0.01):
            self.peak = max(self.peak, process.memory_info().rss)

    def stop(self) -> None:
        self._done.set()
        self._thread.join()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("mode", choices=["setup", "http", "inproc"])
    parser.add_argument("--targets", type=int, default=100_000)
    parser.add_argument(
        "--demo-households", type=int, default=0, help="setup: the demo log first"
    )
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--web-workers", type=int, default=2)
    parser.add_argument("--profile", help="http: py-spy raw samples of the server here")
    args = parser.parse_args()
    if args.mode == "setup":
        setup(args.targets, args.demo_households)
    elif args.mode == "http":
        http(args.repeat, args.web_workers, args.profile)
    else:
        inproc()


if __name__ == "__main__":
    main()
