"""The benchmark's paced reads: offered at a steady rate, timed from when each was due.

Against a small HTTP server in this process that answers at once, except for one
request that it holds for 300 ms.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from bench.load_client import read_paced

STALL_SECONDS = 0.3
BODY = b'{"ok":true}'


async def _serve(stalled: list[float]) -> tuple[asyncio.Server, int]:
    async def answer(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        while True:
            request = await reader.readuntil(b"\r\n\r\n")
            if not request:
                return
            if b"/stall " in request.split(b"\r\n", 1)[0]:
                stalled.append(time.perf_counter())
                await asyncio.sleep(STALL_SECONDS)
            writer.write(
                b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(BODY), BODY)
            )
            await writer.drain()

    server = await asyncio.start_server(answer, "127.0.0.1", 0)
    return server, server.sockets[0].getsockname()[1]


def test_paced_reads_offer_the_rate_and_count_a_stall_against_requests_due_in_it() -> (
    None
):
    async def run() -> dict[str, Any]:
        stalled: list[float] = []
        server, port = await _serve(stalled)
        async with server:
            # One connection: while it waits on the stall, the next requests queue.
            paths = ["/fast"] * 20 + ["/stall"] + ["/fast"] * 179
            result = await read_paced(
                f"http://127.0.0.1:{port}", "key", paths, 200, 1.0, 1
            )
        assert len(stalled) == 1
        return result

    result = asyncio.run(run())
    assert result["requests"] == 200
    assert result["statuses"] == {200: 200}
    assert 0.9 <= result["seconds"] < 2.0
    # About 60 requests were due during the 300 ms stall (200 a second), 40 of
    # them more than 100 ms before it ended. Timed from when a connection got to
    # them, only the stalled one would be slow, and the 90th percentile fast.
    assert result["p50_ms"] < 100
    assert result["p90_ms"] > 100
    assert result["max_ms"] >= STALL_SECONDS * 1000
