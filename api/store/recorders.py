"""Application recorders that index each event in `crm_event_log` in the same transaction.

The index row holds the client's event_id (idempotency), the hash of its content
(to tell a retry from a conflicting re-post) and the chain hash (tamper evidence).
Every save must pass `event_log={(originator_id, version): (event_id, content_hash)}`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from eventsourcing.persistence import ProgrammingError, StoredEvent
from eventsourcing.postgres import PostgresApplicationRecorder
from eventsourcing.sqlite import SQLiteApplicationRecorder, SQLiteCursor
from psycopg.sql import SQL, Identifier

from api.store.chain import GENESIS, link

EventLog = dict[tuple[Any, int], tuple[str, bytes]]

SELECT_HEAD = "SELECT chain_hash FROM crm_event_log ORDER BY position DESC LIMIT 1"


def _index_rows(
    previous: bytes,
    stored_events: Sequence[StoredEvent],
    positions: Sequence[int],
    event_log: EventLog | None,
) -> list[tuple[Any, ...]]:
    if event_log is None:
        raise ProgrammingError(
            "every save must pass event_log (see api.store.recorders)"
        )
    rows = []
    for stored, position in zip(stored_events, positions, strict=True):
        event_id, content_hash = event_log[
            (stored.originator_id, stored.originator_version)
        ]
        previous = link(
            previous,
            position,
            stored.originator_id,
            stored.originator_version,
            stored.topic,
            stored.state,
        )
        rows.append((position, event_id, content_hash, previous))
    return rows


INSERT_LOG_ARRAYS = (
    "INSERT INTO crm_event_log (position, event_id, content_hash, chain_hash) "
    "SELECT * FROM unnest(%b::bigint[], %b::uuid[], %b::bytea[], %b::bytea[])"
)


class PostgresCrmRecorder(PostgresApplicationRecorder):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Four plain arrays dump far faster than one array of composite values.
        self.insert_arrays_statement = SQL(
            "INSERT INTO {schema}.{table} (originator_id, originator_version, topic, state) "
            "SELECT * FROM unnest(%b::uuid[], %b::bigint[], %b::text[], %b::bytea[]) "
            "RETURNING notification_id"
        ).format(
            schema=Identifier(self.datastore.schema),
            table=Identifier(self.events_table_name),
        )

    def _insert_stored_events(
        self, curs: Any, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> None:
        self._lock_table(curs)
        self._notify_channel(curs)
        columns = (
            [e.originator_id for e in stored_events],
            [e.originator_version for e in stored_events],
            [e.topic for e in stored_events],
            [e.state for e in stored_events],
        )
        curs.execute(self.insert_arrays_statement, columns, prepare=True)

    def _fetch_ids_after_insert_events(
        self, curs: Any, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        positions = super()._fetch_ids_after_insert_events(
            curs, stored_events, **kwargs
        )
        assert positions is not None
        curs.execute(SELECT_HEAD)
        head = curs.fetchone()
        previous = bytes(head["chain_hash"]) if head else GENESIS
        rows = _index_rows(previous, stored_events, positions, kwargs.get("event_log"))
        columns = [list(column) for column in zip(*rows, strict=True)]
        curs.execute(INSERT_LOG_ARRAYS, columns, prepare=True)
        return positions


class SQLiteCrmRecorder(SQLiteApplicationRecorder):
    def _insert_events(
        self, c: SQLiteCursor, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        positions = super()._insert_events(c, stored_events, **kwargs)
        assert positions is not None
        c.execute(SELECT_HEAD)
        head = c.fetchone()
        previous = bytes(head[0]) if head else GENESIS
        rows = _index_rows(previous, stored_events, positions, kwargs.get("event_log"))
        c.executemany(
            "INSERT INTO crm_event_log (position, event_id, content_hash, chain_hash) VALUES (?, ?, ?, ?)",
            rows,
        )
        return positions
