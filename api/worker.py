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
from contextlib import contextmanager

import structlog

log = structlog.get_logger("crm.worker")

RESTART_DELAY_SECONDS = 1.0
PARENT_PID_VARIABLE = "CRM_WORKER_PARENT_PID"


@contextmanager
def projection_worker() -> Iterator[None]:
    stop = threading.Event()
    thread = threading.Thread(
        target=_supervise, args=(stop,), name="projection-worker", daemon=True
    )
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=15)


def _supervise(stop: threading.Event) -> None:
    while not stop.is_set():
        env = {**os.environ, PARENT_PID_VARIABLE: str(os.getpid())}
        child = subprocess.Popen([sys.executable, "-m", "api.cli", "project"], env=env)
        log.info("worker.started", pid=child.pid)
        while child.poll() is None and not stop.wait(0.5):
            pass
        if stop.is_set():
            child.terminate()
            try:
                child.wait(timeout=10)
            except subprocess.TimeoutExpired:
                child.kill()
            return
        log.warning("worker.exited", code=child.returncode)
        stop.wait(RESTART_DELAY_SECONDS)


@contextmanager
def web_workers_env() -> Iterator[None]:
    """Marks this process as the parent that HTTP worker processes watch."""
    previous = os.environ.get(PARENT_PID_VARIABLE)
    os.environ[PARENT_PID_VARIABLE] = str(os.getpid())
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop(PARENT_PID_VARIABLE, None)
        else:
            os.environ[PARENT_PID_VARIABLE] = previous


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
