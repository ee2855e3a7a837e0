"""Workloads against a running `crm serve`: posts, reads, lag and the mailing plan.

The load comes from `bench.load_client` in its own process, so the server's two
cores are shared with the client exactly as they would be with a front office
on the same host (the figures are therefore conservative).
"""

from __future__ import annotations

import json
import random
import sys
import time
import uuid
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import httpx
import orjson

from bench import data
from bench.common import SECRET, Server, run_measured, wait_caught_up


def _client(server: Server, key: str, mode: str, *args: str) -> dict[str, Any]:
    result = run_measured(
        [
            sys.executable,
            "-m",
            "bench.load_client",
            mode,
            "--base",
            server.base,
            "--key",
            key,
            *args,
        ]
    )
    answer: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    answer["client_peak_rss_mb"] = result.peak_rss_mb
    return answer


def write_bodies(path: Path, events: Iterable[dict[str, Any]], per_request: int) -> int:
    count = 0
    with path.open("wb") as out:
        batch: list[dict[str, Any]] = []
        for event in events:
            batch.append(event)
            count += 1
            if len(batch) == per_request:
                out.write(
                    orjson.dumps(batch[0] if per_request == 1 else {"events": batch})
                    + b"\n"
                )
                batch = []
        if batch:
            out.write(orjson.dumps({"events": batch}) + b"\n")
    return count


def post_events(
    server: Server,
    key: str,
    workdir: Path,
    customers: list[str],
    count: int,
    per_request: int,
    seed: int,
) -> dict[str, Any]:
    """Fresh valid events (contacts and registrations) posted by 32 keep-alive clients."""
    bodies = workdir / f"bodies-{per_request}-{seed}.jsonl"
    write_bodies(bodies, data.fresh_events(seed, customers, count), per_request)
    name = f"post-{per_request}-{seed}"
    server.mark(name)
    answer = _client(
        server, key, "post", "--bodies", str(bodies), "--concurrency", "32"
    )
    answer["server_peak_rss_mb"] = server.peak(name)
    bad = {k: v for k, v in answer["statuses"].items() if k != "201"}
    if bad or answer["events"] != count:
        raise RuntimeError(f"posts failed: {answer}")
    answer["rate"] = answer["events_per_second"]
    return answer


def reads(
    server: Server,
    key: str,
    workdir: Path,
    customers: list[str],
    seconds: float,
    seed: int,
    paced_load: float = 0,
    paced_rate: float = 0,
) -> dict[str, Any]:
    """Household view and contact history of random customers, half each: as many
    as 32 clients get answered, then (with `paced_load`) the same paths offered at
    that fraction of the rate just measured, steadily, whose latencies are `paced`.
    `paced_rate`: offered at that many reads a second instead (the target's rate,
    say), whatever the rate measured."""
    rng = random.Random(seed)
    paths = workdir / f"paths-{seed}.txt"
    with paths.open("w") as out:
        for _ in range(20_000):
            customer = rng.choice(customers)
            view = rng.choice(["household", "contact-history"])
            out.write(f"/v1/customers/{customer}/{view}\n")
    name = f"reads-{seed}"
    server.mark(name)
    args = ["--paths", str(paths), "--seconds", str(seconds), "--concurrency", "32"]
    answer = _client(server, key, "read", *args)
    answer["server_peak_rss_mb"] = server.peak(name)
    answer["rate"] = answer["requests_per_second"]
    offered = paced_rate or answer["rate"] * paced_load
    if offered:
        answer["paced"] = _client(
            server, key, "read", *args, "--paced-rate", str(round(offered))
        )
    for run in (answer, answer.get("paced", {})):
        errors = {
            k: v for k, v in run.get("statuses", {}).items() if k not in ("200", "404")
        }
        if errors:
            raise RuntimeError(f"reads failed: {run}")
    return answer


def lag(
    server: Server,
    key: str,
    workdir: Path,
    customers: list[str],
    seconds: float,
    seed: int,
    rate: int = 500,
) -> dict[str, Any]:
    bodies = workdir / f"lag-{seed}.jsonl"
    write_bodies(bodies, data.fresh_events(seed, customers, int(seconds * rate)), 1)
    answer = _client(
        server,
        key,
        "lag",
        "--bodies",
        str(bodies),
        "--rate",
        str(rate),
        "--concurrency",
        "32",
    )
    answer["rate"] = answer["events_per_second"]
    return answer


def register_population(
    server: Server, key: str, workdir: Path, count: int, seed: int
) -> list[str]:
    """New customers in families for the mailing plan, posted in 1,000-event batches."""
    ids, events = data.mailing_population(seed, count)
    bodies = workdir / f"population-{seed}.jsonl"
    write_bodies(bodies, events, 1000)
    answer = _client(server, key, "post", "--bodies", str(bodies), "--concurrency", "4")
    if answer["events"] != count:
        raise RuntimeError(f"population not stored: {answer}")
    return ids


def mailing_plan(
    server: Server, key: str, targets: list[str], seed: int
) -> dict[str, Any]:
    """Launch a campaign, let the views catch up, then time one plan over every target."""
    headers = {"Authorization": f"Bearer {key}"}
    launch = data.campaign(seed)
    with httpx.Client(base_url=server.base, headers=headers, timeout=600) as http:
        http.post("/v1/events", json=launch).raise_for_status()
        wait_caught_up(server.base, key)
        campaign_id = launch["data"]["campaign_id"]
        body = {
            "request_id": str(
                uuid.UUID(int=random.Random(seed).getrandbits(128), version=4)
            ),
            "customer_ids": targets,
        }
        name = f"plan-{seed}"
        server.mark(name)
        cpu_before = server.cpu_seconds()
        started = time.perf_counter()
        response = http.post(f"/v1/campaigns/{campaign_id}/mailing-plans", json=body)
        seconds = time.perf_counter() - started
        cpu_after = server.cpu_seconds()
        response.raise_for_status()
        plan = response.json()
    return {
        "seconds": seconds,
        "rate": len(targets) / seconds,
        "targets": len(targets),
        "scheduled": len(plan["scheduled"]),
        "suppressed": len(plan["suppressed"]),
        "server_peak_rss_mb": server.peak(name),
        # Who used the CPU while the plan ran: the server (its web processes and
        # the views following the plan's decisions) and PostgreSQL.
        "cpu_seconds": {k: round(cpu_after[k] - cpu_before[k], 2) for k in cpu_after},
        "campaign_id": campaign_id,
        "verified": verify_one_per_household(server.url, campaign_id),
    }


def verify_one_per_household(url: str, campaign_id: str) -> dict[str, Any]:
    """Counts MailingScheduled per (campaign, household) from the stored events themselves."""
    import domain.mailing  # noqa: F401 - registers the stored topics
    from api.bootstrap import build_platform
    from api.settings import Settings
    from projections.records import decode

    platform = build_platform(
        Settings(database_url=url, secret_key=SECRET, log_level="WARNING")
    )
    pieces: Counter[str] = Counter()
    try:
        start = 0
        while True:
            page = platform.app.recorder.select_notifications(
                start, 5000, topics=["crm.MailingScheduled"], inclusive_of_start=False
            )
            if not page:
                break
            for notification in page:
                record = decode(platform.app, notification)
                if record.data["campaign_id"] == campaign_id:
                    pieces[str(record.data["household_id"])] += 1
            start = page[-1].id
    finally:
        platform.close()
    doubled = {h: n for h, n in pieces.items() if n > 1}
    return {
        "households_mailed": len(pieces),
        "households_mailed_twice": len(doubled),
        "held": not doubled,
    }
