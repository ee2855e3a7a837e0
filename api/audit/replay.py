"""Point in time: the views as they would have been answered at a past moment.

"As of T" means "as recorded by T": the log up to the last position recorded at or
before T is replayed, with the live projections' own code, into a scratch SQLite
database built by the same migrations; the read functions then run on it unchanged.
Scratch databases are cached per position (a few at a time).
"""

from __future__ import annotations

import importlib
import secrets
import shutil
import tempfile
import threading
from collections import OrderedDict
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from eventsourcing.application import Application

from api.bootstrap import Platform
from api.settings import Settings
from api.store.database import Database, SQLiteDatabase
from api.store.migrate import apply_migrations
from projections.base import Projection
from projections.records import decode
from projections.registry import all_projections
from projections.runner import read_position, write_position

BATCH = 1000
CACHED_SCRATCHES = 4


def utc(moment: datetime) -> datetime:
    if moment.tzinfo is None:
        raise ValueError("a point in time needs a UTC offset")
    return moment.astimezone(UTC)


def _recorded_at(
    app: Application[Any], position: int, high: int
) -> tuple[int, datetime] | None:
    """The first stored event at or after `position` (up to `high`) and when it was recorded."""
    found = app.recorder.select_notifications(position, 1, stop=high)
    if not found:
        return None
    fact: Any = app.mapper.to_domain_event(found[0])
    return found[0].id, fact.timestamp


def last_position_by(
    platform: Platform, moment: datetime, *, inclusive: bool = True
) -> int:
    """The last position recorded at (or, not `inclusive`, before) `moment`; 0 if none.

    A binary search over positions: O(log n) reads, no index needed, since positions
    are handed out in recording order.
    """
    moment = utc(moment)
    app = platform.app
    low, high = 0, int(app.recorder.max_notification_id() or 0)
    while low < high:
        middle = (low + high + 1) // 2
        found = _recorded_at(app, middle, high)
        if found is None:
            high = middle - 1
            continue
        position, recorded = found
        if recorded < moment or (inclusive and recorded == moment):
            low = position
        else:
            high = middle - 1
    return low


def feed(
    app: Application[Any],
    db: Database,
    projections: Sequence[Projection],
    targets: dict[str, int],
) -> None:
    """Applies the log to each projection in `db` up to exactly its target position."""
    with db.transaction() as cur:
        positions = {p.name: read_position(cur, p.name) for p in projections}
    start = min(positions.values(), default=0)
    end = max(targets.values(), default=0)
    while start < end:
        notifications = app.recorder.select_notifications(
            start, BATCH, stop=end, inclusive_of_start=False
        )
        if not notifications:
            break
        records = [decode(app, n) for n in notifications]
        for projection in projections:
            name = projection.name
            mine = [r for r in records if positions[name] < r.position <= targets[name]]
            if not mine:
                continue
            with db.transaction() as cur:
                projection.apply(cur, mine)
                write_position(cur, name, positions[name], mine[-1].position)
            positions[name] = mine[-1].position
        start = records[-1].position


KNOWN_VIEWS = (
    ("projections.customers", "CustomersProjection"),
    ("projections.households", "HouseholdsProjection"),
    ("projections.contact_history", "ContactHistoryProjection"),
)


def default_projections() -> list[Projection]:
    """The registered projections, plus the views the as-of answers read if not yet registered."""
    found: list[Projection] = list(all_projections())
    names = {p.name for p in found}
    for module, class_name in KNOWN_VIEWS:
        try:
            projection = getattr(importlib.import_module(module), class_name)()
        except (ImportError, AttributeError):
            continue
        if projection.name not in names:
            found.append(projection)
            names.add(projection.name)
    return found


def scratch_database(directory: Path) -> SQLiteDatabase:
    """An empty SQLite database with every migration applied."""
    path = directory / "scratch.db"
    apply_migrations(
        Settings(database_url=f"sqlite:///{path}", secret_key=secrets.token_hex(16))
    )
    return SQLiteDatabase(str(path))


class _Scratch:
    def __init__(self, db: SQLiteDatabase, directory: Path) -> None:
        self.db = db
        self.directory = directory

    def discard(self) -> None:
        self.db.close()
        shutil.rmtree(self.directory, ignore_errors=True)


_cache: OrderedDict[tuple[int, int, tuple[str, ...]], _Scratch] = OrderedDict()
_cache_lock = threading.Lock()


def replay_to(
    platform: Platform, position: int, projections: Sequence[Projection] | None = None
) -> Database:
    """A scratch database holding every view as it stood right after `position`."""
    chosen = list(projections) if projections is not None else default_projections()
    key = (id(platform), position, tuple(p.name for p in chosen))
    with _cache_lock:
        if key in _cache:
            _cache.move_to_end(key)
            return _cache[key].db
        directory = Path(tempfile.mkdtemp(prefix="crm-as-of-"))
        scratch = _Scratch(scratch_database(directory), directory)
        feed(platform.app, scratch.db, chosen, {p.name: position for p in chosen})
        _cache[key] = scratch
        while len(_cache) > CACHED_SCRATCHES:
            _cache.popitem(last=False)[1].discard()
        return scratch.db


def view_as_of(
    platform: Platform,
    as_of: datetime,
    projections: Sequence[Projection] | None = None,
) -> tuple[Database, int]:
    """(database of the views as recorded by `as_of`, the log position they reflect)."""
    position = last_position_by(platform, as_of)
    return replay_to(platform, position, projections), position


def clear_cache() -> None:
    with _cache_lock:
        while _cache:
            _cache.popitem()[1].discard()


def views_at(platform: Platform, as_of: datetime | None) -> tuple[Database, int | None]:
    """The live views (`as_of` None) or the views as recorded by `as_of`, with their position."""
    if as_of is None:
        return platform.db, None
    return view_as_of(platform, as_of)


def _public(row: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in row.items() if "hash" not in k and k != "national_id"}


def late_arrivals(
    platform: Platform,
    as_of: datetime,
    position: int,
    customer_ids: frozenset[str] | None,
) -> list[dict[str, Any]]:
    """Events recorded after `as_of` that say they happened before it (about these customers)."""
    from api.audit.export import LogFilter, owned_streams, scan_log

    moment = utc(as_of)
    log_filter = LogFilter(customer_ids=customer_ids)
    if customer_ids is not None:
        log_filter.owned_streams = owned_streams(platform, customer_ids)
    return [
        entry.as_json()
        for entry in scan_log(platform, log_filter, after_position=position)
        if datetime.fromisoformat(entry.record.occurred_at) < moment
    ]


def household_as_of(
    platform: Platform,
    household_id: str,
    as_of: datetime,
    *,
    include_late: bool = False,
    projections: Sequence[Projection] | None = None,
) -> dict[str, Any] | None:
    """The household view as it would have been answered at `as_of`."""
    from projections import households

    db, position = view_as_of(platform, as_of, projections)
    with db.transaction() as cur:
        row = households.get_household(cur, household_id)
        if row is None:
            return None
        answer = _public(dict(row))
        answer["members"] = [
            _public(dict(m)) for m in households.members(cur, household_id)
        ]
        member_ids = frozenset(
            str(m["customer_id"])
            for m in households.membership_history(cur, household_id)
        )
    answer.update(as_of=utc(as_of).isoformat(), position=position)
    if include_late:
        answer["late_events"] = late_arrivals(platform, as_of, position, member_ids)
    return answer


def customer_as_of(
    platform: Platform,
    customer_id: str,
    as_of: datetime,
    *,
    include_late: bool = False,
    projections: Sequence[Projection] | None = None,
) -> dict[str, Any] | None:
    """The customer view as it would have been answered at `as_of`."""
    from projections import customers, households

    db, position = view_as_of(platform, as_of, projections)
    with db.transaction() as cur:
        row = customers.get_customer(cur, customer_id)
        if row is None:
            return None
        answer = _public(dict(row))
        if answer.get("household_id") is None:
            answer["household_id"] = households.household_of(cur, customer_id)
    answer.update(as_of=utc(as_of).isoformat(), position=position)
    if include_late:
        answer["late_events"] = late_arrivals(
            platform, as_of, position, frozenset({customer_id})
        )
    return answer
