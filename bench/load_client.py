"""The load generator, run as its own process: a small keep-alive HTTP/1.1 client on asyncio.

    python -m bench.load_client post --base URL --key KEY --bodies FILE [--concurrency 32]
    python -m bench.load_client read --base URL --key KEY --paths FILE --seconds S [--paced-rate R]
    python -m bench.load_client lag  --base URL --key KEY --bodies FILE --rate 500

Prints one JSON object. A hand-written client keeps the load generator's own CPU
cost far below a general-purpose one (httpx spends ~1 ms of CPU a request), which
matters on a 2-core machine where client and server share the cores.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections import Counter
from collections.abc import Iterable
from typing import Any
from urllib.parse import urlsplit

try:
    import uvloop
except ImportError:  # pragma: no cover
    uvloop = None  # type: ignore[assignment]


class Connection:
    def __init__(self, host: str, port: int, key: str) -> None:
        self.host, self.port = host, port
        self.head = f"Host: {host}:{port}\r\nAuthorization: Bearer {key}\r\n"
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def open(self) -> None:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(
                self.host, self.port
            )

    async def request(
        self, method: str, path: str, body: bytes = b""
    ) -> tuple[int, bytes]:
        await self.open()
        assert self.reader is not None and self.writer is not None
        extra = (
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
            if method == "POST"
            else ""
        )
        self.writer.write(
            f"{method} {path} HTTP/1.1\r\n{self.head}{extra}\r\n".encode() + body
        )
        status_line = await self.reader.readline()
        if not status_line:
            raise ConnectionError("server closed the connection")
        status = int(status_line.split()[1])
        length, chunked, close = 0, False, False
        while True:
            line = await self.reader.readline()
            if line in (b"\r\n", b"\n", b""):
                break
            name, _, value = line.decode("latin-1").partition(":")
            name = name.strip().lower()
            if name == "content-length":
                length = int(value)
            elif name == "transfer-encoding" and "chunked" in value:
                chunked = True
            elif name == "connection" and "close" in value.lower():
                close = True
        data = await (self._chunks() if chunked else self.reader.readexactly(length))
        if close:
            self.writer.close()
            self.writer = None
        return status, data

    async def _chunks(self) -> bytes:
        assert self.reader is not None
        parts: list[bytes] = []
        while True:
            size = int((await self.reader.readline()).strip(), 16)
            if size == 0:
                await self.reader.readline()
                return b"".join(parts)
            parts.append(await self.reader.readexactly(size))
            await self.reader.readline()


def _percentiles(latencies: list[float]) -> dict[str, float | None]:
    values = sorted(latencies)

    def at(pct: float) -> float | None:
        if not values:
            return None
        return round(
            values[min(len(values) - 1, int(pct / 100 * len(values)))] * 1000, 2
        )

    return {"p50_ms": at(50), "p90_ms": at(90), "p99_ms": at(99), "max_ms": at(100)}


def _target(base: str) -> tuple[str, int]:
    parts = urlsplit(base)
    return parts.hostname or "127.0.0.1", parts.port or 80


async def post(args: argparse.Namespace) -> dict[str, Any]:
    with open(args.bodies, "rb") as source:
        bodies = [line.rstrip(b"\n") for line in source if line.strip()]
    host, port = _target(args.base)
    pending = iter(bodies)
    latencies: list[float] = []
    statuses: Counter[int] = Counter()
    events = 0

    async def worker() -> None:
        nonlocal events
        conn = Connection(host, port, args.key)
        for body in pending:
            started = time.perf_counter()
            status, answer = await conn.request("POST", "/v1/events", body)
            latencies.append(time.perf_counter() - started)
            statuses[status] += 1
            if status == 201:
                events += len(json.loads(answer)["results"])

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(args.concurrency)))
    seconds = time.perf_counter() - started
    return {
        "requests": len(latencies),
        "events": events,
        "seconds": round(seconds, 3),
        "requests_per_second": len(latencies) / seconds,
        "events_per_second": events / seconds,
        "statuses": dict(statuses),
        **_percentiles(latencies),
    }


async def read(args: argparse.Namespace) -> dict[str, Any]:
    with open(args.paths, encoding="utf-8") as source:
        paths = [line.strip() for line in source if line.strip()]
    if args.paced_rate:
        return await read_paced(
            args.base, args.key, paths, args.paced_rate, args.seconds, args.concurrency
        )
    host, port = _target(args.base)
    latencies: list[float] = []
    statuses: Counter[int] = Counter()
    deadline = time.perf_counter() + args.seconds

    async def worker(offset: int) -> None:
        conn = Connection(host, port, args.key)
        n = offset
        while time.perf_counter() < deadline:
            path = paths[n % len(paths)]
            n += args.concurrency
            started = time.perf_counter()
            status, _ = await conn.request("GET", path)
            latencies.append(time.perf_counter() - started)
            statuses[status] += 1

    started = time.perf_counter()
    await asyncio.gather(*(worker(i) for i in range(args.concurrency)))
    seconds = time.perf_counter() - started
    return {
        "requests": len(latencies),
        "seconds": round(seconds, 3),
        "requests_per_second": len(latencies) / seconds,
        "statuses": dict(statuses),
        **_percentiles(latencies),
    }


async def _offer_paced(
    queue: asyncio.Queue[Any],
    items: Iterable[Any],
    rate: float,
    consumers: list[asyncio.Task[None]],
) -> float:
    """Puts (when due, item) on `queue` at a steady `rate`, then a None for each
    consumer, and waits for them to finish. Returns when the first was due."""
    start = time.perf_counter()
    for n, item in enumerate(items):
        due = start + n / rate
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        queue.put_nowait((due, item))
    for _ in consumers:
        queue.put_nowait(None)
    await asyncio.gather(*consumers)
    return start


async def read_paced(
    base: str,
    key: str,
    paths: list[str],
    rate: float,
    seconds: float,
    concurrency: int,
) -> dict[str, Any]:
    """GETs offered at a steady `rate` (open loop) by `concurrency` connections.

    A closed loop's latency at saturation is only its concurrency over its
    throughput (Little's law); this is the latency at a load below saturation.
    Each request's latency counts from when it was due, not from when a
    connection got to it, so a stall delays every request due during it, as it
    would delay real callers (no coordinated omission)."""
    host, port = _target(base)
    queue: asyncio.Queue[tuple[float, str] | None] = asyncio.Queue()
    latencies: list[float] = []
    statuses: Counter[int] = Counter()

    async def worker(conn: Connection) -> None:
        while (item := await queue.get()) is not None:
            due, path = item
            status, _ = await conn.request("GET", path)
            latencies.append(time.perf_counter() - due)
            statuses[status] += 1

    # Connected before the first request is due: the client's own setup is not
    # the server's latency.
    connections = [Connection(host, port, key) for _ in range(concurrency)]
    await asyncio.gather(*(conn.open() for conn in connections))
    workers = [asyncio.create_task(worker(conn)) for conn in connections]
    wanted = (paths[n % len(paths)] for n in range(int(rate * seconds)))
    start = await _offer_paced(queue, wanted, rate, workers)
    took = time.perf_counter() - start
    return {
        "requests": len(latencies),
        "seconds": round(took, 3),
        "offered_per_second": rate,
        "requests_per_second": len(latencies) / took,
        "statuses": dict(statuses),
        **_percentiles(latencies),
    }


async def lag(args: argparse.Namespace) -> dict[str, Any]:
    """Posts at a steady rate; a poller on /readyz sees when every view has each event."""
    with open(args.bodies, "rb") as source:
        bodies = [line.rstrip(b"\n") for line in source if line.strip()]
    host, port = _target(args.base)
    queue: asyncio.Queue[tuple[float, bytes] | None] = asyncio.Queue()
    sent: list[tuple[float, int]] = []  # (send time, position)
    polls: list[tuple[float, int]] = []  # (answer time, lowest projection position)
    statuses: Counter[int] = Counter()
    post_latencies: list[float] = []
    done = asyncio.Event()

    async def poster() -> None:
        conn = Connection(host, port, args.key)
        while (item := await queue.get()) is not None:
            at, body = item
            status, answer = await conn.request("POST", "/v1/events", body)
            post_latencies.append(time.perf_counter() - at)
            statuses[status] += 1
            if status == 201:
                sent.append((at, int(json.loads(answer)["position"])))

    async def poller() -> None:
        conn = Connection(host, port, args.key)
        while not done.is_set():
            status, answer = await conn.request("GET", "/readyz")
            if status == 200:
                body = json.loads(answer)
                polls.append(
                    (
                        time.perf_counter(),
                        min(p["position"] for p in body["projections"]),
                    )
                )
            await asyncio.sleep(args.poll_interval)

    posters = [asyncio.create_task(poster()) for _ in range(args.concurrency)]
    watcher = asyncio.create_task(poller())
    start = await _offer_paced(queue, bodies, args.rate, posters)
    seconds = time.perf_counter() - start
    last = max((p for _, p in sent), default=0)
    deadline = time.perf_counter() + 30
    while (not polls or polls[-1][1] < last) and time.perf_counter() < deadline:
        await asyncio.sleep(0.01)
    done.set()
    await watcher
    lags = []
    index = 0
    for at, position in sorted(sent, key=lambda s: s[1]):
        while index < len(polls) and polls[index][1] < position:
            index += 1
        if index < len(polls):
            lags.append(polls[index][0] - at)
    return {
        "events": len(sent),
        "seconds": round(seconds, 3),
        "events_per_second": len(sent) / seconds,
        "statuses": dict(statuses),
        "polls": len(polls),
        "post": _percentiles(post_latencies),
        "lag": _percentiles(lags),
        "measured": len(lags),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mode", choices=["post", "read", "lag"])
    parser.add_argument("--base", required=True)
    parser.add_argument("--key", required=True)
    parser.add_argument("--bodies")
    parser.add_argument("--paths")
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--rate", type=float, default=500)
    parser.add_argument(
        "--paced-rate",
        type=float,
        default=0,
        help="read: offer this many requests a second (open loop), not as many as answered",
    )
    parser.add_argument("--poll-interval", type=float, default=0.002)
    args = parser.parse_args()
    runner = {"post": post, "read": read, "lag": lag}[args.mode]
    result = (uvloop.run if uvloop is not None else asyncio.run)(runner(args))
    sys.stdout.write(json.dumps(result) + "\n")


if __name__ == "__main__":
    main()
