"""Set-based helpers for projections: bulk lookups and buffered writes per page.

A projection reads what a page needs in a few IN-list queries, keeps what it
writes in memory for the rest of the page, and sends its writes once, one
statement per kind. On PostgreSQL (pipeline mode) a read waits for every
statement sent before it, so reads go first; and a statement run once per row
costs the client far more than the row costs the server, so the rows of a
`Bulk` statement travel as one JSON array in one statement. SQLite, in process,
runs the one-row statement for every row (`executemany`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from operator import itemgetter
from typing import Any

import orjson
from psycopg.types.json import Jsonb

from api.store.database import Cursor

CHUNK = 500
_TEXTS_OF_JSON = "ARRAY(SELECT jsonb_array_elements_text(%s))"
BULK_ROWS = 1000


@dataclass(frozen=True, eq=False)
class Bulk:
    """A write of many rows in one statement on PostgreSQL.

    `one` writes one row (`%s` per column, in `columns` order); `many` writes
    all of them, reading `{rows}`: a subquery `v` with the typed `columns`.
    With `key` (column positions), rows are sent in order but a later row with
    the same key replaces an earlier one, as a second upsert or overwriting
    update of that key would: only the last is sent, so `many` never touches a
    row twice.
    """

    one: str
    many: str
    columns: tuple[tuple[str, str], ...]  # (name, PostgreSQL type)
    key: tuple[int, ...] = ()
    _sql: str = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        values = ", ".join(
            f"(r->>{i})::{kind} AS {name}"
            for i, (name, kind) in enumerate(self.columns)
        )
        rows = f"(SELECT {values} FROM jsonb_array_elements(%s) AS r) AS v"
        object.__setattr__(self, "_sql", self.many.format(rows=rows))

    @classmethod
    def insert(
        cls,
        table: str,
        columns: tuple[tuple[str, str], ...],
        tail: str = "",
        key: tuple[int, ...] = (),
    ) -> Bulk:
        """INSERT of every column, then `tail` (an ON CONFLICT clause, say)."""
        names = ", ".join(name for name, _ in columns)
        placeholders = ", ".join(["%s"] * len(columns))
        return cls(
            one=f"INSERT INTO {table} ({names}) VALUES ({placeholders}) {tail}",
            many=f"INSERT INTO {table} ({names}) SELECT {names} FROM {{rows}} {tail}",
            columns=columns,
            key=key,
        )

    def send(self, cur: Cursor, rows: Sequence[Sequence[Any]]) -> None:
        if not rows:
            return
        if cur.sqlite:
            cur.executemany(self.one, rows)
            return
        if self.key:
            key = itemgetter(*self.key)
            rows = list({key(row): row for row in rows}.values())
        # A thousand rows a statement are as fast, and keep the JSON small.
        for start in range(0, len(rows), BULK_ROWS):
            chunk = rows[start : start + BULK_ROWS]
            cur.execute(self._sql, (Jsonb(chunk, dumps=orjson.dumps),))


def send(cur: Cursor, statement: str | Bulk, rows: Sequence[Sequence[Any]]) -> None:
    if isinstance(statement, Bulk):
        statement.send(cur, rows)
    else:
        cur.executemany(statement, rows)


def rows_in(
    cur: Cursor,
    query: str,
    values: Iterable[Any],
    *,
    repeat: int = 1,
    tuples: bool = False,
) -> list[Any]:
    """Rows of `query` for every value (text: ids, keys): new dicts, or with
    `tuples` sequences in the order of the columns selected (a rebuild reads
    millions of rows, and a dict per row was a tenth of the households view).

    `query` has `IN {ids}`, `repeat` times (each gets the same values). On
    PostgreSQL the values travel as one JSON array (a list parameter would be
    dumped value by value) and the statement's text is the same whatever their
    number; SQLite gets IN-lists of 500 values.
    """
    wanted = sorted(set(values))
    if not wanted:
        return []
    if not cur.sqlite:
        sql = query.replace("IN {ids}", f"= ANY({_TEXTS_OF_JSON})")
        params = [Jsonb(wanted, dumps=orjson.dumps)] * repeat
        found = cur.execute(sql, params)
        # PostgreSQL rows already are dicts (dict_row): no copy of each.
        return found.tuples() if tuples else found.raw.fetchall()
    size = CHUNK // repeat
    rows: list[Any] = []
    for start in range(0, len(wanted), size):
        chunk = wanted[start : start + size]
        placeholders = "(" + ",".join(["%s"] * len(chunk)) + ")"
        found = cur.execute(query.format(ids=placeholders), chunk * repeat)
        rows += found.tuples() if tuples else found.fetchall()
    return rows


class Writes:
    """Statements of one page, kept until `flush`, then each sent with all its
    rows at once (`send`): the statements named in `first` in that order, then
    the others in the order they were first used.

    Grouping reorders statements of different kinds, so a projection uses one
    `Writes` only for statements that commute (other tables, or other rows) or
    that `first` puts in a safe order (inserts before updates of the same rows),
    and flushes before anything that must see them.
    """

    def __init__(self, first: Sequence[str | Bulk] = ()) -> None:
        self._first = tuple(first)
        self._rows: dict[str | Bulk, list[Sequence[Any]]] = {}
        self.clear()

    def clear(self) -> None:
        """Drops unsent writes (a page that failed leaves some behind)."""
        self._rows = {sql: [] for sql in self._first}

    def add(self, sql: str | Bulk, row: Sequence[Any]) -> None:
        self._rows.setdefault(sql, []).append(row)

    def extend(self, sql: str | Bulk, rows: Iterable[Sequence[Any]]) -> None:
        self._rows.setdefault(sql, []).extend(rows)

    def flush(self, cur: Cursor) -> None:
        pending = self._rows
        self.clear()
        for sql, rows in pending.items():
            send(cur, sql, rows)

    def move_to(self, out: Statements) -> None:
        """Puts these writes, grouped, at the end of `out` (and drops them here)."""
        pending = self._rows
        self.clear()
        for sql, rows in pending.items():
            out.extend(sql, rows)


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
    uses of one statement are sent together (`send`). For writes whose order
    matters (several statements set one row's columns), unlike `Writes`."""

    def __init__(self) -> None:
        self._runs: list[tuple[str | Bulk, list[Sequence[Any]]]] = []

    def clear(self) -> None:
        self._runs = []

    def add(self, sql: str | Bulk, row: Sequence[Any]) -> None:
        if self._runs and self._runs[-1][0] is sql:
            self._runs[-1][1].append(row)
        else:
            self._runs.append((sql, [row]))

    def extend(self, sql: str | Bulk, rows: Iterable[Sequence[Any]]) -> None:
        for row in rows:
            self.add(sql, row)

    def flush(self, cur: Cursor) -> None:
        runs, self._runs = self._runs, []
        for sql, rows in runs:
            send(cur, sql, rows)
