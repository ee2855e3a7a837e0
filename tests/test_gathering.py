"""An HTTP process's group commit waits for its event loop, and not past its time."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator

import pytest

from api.http.gathering import loop_gatherer


@pytest.fixture
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    running = asyncio.new_event_loop()
    thread = threading.Thread(target=running.run_forever, daemon=True)
    thread.start()
    yield running
    running.call_soon_threadsafe(running.stop)
    thread.join(5)
    running.close()


def test_the_gatherer_returns_once_the_loop_has_gone_round(
    loop: asyncio.AbstractEventLoop,
) -> None:
    """Each round runs every callback the loop holds, and the ones they
    schedule run in the next round: a task's steps, as a post's are."""
    ran: list[int] = []

    def step(n: int) -> None:  # each step holds the loop 20 ms
        ran.append(n)
        time.sleep(0.02)
        if n < 50:
            loop.call_soon(step, n + 1)

    loop.call_soon_threadsafe(step, 0)
    loop_gatherer(loop, rounds=3)(10.0)
    seen = len(ran)
    assert 3 <= seen < 20  # three rounds, not the whole second of the chain


def test_the_gatherer_gives_up_on_a_loop_held_up(
    loop: asyncio.AbstractEventLoop,
) -> None:
    held = threading.Event()
    loop.call_soon_threadsafe(held.wait, 10)
    started = time.monotonic()
    loop_gatherer(loop)(0.05)
    waited = time.monotonic() - started
    held.set()
    assert waited < 5  # the loop was held for up to 10 s


def test_the_gatherer_of_a_closed_loop_returns_at_once() -> None:
    """The app's loop may close while its committer lives on (a test client
    that exited): a group must not fail for it."""
    closed = asyncio.new_event_loop()
    closed.close()
    started = time.monotonic()
    loop_gatherer(closed)(10.0)
    assert time.monotonic() - started < 5
