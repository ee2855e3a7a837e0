"""The contract every projection (read model) fulfils."""

from __future__ import annotations

from collections.abc import Iterable
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


class DispatchesByType:
    """A projection that reads an event only through its `_on_<Type>` handler,
    and does nothing with an event it has none for.

    A runner feeding only such projections decodes only the events they read:
    `crm rebuild` in two processes leaves the households and customers views
    about half the log (statements, fees, contacts, orders, complaints, mailings)."""

    @property
    def reads_types(self) -> frozenset[str]:
        return handled_types(type(self))


_HANDLED_TYPES: dict[type, frozenset[str]] = {}


def handled_types(cls: type) -> frozenset[str]:
    """The event types `cls` has an `_on_<Type>` handler for."""
    found = _HANDLED_TYPES.get(cls)
    if found is None:
        found = _HANDLED_TYPES[cls] = frozenset(
            name[4:]
            for name in dir(cls)
            if name.startswith("_on_") and name[4:5].isupper()
        )
    return found


def types_read_by(projections: Iterable[object]) -> frozenset[str] | None:
    """The event types any of `projections` reads; None when one of them may
    read any type (it is not a `DispatchesByType`)."""
    wanted: set[str] = set()
    for projection in projections:
        if not isinstance(projection, DispatchesByType):
            return None
        wanted |= projection.reads_types
    return frozenset(wanted)
