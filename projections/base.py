"""The contract every projection (read model) fulfils."""

from __future__ import annotations

from typing import Protocol

from api.store.database import Cursor
from projections.records import EventRecord


class Projection(Protocol):
    """A view built from the log. Its SQL lives beside its code, its tables in migrations/.

    `apply` writes the rows for a batch of events inside the runner's transaction,
    which also moves the projection's position: exactly-once, resumable.
    """

    name: str
    tables: tuple[str, ...]

    def apply(self, cur: Cursor, records: list[EventRecord]) -> None: ...


class ReadsAhead:
    """A projection whose reads for a page can all happen before any writing.

    The runner calls `read_ahead` on every such projection of a page before it
    calls any `apply`: on PostgreSQL (pipeline mode) a read waits until the server
    has run every statement sent before it, so reads after other views' writes
    would make the client wait for the server once per view. `apply` reads for
    itself when nobody read ahead for these very records.
    """

    _read_for: tuple[Cursor, list[EventRecord]] | None = None

    def read_ahead(self, cur: Cursor, records: list[EventRecord]) -> None:
        self._read(cur, records)
        self._read_for = (cur, records)

    def apply(self, cur: Cursor, records: list[EventRecord]) -> None:
        read_for, self._read_for = self._read_for, None
        if read_for is None or read_for[0] is not cur or read_for[1] is not records:
            self._read(cur, records)
        self._write(cur, records)

    def _read(self, cur: Cursor, records: list[EventRecord]) -> None:
        raise NotImplementedError

    def _write(self, cur: Cursor, records: list[EventRecord]) -> None:
        raise NotImplementedError
