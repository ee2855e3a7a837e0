"""`crm serve --workers N`: each HTTP process on its own SO_REUSEPORT socket, so
connections opened together are spread over the workers (and still are after a
worker dies and is replaced)."""

from __future__ import annotations

import multiprocessing
import os
import signal
import socket
import sys
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest

from api import spawning
from api.spawning import main_module_named
from api.web_workers import reuse_port_sockets
from scripts.soak import free_port, make_keys, start_server, stop_server


def test_the_sockets_share_one_port_even_when_asked_for_any() -> None:
    sockets = reuse_port_sockets("127.0.0.1", 0, 3)
    try:
        ports = {sock.getsockname()[1] for sock in sockets}
        assert len(ports) == 1 and 0 not in ports
        for sock in sockets:
            sock.listen()
        with socket.create_connection(("127.0.0.1", ports.pop()), timeout=2):
            pass
    finally:
        for sock in sockets:
            sock.close()


def _children(pid: int) -> set[int]:
    children: set[int] = set()
    for task in Path(f"/proc/{pid}/task").iterdir():
        text = (task / "children").read_text().split()
        children.update(int(child) for child in text)
    return children


def _sockets_on(port: int, state: str) -> set[int]:
    """Inodes of the TCP sockets on local `port` in `state` (01 established, 0A listening)."""
    inodes: set[int] = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        local_port = int(fields[1].split(":")[1], 16)
        if local_port == port and fields[3] == state:
            inodes.add(int(fields[9]))
    return inodes


def _established_on(port: int) -> set[int]:
    return _sockets_on(port, "01")


def _connections_per_process(pids: set[int], port: int) -> dict[int, int]:
    wanted = _established_on(port)
    counts = {}
    for pid in pids:
        held = 0
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            target = os.readlink(fd) if fd.is_symlink() else ""
            if target.startswith("socket:[") and int(target[8:-1]) in wanted:
                held += 1
        counts[pid] = held
    return counts


def _spread(workers: set[int], port: int, count: int) -> dict[int, int]:
    """How many of `count` connections opened together each worker accepted."""
    with ExitStack() as stack:
        for _ in range(count):
            stack.enter_context(socket.create_connection(("127.0.0.1", port)))
        deadline = time.monotonic() + 30
        while True:  # a replacement worker accepts its backlog once it is up
            counts = _connections_per_process(workers, port)
            if sum(counts.values()) == count or time.monotonic() > deadline:
                return counts
            time.sleep(0.2)


def _workers(server_pid: int, port: int, count: int) -> set[int]:
    """The HTTP processes, once each listens on its socket (until then the kernel
    sends every connection to the sockets already listening)."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        found = {
            pid
            for pid in _children(server_pid)
            if "spawn_main" in Path(f"/proc/{pid}/cmdline").read_text()
        }
        if len(found) == count and len(_sockets_on(port, "0A")) == count:
            return found
        time.sleep(0.2)
    raise AssertionError(f"expected {count} listening workers under {server_pid}")


@pytest.mark.skipif(not Path("/proc/net/tcp").exists(), reason="needs Linux /proc")
def test_connections_opened_together_reach_every_worker(tmp_path: Path) -> None:
    database_url = f"sqlite:///{tmp_path / 'crm.db'}"
    make_keys(database_url, [])
    port = free_port()
    server = start_server(
        database_url, port, tmp_path / "serve.log", CRM_WEB_WORKERS="2"
    )
    try:
        workers = _workers(server.pid, port, 2)
        counts = _spread(workers, port, 32)
        assert sum(counts.values()) == 32, counts
        assert all(counts.values()), counts  # all 32 on one: odds 2 in 2**32

        os.kill(min(workers), signal.SIGKILL)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            replaced = _workers(server.pid, port, 2)
            if min(workers) not in replaced:
                break
            time.sleep(0.2)
        assert min(workers) not in replaced
        counts = _spread(replaced, port, 32)
        assert sum(counts.values()) == 32, counts
        assert all(counts.values()), counts
    finally:
        stop_server(server)


def test_an_http_process_keeps_only_a_small_aggregate_cache(
    database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each HTTP process holds its own cache: at `crm ingest`'s 100,000 a server
    grew by about 100 MB per process under sustained posts."""
    from fastapi.testclient import TestClient

    from api import worker
    from api.bootstrap import build_platform
    from api.http.app import app_from_env
    from api.keys import create_key
    from api.settings import Settings
    from tests.conftest import SECRET
    from tests.factories import registered

    build_platform(Settings(database_url=database_url, secret_key=SECRET)).close()
    monkeypatch.setenv("CRM_DATABASE_URL", database_url)
    monkeypatch.setenv("CRM_SECRET_KEY", SECRET)
    monkeypatch.setenv("CRM_WEB_AGGREGATE_CACHE_SIZE", "3")
    monkeypatch.setattr(worker, "stop_when_orphaned", lambda stop: None)
    app = app_from_env()
    platform = app.state.platform
    with TestClient(app) as client:
        key = create_key(platform.db, "ingest")
        client.headers["Authorization"] = f"Bearer {key}"
        batch = {"events": [registered() for _ in range(8)]}
        response = client.post("/v1/events", json=batch)
        assert response.status_code == 201, response.text
    assert platform.ingestor.cache.maxsize == 3
    assert len(platform.ingestor.cache._items) == 3
    # `crm ingest` and the other commands keep the larger cache.
    monkeypatch.delenv("CRM_WEB_AGGREGATE_CACHE_SIZE")
    other = build_platform(Settings(database_url=database_url, secret_key=SECRET))
    try:
        assert other.ingestor.cache.maxsize == Settings().aggregate_cache_size
    finally:
        other.close()


def _report_main_module(answers: Any) -> None:
    main = sys.modules["__mp_main__"]
    answers.put((getattr(main, "__file__", None), "api.cli" in sys.modules))


def test_a_worker_starts_without_importing_the_command_line() -> None:
    # A spawned process imports its parent's __main__ first: under `crm serve`
    # that is the `crm` script and the whole CLI.
    context = multiprocessing.get_context("spawn")
    answers = context.SimpleQueue()
    parent_main = getattr(sys.modules["__main__"], "__spec__", None)
    with main_module_named("api.spawning"):
        child = context.Process(target=_report_main_module, args=(answers,))
        child.start()
    child.join(timeout=60)

    main_file, imported_cli = answers.get()
    assert main_file == spawning.__file__
    assert not imported_cli
    assert getattr(sys.modules["__main__"], "__spec__", None) is parent_main
