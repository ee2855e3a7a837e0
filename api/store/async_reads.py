"""Reads a web worker runs on its event loop (PostgreSQL only).

A read handed to a worker thread pays a thread hop: about 200 µs of CPU per
request here, as much as the read's own Python (docs/benchmarks.md, sixth
pass). The live household and contact-history reads are one statement each, so
they run through psycopg's async pool instead, with the same SQL and the same
parsing as the threaded path. SQLite has no async driver and keeps the thread.

The pool belongs to one event loop: the web app's lifespan opens it and closes
it (`api.http.app`).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

from psycopg_pool import AsyncConnectionPool

from api.store.database import POOL_ERRORS, IdleCheck, pool_options, unavailable


class AsyncReads:
    def __init__(self, conninfo: str, max_size: int, timeout: float = 10.0) -> None:
        self._idle = IdleCheck()
        self.pool = AsyncConnectionPool(
            conninfo,
            check=self._check,
            **pool_options(
                conninfo, max_size=max_size, timeout=timeout, autocommit=True
            ),
        )

    async def open(self) -> None:
        await self.pool.open(wait=False)

    async def close(self) -> None:
        await self.pool.close()

    async def _check(self, conn: Any) -> None:
        """A ping only for a connection idle long enough to have gone stale (as
        `database.IdleCheck` does for the threaded pool)."""
        if self._idle.stale(conn):
            await AsyncConnectionPool.check_connection(conn)

    @asynccontextmanager
    async def _connection(self) -> AsyncIterator[Any]:
        try:
            async with self.pool.connection() as conn:
                try:
                    yield conn
                finally:
                    self._idle.returned(conn)
        except POOL_ERRORS as error:
            raise unavailable(error) from error

    async def fetchone(
        self, sql: str, params: Sequence[Any] = ()
    ) -> dict[str, Any] | None:
        async with self._connection() as conn:
            cur = await conn.execute(sql, params)
            row: dict[str, Any] | None = await cur.fetchone()
            return row

    async def fetchall(
        self, sql: str, params: Sequence[Any] = ()
    ) -> list[dict[str, Any]]:
        async with self._connection() as conn:
            cur = await conn.execute(sql, params)
            rows: list[dict[str, Any]] = await cur.fetchall()
            return rows
