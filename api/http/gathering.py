"""How an HTTP process's group commit waits for the posts its event loop is parsing.

The group-commit thread and the event loop share one interpreter. A group
closed at once holds the two or three posts parsed so far, and then its work
contends with the loop for the rest. A group that waits (`GroupCommitter`'s
`delay_seconds`) lets the loop hand them over. Sleeping 1 ms already made
single posts 20-25 % faster; waiting instead until the loop has gone round
a few times (each round runs every callback it has ready: a post's task
reaches `submit` in about that many) adapts to what the loop holds, and was
faster again (docs/benchmarks.md, twenty-fourth pass).
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable

ROUNDS = 4


def loop_gatherer(
    loop: asyncio.AbstractEventLoop, rounds: int = ROUNDS
) -> Callable[[float], None]:
    """A wait, for another thread, until `loop` has gone round `rounds` times,
    or the given seconds have passed."""

    def gather(seconds: float) -> None:
        deadline = time.monotonic() + seconds
        for _ in range(rounds):
            went_round = threading.Event()
            try:
                loop.call_soon_threadsafe(went_round.set)
            except RuntimeError:  # the loop is closed: nothing more comes from it
                return
            if not went_round.wait(max(0.0, deadline - time.monotonic())):
                return

    return gather
