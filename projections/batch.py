"""Set-based helpers for projections: bulk lookups and buffered writes per page.

A projection reads what a page needs in a few IN-list queries, keeps what it
writes in memory for the rest of the page, and sends its writes once, one
`executemany` per statement. On PostgreSQL (pipeline mode) a read waits for
every statement sent before it, so per-event reads, not writes, are what cost.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from api.store.database import Cursor

CHUNK = 500


def rows_in(
    cur: Cursor, query: str, values: Iterable[Any], *, repeat: int = 1
) -> list[dict[str, Any]]:
    """Rows of `query` for every value, 500 at a time.

    `query` has an `{ids}` placeholder, used `repeat` times (each use gets the
    same values).
    """
    wanted = sorted(set(values))
    size = CHUNK // repeat
    rows: list[dict[str, Any]] = []
    for start in range(0, len(wanted), size):
        chunk = wanted[start : start + size]
        placeholders = "(" + ",".join(["%s"] * len(chunk)) + ")"
        rows += cur.execute(query.format(ids=placeholders), chunk * repeat).fetchall()
    return rows


class Writes:
    """Statements of one page, kept until `flush`, then each sent as one
    `executemany`: the statements named in `first` in that order, then the
    others in the order they were first used.

    Grouping reorders statements of different kinds, so a projection uses one
    `Writes` only for statements that commute (other tables, or other rows) or
    that `first` puts in a safe order (inserts before updates of the same rows),
    and flushes before anything that must see them.
    """

    def __init__(self, first: Sequence[str] = ()) -> None:
        self._first = tuple(first)
        self._rows: dict[str, list[Sequence[Any]]] = {}
        self.clear()

    def clear(self) -> None:
        """Drops unsent writes (a page that failed leaves some behind)."""
        self._rows = {sql: [] for sql in self._first}

    def add(self, sql: str, row: Sequence[Any]) -> None:
        self._rows.setdefault(sql, []).append(row)

    def extend(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        self._rows.setdefault(sql, []).extend(rows)

    def __bool__(self) -> bool:
        return any(self._rows.values())

    def flush(self, cur: Cursor) -> None:
        pending = self._rows
        self.clear()
        for sql, rows in pending.items():
            cur.executemany(sql, rows)


class PageTable:
    """Rows of one table by key, for one page: read in bulk (`load`), then kept
    current by the page's own writes (`put`), which reach the database only when
    the page's `Writes` are flushed. With `many`, a key has a list of rows."""

    def __init__(self, query: str, key: str, *, many: bool = False) -> None:
        self.query = query
        self.key = key
        self.many = many
        self.rows: dict[Any, Any] = {}

    def clear(self) -> None:
        self.rows = {}

    def load(self, cur: Cursor, keys: Iterable[Any]) -> None:
        missing = {k for k in keys if k not in self.rows}
        if not missing:
            return
        for key in missing:
            self.rows[key] = [] if self.many else None
        for row in rows_in(cur, self.query, missing):
            if self.many:
                self.rows[row[self.key]].append(row)
            else:
                self.rows[row[self.key]] = row

    def get(self, cur: Cursor, key: Any) -> Any:
        if key not in self.rows:
            self.load(cur, (key,))
        return self.rows[key]

    def put(self, key: Any, value: Any) -> None:
        self.rows[key] = value


class Statements:
    """Statements kept in the order they were made until `flush`; consecutive
    uses of one statement are sent as one `executemany`. For writes whose order
    matters (several statements set one row's columns), unlike `Writes`."""

    def __init__(self) -> None:
        self._runs: list[tuple[str, list[Sequence[Any]]]] = []

    def clear(self) -> None:
        self._runs = []

    def add(self, sql: str, row: Sequence[Any]) -> None:
        if self._runs and self._runs[-1][0] == sql:
            self._runs[-1][1].append(row)
        else:
            self._runs.append((sql, [row]))

    def flush(self, cur: Cursor) -> None:
        runs, self._runs = self._runs, []
        for sql, rows in runs:
            cur.executemany(sql, rows)
