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


class _Server:
    """What `bench.workloads_http.reads` asks of the server it measures."""

    def mark(self, name: str) -> None:
        pass

    def peak(self, name: str) -> float:
        return 0.0


def _offered(monkeypatch: Any, tmp_path: Any, **pacing: float) -> list[str]:
    """The `--paced-rate` each call of the load client was given, for a measured
    rate of 1,234 reads a second."""
    from bench import workloads_http

    offered: list[str] = []

    def client(server: Any, key: str, mode: str, *args: str) -> dict[str, Any]:
        if "--paced-rate" in args:
            offered.append(args[args.index("--paced-rate") + 1])
        return {"requests_per_second": 1234.0, "statuses": {"200": 1}}

    monkeypatch.setattr(workloads_http, "_client", client)
    workloads_http.reads(
        _Server(),  # type: ignore[arg-type]
        "key",
        tmp_path,
        ["c1", "c2"],
        1.0,
        seed=1,
        **pacing,
    )
    return offered


def test_paced_reads_are_offered_at_a_fraction_of_the_rate_or_at_a_rate_given(
    monkeypatch: Any, tmp_path: Any
) -> None:
    assert _offered(monkeypatch, tmp_path, paced_load=0.5) == ["617"]
    assert _offered(monkeypatch, tmp_path, paced_load=0.5, paced_rate=2000) == ["2000"]
    assert _offered(monkeypatch, tmp_path, paced_load=0) == []


def _reads_entry(rate: float, p50: float, p99: float, paced: dict[str, float]) -> Any:
    from bench import report

    run = {"rate": rate, "p50_ms": p50, "p99_ms": p99, "paced": paced}
    results = {
        "workloads": {"reads": {"postgresql": report.aggregate([run], None)}},
        "machine": {"load_average": (0.0, 0.0, 0.0)},
    }
    report.check_targets(results)
    assert "paced" in report.table(results)
    return results["workloads"]["reads"]["postgresql"]


def test_target_six_is_judged_both_in_the_closed_loop_and_at_the_offered_rate() -> None:
    def paced(offered: float, served: float, p50: float, p99: float) -> Any:
        return {
            "offered_per_second": offered,
            "requests_per_second": served,
            "p50_ms": p50,
            "p99_ms": p99,
        }

    # Saturated by 32 clients: the rate is there, the latency is 32 / rate.
    entry = _reads_entry(2400, 13.0, 22.0, paced(2000, 1999.9, 2.1, 10.2))
    assert (entry["met"], entry["paced_met"]) == (False, True)
    # Too slow a tail at the target's rate.
    entry = _reads_entry(2400, 13.0, 22.0, paced(2000, 1999.9, 2.1, 30.0))
    assert entry["paced_met"] is False
    # Offered below the target's rate, or not served at the rate offered.
    assert _reads_entry(2400, 13, 22, paced(1200, 1200, 1.3, 5))["paced_met"] is False
    assert _reads_entry(2400, 13, 22, paced(2000, 1900, 2.1, 9))["paced_met"] is False
    # Fast enough for both readings.
    entry = _reads_entry(7000, 4.5, 20.0, paced(2000, 2000, 1.0, 4.0))
    assert (entry["met"], entry["paced_met"]) == (True, True)
