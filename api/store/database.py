"""Connections for the platform's own tables (event log index, keys, views).

One small interface over psycopg (PostgreSQL) and sqlite3 (SQLite): SQL is
written once with `%s` placeholders and rows come back as dicts.
"""

from __future__ import annotations

import itertools
import sqlite3
import threading
import time
import weakref
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import psycopg
from psycopg.rows import dict_row, tuple_row
from psycopg_pool import ConnectionPool, PoolTimeout

if TYPE_CHECKING:
    from api.store.async_reads import AsyncReads


class DatabaseUnavailable(Exception):
    """The database cannot be reached or is too busy; the caller may retry later."""


POOL_ERRORS = (psycopg.OperationalError, PoolTimeout)
"""What a pooled PostgreSQL connection raises when the server is out of reach."""


def unavailable(error: Exception) -> DatabaseUnavailable:
    """`error` (one of POOL_ERRORS) as the caller sees it: its first line only."""
    return DatabaseUnavailable(str(error).splitlines()[0])


_streams = itertools.count()


class Cursor:
    """A cursor that speaks `%s` placeholders on both backends."""

    def __init__(self, raw: Any, sqlite: bool, pipeline: Any = None) -> None:
        self.raw = raw
        self.sqlite = sqlite
        self.pipeline = pipeline

    def _sql(self, sql: str) -> str:
        return sql.replace("%s", "?") if self.sqlite else sql

    def execute(
        self, sql: str, params: Sequence[Any] = (), *, binary: bool = False
    ) -> Cursor:
        """`binary`: PostgreSQL sends the result in binary (SQLite ignores it)."""
        if self.sqlite:
            self.raw.execute(self._sql(sql), params)
            return self
        if self.pipeline is not None:
            # In pipeline mode each statement whose result may be read needs its
            # own cursor: a shared one can still hold an earlier statement's result.
            self.raw = self.raw.connection.cursor()
        self.raw.execute(sql, params, binary=binary)
        return self

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        if rows:
            self.raw.executemany(self._sql(sql), rows)

    def fetchone(self) -> dict[str, Any] | None:
        row = self.raw.fetchone()
        return dict(row) if row is not None and self.sqlite else row

    def fetchall(self) -> list[dict[str, Any]]:
        rows = self.raw.fetchall()
        # PostgreSQL rows are dicts already (dict_row); sqlite3.Row needs copying.
        return [dict(row) for row in rows] if self.sqlite else rows

    def tuples(self) -> list[Any]:
        """The rows as tuples (cheaper than dicts for large results read by position)."""
        if self.sqlite:
            return self.raw.fetchall()  # type: ignore[no-any-return]
        self.raw.row_factory = tuple_row
        try:
            return self.raw.fetchall()  # type: ignore[no-any-return]
        finally:
            self.raw.row_factory = dict_row

    def copy_in(self, sql: str, pieces: Iterable[Any]) -> None:
        """PostgreSQL: `COPY ... FROM STDIN` with `pieces` (bytes-like) as its data."""
        with self.raw.copy(sql) as copy:
            for piece in pieces:
                copy.write(piece)

    def streamed(
        self, sql: str, params: Sequence[Any] = (), page: int = 2000
    ) -> Iterator[Any]:
        """The rows of `sql` as tuples, one at a time, never all in memory at once.

        PostgreSQL: through a server-side cursor, `page` rows per fetch. A plain
        query's result comes to the client whole before its first row is read:
        16,000 targets' people were a 9.5 MB result, held while they were read."""
        if self.sqlite:
            yield from self.raw.execute(self._sql(sql), params)
            return
        name = f"streamed_{next(_streams)}"  # unique: streams may be read side by side
        with self.raw.connection.cursor(name=name, row_factory=tuple_row) as named:
            named.execute(sql, params)
            while rows := named.fetchmany(page):
                yield from rows

    @property
    def rowcount(self) -> int:
        if self.pipeline is not None:
            self.pipeline.sync()  # the count is known only once the result is back
        return int(self.raw.rowcount)


@contextmanager
def _dropped_after(cursor: Cursor) -> Iterator[Cursor]:
    """`cursor`, which lets go of its psycopg cursor when the block ends.

    A closed psycopg cursor still holds its last result (its row loader keeps
    it) for as long as it lives, and a caller's `cur` lives on after its `with`
    block: a mailing plan's first 100,000-row result stayed in memory (12 MB)
    until the whole plan was done."""
    try:
        yield cursor
    finally:
        cursor.raw = None


class Database:
    backend: str

    @contextmanager
    def transaction(self, *, pipeline: bool = False) -> Iterator[Cursor]:
        """One transaction. `pipeline` (PostgreSQL) sends statements without waiting
        for each result; results arrive when a row is fetched or at commit."""
        raise NotImplementedError
        yield  # pragma: no cover

    @contextmanager
    def large_transaction(self) -> Iterator[Cursor]:
        """One transaction that sends or reads a value of tens of MB (a plan's answer).

        On PostgreSQL it has a connection of its own, closed after it: libpq
        keeps its send and receive buffers at the largest size they ever
        needed for as long as the connection lives, and a pooled connection
        lives as long as the process."""
        with self.transaction() as cur:
            yield cur

    @contextmanager
    def read(self) -> Iterator[Cursor]:
        """Statements that only read. PostgreSQL runs each on its own (autocommit:
        no BEGIN and COMMIT round trips; a READ COMMITTED transaction would see
        the same rows); SQLite reads one snapshot without taking the write lock."""
        raise NotImplementedError
        yield  # pragma: no cover

    def close(self) -> None:
        raise NotImplementedError

    def async_reads(self, max_size: int) -> AsyncReads | None:
        """A pool of `max_size` connections for reads on an event loop
        (`api.store.async_reads`); None where the backend has no async driver, and
        reads take a worker thread."""
        return None

    def in_list(self, values: Sequence[Any]) -> tuple[str, list[Any]]:
        """SQL for `column IN (...)` over `values` on this backend."""
        return "(" + ",".join(["%s"] * len(values)) + ")", list(values)


IDLE_CHECK_SECONDS = 2.0


class IdleCheck:
    """Pings a pooled connection only when it sat idle long enough to have gone stale.

    A ping per checkout is a whole extra round trip on every request; a
    connection used milliseconds ago is as good as proven. A connection that
    died since is still caught: its statement fails and the caller gets
    DatabaseUnavailable (503), and the pool discards the broken connection.
    """

    def __init__(self) -> None:
        self._returned: weakref.WeakKeyDictionary[Any, float] = (
            weakref.WeakKeyDictionary()
        )

    def stale(self, conn: Any) -> bool:
        returned = self._returned.get(conn)
        return returned is None or time.monotonic() - returned > IDLE_CHECK_SECONDS

    def check(self, conn: Any) -> None:
        if self.stale(conn):
            ConnectionPool.check_connection(conn)

    def returned(self, conn: Any) -> None:
        self._returned[conn] = time.monotonic()


def without_jit(conninfo: str) -> str:
    """The connection's `options`, with PostgreSQL's JIT compilation off.

    Every statement here is short (a batch, a page, one read), and JIT only
    pays off on long ones. Where the planner overestimates, as it does for a
    log loaded since its last ANALYZE, JIT compiled for about 100 ms before
    statements that then ran in a few (docs/benchmarks.md, fifth pass)."""
    given = psycopg.conninfo.conninfo_to_dict(conninfo).get("options") or ""
    return f"{given} -c jit=off".strip()


def pool_options(
    conninfo: str, *, max_size: int, timeout: float, autocommit: bool
) -> dict[str, Any]:
    """What every pool of the platform's own connections is opened with (psycopg's
    `ConnectionPool` and `AsyncConnectionPool` take the same): rows as dicts, no
    JIT, at least one connection, and no reconnecting in the background (a caller
    that cannot get a connection answers 503 at once)."""
    return {
        "min_size": 1,
        "max_size": max_size,
        "open": False,
        "timeout": timeout,
        "kwargs": {
            "row_factory": dict_row,
            "autocommit": autocommit,
            "options": without_jit(conninfo),
        },
        "reconnect_timeout": 0,
    }


class PostgresDatabase(Database):
    backend = "postgresql"

    def __init__(self, conninfo: str, max_size: int = 8) -> None:
        self.conninfo = conninfo
        self.max_size = max_size
        self._idle = IdleCheck()
        self.pool = ConnectionPool(
            conninfo,
            check=self._idle.check,
            **pool_options(conninfo, max_size=max_size, timeout=10, autocommit=False),
        )
        self._opened = False
        self._lock = threading.Lock()

    def _open(self) -> None:
        with self._lock:
            if not self._opened:
                self.pool.open(wait=False)
                self._opened = True

    @contextmanager
    def _connection(self) -> Iterator[Any]:
        """A pooled connection; an unreachable server becomes DatabaseUnavailable."""
        self._open()
        try:
            with self.pool.connection() as conn:
                try:
                    yield conn
                finally:
                    # Not the pool's `reset` hook: with one, the pool hands every
                    # returned connection to its worker thread.
                    self._idle.returned(conn)
        except POOL_ERRORS as error:
            raise unavailable(error) from error

    @contextmanager
    def transaction(self, *, pipeline: bool = False) -> Iterator[Cursor]:
        with self._connection() as conn:
            if pipeline:
                with (
                    conn.pipeline() as flow,
                    conn.cursor() as raw,
                    _dropped_after(Cursor(raw, False, pipeline=flow)) as cur,
                ):
                    yield cur
            else:
                with conn.cursor() as raw, _dropped_after(Cursor(raw, False)) as cur:
                    yield cur

    @contextmanager
    def large_transaction(self) -> Iterator[Cursor]:
        options = pool_options(self.conninfo, max_size=1, timeout=10, autocommit=False)
        try:
            conn = psycopg.connect(self.conninfo, **options["kwargs"])
            with conn, conn.cursor() as raw, _dropped_after(Cursor(raw, False)) as cur:
                yield cur
        except psycopg.OperationalError as error:
            raise unavailable(error) from error

    @contextmanager
    def read(self) -> Iterator[Cursor]:
        with self._connection() as conn:
            conn.autocommit = True
            try:
                with conn.cursor() as raw, _dropped_after(Cursor(raw, False)) as cur:
                    yield cur
            finally:
                if not conn.closed:
                    conn.autocommit = False

    def close(self) -> None:
        if self._opened:
            self.pool.close()

    def async_reads(self, max_size: int) -> AsyncReads:
        from api.store.async_reads import AsyncReads

        return AsyncReads(self.conninfo, max_size)


# How long an SQLite connection waits for another's lock before it fails.
SQLITE_BUSY_SECONDS = 30


def use_wal(conn: sqlite3.Connection) -> None:
    """Puts the file in WAL mode, which it then keeps for good.

    Switching fails at once with "database is locked" while another connection
    holds a lock (SQLite calls no busy handler there), so the switch is tried
    again until the busy timeout has passed; a file already in WAL, perhaps by
    another connection's switch, is left alone."""
    deadline = time.monotonic() + SQLITE_BUSY_SECONDS
    while _journal_mode(conn) != "wal":
        try:
            conn.execute("PRAGMA journal_mode=WAL")
        except sqlite3.OperationalError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.01)


def _journal_mode(conn: sqlite3.Connection) -> str:
    (mode,) = conn.execute("PRAGMA journal_mode").fetchone()
    return str(mode).lower()


class SQLiteDatabase(Database):
    backend = "sqlite"

    def __init__(self, path: str) -> None:
        self.path = path
        self._local = threading.local()
        self._all: list[sqlite3.Connection] = []
        self._lock = threading.Lock()

    def _connection(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(
                self.path,
                timeout=SQLITE_BUSY_SECONDS,
                isolation_level=None,
                check_same_thread=False,
            )
            conn.row_factory = sqlite3.Row
            conn.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_SECONDS * 1000}")
            with self._lock:
                use_wal(conn)
                self._all.append(conn)
            self._local.conn = conn
        return conn

    @contextmanager
    def transaction(self, *, pipeline: bool = False) -> Iterator[Cursor]:
        with self._begun("BEGIN IMMEDIATE") as cursor:
            yield cursor

    @contextmanager
    def read(self) -> Iterator[Cursor]:
        # A deferred transaction: one snapshot, and no write lock unless it writes.
        with self._begun("BEGIN") as cursor:
            yield cursor

    @contextmanager
    def _begun(self, begin: str) -> Iterator[Cursor]:
        conn = self._connection()
        try:
            conn.execute(begin)
        except sqlite3.OperationalError as error:
            raise DatabaseUnavailable(str(error)) from error
        raw = conn.cursor()
        try:
            with _dropped_after(Cursor(raw, sqlite=True)) as cur:
                yield cur
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        else:
            conn.execute("COMMIT")
        finally:
            raw.close()

    def close(self) -> None:
        with self._lock:
            for conn in self._all:
                conn.close()
            self._all.clear()
        self._local = threading.local()
