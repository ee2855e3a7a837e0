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
