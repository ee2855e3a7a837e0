"""Application recorders that index each event in `crm_event_log` in the same transaction.

The index row holds the client's event_id (idempotency), the hash of its content
(to tell a retry from a conflicting re-post) and the chain hash (tamper evidence).
Every save must pass `event_log={(originator_id, version): (event_id, content_hash)}`.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import suppress
from typing import Any, Protocol
from uuid import UUID

import psycopg
from eventsourcing.persistence import (
    IntegrityError,
    InterfaceError,
    OperationalError,
    ProgrammingError,
    StoredEvent,
)
from eventsourcing.postgres import PostgresApplicationRecorder
from eventsourcing.sqlite import SQLiteApplicationRecorder, SQLiteCursor
from eventsourcing.utils import retry
from psycopg.adapt import PyFormat
from psycopg.pq import Format
from psycopg.rows import tuple_row
from psycopg.sql import SQL, Identifier, Literal
from psycopg.types.string import BytesBinaryDumper

from api.store.chain import GENESIS, link

EventLog = dict[tuple[Any, int], tuple[str, bytes]]

LogRow = tuple[int, str, int, str, bytes]
"""A stored event as the views read it: position, stream id (text), stream
version, topic and state."""


class ReadsLogRows(Protocol):
    """The log read for the views: plain rows, none of the library's
    `Notification` objects, UUIDs or dict rows, which were a fifth of a
    rebuild's CPU (py-spy) before the events were even decoded."""

    def select_log_rows(self, after: int, limit: int) -> list[LogRow]:
        """Up to `limit` stored events after position `after`, in order."""
        ...


class LogMoved(IntegrityError):
    """A save that expected to follow position N found the log elsewhere
    (another writer saved in between): nothing of it was stored. An
    `IntegrityError`, as a save refused for another writer's is."""


def _check_follows(positions: Sequence[int], expect_first: int | None) -> None:
    if expect_first is not None and positions and positions[0] != expect_first:
        raise LogMoved(
            f"expected position {expect_first}, the log is at {positions[0]}"
        )


SELECT_HEAD = "SELECT chain_hash FROM crm_event_log ORDER BY position DESC LIMIT 1"


def _index_rows(
    previous: bytes,
    stored_events: Sequence[StoredEvent],
    positions: Sequence[int],
    event_log: EventLog | None,
) -> list[tuple[int, str, bytes, bytes]]:
    """The index rows for `stored_events` (position, event_id, content_hash,
    chain_hash), each link chained onto `previous`."""
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


class PostgresCrmRecorder(PostgresApplicationRecorder):
    """Writes a save's events and their index rows with binary COPY.

    PostgreSQL takes rows from COPY at several times the rate of
    `INSERT ... SELECT unnest(...)` (measured in the same bench run: ~300,000
    against ~70,000 rows/s), and psycopg formats COPY rows in C, where the
    arrays for unnest were built by a Python loop per element. COPY cannot
    return the notification ids, so the save takes them from the sequence
    itself, under the table lock that every save holds: no other save can take
    ids between, so the ids are consecutive and in commit order, exactly as
    the library's insert gives them. (A save that rolls back leaves a gap, as
    the library's does too.)
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        table = SQL("{}.{}").format(
            Identifier(self.datastore.schema), Identifier(self.events_table_name)
        )
        self.copy_events_statement = SQL(
            "COPY {} (originator_id, originator_version, topic, state, notification_id) "
            "FROM STDIN (FORMAT BINARY)"
        ).format(table)
        qualified = f"{self.datastore.schema}.{self.events_table_name}"
        self.select_log_rows_statement = SQL(
            "SELECT notification_id, originator_id::text, originator_version, topic, state "
            "FROM {} WHERE notification_id > %s ORDER BY notification_id LIMIT %s"
        ).format(table)
        # One round trip opens a save: the transaction, the library's lock
        # (with its timeout) and notify, the chain's head, and the ids taken.
        # Sent as one simple query, they cost one wait for the server instead
        # of six, which the writer otherwise spends idle per save.
        self.open_save_template = (
            SQL(
                "BEGIN; {lock_timeout}; {lock}; NOTIFY {channel}; "
                "SELECT ({head}), setval(s, nextval(s) + {count} - 1) "
                "FROM pg_get_serial_sequence({qualified}, 'notification_id') AS s"
            )
            .format(
                lock_timeout=self.lock_table_statements[0],
                lock=self.lock_table_statements[1],
                channel=Identifier(self.channel_name),
                head=SQL(SELECT_HEAD),
                qualified=Literal(qualified),
                count=SQL("{count:d}"),
            )
            .as_string(None)
        )

    @retry((InterfaceError, OperationalError), max_attempts=10, wait=0.2)
    def insert_events(
        self, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        if not stored_events:
            return []
        with (
            self.datastore.get_connection() as conn,
            conn.cursor(row_factory=tuple_row) as curs,
        ):
            try:
                previous, positions = self._open_save(curs, len(stored_events))
                _check_follows(positions, kwargs.get("expect_first"))
                use_c_dumpers(conn)
                with curs.copy(self.copy_events_statement) as copy:
                    copy.set_types(EVENT_COLUMN_TYPES)
                    for event, position in zip(stored_events, positions, strict=True):
                        copy.write_row(
                            (
                                uuid_bytes(event.originator_id),
                                event.originator_version,
                                event.topic,
                                event.state,
                                position,
                            )
                        )
                    # Before the COPY's end, which waits for PostgreSQL to take
                    # every row: it takes the rows sent so far meanwhile.
                    rows = _index_rows(
                        previous, stored_events, positions, kwargs.get("event_log")
                    )
                with curs.copy(COPY_LOG) as copy:
                    copy.set_types(LOG_COLUMN_TYPES)
                    for position, event_id, content_hash, chain_hash in rows:
                        copy.write_row(
                            (position, uuid_bytes(event_id), content_hash, chain_hash)
                        )
                conn.commit()
            except BaseException:
                # The save's own error is the one to raise; a connection too
                # broken to roll back is dropped by the pool anyway.
                with suppress(psycopg.Error):
                    conn.rollback()
                raise
        return list(positions)

    def _open_save(self, curs: Any, count: int) -> tuple[bytes, range]:
        """Opens the save's transaction; returns the chain's head and the ids taken."""
        curs.execute(self.open_save_template.format(count=count).encode())
        while curs.nextset():  # BEGIN, SET, LOCK and NOTIFY return no rows
            pass
        head, last = curs.fetchone()
        previous = bytes(head) if head is not None else GENESIS
        return previous, range(last - count + 1, last + 1)

    @retry((InterfaceError, OperationalError), max_attempts=10, wait=0.2)
    def select_log_rows(self, after: int, limit: int) -> list[LogRow]:
        with (
            self.datastore.get_connection() as conn,
            conn.cursor(row_factory=tuple_row) as curs,
        ):
            curs.execute(
                self.select_log_rows_statement,
                (after, limit),
                prepare=True,
                binary=True,
            )
            return curs.fetchall()


# A UUID column is written as its 16 bytes, declared `bytea` to psycopg: in
# binary COPY a field is only its length and bytes (no type travels with it),
# and 16 bytes are exactly what PostgreSQL's uuid takes. psycopg's uuid dumper
# is Python; its bytes dumper is C (see `use_c_dumpers`).
EVENT_COLUMN_TYPES = ["bytea", "int8", "text", "bytea", "int8"]
LOG_COLUMN_TYPES = ["int8", "bytea", "bytea", "bytea"]


def uuid_bytes(value: UUID | str) -> bytes:
    """A stream id's 16 bytes (as COPY writes it, and as workers send it)."""
    return value.bytes if isinstance(value, UUID) else UUID(value).bytes


def use_c_dumpers(conn: psycopg.Connection[Any]) -> None:
    """Makes `bytea` COPY fields of `conn` go through psycopg's C bytes dumper.

    psycopg finds a COPY column's dumper by its type, and for `bytea` the last
    one registered is `psycopg.dbapi20.BinaryBinaryDumper`, a Python class (for
    its `Binary` wrapper): with it and the uuid dumper, formatting a save's rows
    took half as long again as with C dumpers only (3.4 against 2.1 ms of CPU
    for 1,000 events and their 1,000 index rows). Registered once per
    connection (the pool keeps them)."""
    if conn.adapters.get_dumper_by_oid(BYTEA_OID, Format.BINARY) is not _C_BYTES:
        conn.adapters.register_dumper(bytes, BytesBinaryDumper)


BYTEA_OID = psycopg.adapters.types["bytea"].oid
_C_BYTES = psycopg.adapters.get_dumper(bytes, PyFormat.BINARY)
COPY_LOG = (
    "COPY crm_event_log (position, event_id, content_hash, chain_hash) "
    "FROM STDIN (FORMAT BINARY)"
)


class SQLiteCrmRecorder(SQLiteApplicationRecorder):
    def _insert_events(
        self, c: SQLiteCursor, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        positions = super()._insert_events(c, stored_events, **kwargs)
        assert positions is not None
        _check_follows(positions, kwargs.get("expect_first"))
        c.execute(SELECT_HEAD)
        head = c.fetchone()
        previous = bytes(head[0]) if head else GENESIS
        rows = _index_rows(previous, stored_events, positions, kwargs.get("event_log"))
        c.executemany(
            "INSERT INTO crm_event_log (position, event_id, content_hash, chain_hash) VALUES (?, ?, ?, ?)",
            rows,
        )
        return positions

    def select_log_rows(self, after: int, limit: int) -> list[LogRow]:
        statement = (
            "SELECT rowid, originator_id, originator_version, topic, state "
            f"FROM {self.events_table_name} WHERE rowid > ? ORDER BY rowid LIMIT ?"
        )
        with self.datastore.transaction(commit=False) as c:
            c.execute(statement, (after, limit))
            return [
                (row[0], str(UUID(row[1])), row[2], row[3], row[4])
                for row in c.fetchall()
            ]
