"""The projection worker as a child process of `crm serve`.

Projections are CPU-bound Python; in the API's own process they would share its
interpreter lock with request handling. A supervised `crm project` child keeps
the views current beside the API, and is restarted if it dies.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager

import structlog

log = structlog.get_logger("crm.worker")

RESTART_DELAY_SECONDS = 1.0
PARENT_PID_VARIABLE = "CRM_WORKER_PARENT_PID"


@contextmanager
def supervised(command: list[str], name: str) -> Iterator[None]:
    """Runs `command` as a child of this process while the block lasts, started
    again a second after it exits; the child stops when this process is gone
    (`stop_when_orphaned`, through `PARENT_PID_VARIABLE`)."""
    stop = threading.Event()
    thread = threading.Thread(
        target=_supervise, args=(stop, command, name), name=name, daemon=True
    )
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=15)


def projection_worker() -> AbstractContextManager[None]:
    return supervised([sys.executable, "-m", "api.cli", "project"], "worker")


def _supervise(stop: threading.Event, command: list[str], name: str) -> None:
    while not stop.is_set():
        env = {**os.environ, PARENT_PID_VARIABLE: str(os.getpid())}
        child = subprocess.Popen(command, env=env)  # noqa: S603 (our own commands)
        log.info(f"{name}.started", pid=child.pid)
        while child.poll() is None and not stop.wait(0.5):
            pass
        if stop.is_set():
            child.terminate()
            try:
                child.wait(timeout=10)
            except subprocess.TimeoutExpired:
                child.kill()
            return
        log.warning(f"{name}.exited", code=child.returncode)
        stop.wait(RESTART_DELAY_SECONDS)


@contextmanager
def environment(**values: str) -> Iterator[None]:
    """These environment variables while the block lasts (the processes it starts
    inherit them), and the previous values after."""
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def web_workers_env() -> AbstractContextManager[None]:
    """Marks this process as the parent that HTTP worker processes watch."""
    return environment(**{PARENT_PID_VARIABLE: str(os.getpid())})


def stop_when_orphaned(stop: Callable[[], None]) -> None:
    """In the worker: calls `stop` once the serving parent is gone (however it died)."""
    parent = os.environ.get(PARENT_PID_VARIABLE)
    if not parent:
        return

    def watch() -> None:
        while os.getppid() == int(parent):
            time.sleep(1.0)
        log.info("worker.orphaned", parent=parent)
        stop()

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()
