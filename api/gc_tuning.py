"""How often the cyclic garbage collector runs in a platform process.

CPython's default thresholds (700, 10, 10) run a full collection every 70,000
container allocations. A writer allocates several per event and keeps a large
heap alive on purpose (the aggregate cache, the projections' pages), so every
full collection walks all of it: profiled on `crm ingest`, that was 40 % of
the writer's CPU (38 µs per event with the defaults, 23 µs with these).
Cycles are rare here (facts, rows and dicts are acyclic), so collecting young
objects less often and the whole heap far less often frees nearly all the
same memory, later. Memory is still bounded: reference counting frees
everything acyclic at once, and a full collection still runs.
"""

from __future__ import annotations

import gc

# A young collection every 10,000 net allocations, a middle one every 10 of
# those, a full one every 100 middle ones (and only when CPython's own rule,
# a quarter of the long-lived objects being new, also allows it).
THRESHOLDS = (10_000, 10, 100)


def tune_garbage_collector() -> None:
    """Sets the thresholds for this process (idempotent; every entry point calls it)."""
    gc.set_threshold(*THRESHOLDS)
