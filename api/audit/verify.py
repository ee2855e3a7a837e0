"""Recomputes the hash chain from the stored events and compares it with `crm_event_log`.

Streams both tables in position order, a page at a time, so memory stays flat on any
log size. A mismatch is located at its position; after the first one every later
recomputed link differs too, so each later row is also checked against its stored
predecessor, which names every individually altered row.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from api.store.chain import GENESIS, link
from api.store.database import Database

PAGE = 5000
MAX_LISTED = 100

EVENTS_SQL = {
    "postgresql": (
        "SELECT notification_id AS position, originator_id, originator_version, topic, state "
        "FROM crm_events WHERE notification_id > %s AND notification_id <= %s "
        "ORDER BY notification_id LIMIT %s"
    ),
    "sqlite": (
        "SELECT rowid AS position, originator_id, originator_version, topic, state "
        "FROM stored_events WHERE rowid > %s AND rowid <= %s ORDER BY rowid LIMIT %s"
    ),
}
MAX_EVENT_SQL = {
    "postgresql": "SELECT max(notification_id) AS top FROM crm_events",
    "sqlite": "SELECT max(rowid) AS top FROM stored_events",
}
LOG_SQL = (
    "SELECT position, chain_hash FROM crm_event_log "
    "WHERE position > %s AND position <= %s ORDER BY position"
)
MAX_LOG_SQL = "SELECT max(position) AS top FROM crm_event_log"


@dataclass(frozen=True)
class Checkpoint:
    """A head the verifier must reproduce: (position, chain hash) from a signed statement."""

    position: int
    chain_hash: bytes


@dataclass
class Mismatch:
    position: int
    kind: str  # chain_hash | event_without_log_row | log_row_without_event | checkpoint ...
    expected: bytes | None
    found: bytes | None

    def as_json(self) -> dict[str, Any]:
        return {
            "position": self.position,
            "kind": self.kind,
            "expected": _hex(self.expected),
            "found": _hex(self.found),
        }


@dataclass
class VerifyReport:
    checked: int = 0
    head_position: int = 0
    head_hash: bytes = GENESIS
    first_mismatch: Mismatch | None = None
    altered_positions: list[int] = field(default_factory=list)
    checkpoint: dict[str, Any] | None = None

    @property
    def ok(self) -> bool:
        return self.first_mismatch is None

    def as_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "checked": self.checked,
            "head": {"position": self.head_position, "hash": self.head_hash.hex()},
            "first_mismatch": (
                None if self.first_mismatch is None else self.first_mismatch.as_json()
            ),
            "altered_positions": self.altered_positions,
            "checkpoint": self.checkpoint,
        }


def _hex(value: bytes | None) -> str | None:
    return None if value is None else value.hex()


def _link(previous: bytes, position: int, event: dict[str, Any]) -> bytes:
    return link(
        previous,
        position,
        event["originator_id"],
        int(event["originator_version"]),
        event["topic"],
        bytes(event["state"]),
    )


def log_bound(db: Database) -> int:
    """The highest position in either table: what a verification started now covers."""
    with db.transaction() as cur:
        events = cur.execute(MAX_EVENT_SQL[db.backend]).fetchone()
        logged = cur.execute(MAX_LOG_SQL).fetchone()
    return max(int((events or {}).get("top") or 0), int((logged or {}).get("top") or 0))


Row = tuple[int, dict[str, Any] | None, bytes | None]


def _rows(db: Database, bound: int, page: int) -> Iterator[Row]:
    """(position, stored event or None, stored chain hash or None), by position."""
    cursor = 0
    while cursor < bound:
        with db.transaction() as cur:
            events = cur.execute(
                EVENTS_SQL[db.backend], (cursor, bound, page)
            ).fetchall()
            top = int(events[-1]["position"]) if len(events) == page else bound
            logged = {
                int(r["position"]): bytes(r["chain_hash"])
                for r in cur.execute(LOG_SQL, (cursor, top)).fetchall()
            }
        by_position = {int(e["position"]): e for e in events}
        for position in sorted(by_position.keys() | logged.keys()):
            yield position, by_position.get(position), logged.get(position)
        cursor = top


def verify_log(
    db: Database,
    *,
    checkpoint: Checkpoint | None = None,
    page: int = PAGE,
    bound: int | None = None,
    on_progress: Callable[[int], None] | None = None,
) -> VerifyReport:
    """Checks every link from the genesis up to the current head (or `bound`)."""
    bound = log_bound(db) if bound is None else bound
    report = VerifyReport()
    recomputed = GENESIS  # the chain as it should be, from the events alone
    stored_previous = GENESIS  # the stored hash of the previous row
    reached_checkpoint = checkpoint is None
    for position, event, stored in _rows(db, bound, page):
        if event is not None:
            recomputed = _link(recomputed, position, event)
        _compare(report, position, event, stored, recomputed, stored_previous)
        if stored is not None:
            stored_previous = stored
        elif event is not None:
            # An event missing from the index: later rows still link over it.
            stored_previous = _link(stored_previous, position, event)
        report.checked += 1
        report.head_position = position
        report.head_hash = stored if stored is not None else recomputed
        if checkpoint is not None and position == checkpoint.position:
            reached_checkpoint = True
            _check_checkpoint(report, checkpoint, event, recomputed)
        if on_progress is not None and report.checked % page == 0:
            on_progress(page)
    if not reached_checkpoint and checkpoint is not None:
        report.checkpoint = {"position": checkpoint.position, "ok": False}
        _mismatch(
            report,
            Mismatch(
                checkpoint.position,
                "checkpoint_position_missing",
                checkpoint.chain_hash,
                None,
            ),
        )
    if on_progress is not None:
        on_progress(report.checked % page)
    return report


def _compare(
    report: VerifyReport,
    position: int,
    event: dict[str, Any] | None,
    stored: bytes | None,
    recomputed: bytes,
    stored_previous: bytes,
) -> None:
    if event is None:
        _mismatch(report, Mismatch(position, "log_row_without_event", None, stored))
        _altered(report, position)
        return
    if stored is None:
        _mismatch(report, Mismatch(position, "event_without_log_row", recomputed, None))
        _altered(report, position)
        return
    if stored == recomputed:
        return
    _mismatch(report, Mismatch(position, "chain_hash", recomputed, stored))
    # Past the first break, a row is altered only if it no longer extends its stored predecessor.
    if _link(stored_previous, position, event) != stored:
        _altered(report, position)


def _check_checkpoint(
    report: VerifyReport,
    checkpoint: Checkpoint,
    event: dict[str, Any] | None,
    recomputed: bytes,
) -> None:
    ok = event is not None and recomputed == checkpoint.chain_hash
    report.checkpoint = {"position": checkpoint.position, "ok": ok}
    if not ok:
        _mismatch(
            report,
            Mismatch(
                checkpoint.position,
                "checkpoint",
                checkpoint.chain_hash,
                recomputed if event is not None else None,
            ),
            replace=True,
        )


def _mismatch(report: VerifyReport, mismatch: Mismatch, replace: bool = False) -> None:
    # A checkpoint failure wins only when the chain itself looked sound (a rewritten chain).
    if report.first_mismatch is None or (
        replace and report.first_mismatch.position > mismatch.position
    ):
        report.first_mismatch = mismatch


def _altered(report: VerifyReport, position: int) -> None:
    if len(report.altered_positions) < MAX_LISTED:
        report.altered_positions.append(position)
