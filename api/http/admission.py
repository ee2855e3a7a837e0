"""Admission control for `POST /v1/events`: a bound on the body bytes one process works on.

A 1,000-event body of about 350 KB takes 1.2 MB parsed and peaks near 8 MB
while it is validated, decided and saved; 32 clients posting such batches
would otherwise hold 32,000 parsed events at once. A post is admitted once its
body is read (a slow upload holds no capacity) and before it is parsed; the
others wait in arrival order, and none is refused for waiting."""

from __future__ import annotations

import asyncio
import threading
from collections import deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Gauge


@dataclass(eq=False)
class _Waiter:
    weight: int
    loop: asyncio.AbstractEventLoop
    future: asyncio.Future[None]
    granted: bool = field(default=False)


class BytesInFlight:
    """A first-come first-served weighted semaphore over body bytes.

    Bound to no event loop and safe across threads: the test client runs
    requests on loops of their own in other threads, and a waiter is woken
    through its own loop. A body larger than `capacity` is admitted alone."""

    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError("capacity must be at least 1 byte")
        self.capacity = capacity
        self.used = 0
        self.peak = 0
        self._waiters: deque[_Waiter] = deque()
        self._lock = threading.Lock()

    @property
    def waiting(self) -> int:
        return len(self._waiters)

    @asynccontextmanager
    async def admit(self, size: int) -> AsyncIterator[None]:
        weight = min(max(size, 1), self.capacity)
        waiter = None
        with self._lock:
            if not self._waiters and self.used + weight <= self.capacity:
                self._take(weight)
            else:
                loop = asyncio.get_running_loop()
                waiter = _Waiter(weight, loop, loop.create_future())
                self._waiters.append(waiter)
        if waiter is not None:
            await self._wait(waiter)
        try:
            yield
        finally:
            with self._lock:
                self.used -= weight
                self._grant()

    async def _wait(self, waiter: _Waiter) -> None:
        try:
            await waiter.future
        except BaseException:
            # Cancelled (the client went away): give back whatever was granted meanwhile.
            with self._lock:
                if waiter.granted:
                    self.used -= waiter.weight
                else:
                    self._waiters.remove(waiter)
                self._grant()
            raise

    def _take(self, weight: int) -> None:
        self.used += weight
        self.peak = max(self.peak, self.used)

    def _grant(self) -> None:
        """Admits waiters from the head while they fit (called with the lock held)."""
        while self._waiters and self.used + self._waiters[0].weight <= self.capacity:
            waiter = self._waiters.popleft()
            try:
                waiter.loop.call_soon_threadsafe(_wake, waiter.future)
            except RuntimeError:  # its loop is closed: nobody is left to wait
                continue
            self._take(waiter.weight)
            waiter.granted = True

    def export(self, registry: CollectorRegistry) -> None:
        """Gauges of this process's admitted bytes and waiting posts, read at scrape time."""
        Gauge(
            "crm_http_event_bytes_in_flight",
            "Body bytes of POST /v1/events admitted and not yet answered",
            registry=registry,
        ).set_function(lambda: self.used)
        Gauge(
            "crm_http_event_posts_waiting",
            "POST /v1/events requests waiting for admission",
            registry=registry,
        ).set_function(lambda: self.waiting)


def _wake(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)
