"""Workloads that run the `crm` command itself: ingest, the balance file, rebuild."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import orjson

from bench import data
from bench.common import CRM, crm_env, run_measured


def ingest_file(url: str, path: Path, expected: int) -> dict[str, Any]:
    """`crm ingest FILE` (JSON Lines or the balance CSV); every line must be stored."""
    result = run_measured([*CRM, "ingest", str(path)], crm_env(url))
    match = re.search(r"stored (\d+), duplicates (\d+), rejected (\d+)", result.stdout)
    if match is None:
        raise RuntimeError(f"crm ingest said: {result.stdout[-500:]}")
    stored = int(match.group(1))
    if stored != expected:
        raise RuntimeError(f"crm ingest stored {stored} of {expected}: {result.stdout}")
    return {
        "rate": stored / result.seconds,
        "seconds": result.seconds,
        "count": stored,
        "peak_rss_mb": result.peak_rss_mb,
    }


def ingest_fresh(
    url: str, workdir: Path, customers: list[str], count: int, seed: int
) -> dict[str, Any]:
    """`crm ingest` of the events `post_batch` posts (`data.fresh_events`, another
    seed): workload 4's own events through workload 1's path, so that the HTTP
    edge's cost is seen apart from what its events cost. Four in five are
    contacts of customers chosen at random, each loaded to check it exists; the
    demo log names mostly what it created a few events before."""
    path = workdir / f"fresh-{seed}.jsonl"
    with path.open("wb") as out:
        for event in data.fresh_events(seed, customers, count):
            out.write(orjson.dumps(event) + b"\n")
    return ingest_file(url, path, count)


def rebuild(url: str, log_events: int, jobs: int | None = None) -> dict[str, Any]:
    """`crm rebuild` (every view) over the whole log: a cold start; rate = log events/s.

    `jobs`: its `--jobs` (None: its default, one process per CPU from 200,000 events)."""
    extra = [] if jobs is None else ["--jobs", str(jobs)]
    result = run_measured([*CRM, "rebuild", *extra], crm_env(url))
    return {
        "rate": log_events / result.seconds,
        "seconds": result.seconds,
        "count": log_events,
        "peak_rss_mb": result.peak_rss_mb,
        "said": result.stdout.strip().splitlines()[-1],
    }


def project_from_zero(url: str, log_events: int) -> dict[str, Any]:
    """The views caught up by a fresh process, timed in-process (py-spy friendly)."""
    result = run_measured(
        [
            "python",
            "-c",
            "from api.bootstrap import build_platform; from api.settings import Settings; "
            "p = build_platform(Settings()); print(p.runner.catch_up()); p.close()",
        ],
        crm_env(url),
    )
    return {
        "rate": log_events / result.seconds,
        "seconds": result.seconds,
        "peak_rss_mb": result.peak_rss_mb,
    }
