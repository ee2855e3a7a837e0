"""Admission control on POST /v1/events: a bound on the body bytes a process works on.

Posts beyond CRM_MAX_EVENT_BYTES_IN_FLIGHT wait, read but not parsed, and are served
in arrival order; none fails for having waited. Checked end to end on SQLite
and PostgreSQL, from one event loop and from several at once.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import asynccontextmanager, contextmanager
from typing import Any

import httpx
import orjson
import pytest
from fastapi.testclient import TestClient

from api.bootstrap import Platform, build_platform
from api.http import create_app
from api.http.admission import BytesInFlight
from api.keys import create_key
from api.settings import Settings
from tests.factories import registered


def batch_bodies(batches: int, events: int) -> list[bytes]:
    return [
        orjson.dumps({"events": [registered(name=f"周{b}-{i}") for i in range(events)]})
        for b in range(batches)
    ]


@contextmanager
def capped_platform(settings: Settings, cap: int) -> Iterator[Platform]:
    platform = build_platform(
        settings.model_copy(update={"max_event_bytes_in_flight": cap})
    )
    try:
        yield platform
    finally:
        platform.close()


def stored_counts(platform: Platform) -> dict[str, int]:
    with platform.db.transaction() as cur:
        row = cur.execute(
            "SELECT count(*) AS n, count(DISTINCT event_id) AS ids FROM crm_event_log"
        ).fetchone()
    assert row is not None
    return dict(row)


class CommitterWatch:
    """Counts the events handed to the group committer and not yet answered."""

    def __init__(self, platform: Platform) -> None:
        self.current = 0
        self.peak = 0
        self._lock = threading.Lock()
        self._submit: Callable[[list[Any]], Future[Any]] = platform.committer.submit
        platform.committer.submit = self.submit  # type: ignore[method-assign,assignment]

    def submit(self, events: list[Any]) -> Future[Any]:
        with self._lock:
            self.current += len(events)
            self.peak = max(self.peak, self.current)
        future = self._submit(events)
        future.add_done_callback(lambda _: self._done(len(events)))
        return future

    def _done(self, count: int) -> None:
        with self._lock:
            self.current -= count


@asynccontextmanager
async def client_of(
    platform: Platform, role: str = "admin"
) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(platform)
    headers = {
        "Authorization": f"Bearer {create_key(platform.db, role)}",
        "Content-Type": "application/json",
    }
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(
        transport=transport, base_url="http://crm", headers=headers, timeout=60
    ) as client:
        client.app = app  # type: ignore[attr-defined]
        yield client


async def until(condition: Callable[[], bool], seconds: float = 20) -> None:
    deadline = asyncio.get_running_loop().time() + seconds
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.01)


def test_posts_beyond_the_cap_wait_then_each_is_stored_once(settings: Settings) -> None:
    bodies = batch_bodies(10, 20)
    cap = len(max(bodies, key=len)) * 5 // 2  # two batches fit, never three
    with capped_platform(settings, cap) as platform:
        watch = CommitterWatch(platform)

        async def scenario() -> list[httpx.Response]:
            async with client_of(platform) as client:
                admission: BytesInFlight = client.app.state.event_bytes_in_flight  # type: ignore[attr-defined]
                async with admission.admit(cap):  # the process is busy
                    posts = [
                        asyncio.create_task(client.post("/v1/events", content=body))
                        for body in bodies
                    ]
                    await until(lambda: admission.waiting == len(bodies))
                    assert watch.peak == 0  # none was parsed or handed on
                    metrics = (await client.get("/metrics")).text
                    assert f"crm_http_event_bytes_in_flight {float(cap)}" in metrics
                    assert (
                        f"crm_http_event_posts_waiting {float(len(bodies))}" in metrics
                    )
                responses = await asyncio.gather(*posts)
                assert admission.peak <= cap
                assert (admission.used, admission.waiting) == (0, 0)
                return responses

        responses = asyncio.run(scenario())
        assert [r.status_code for r in responses] == [201] * len(bodies)
        statuses = {o["status"] for r in responses for o in r.json()["results"]}
        assert statuses == {"stored"}
        assert stored_counts(platform) == {"n": 200, "ids": 200}
        assert 0 < watch.peak <= 40  # at most two batches of 20 at once


def test_a_body_larger_than_the_cap_is_served_alone(settings: Settings) -> None:
    (body,) = batch_bodies(1, 30)
    with capped_platform(settings, 100) as platform:

        async def scenario() -> httpx.Response:
            async with client_of(platform) as client:
                admission: BytesInFlight = client.app.state.event_bytes_in_flight  # type: ignore[attr-defined]
                async with admission.admit(1):  # one small post in flight
                    post = asyncio.create_task(client.post("/v1/events", content=body))
                    await until(lambda: admission.waiting == 1)
                    assert stored_counts(platform) == {"n": 0, "ids": 0}
                response = await post
                assert admission.peak == 100
                return response

        response = asyncio.run(scenario())
        assert response.status_code == 201, response.text
        assert stored_counts(platform) == {"n": 30, "ids": 30}


def test_a_chunked_body_waits_before_it_is_parsed(settings: Settings) -> None:
    (body,) = batch_bodies(1, 10)
    with capped_platform(settings, 10 * len(body)) as platform:
        watch = CommitterWatch(platform)

        async def chunks() -> AsyncIterator[bytes]:
            for start in range(0, len(body), 1000):
                yield body[start : start + 1000]

        async def scenario() -> httpx.Response:
            async with client_of(platform) as client:
                admission: BytesInFlight = client.app.state.event_bytes_in_flight  # type: ignore[attr-defined]
                async with admission.admit(10 * len(body)):
                    post = asyncio.create_task(
                        client.post("/v1/events", content=chunks())
                    )
                    await until(lambda: admission.waiting == 1)
                    assert watch.peak == 0
                return await post

        response = asyncio.run(scenario())
        assert response.status_code == 201, response.text
        assert stored_counts(platform) == {"n": 10, "ids": 10}


def test_posts_from_several_event_loops_share_the_cap(settings: Settings) -> None:
    """The test client runs each request on a loop of its own, in its own thread."""
    bodies = batch_bodies(12, 10)
    cap = len(max(bodies, key=len)) * 3 // 2
    with capped_platform(settings, cap) as platform:
        watch = CommitterWatch(platform)
        app = create_app(platform)
        client = TestClient(app)  # no `with`: a new portal (loop) per request
        client.headers["Authorization"] = f"Bearer {create_key(platform.db, 'ingest')}"
        client.headers["Content-Type"] = "application/json"
        with ThreadPoolExecutor(6) as pool:
            responses = list(
                pool.map(lambda body: client.post("/v1/events", content=body), bodies)
            )
        assert [r.status_code for r in responses] == [201] * len(bodies)
        assert stored_counts(platform) == {"n": 120, "ids": 120}
        admission: BytesInFlight = app.state.event_bytes_in_flight
        assert admission.peak <= cap
        assert (admission.used, admission.waiting) == (0, 0)
        assert watch.peak <= 10  # one batch at a time


# The primitive on its own ------------------------------------------------------


def test_waiters_are_admitted_in_arrival_order() -> None:
    """A large waiter at the head is not overtaken by smaller ones that would fit."""

    async def scenario() -> list[str]:
        gate = BytesInFlight(10)
        order: list[str] = []

        async def post(name: str, size: int, hold: asyncio.Event) -> None:
            async with gate.admit(size):
                order.append(name)
                await hold.wait()

        first, rest = asyncio.Event(), asyncio.Event()
        rest.set()
        running = asyncio.create_task(post("first", 6, first))
        await until(lambda: gate.used == 6)
        large = asyncio.create_task(post("large", 8, rest))
        await until(lambda: gate.waiting == 1)
        small = asyncio.create_task(post("small", 2, rest))
        await until(lambda: gate.waiting == 2)
        first.set()
        await asyncio.gather(running, large, small)
        assert (gate.used, gate.waiting, gate.peak) == (0, 0, 10)  # both fit after it
        return order

    assert asyncio.run(scenario()) == ["first", "large", "small"]


@pytest.mark.parametrize("granted_first", [False, True])
def test_a_cancelled_waiter_gives_its_place_back(granted_first: bool) -> None:
    """A client that goes away while waiting (even just as it was admitted) frees its bytes."""

    async def scenario() -> None:
        gate = BytesInFlight(10)
        holder = gate.admit(10)
        await holder.__aenter__()

        async def post() -> None:
            async with gate.admit(10):
                pass

        waiter = asyncio.create_task(post())
        await until(lambda: gate.waiting == 1)
        if granted_first:
            # No await in between: its wake-up is scheduled, not yet run.
            await holder.__aexit__(None, None, None)
            assert (gate.used, gate.waiting) == (10, 0)
        waiter.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiter
        if not granted_first:
            assert (gate.used, gate.waiting) == (10, 0)
            await holder.__aexit__(None, None, None)
        assert gate.used == 0
        await asyncio.wait_for(post(), 5)

    asyncio.run(scenario())
