"""The log as auditors read it: every event in global order, filtered, streamed page by page.

A JSON Lines export holds the envelopes exactly as posted (event_id, type,
occurred_at, source, actor, data) so `crm ingest` can load it into an empty
platform; events the platform makes itself (mailing decisions) are left out of
such exports unless asked for, since the platform makes them again.
"""

from __future__ import annotations

import csv
import heapq
import io
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import orjson

from api.bootstrap import Platform
from api.store.database import Cursor
from domain.catalogue import PLATFORM_MADE_TYPES
from projections.records import EventRecord, decode

PAGE = 1000
PLATFORM_MADE = PLATFORM_MADE_TYPES
CUSTOMER_FIELDS = ("customer_id", "related_customer_id", "survivor_id", "duplicate_id")
# Events that open a stream owned by the customer they name: later events on that
# stream (balances, reviews, returns...) belong to the customer too.
STREAM_OPENERS = frozenset(
    {"AccountOpened", "OrderPlaced", "ComplaintFiled", "MailingSent", "ContactLogged"}
)
ENVELOPE_FIELDS = ("event_id", "type", "occurred_at", "source", "actor", "data")
CSV_COLUMNS = (
    "position",
    "event_id",
    "type",
    "occurred_at",
    "recorded_at",
    "source",
    "actor",
    "data",
    "chain_hash",
)
# Recording times are out of position order by up to a batch's duration (a batch is
# stored grouped by stream) or between concurrent writers; starting this far before
# `since` and scanning on this far past `until` keeps the time filters exact.
UNTIL_SLACK = timedelta(seconds=5)
REORDER_WINDOW = timedelta(seconds=2)
REORDER_MOST = 20_000
OWNED_STREAMS_SQL = (
    "SELECT account_id AS stream_id FROM account_holders WHERE customer_id IN {ids}",
    "SELECT order_id AS stream_id FROM contact_history_orders WHERE customer_id IN {ids}",
    "SELECT complaint_id AS stream_id FROM contact_history_complaints WHERE customer_id IN {ids}",
    "SELECT mailing_id AS stream_id FROM contact_history_mailings WHERE customer_id IN {ids}",
)


@dataclass
class LogFilter:
    customer_ids: frozenset[str] | None = None  # None: everyone
    types: frozenset[str] | None = None
    since: datetime | None = None  # recorded at or after
    until: datetime | None = None  # recorded before
    include_platform_events: bool = True
    owned_streams: set[str] = field(default_factory=set)

    def matches(self, record: EventRecord) -> bool:
        # First, so the streams a customer opens are tracked even when filtered out.
        if self.customer_ids is not None and not self._concerns_customers(record):
            return False
        if not self.include_platform_events and record.type in PLATFORM_MADE:
            return False
        if self.types is not None and record.type not in self.types:
            return False
        recorded = datetime.fromisoformat(record.recorded_at)
        if self.since is not None and recorded < self.since:
            return False
        return self.until is None or recorded < self.until

    def _concerns_customers(self, record: EventRecord) -> bool:
        assert self.customer_ids is not None
        if (
            record.stream_id in self.customer_ids
            or record.stream_id in self.owned_streams
        ):
            return True
        data = record.data
        named = {str(data[f]) for f in CUSTOMER_FIELDS if data.get(f) is not None}
        named.update(str(h) for h in data.get("joint_holder_ids") or ())
        if named.isdisjoint(self.customer_ids):
            return False
        if record.type in STREAM_OPENERS:
            self.owned_streams.add(record.stream_id)
        return True

    def past_until(self, record: EventRecord) -> bool:
        return (
            self.until is not None
            and datetime.fromisoformat(record.recorded_at) >= self.until + UNTIL_SLACK
        )


def start_after(platform: Platform, log_filter: LogFilter) -> int:
    """Where a scan for `log_filter` may start: found by binary search when `since` is set."""
    from api.audit.replay import last_position_by

    if log_filter.since is None:
        return 0
    return last_position_by(platform, log_filter.since - UNTIL_SLACK, inclusive=False)


def household_customers(cur: Cursor, household_id: str) -> frozenset[str]:
    """Everyone who has ever been a member of the household."""
    rows = cur.execute(
        "SELECT DISTINCT customer_id FROM household_memberships WHERE household_id = %s",
        (household_id,),
    ).fetchall()
    return frozenset(str(r["customer_id"]) for r in rows)


def owned_streams(platform: Platform, customer_ids: frozenset[str]) -> set[str]:
    """Streams the views already attribute to the customers (for scans not starting at 0)."""
    if not customer_ids:
        return set()
    found: set[str] = set()
    with platform.db.transaction() as cur:
        ids, params = platform.db.in_list(sorted(customer_ids))
        for sql in OWNED_STREAMS_SQL:
            found.update(
                str(r["stream_id"])
                for r in cur.execute(sql.format(ids=ids), params).fetchall()
            )
    return found


@dataclass(frozen=True)
class Entry:
    record: EventRecord
    chain_hash: str | None

    def as_json(self) -> dict[str, Any]:
        r = self.record
        return {
            "position": r.position,
            "event_id": r.event_id,
            "type": r.type,
            "occurred_at": r.occurred_at,
            "recorded_at": r.recorded_at,
            "source": r.source,
            "actor": r.actor,
            "data": r.data,
            "stream_id": r.stream_id,
            "stream_version": r.stream_version,
            "chain_hash": self.chain_hash,
        }

    def envelope(self) -> dict[str, Any]:
        r = self.record
        return {
            "event_id": r.event_id,
            "type": r.type,
            "occurred_at": r.occurred_at,
            "source": r.source,
            "actor": r.actor,
            "data": r.data,
        }


def _chain_hashes(platform: Platform, low: int, high: int) -> dict[int, str]:
    with platform.db.transaction() as cur:
        rows = cur.execute(
            "SELECT position, chain_hash FROM crm_event_log WHERE position >= %s AND position <= %s",
            (low, high),
        ).fetchall()
    return {int(r["position"]): bytes(r["chain_hash"]).hex() for r in rows}


@dataclass
class Scan:
    """Where a scan stopped: continue after `position`; `finished` once the log is exhausted."""

    position: int = 0
    finished: bool = False
    scanned: int = 0


def scan_log(
    platform: Platform,
    log_filter: LogFilter,
    *,
    after_position: int = 0,
    page: int = PAGE,
    max_scanned: int | None = None,
    scan: Scan | None = None,
    on_page: Callable[[int], None] | None = None,
) -> Iterator[Entry]:
    """Matching entries after `after_position`, in position order, one page in memory at a time."""
    scan = scan if scan is not None else Scan()
    scan.position = after_position
    recorder: Any = platform.app.recorder
    while max_scanned is None or scan.scanned < max_scanned:
        size = page if max_scanned is None else min(page, max_scanned - scan.scanned)
        notifications = recorder.select_notifications(
            scan.position, size, inclusive_of_start=False
        )
        if not notifications:
            scan.finished = True
            return
        hashes = _chain_hashes(platform, notifications[0].id, notifications[-1].id)
        for notification in notifications:
            record = decode(platform.app, notification)
            scan.position = record.position
            scan.scanned += 1
            if log_filter.past_until(record):
                scan.finished = True
                return
            if log_filter.matches(record):
                yield Entry(record, hashes.get(record.position))
        if on_page is not None:
            on_page(len(notifications))
        if len(notifications) < size:
            scan.finished = True
            return


def recording_order(
    entries: Iterator[Entry],
    window: timedelta = REORDER_WINDOW,
    most: int = REORDER_MOST,
) -> Iterator[Entry]:
    """Entries in the order they were decided (recorded_at), not stored (position).

    A batch is stored grouped by stream, so one customer's relationship can sit at a
    lower position than the other customer's registration; replaying by position would
    then refuse it. Facts are stamped in the order they were decided, so a small
    sliding window sorted by that stamp restores an order the ingest path accepts.
    """
    heap: list[tuple[datetime, int, Entry]] = []
    newest: datetime | None = None
    for entry in entries:
        recorded = datetime.fromisoformat(entry.record.recorded_at)
        newest = recorded if newest is None else max(newest, recorded)
        heapq.heappush(heap, (recorded, entry.record.position, entry))
        while heap and (heap[0][0] < newest - window or len(heap) > most):
            yield heapq.heappop(heap)[2]
    while heap:
        yield heapq.heappop(heap)[2]


def jsonl_lines(entries: Iterator[Entry]) -> Iterator[bytes]:
    for entry in recording_order(entries):
        yield orjson.dumps(entry.envelope()) + b"\n"


def csv_lines(entries: Iterator[Entry]) -> Iterator[str]:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(CSV_COLUMNS)
    for entry in entries:
        row = entry.as_json()
        row["data"] = orjson.dumps(row["data"]).decode()
        writer.writerow([row[c] for c in CSV_COLUMNS])
        yield buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
    if buffer.tell():
        yield buffer.getvalue()
