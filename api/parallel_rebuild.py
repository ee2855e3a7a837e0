"""`crm rebuild` in several processes at once (PostgreSQL).

Each view keeps its own tables and its own position, so views can be rebuilt
side by side: every process reads the log itself (reading is cheap next to
applying it) and rebuilds its share of the views. The shares are balanced by
what each view costs per event, measured on the demo data; a view not listed
counts as cheap. SQLite has one writer at a time, so it always rebuilds in one
process.
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from typing import TYPE_CHECKING

from api.spawning import spawn_context

if TYPE_CHECKING:
    from api.bootstrap import Platform

# Below this many events, starting processes (a second or two each) costs more
# than rebuilding side by side saves.
PARALLEL_FROM_EVENTS = 200_000

# Relative cost of rebuilding each view: seconds of wall time per 100,000 demo
# events, each view rebuilt alone, less the time reading the log takes
# (docs/benchmarks.md, ninth pass).
COST = {
    "households": 2.9,
    "contact_history": 2.0,
    "accounts": 1.7,
    "customers": 1.65,
    "complaints": 0.15,
    "orders": 0.05,
    "mailing_decisions": 0.02,
}
UNLISTED = 0.1  # a view not listed counts as one of the cheap ones above


def shares(names: Sequence[str], jobs: int) -> list[list[str]]:
    """`names` split into at most `jobs` groups of about equal cost (largest first)."""
    groups: list[list[str]] = [[] for _ in range(max(1, min(jobs, len(names))))]
    loads = [0.0] * len(groups)
    for name in sorted(names, key=lambda n: -COST.get(n, UNLISTED)):
        lightest = loads.index(min(loads))
        groups[lightest].append(name)
        loads[lightest] += COST.get(name, UNLISTED)
    return [g for g in groups if g]


def default_jobs(platform: Platform, cpus: int) -> int:
    """One process per CPU for a large log, else one."""
    events = platform.app.recorder.max_notification_id() or 0
    return cpus if events >= PARALLEL_FROM_EVENTS else 1


def _rebuild_share(names: list[str]) -> int:
    from api.cli_support import platform_from_env

    with platform_from_env() as platform:
        return platform.runner.rebuild(names)


def rebuild_in_processes(names: Sequence[str], jobs: int) -> int:
    """Rebuilds `names` in up to `jobs` processes; returns the events each read.

    Every process takes its settings from the environment, as this one did."""
    groups = shares(names, jobs)
    with ProcessPoolExecutor(len(groups), mp_context=spawn_context()) as pool:
        counts = list(pool.map(_rebuild_share, groups))
    return max(counts)
