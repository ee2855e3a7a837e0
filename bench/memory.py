"""Workload 9's second half: do export, verify and rebuild use constant memory?

Each tool runs at a small and a large log (100,000 and 1,000,000 events in full
mode); its peak RSS at the large size must stay within 20% of the small one.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

from bench import data
from bench.common import ROOT, migrate, pg_create, pg_drop, run_measured
from bench.workloads_store import ingest_file, rebuild


def rebuild_jobs(events: int) -> int:
    """The processes `crm rebuild` uses by default for a log of `events`."""
    from api.parallel_rebuild import PARALLEL_FROM_EVENTS

    return (os.cpu_count() or 1) if events >= PARALLEL_FROM_EVENTS else 1


def rebuild_rss(
    admin_url: str, workdir: Path, households: int, seed: int, jobs: int
) -> dict[str, Any]:
    """Rebuild's peak RSS (the whole process tree) on a smaller log, in `jobs`
    processes: as many as the large log's rebuild used, so the two compare."""
    name = f"crm_bench_mem_{os.getpid()}"
    url = pg_create(admin_url, name)
    try:
        migrate(url)
        path = workdir / f"demo-{households}.jsonl"
        log = data.write_demo_jsonl(path, households, seed)
        ingest_file(url, path, log.events)
        result = rebuild(url, log.events, jobs)
        return {
            "events": log.events,
            "peak_rss_mb": result["peak_rss_mb"],
            "rate": result["rate"],
        }
    finally:
        pg_drop(admin_url, name)


def audit_rss(admin_url: str, events: int) -> dict[str, Any]:
    """bench/audit_bench.py (verify and export in child processes) at one log size."""
    name = f"crm_bench_audit_{os.getpid()}"
    url = admin_url.rsplit("/", 1)[0] + "/" + name
    try:
        result = run_measured(
            [
                sys.executable,
                str(ROOT / "bench" / "audit_bench.py"),
                "--events",
                str(events),
                "--database-url",
                url,
                "--drop",
            ]
        )
        answer: dict[str, Any] = json.loads(result.stdout[result.stdout.index("{") :])
        return answer
    finally:
        pg_drop(admin_url, name)


def growth(small: float | None, large: float | None) -> float | None:
    if not small or not large:
        return None
    return round(large / small - 1, 3)
