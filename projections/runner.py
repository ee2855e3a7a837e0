"""Feeds the log to projections in batches, one transaction per batch and projection.

Each batch's view rows and the projection's position commit together, so a crash
at any point resumes exactly where the last commit left off. PostgreSQL wakes the
runner with NOTIFY (the event store notifies on every insert); SQLite is polled.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, NamedTuple, cast

import psycopg
import structlog
from eventsourcing.application import Application

from api.store.database import Cursor, Database, DatabaseUnavailable
from api.store.recorders import ReadsLogRows
from projections.base import Projection, ReadsAhead, types_read_by
from projections.records import EventRecord, decode_row, type_of_topic

log = structlog.get_logger("crm.projections")


PAGE_SIZE = 1000  # events per transaction when following the log
REBUILD_PAGE_SIZE = 4000
READ_ROWS = 1000  # stored events per query
WAIT_STEP_SECONDS = 0.02

# A view table's statistics are refreshed once the rows changed since its last
# ANALYZE reach its size (it doubled, or was rewritten) and at least this many.
STALE_AFTER_ROWS = 1000
STALE_TABLES = """
SELECT s.relname FROM pg_stat_user_tables s JOIN pg_class c ON c.oid = s.relid
WHERE s.schemaname = current_schema() AND s.relname = ANY(%s)
AND (c.reltuples < 0 OR s.n_mod_since_analyze >= GREATEST(%s, c.reltuples))
"""


def _after(records: list[EventRecord], position: int) -> list[EventRecord]:
    """The records past `position`: usually all of them (no copy)."""
    if not records or records[0].position > position:
        return records
    return [r for r in records if r.position > position]


class Page(NamedTuple):
    """Consecutive events of the log: those the reader's views read, decoded,
    and how far the page reaches (the views move there whatever it held)."""

    records: list[EventRecord]
    end: int  # the position of its last event
    size: int  # its events, decoded or not


class PositionMoved(Exception):
    """Another runner advanced this projection concurrently; this one backs off."""


def read_position(cur: Cursor, name: str) -> int:
    row = cur.execute(
        "SELECT position FROM projection_positions WHERE name = %s", (name,)
    ).fetchone()
    return int(row["position"]) if row else 0


def read_positions(cur: Cursor, names: Sequence[str]) -> dict[str, int]:
    """Every named projection's position in one query (0 when it has none)."""
    rows = cur.execute("SELECT name, position FROM projection_positions").fetchall()
    found = {row["name"]: int(row["position"]) for row in rows}
    return {name: found.get(name, 0) for name in names}


def write_position(cur: Cursor, name: str, old: int, new: int) -> Callable[[], None]:
    """Moves the projection's position from `old` to `new`, or raises PositionMoved.

    In pipeline mode the outcome is known only when the returned check is called:
    the runner checks after the whole page has been sent, so the client does not
    wait for the server once per view. Otherwise it is checked here.
    """
    if old == 0:
        sql = (
            "INSERT INTO projection_positions (name, position) VALUES (%s, %s) "
            "ON CONFLICT (name) DO UPDATE SET position = excluded.position, "
            "updated_at = CURRENT_TIMESTAMP WHERE projection_positions.position = 0 "
            "RETURNING position"
        )
        params: tuple[object, ...] = (name, new)
    else:
        sql = (
            "UPDATE projection_positions SET position = %s, updated_at = CURRENT_TIMESTAMP "
            "WHERE name = %s AND position = %s RETURNING position"
        )
        params = (new, name, old)
    # RETURNING rather than rowcount: a fetched row is known even in pipeline mode.
    if cur.pipeline is None:
        if cur.execute(sql, params).fetchone() is None:
            raise PositionMoved(name)
        return lambda: None
    # A cursor of its own, which later statements of the page cannot reuse.
    result = cur.raw.connection.cursor()
    result.execute(sql, params)

    def check() -> None:
        if result.fetchone() is None:
            raise PositionMoved(name)

    return check


MOVE_POSITIONS = (
    "UPDATE projection_positions p SET position = v.new, updated_at = CURRENT_TIMESTAMP "
    "FROM unnest(CAST(%s AS text[]), CAST(%s AS bigint[]), CAST(%s AS bigint[])) "
    "AS v(name, old, new) WHERE p.name = v.name AND p.position = v.old "
    "RETURNING p.name AS name"
)


def write_positions(
    cur: Cursor, moves: Sequence[tuple[str, int, int]]
) -> Callable[[], None]:
    """`write_position` for each (name, old, new), as one statement on PostgreSQL
    once every projection has a position: a page that moved seven views sent
    seven updates, each with a cursor of its own, which cost the live views more
    than a page of a few events did."""
    if cur.sqlite or len(moves) < 2 or any(old == 0 for _, old, _ in moves):
        checks = [write_position(cur, *move) for move in moves]

        def check_each() -> None:
            for check in checks:
                check()

        return check_each
    names = [name for name, _, _ in moves]
    params = (names, [old for _, old, _ in moves], [new for _, _, new in moves])
    result = cur.raw.connection.cursor()
    result.execute(MOVE_POSITIONS, params)

    def check_all() -> None:
        moved = {row["name"] for row in result.fetchall()}  # rows are dicts
        for name in names:
            if name not in moved:
                raise PositionMoved(name)

    if cur.pipeline is None:
        check_all()
        return lambda: None
    return check_all


def empty_tables(cur: Cursor, tables: Sequence[str]) -> None:
    """TRUNCATE on PostgreSQL: a DELETE leaves every row behind as a dead tuple
    that the rebuild's inserts and index updates then have to step over."""
    if not tables:
        return
    if cur.sqlite:
        for table in tables:
            cur.execute(f"DELETE FROM {table}")
    else:
        cur.execute(f"TRUNCATE {', '.join(tables)}")


class ProjectionRunner:
    def __init__(
        self,
        app: Application[Any],
        db: Database,
        projections: Sequence[Projection],
        *,
        batch_size: int | None = None,
        rebuild_batch_size: int | None = None,
        poll_seconds: float = 0.05,
        listen_conninfo: str | None = None,
        gather_seconds: float = 0.0,
    ) -> None:
        self.app = app
        self.db = db
        self.projections = list(projections)
        # Pages of a rebuild are larger unless a page size is given: rows a page
        # rewrites (balances, households) are written once per page, and nobody
        # reads a view while it is rebuilt.
        self.batch_size = batch_size or PAGE_SIZE
        self.rebuild_batch_size = rebuild_batch_size or batch_size or REBUILD_PAGE_SIZE
        self.poll_seconds = poll_seconds
        self.gather_seconds = gather_seconds
        # Full pages applied by this runner, for refreshing statistics at 1, 2, 4,
        # 8, ... Counted over its life and only while catching up a backlog: an
        # ANALYZE of large tables stalls the views for a second or two, which
        # following the log (small pages) must not pay; autovacuum keeps those.
        self._pages_applied = 0
        self.listen_conninfo = listen_conninfo
        self._stop = threading.Event()
        self._progress = threading.Condition()
        self._thread: threading.Thread | None = None
        self.positions: dict[str, int] = {}
        self.followed_elsewhere = False
        self.last_error: str | None = None

    # positions ------------------------------------------------------------

    # Positions are read outside any write transaction (`Database.read`): on
    # SQLite a read does not take the write lock, and readers poll positions.

    def position(self, name: str) -> int:
        with self.db.read() as cur:
            return read_position(cur, name)

    def min_position(self) -> int:
        with self.db.read() as cur:
            positions = read_positions(cur, [p.name for p in self.projections])
        return min(positions.values(), default=0)

    def wait_for(self, position: int, timeout: float) -> bool:
        """Waits until every projection has reached `position`; False on timeout."""
        deadline = time.monotonic() + timeout
        while True:
            if self.min_position() >= position:
                return True
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            # A worker process moves the positions without notifying this one:
            # look again soon (one query), so a read waits little past them.
            with self._progress:
                self._progress.wait(min(remaining, WAIT_STEP_SECONDS))

    @property
    def is_following(self) -> bool:
        """True when something keeps these views current: this runner's thread, or a
        projection worker process (`crm serve` starts one and sets `followed_elsewhere`)."""
        thread_alive = self._thread is not None and self._thread.is_alive()
        return self.followed_elsewhere or thread_alive

    def ensure_caught_up(self, position: int, timeout: float) -> bool:
        """Every view at `position` or later: waits for whatever follows the log,
        else catches up in this thread."""
        if self.is_following:
            return self.wait_for(position, timeout)
        self.catch_up()
        return self.min_position() >= position

    def bring_up_to_date(self, timeout: float = 60.0) -> bool:
        """Catches the views up to the log head here, or, when another process is
        already feeding them (a running `crm serve`), waits for it."""
        head = self.app.recorder.max_notification_id() or 0
        try:
            self.catch_up()
        except PositionMoved:
            return self.wait_for(head, timeout)
        return True

    # processing -----------------------------------------------------------

    def catch_up(self) -> int:
        """Processes every event in the log now; returns how many were read."""
        return self._catch_up(self.projections)

    def _catch_up(
        self,
        projections: Sequence[Projection],
        page_size: int | None = None,
        *,
        rebuilding: bool = False,
    ) -> int:
        """Reads and decodes each page of the log once, and feeds it to every
        projection that has not seen it, all in one transaction per page."""
        page_size = page_size or self.batch_size
        with self.db.read() as cur:
            positions = read_positions(cur, [p.name for p in projections])
        wanted = types_read_by(projections)
        read = 0
        with ThreadPoolExecutor(max_workers=1) as reader:
            ahead: Future[Page] | None = None
            ahead_start = 0
            while projections and not self._stop.is_set():
                start = min(positions.values())
                if ahead is None or ahead_start != start:
                    page = self._read_page(start, page_size, wanted)
                else:
                    page = ahead.result()
                if not page.size:
                    break
                full = page.size == page_size
                if full:
                    # The next page is read and decoded while this one is written:
                    # mostly while this thread waits for the database.
                    ahead_start = page.end
                    ahead = reader.submit(self._read_page, page.end, page_size, wanted)
                moved = self._apply(projections, positions, page)
                positions.update(moved)
                read += page.size
                if full:  # catching up a backlog, not following the log
                    self._pages_applied += 1
                    if self._pages_applied & (self._pages_applied - 1) == 0:
                        # pages 1, 2, 4, ...
                        self._refresh_statistics(projections, sampled=rebuilding)
                if not full:
                    break
        return read

    def _refresh_statistics(
        self,
        projections: Sequence[Projection],
        *,
        sampled: bool = False,
        every_table: bool = False,
    ) -> None:
        """ANALYZE the views' tables that grew (PostgreSQL).

        A rebuild or a first catch-up fills tables that were empty when the
        planner last looked; with those statistics it plans a key lookup inside
        a page's statements as a scan of the whole table, and the page gets
        slower with every row (seen at 1,000,000 events: one bulk update of
        customer totals scanned `accounts` tens of thousands of times).
        Refreshing at pages 1, 2, 4, 8, ... keeps the statistics within a factor
        of two of the tables at a cost of a few ANALYZEs per rebuild, and a
        runner that follows the log for a month ANALYZEs about twenty times.

        Only the tables never analyzed, or changed since by at least their own
        size (`STALE_TABLES`), unless `every_table`: a burst of 100,000 mailing
        decisions made the live runner analyze all 40 view tables three times
        while the plan that wrote them was still running (6.1 s of the
        database's CPU), for tables the burst had not touched.

        `sampled` (a rebuild, which ANALYZEs fully once it is done) reads a
        tenth of the default sample: enough for the key lookups of the pages
        in between. At the default it was a ninth of the database's work in a
        1,000,000-event rebuild (8.1 of 69.5 s)."""
        if self.db.backend != "postgresql":
            return
        tables = sorted({t for p in projections for t in p.tables})
        with self.db.transaction() as cur:
            if not every_table:
                rows = cur.execute(STALE_TABLES, (tables, STALE_AFTER_ROWS))
                tables = sorted(row["relname"] for row in rows.fetchall())
                if not tables:
                    return
            if sampled:
                cur.execute("SET LOCAL default_statistics_target = 10")
            cur.execute(f"ANALYZE {', '.join(tables)}")

    def _read_page(
        self, start: int, size: int, wanted: frozenset[str] | None = None
    ) -> Page:
        """The next `size` events after `start`, read a thousand at a time: the
        stored rows take more memory than the records, and only while decoded.
        With `wanted`, only the events of those types are decoded."""
        reader = cast(ReadsLogRows, self.app.recorder)
        app = self.app
        records: list[EventRecord] = []
        read = 0
        end = start
        while read < size:
            limit = min(READ_ROWS, size - read)
            rows = reader.select_log_rows(end, limit)
            if rows:
                end = rows[-1][0]
                read += len(rows)
            if wanted is None:
                records += [decode_row(app, row) for row in rows]
            else:
                records += [
                    decode_row(app, row)
                    for row in rows
                    if type_of_topic(row[3]) in wanted
                ]
            if len(rows) < limit:
                break
        return Page(records, end, read)

    def _apply(
        self,
        projections: Sequence[Projection],
        positions: dict[str, int],
        page: Page,
    ) -> dict[str, int]:
        """Applies the page to each projection that has not seen all of it, and
        moves each to the page's end, in one transaction."""
        moved: dict[str, int] = {}
        pages = [
            (projection, _after(page.records, positions[projection.name]))
            for projection in projections
            if positions[projection.name] < page.end
        ]
        with self.db.transaction(pipeline=True) as cur:
            # Every read of the page first: a read waits for the writes sent before it.
            for projection, unseen in pages:
                if unseen and isinstance(projection, ReadsAhead):
                    projection.read_ahead(cur, unseen)
            moves = []
            for projection, unseen in pages:
                if unseen:
                    projection.apply(cur, unseen)
                moves.append((projection.name, positions[projection.name], page.end))
                moved[projection.name] = page.end
            write_positions(cur, moves)()
        self.positions.update(moved)
        with self._progress:
            self._progress.notify_all()
        log.debug("projection.batch", events=page.size, position=page.end)
        return moved

    def rebuild(self, names: Sequence[str] | None = None) -> int:
        """Empties the named projections (all by default) and replays the whole log."""
        chosen = [p for p in self.projections if names is None or p.name in names]
        with self.db.transaction() as cur:  # one commit for all of them
            empty_tables(cur, [t for p in chosen for t in p.tables])
            for projection in chosen:
                cur.execute(
                    "DELETE FROM projection_positions WHERE name = %s",
                    (projection.name,),
                )
        self._pages_applied = 0  # the emptied tables' statistics are stale again
        applied = self._catch_up(chosen, self.rebuild_batch_size, rebuilding=True)
        if not self._stop.is_set():
            # the rebuilt tables, at full detail
            self._refresh_statistics(chosen, every_table=True)
        log.info(
            "projection.rebuilt", projections=[p.name for p in chosen], events=applied
        )
        return applied

    # following ------------------------------------------------------------

    def start(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(
            target=self.run_forever, name="projections", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def run_forever(self) -> None:
        listener = None
        while not self._stop.is_set():
            try:
                # Listening starts before the log is read, so nothing committed
                # after that read goes unnoticed until the next timeout.
                listener = self._listen(listener)
                read = self.catch_up()
                self.last_error = None
                if read and listener is not None:
                    self._gather()
                self._wait_for_news(listener)
            except (
                DatabaseUnavailable,
                psycopg.OperationalError,
                PositionMoved,
            ) as error:
                self.last_error = str(error)
                log.warning("projection.retry", error=str(error))
                listener = None
                self._stop.wait(1.0)
            except Exception as error:
                self.last_error = repr(error)
                log.exception("projection.failed")
                self._stop.wait(2.0)

    def _listen(self, listener: Any) -> Any:
        if self.listen_conninfo is None or listener is not None:
            return listener
        listener = psycopg.connect(self.listen_conninfo, autocommit=True)
        listener.execute("LISTEN crm_events")
        return listener

    def _gather(self) -> None:
        """After a page that held news, lets the next one fill for `gather_seconds`.

        Each page costs the views a transaction and some twenty statements
        whatever it holds. Woken by every save, they followed a busy log in pages
        of a few events each, and spent more per event than the writer that
        stored them (docs/benchmarks.md, fifteenth pass). Waiting a little makes
        the pages larger under load and adds at most this long to the lag; an
        idle log is still seen at once, since a quiet page reads nothing and
        gathers nothing. (SQLite's poll interval gathers already.)"""
        self._stop.wait(self.gather_seconds)

    def _wait_for_news(self, listener: Any) -> None:
        """Until a save is notified (PostgreSQL) or for the poll interval (SQLite).

        Every notification already received is taken too: the next read of the
        log covers them all, and one left behind would only cause a read that
        finds nothing."""
        if listener is None:
            self._stop.wait(self.poll_seconds)
            return
        for _ in listener.notifies(timeout=1.0, stop_after=1):
            break
        for _ in listener.notifies(timeout=0.0):
            pass
