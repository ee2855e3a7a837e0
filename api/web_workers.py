"""`crm serve --workers N`: uvicorn's supervisor, each HTTP process on its own socket.

With one listening socket shared by every worker, the worker whose event loop
wakes first accepts a whole burst of connections: 32 keep-alive clients that
connected together all landed on one of two workers in some benchmark runs, and
that worker then served them alone on one core (docs/benchmarks.md, sixth pass).
Here each worker gets its own socket bound with SO_REUSEPORT, and the kernel
spreads new connections over the sockets by their addresses.

What uvicorn's `Multiprocess` does is kept (signals, health pings, replacing a
dead worker, restart on SIGHUP); only which sockets a new worker gets differs,
so the three places that start one are overridden.
"""

from __future__ import annotations

import os
import socket
import sys

import structlog
from uvicorn import Config
from uvicorn.config import STARTUP_FAILURE
from uvicorn.supervisors.multiprocess import Multiprocess, Process

from api import spawning
from api.spawning import main_module_named

log = structlog.get_logger("crm.serve")


def _listening(family: socket.AddressFamily, host: str, port: int) -> socket.socket:
    sock = socket.socket(family=family)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    sock.set_inheritable(True)
    return sock


def reuse_port_sockets(host: str, port: int, count: int) -> list[socket.socket]:
    """`count` sockets on one address; port 0 means the port the first one got."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    first = _listening(family, host, port)
    port = first.getsockname()[1]
    return [first] + [_listening(family, host, port) for _ in range(count - 1)]


class OneSocketEach(Multiprocess):
    """Worker i always listens on `sockets[i]`, a replacement on its predecessor's."""

    def _started(self, index: int) -> Process:
        process = Process(self.config, [self.sockets[index]])
        with main_module_named(spawning.__name__):  # a small module, nothing more
            process.start()
        return process

    def init_processes(self) -> None:
        self.processes = [self._started(i) for i in range(len(self.sockets))]

    def restart_all(self) -> None:
        for index, old in enumerate(self.processes):
            if self.should_exit.is_set():
                return
            new = self._started(index)
            timeout = self.config.timeout_worker_healthcheck
            if not new.wait_until_ready(timeout, self.should_exit):
                new.kill()
                new.join()
                log.error("serve.restart_aborted", pid=new.pid, kept=old.pid)
                return
            old.terminate()
            old.join()
            self.processes[index] = new

    def keep_subprocess_alive(self) -> None:
        for index, process in enumerate(self.processes):
            if self.should_exit.is_set():
                return
            if process.is_alive(timeout=self.config.timeout_worker_healthcheck):
                continue
            process.kill()  # hung, or already gone
            process.join()
            if process.exitcode == STARTUP_FAILURE:
                # It failed before serving: the app or its settings are broken, and
                # every replacement would fail the same way.
                log.error("serve.worker_failed_to_start", pid=process.pid)
                self.should_exit.set()
                return
            log.warning("serve.worker_died", pid=process.pid)
            self.processes[index] = self._started(index)


def serve_workers(config: Config) -> None:
    """Runs `config.workers` HTTP processes, as `uvicorn.run` would, balanced."""
    if not hasattr(socket, "SO_REUSEPORT"):  # pragma: no cover - not on Linux
        OneSocketEach(config, [config.bind_socket()] * config.workers).run()
        return
    try:
        sockets = reuse_port_sockets(config.host, config.port, config.workers)
    except OSError as error:
        log.error(
            "serve.bind_failed", host=config.host, port=config.port, error=str(error)
        )
        sys.exit(STARTUP_FAILURE)
    log.info(
        "serve.listening",
        url=f"http://{config.host}:{sockets[0].getsockname()[1]}",
        workers=config.workers,
        pid=os.getpid(),
    )
    try:
        OneSocketEach(config, sockets).run()
    finally:
        for sock in sockets:
            sock.close()
