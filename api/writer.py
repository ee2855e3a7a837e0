"""One writer for every HTTP process of `crm serve --workers N`.

Each HTTP process used to commit its own posts (`GroupCommitter`), so two
processes took turns at the events table's lock, each with the half of the
posts that had reached it: groups of about 8 single posts, and a save waiting
about a millisecond for the other process's. Group commit pays by the group:
with 64 clients instead of 32 (groups twice as large) the same two processes
stored 18-34 % more single posts, at 125 instead of 178 µs of PostgreSQL's CPU
a post (docs/benchmarks.md, twenty-third pass). Here the HTTP processes hand
their posts to one writer process, whose group commit takes every post waiting
from all of them, and whose aggregate cache no other writer makes stale. A post
of many events is a large group on its own: the HTTP process commits it itself
(`WriterClient.local_from`).

The HTTP process still reads, parses and checks a post (its key may post those
events); the writer validates, decides and saves it, and answers with the
report or the error, which the HTTP process maps to its answer as before. The
two speak over a Unix socket in a directory only this user can open, through
`multiprocessing.connection` (length-prefixed messages, a shared key checked on
connect): a request is its id and the events as JSON, an answer is pickled.
"""

from __future__ import annotations

import functools
import itertools
import os
import pickle
import queue
import secrets
import signal
import socket
import struct
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from concurrent.futures import Future
from contextlib import contextmanager, suppress
from dataclasses import replace
from multiprocessing.connection import Client, Connection, Listener
from typing import Any

import orjson
import structlog

from api.store.database import DatabaseUnavailable
from api.store.group_commit import Commits
from api.store.ingest import Report

log = structlog.get_logger("crm.writer")

SOCKET_VARIABLE = "CRM_WRITER_SOCKET"
KEY_VARIABLE = "CRM_WRITER_KEY"
CONNECT_SECONDS = 30.0
LOCAL_FROM_EVENTS = 100
_ID = struct.Struct("<Q")


class WriterUnavailable(DatabaseUnavailable):
    """The writer process cannot be reached (starting, or restarting): retry later."""


class WriterFailed(Exception):
    """The writer met an error it could not send as it was (its type and message)."""


def _slim(report: Report) -> Report:
    """The report as the HTTP process uses it: outcomes without the writer's own
    objects (the candidate an outcome repeats, the domain error)."""
    return Report([replace(o, same_event=None, error=None) for o in report.outcomes])


def _answer(request_id: bytes, future: Future[Report]) -> bytes:
    error = future.exception()
    try:
        payload: Any = _slim(future.result()) if error is None else error
        return request_id + pickle.dumps(payload, pickle.HIGHEST_PROTOCOL)
    except Exception as failure:  # an error that does not pickle
        log.error("writer.unsendable", exc_info=error or failure)
        substitute = WriterFailed(
            f"{type(error or failure).__name__}: {error or failure}"
        )
        return request_id + pickle.dumps(substitute, pickle.HIGHEST_PROTOCOL)


def _hang_up(connection: Connection) -> None:
    """Ends `connection` for the thread reading it, which then sees its end and
    closes it: a Connection closed under a blocked read fails there instead."""
    with suppress(OSError), socket.socket(fileno=os.dup(connection.fileno())) as dup:
        dup.shutdown(socket.SHUT_RDWR)


# the writer's side -------------------------------------------------------------


def serve_connection(connection: Connection, committer: Commits) -> None:
    """Takes one HTTP process's posts until it goes; answers each once committed.

    The answers are sent by a thread of their own: sent by the group-commit
    thread, as its futures' callbacks, they took 7-9 % of its time, which is
    the writer's bound (py-spy)."""
    answers: queue.SimpleQueue[tuple[bytes, Future[Report]] | None] = (
        queue.SimpleQueue()
    )

    def send_answers() -> None:
        while (item := answers.get()) is not None:
            with suppress(OSError):  # gone: its requests were failed there
                connection.send_bytes(_answer(*item))

    def answered(request_id: bytes, future: Future[Report]) -> None:
        answers.put((request_id, future))

    sender = threading.Thread(target=send_answers, name="writer-replies", daemon=True)
    sender.start()
    try:
        while True:
            try:
                message = connection.recv_bytes()
            except (EOFError, OSError):
                return
            request_id, events = message[: _ID.size], orjson.loads(message[_ID.size :])
            future = committer.submit(events)
            future.add_done_callback(functools.partial(answered, request_id))
    finally:
        answers.put(None)
        sender.join(timeout=10)
        connection.close()


class WriterServer:
    """Takes the HTTP processes' posts on a Unix socket, for `committer`."""

    def __init__(self, address: str, key: bytes, committer: Commits) -> None:
        self.address = address
        self.key = key
        self.committer = committer
        # A writer that was killed left its socket behind; the directory is this
        # server's own, and its supervisor starts one writer at a time.
        with suppress(FileNotFoundError):
            os.unlink(address)
        self.listener = Listener(address, family="AF_UNIX", authkey=key)
        self._stopping = threading.Event()

    def serve(self) -> None:
        """Accepts HTTP processes until `stop`, then hangs up on them: their
        waiting posts fail as unavailable at once."""
        connections: list[Connection] = []
        try:
            while True:
                try:
                    connection = self.listener.accept()
                except OSError:  # closed
                    return
                except Exception as error:  # a bad handshake (wrong key): refused
                    log.warning("writer.refused", error=str(error))
                    continue
                if self._stopping.is_set():
                    connection.close()
                    return
                connections.append(connection)
                threading.Thread(
                    target=serve_connection,
                    args=(connection, self.committer),
                    name="writer-connection",
                    daemon=True,
                ).start()
        finally:
            for connection in connections:
                _hang_up(connection)
            self.listener.close()

    def stop(self) -> None:
        """Ends `serve` (from another thread): a blocked accept is not woken by
        closing its socket, so this connects once to wake it."""
        if self._stopping.is_set():
            return
        self._stopping.set()
        with suppress(OSError, EOFError):
            Client(self.address, family="AF_UNIX", authkey=self.key).close()


def main() -> None:
    """The writer process: `python -m api.writer`, started by `crm serve`."""
    from api.bootstrap import build_platform, settings_from_env
    from api.worker import stop_when_orphaned

    address, key = os.environ[SOCKET_VARIABLE], bytes.fromhex(os.environ[KEY_VARIABLE])
    platform = build_platform(settings_from_env(), migrate=False, serving=True)
    server = WriterServer(address, key, platform.committer)
    stopping = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stopping.set())
    stop_when_orphaned(stopping.set)
    serving = threading.Thread(target=server.serve, name="writer-accept")
    serving.start()
    log.info("writer.listening", pid=os.getpid())
    try:
        while not stopping.wait(1.0) and serving.is_alive():
            pass
    finally:
        server.stop()
        serving.join(timeout=10)
        platform.close()


# the HTTP process's side -------------------------------------------------------


class WriterClient:
    """`GroupCommitter.submit` for an HTTP process, carried out by the writer process.

    A future is resolved by the thread reading the writer's answers. If the writer
    goes, every post waiting for it fails as unavailable (503), and the next post
    connects again.

    A post of `local_from` events or more is committed by `local`, this process's
    own committer: it is a large group on its own, and one writer would validate
    every such post on one core (1,000-event posts: 5,550-5,752 against
    6,329-7,243 events/s committed by each HTTP process, docs/benchmarks.md)."""

    def __init__(
        self,
        address: str,
        key: bytes,
        local: Commits | None = None,
        local_from: int = LOCAL_FROM_EVENTS,
    ) -> None:
        self.address = address
        self.key = key
        self.local = local
        self.local_from = local_from
        self._ids = itertools.count()
        self._lock = threading.Lock()
        self._connection: Connection | None = None
        self._waiting: dict[bytes, Future[Report]] = {}

    def connect(self, timeout: float = CONNECT_SECONDS) -> bool:
        """Waits for the writer (it starts beside the HTTP processes)."""
        deadline = time.monotonic() + timeout
        while True:
            with self._lock:
                try:
                    self._connected()
                    return True
                except WriterUnavailable:
                    if time.monotonic() >= deadline:
                        return False
            time.sleep(0.05)

    def _connected(self) -> Connection:
        """The connection to the writer (made now if there is none); under `_lock`."""
        if self._connection is None:
            try:
                connection = Client(self.address, family="AF_UNIX", authkey=self.key)
            except (OSError, EOFError) as error:
                raise WriterUnavailable(
                    f"the writer is not reachable: {error}"
                ) from None
            self._connection = connection
            threading.Thread(
                target=self._read_answers,
                args=(connection,),
                name="writer-answers",
                daemon=True,
            ).start()
        return self._connection

    def submit(self, raw_events: list[Any]) -> Future[Report]:
        if self.local is not None and len(raw_events) >= self.local_from:
            return self.local.submit(raw_events)
        future: Future[Report] = Future()
        message = orjson.dumps(raw_events)
        with self._lock:
            request_id = _ID.pack(next(self._ids))
            try:
                connection = self._connected()
                self._waiting[request_id] = future
                connection.send_bytes(request_id + message)
            except WriterUnavailable as error:
                future.set_exception(error)
            except OSError as error:
                self._waiting.pop(request_id, None)
                self._lost(connection, error)
                future.set_exception(WriterUnavailable(f"the writer went: {error}"))
        return future

    def _read_answers(self, connection: Connection) -> None:
        while True:
            try:
                answer = connection.recv_bytes()
            except (EOFError, OSError) as error:
                with self._lock:
                    self._lost(connection, error)
                connection.close()
                return
            request_id = answer[: _ID.size]
            # Only a process holding the key this server made can be connected.
            payload = pickle.loads(answer[_ID.size :])  # noqa: S301
            with self._lock:
                future = self._waiting.pop(request_id, None)
            if future is None:
                continue
            if isinstance(payload, BaseException):
                future.set_exception(payload)
            else:
                future.set_result(payload)

    def _lost(self, connection: Connection, error: BaseException) -> None:
        """Under `_lock`: fails every post still waiting on `connection`."""
        if self._connection is not connection:
            return
        self._connection = None
        _hang_up(connection)  # its reader closes it
        waiting, self._waiting = self._waiting, {}
        if waiting:
            log.warning("writer.lost", waiting=len(waiting), error=str(error))
        for future in waiting.values():
            if not future.done():
                future.set_exception(
                    WriterUnavailable("the writer stopped before answering; retry")
                )

    def close(self) -> None:
        with self._lock:
            if self._connection is not None:
                self._lost(self._connection, EOFError("closed"))
        if self.local is not None:
            self.local.close()


def client_from_env(local: Commits) -> WriterClient | None:
    """The writer `crm serve` started for this HTTP process, if it started one
    (`local`: this process's own committer, for large posts)."""
    address = os.environ.get(SOCKET_VARIABLE)
    key = os.environ.get(KEY_VARIABLE)
    if not address or not key:
        return None
    return WriterClient(address, bytes.fromhex(key), local)


# `crm serve`'s side ----------------------------------------------------------------


@contextmanager
def writer_process() -> Iterator[None]:
    """Runs the writer beside the HTTP processes (restarted if it dies), and tells
    them where it listens (environment variables their processes inherit)."""
    from api.worker import environment, supervised

    with tempfile.TemporaryDirectory(prefix="crm-writer-") as directory:
        os.chmod(directory, 0o700)
        where = {
            SOCKET_VARIABLE: os.path.join(directory, "writer.sock"),
            KEY_VARIABLE: secrets.token_hex(16),
        }
        with (
            environment(**where),
            supervised([sys.executable, "-m", "api.writer"], "writer"),
        ):
            yield


if __name__ == "__main__":
    # Through the module's own name: what the writer pickles (WriterFailed) must
    # be `api.writer`'s, which the HTTP processes import, not `__main__`'s.
    import api.writer

    api.writer.main()
