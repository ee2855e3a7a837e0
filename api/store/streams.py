"""Loads many aggregates in one query, instead of one repository.get() each.

A batch of a thousand events touches hundreds of aggregates; one round trip per
aggregate would dominate bulk ingest. Aggregates saved or read earlier in this
process are kept in an LRU cache and reused when the log confirms their version
is still the latest, so the monthly cycle does not replay every account's
history for every batch, nor a contact its customer's.

While this process is the only writer, the cache needs no confirmation per
aggregate: if the log's newest position is the last one this process saved,
and every save of this process followed the one before without a gap, nothing
else has been written since the cache began, so every cached aggregate is the
latest. That is one cheap query instead of an index probe per aggregate. The
first position written by anyone else (or a save that failed, or a gap)
ends that for the life of the cache, and each aggregate's version is checked
again, as before.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Collection, Iterable
from typing import Any, NamedTuple
from uuid import UUID

from eventsourcing.domain import Aggregate
from eventsourcing.persistence import StoredEvent

import domain.handling  # noqa: F401  (registers every fact, for VERSION_ONLY)
from api.store.application import CrmApplication
from api.store.database import Cursor, Database
from domain.events import version_only_topics

CHUNK = 1000
VERSION_ONLY = version_only_topics()
"""Facts that change no state: an aggregate is replayed without them, but for
its last fact, which sets its version and time. An account's state is its
opening and closing, not its years of balances."""


def clone(aggregate: Aggregate) -> Aggregate:
    """A copy that a unit of work may change freely.

    Aggregates here hold primitives and flat dicts/lists of primitives, which
    their facts replace or update in place, so copying one level deep is
    enough (and far cheaper than deepcopy).
    """
    twin = object.__new__(type(aggregate))
    vars(twin).update(
        {
            name: dict(value)
            if type(value) is dict
            else list(value)
            if type(value) is list
            else value
            for name, value in vars(aggregate).items()
        }
    )
    return twin


class AggregateCache:
    def __init__(
        self, maxsize: int = 100_000, uncached: tuple[type[Aggregate], ...] = ()
    ) -> None:
        self.maxsize = maxsize
        self.uncached = (
            uncached  # kinds never loaded again: caching them only costs memory
        )
        self._items: OrderedDict[UUID, Aggregate] = OrderedDict()
        self._lock = threading.Lock()
        # The log position every cached aggregate is known to be current at
        # while this process is the only writer; None before the first look.
        self._current_at: int | None = None
        self._only_writer = True

    def may_be_current(self) -> bool:
        """False once another writer has been seen: `current_at` is then always False."""
        return self._only_writer

    def current_at(self, head: int) -> bool:
        """True if every cached aggregate is the latest at `head`, the log's newest
        position just read: nobody else has written since the cache began."""
        with self._lock:
            if self._only_writer and self._current_at is None and not self._items:
                self._current_at = head  # an empty cache is current anywhere
            if head != self._current_at:
                self._only_writer = False
            return self._only_writer

    def expected_first(self) -> int | None:
        """While this process is the only writer: the position its next save must
        start at. The save is refused if anyone else saved since (`LogMoved`), so
        the cache is trusted without asking the log for its head first."""
        with self._lock:
            if self._only_writer and self._current_at is not None:
                return self._current_at + 1
            return None

    def saw_failed_save(self) -> None:
        """A save failed (another writer, most likely): check versions from now on."""
        with self._lock:
            self._only_writer = False

    def get(self, aggregate_id: UUID) -> Aggregate | None:
        with self._lock:
            found = self._items.get(aggregate_id)
            if found is not None:
                self._items.move_to_end(aggregate_id)
        return found

    def put_saved(
        self, aggregates: Iterable[Aggregate], positions: Collection[int]
    ) -> None:
        """Keeps `aggregates`, just saved at `positions` (every event of the save)."""
        with self._lock:
            if positions:
                first, last = min(positions), max(positions)
                follows = (
                    self._current_at is not None
                    and first == self._current_at + 1
                    and last - first + 1 == len(positions)
                )
                if follows:
                    self._current_at = last
                else:
                    self._only_writer = False
            # Saved: nobody changes them any more.
            self._keep(a for a in aggregates if not isinstance(a, self.uncached))

    def put_read(self, aggregates: Iterable[Aggregate]) -> None:
        """Keeps `aggregates`, which a unit of work read and did not change
        (the customer a contact names), once it is done with them: they are
        kept as they are, not copied.

        An aggregate already kept is left alone: it was kept (saved, most
        likely) after this one was read, so it is at least as new."""
        with self._lock:
            self._keep(
                a
                for a in aggregates
                if a.id not in self._items and not isinstance(a, self.uncached)
            )

    def _keep(self, aggregates: Iterable[Aggregate]) -> None:
        """Keeps `aggregates` as the newest, dropping the least recently used
        beyond `maxsize` (the caller holds the lock)."""
        for aggregate in aggregates:
            self._items[aggregate.id] = aggregate
            self._items.move_to_end(aggregate.id)
        while len(self._items) > self.maxsize:
            self._items.popitem(last=False)


class Loaded(NamedTuple):
    aggregates: dict[UUID, Aggregate]
    """The current state of each existing aggregate asked for (absent ids left out)."""
    kept: set[UUID]
    """The ids of those that are the cache's own objects: `clone` one before
    changing it. A contact only reads its customer, so most are never copied."""


def load_aggregates(
    app: CrmApplication,
    db: Database,
    ids: Iterable[UUID],
    cache: AggregateCache | None = None,
) -> Loaded:
    """The current state of each existing aggregate among `ids`."""
    wanted = list(dict.fromkeys(ids))
    found: dict[UUID, Aggregate] = {}
    from_cache: set[UUID] = set()
    # Once another writer has been seen the answer is always no: not asked.
    trusted = (
        cache is not None
        and cache.may_be_current()
        and (
            cache.expected_first() is not None
            or cache.current_at(app.recorder.max_notification_id() or 0)
        )
    )
    for start in range(0, len(wanted), CHUNK):
        chunk = wanted[start : start + CHUNK]
        with db.read() as cur:
            to_load = []
            cached = {}
            for aggregate_id in chunk:
                kept = cache.get(aggregate_id) if cache else None
                if kept is None:
                    to_load.append(aggregate_id)  # absent ones read no rows
                else:
                    cached[aggregate_id] = kept
            check = list(cached) if cached and not trusted else []
            # Only the cached ones need their versions confirmed.
            rows, versions = _rows_and_versions(cur, db, to_load, check)
            stale = [i for i in check if versions.get(i) != cached[i].version]
            if stale:
                # Changed by another writer since they were kept: read again.
                for aggregate_id in stale:
                    del cached[aggregate_id]
                rows = [*rows, *_events(cur, db, stale)]
            found.update(cached)
            from_cache.update(cached)
            if rows:
                found.update(_replay(app, rows))
    return Loaded(found, from_cache)


def _replay(app: CrmApplication, rows: list[Any]) -> dict[UUID, Aggregate]:
    """Aggregates from their rows (originator_id, originator_version, topic, state)."""
    found: dict[UUID, Aggregate] = {}
    aggregate: Any = None
    for originator_id, version, topic, state in rows:
        oid = _uuid(originator_id)
        if aggregate is not None and aggregate.id != oid:
            found[aggregate.id] = aggregate
            aggregate = None
        elif aggregate is not None and aggregate.version == version:
            continue  # the last row, read a second time
        stored = StoredEvent(oid, version, topic, bytes(state))
        if aggregate is not None:
            # The rows between (facts that change no state) were not read.
            aggregate.version = stored.originator_version - 1
        aggregate = app.mapper.to_domain_event(stored).mutate(aggregate)  # type: ignore[attr-defined]
    if aggregate is not None:
        found[aggregate.id] = aggregate
    return found


def _uuid(value: Any) -> UUID:
    return value if isinstance(value, UUID) else UUID(value)


def _rows_and_versions(
    cur: Cursor, db: Database, to_load: list[UUID], check: list[UUID]
) -> tuple[list[Any], dict[UUID, int]]:
    """`_events` of `to_load` and `_versions` of `check`, in one statement on
    PostgreSQL when both are wanted. A group commit of single posts wants both
    (the ids its events create, and the customers it kept): one round trip
    fewer per group."""
    if not check:
        return (_events(cur, db, to_load) if to_load else []), {}
    if not to_load:
        return [], _versions(cur, db, check)
    if db.backend != "postgresql":
        return _events(cur, db, to_load), _versions(cur, db, check)
    rows: list[Any] = []
    versions: dict[UUID, int] = {}
    for row in cur.execute(LOAD_AND_VERSIONS_POSTGRESQL, (to_load, check)).tuples():
        if row[2] is None:  # a version row: no topic
            versions[_uuid(row[0])] = row[1]
        else:
            rows.append(row)
    return rows, versions


def _versions(cur: Cursor, db: Database, ids: list[UUID]) -> dict[UUID, int]:
    if db.backend == "postgresql":
        rows = cur.execute(VERSIONS_POSTGRESQL, (ids,)).tuples()
    else:
        placeholders, params = db.in_list([i.hex for i in ids])
        sql = f"SELECT originator_id, max(originator_version) FROM stored_events WHERE originator_id IN {placeholders} GROUP BY originator_id"
        rows = cur.execute(sql, params).tuples()
    return {_uuid(oid): version for oid, version in rows}


def _events(cur: Cursor, db: Database, ids: list[UUID]) -> list[Any]:
    """Each aggregate's rows in order: those that change its state (read through
    the partial index of migration 0007) and its last row, which may come twice."""
    if db.backend == "postgresql":
        return cur.execute(LOAD_POSTGRESQL, (ids,)).tuples()
    placeholders, params = db.in_list([i.hex for i in ids])
    return cur.execute(LOAD_SQLITE.format(ids=placeholders), params).tuples()


def _topics_sql() -> str:
    return ", ".join("'" + topic.replace("'", "''") + "'" for topic in VERSION_ONLY)


# The topic lists are written out as the migration writes them: a partial
# index is used only for a query whose condition is (or implies) the index's.
_LOAD_POSTGRESQL_ROWS = (
    "WITH changes AS (SELECT c.* FROM unnest(%b::uuid[]) AS i(id) CROSS JOIN LATERAL ("
    "SELECT originator_id, originator_version, topic, state FROM crm_events e "
    f"WHERE e.originator_id = i.id AND e.topic <> ALL (ARRAY[{_topics_sql()}]) OFFSET 0) c) "
    "SELECT * FROM changes UNION ALL "
    "SELECT l.* FROM (SELECT DISTINCT originator_id FROM changes) AS i CROSS JOIN LATERAL ("
    "SELECT originator_id, originator_version, topic, state FROM crm_events e "
    "WHERE e.originator_id = i.originator_id ORDER BY originator_version DESC LIMIT 1) l "
)
_ORDER = "ORDER BY originator_id, originator_version"
LOAD_POSTGRESQL = _LOAD_POSTGRESQL_ROWS + _ORDER
"""One index probe per id, whatever the planner's statistics say (OFFSET 0 keeps
the lateral subquery from being flattened into a join): a log loaded since its
last ANALYZE has none, and `originator_id = ANY(...)` was then planned as a
scan of the whole table. An aggregate that exists has a first fact, which
changes state: ids with no such row are absent, and cost no look for a last
row."""
_NEWEST_VERSIONS = (
    "FROM unnest(%b::uuid[]) AS i(id) CROSS JOIN LATERAL ("
    "SELECT originator_version AS version FROM crm_events e "
    "WHERE e.originator_id = i.id ORDER BY originator_version DESC LIMIT 1) v "
)
VERSIONS_POSTGRESQL = "SELECT i.id, v.version " + _NEWEST_VERSIONS
"""One index probe per id for its newest version; max() ... GROUP BY would walk
every version of every long-lived account."""
LOAD_AND_VERSIONS_POSTGRESQL = (
    _LOAD_POSTGRESQL_ROWS
    + "UNION ALL SELECT i.id, v.version, NULL::text, NULL::bytea "
    + _NEWEST_VERSIONS
    + _ORDER
)
"""`LOAD_POSTGRESQL` of its first ids, and a row (id, newest version, NULL,
NULL) for each of its second ids, as `VERSIONS_POSTGRESQL` reads them."""
LOAD_SQLITE = (
    "WITH changes AS (SELECT originator_id, originator_version, topic, state "
    "FROM stored_events WHERE originator_id IN {ids} "
    f"AND topic NOT IN ({_topics_sql()})) "
    "SELECT * FROM changes UNION ALL "
    "SELECT e.originator_id, e.originator_version, e.topic, e.state FROM stored_events e "
    "JOIN (SELECT i.originator_id AS id, (SELECT max(originator_version) FROM stored_events m "
    "WHERE m.originator_id = i.originator_id) AS version "
    "FROM (SELECT DISTINCT originator_id FROM changes) AS i) l "
    "ON e.originator_id = l.id AND e.originator_version = l.version "
    "ORDER BY 1, 2"
)
