"""Application recorders that index each event in `crm_event_log` in the same transaction.

The index row holds the client's event_id (idempotency), the hash of its content
(to tell a retry from a conflicting re-post) and the chain hash (tamper evidence).
Every save must pass `event_log={(originator_id, version): (event_id, content_hash)}`.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

from eventsourcing.persistence import ProgrammingError, StoredEvent
from eventsourcing.postgres import PostgresApplicationRecorder
from eventsourcing.sqlite import SQLiteApplicationRecorder, SQLiteCursor
from psycopg.rows import tuple_row
from psycopg.sql import SQL, Identifier

from api.store.chain import GENESIS, link

EventLog = dict[tuple[Any, int], tuple[str, bytes]]

SELECT_HEAD = "SELECT chain_hash FROM crm_event_log ORDER BY position DESC LIMIT 1"


def _index_columns(
    previous: bytes,
    stored_events: Sequence[StoredEvent],
    positions: Sequence[int],
    event_log: EventLog | None,
) -> tuple[list[Any], list[Any], list[bytes], list[bytes]]:
    """The index rows for `stored_events`, column by column (position, event_id,
    content_hash, chain_hash), each link chained onto `previous`."""
    if event_log is None:
        raise ProgrammingError(
            "every save must pass event_log (see api.store.recorders)"
        )
    event_ids, content_hashes, chain_hashes = [], [], []
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
        event_ids.append(event_id)
        content_hashes.append(content_hash)
        chain_hashes.append(previous)
    return list(positions), event_ids, content_hashes, chain_hashes


INSERT_LOG_ARRAYS = (
    "INSERT INTO crm_event_log (position, event_id, content_hash, chain_hash) "
    "SELECT * FROM unnest(%b::bigint[], %b::uuid[], %b::bytea[], %b::bytea[])"
)


class PostgresCrmRecorder(PostgresApplicationRecorder):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._head = threading.local()
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
        # The chain head is read under the lock and in the insert's round trip.
        self._head.cursor = curs.connection.cursor()
        self._head.cursor.execute(SELECT_HEAD, prepare=True)
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
        curs.row_factory = tuple_row
        positions = [row[0] for row in curs.fetchall()]
        if len(positions) != len(stored_events):
            raise ProgrammingError(
                f"got {len(positions)} notification ids for {len(stored_events)} events"
            )
        head_cursor, self._head.cursor = self._head.cursor, None
        with head_cursor:
            head = head_cursor.fetchone()
        previous = bytes(head["chain_hash"]) if head else GENESIS
        columns = _index_columns(
            previous, stored_events, positions, kwargs.get("event_log")
        )
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
        columns = _index_columns(
            previous, stored_events, positions, kwargs.get("event_log")
        )
        rows = list(zip(*columns, strict=True))
        c.executemany(
            "INSERT INTO crm_event_log (position, event_id, content_hash, chain_hash) VALUES (?, ?, ?, ?)",
            rows,
        )
        return positions
