"""Free heap memory goes back to the system: after a plan, and in every HTTP
process every few seconds (api/memory.py)."""

from __future__ import annotations

import ctypes
import os
import time

import pytest
from fastapi.testclient import TestClient

from api import memory
from api.bootstrap import Platform
from api.http.app import create_app

BLOCK = 64 * 1024  # under glibc's mmap threshold: these come from the heap
BLOCKS = 1024  # 64 MB


def resident_bytes() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


@pytest.mark.skipif(memory._libc() is None, reason="malloc_trim is glibc's")
def test_freed_heap_blocks_leave_the_resident_set_when_released() -> None:
    libc = ctypes.CDLL(None)
    libc.malloc.restype = ctypes.c_void_p
    libc.malloc.argtypes = [ctypes.c_size_t]
    libc.free.argtypes = [ctypes.c_void_p]
    blocks = [libc.malloc(BLOCK) for _ in range(BLOCKS)]
    pin = libc.malloc(BLOCK)  # above them, so that free() cannot shrink the heap's top
    for block in blocks:
        ctypes.memset(block, 1, BLOCK)  # resident
    for block in blocks:
        libc.free(block)
    before = resident_bytes()

    assert memory.release_free_memory() is True

    released = before - resident_bytes()
    libc.free(pin)
    assert released > BLOCK * BLOCKS // 2


@pytest.mark.skipif(memory._libc() is None, reason="malloc_trim is glibc's")
def test_each_http_process_releases_free_memory_every_few_seconds(
    platform: Platform, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[float] = []
    release = memory.release_free_memory

    def counted() -> bool:
        calls.append(time.monotonic())
        return release()

    monkeypatch.setattr(memory, "release_free_memory", counted)
    monkeypatch.setattr(memory, "RELEASE_EVERY_SECONDS", 0.05)
    with TestClient(create_app(platform)) as client:
        assert client.get("/healthz").status_code == 200
        deadline = time.monotonic() + 10
        while len(calls) < 3 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(calls) >= 3
    stopped = len(calls)
    time.sleep(0.3)
    assert len(calls) == stopped  # the app's shutdown ends it
