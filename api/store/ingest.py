"""The one write path: validate, deduplicate by event_id, apply the rules, save atomically.

HTTP posts, `crm ingest` and `crm demo` all come through `Ingestor.ingest`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

import structlog
from eventsourcing.application import AggregateNotFoundError
from eventsourcing.domain import Aggregate
from eventsourcing.persistence import IntegrityError

from api.store.application import CrmApplication
from api.store.database import Database
from api.store.pending import PendingFact, pending_fact
from api.store.prepare import Invalid, Prepared, prepare_batch
from api.store.recorders import LogMoved
from api.store.streams import AggregateCache, clone, load_aggregates
from domain.catalogue import FieldProblem
from domain.errors import Conflict, DomainError, RuleViolated
from domain.events import Fact
from domain.handling import Decider, entity_id, trigger
from domain.outreach import Contact

log = structlog.get_logger("crm.ingest")

MAX_SAVE_ATTEMPTS = 5

REPEATS_REMEMBERED_SECONDS = 60.0
"""How long after meeting a repeated event optimistic saves ask the log first."""


@dataclass
class Outcome:
    index: int
    event_id: str | None
    status: str  # stored | duplicate | rejected
    position: int | None = None
    error: DomainError | None = None
    same_as: int | None = None  # index of the earlier copy of this event in the batch
    same_event: Any = None  # the earlier copy in another request of a group commit


@dataclass
class Problem:
    index: int
    event_id: str | None
    field: str
    message: str
    code: str


class BatchRejected(Exception):
    """An atomic batch had a bad event: nothing was stored."""

    def __init__(
        self, code: str, message: str, problems: list[Problem], status: int = 422
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.problems = problems
        self.status = status


@dataclass
class Report:
    outcomes: list[Outcome] = field(default_factory=list)

    @classmethod
    def for_batch(cls, raw_events: list[Any]) -> Report:
        return cls(
            [
                Outcome(i, _raw_event_id(raw), "pending")
                for i, raw in enumerate(raw_events)
            ]
        )

    @property
    def position(self) -> int | None:
        positions = [o.position for o in self.outcomes if o.position is not None]
        return max(positions) if positions else None

    def count(self, status: str) -> int:
        return sum(1 for o in self.outcomes if o.status == status)


@dataclass
class _Candidate:
    index: int
    event: Prepared

    @property
    def content_hash(self) -> bytes:
        return self.event.content_hash

    @property
    def data(self) -> dict[str, Any]:
        return self.event.data


class UnitOfWork:
    """Aggregates touched by one batch, loaded once from the repository, and the
    facts recorded on them."""

    def __init__(
        self, app: CrmApplication, cache: AggregateCache | None = None
    ) -> None:
        self.app = app
        self.cache = cache
        self.loaded: dict[UUID, Aggregate | None] = {}
        # Loaded aggregates that are not this unit's own (the cache's, or another
        # unit's): copied when a fact first changes one, so that a batch that
        # fails leaves them as they were, and one that only reads copies nothing.
        self.shared: set[UUID] = set()
        self.pending: list[PendingFact] = []
        self.deciding: Prepared | None = None

    def find(self, cls: type[Any], aggregate_id: UUID) -> Any:
        if aggregate_id not in self.loaded:
            try:
                self.loaded[aggregate_id] = self.app.repository.get(aggregate_id)
            except AggregateNotFoundError:
                self.loaded[aggregate_id] = None
        found = self.loaded[aggregate_id]
        if found is not None and not isinstance(found, cls):
            raise RuleViolated(
                f"{aggregate_id} is already the id of a {type(found).__name__.lower()}",
                code="id_in_use",
            )
        return found

    def add(self, aggregate: Aggregate) -> None:
        self.loaded[aggregate.id] = aggregate

    def record(
        self, aggregate: Aggregate, fact: type[Fact], fields: dict[str, Any]
    ) -> None:
        aggregate = self._own(aggregate)
        pending = pending_fact(aggregate, fact, fields, self._body_of(fields))
        if pending is None:
            trigger(aggregate, fact, fields)
        else:
            self.pending.append(pending)

    def _own(self, aggregate: Aggregate) -> Aggregate:
        """This unit's own copy of `aggregate`, to record a fact on."""
        if aggregate.id in self.shared:
            self.shared.discard(aggregate.id)
            self.loaded[aggregate.id] = clone(aggregate)
        return self.loaded.get(aggregate.id) or aggregate

    def decide(self, decider: Decider, event: Prepared) -> None:
        """`decider` applies `event`, whose facts are recorded here."""
        self.deciding = event
        try:
            decider.apply(event.type, event.data, event.fields)
        finally:
            self.deciding = None

    def _body_of(self, fields: dict[str, Any]) -> bytes | None:
        """The JSON of `fields` (the timestamp aside) if they are exactly the
        fields of the event being decided, as the handlers pass them on."""
        event = self.deciding
        if (
            event is None
            or fields.get("data") is not event.data
            or len(fields) != len(event.fields) + ("timestamp" in fields)
        ):
            return None
        return event.body

    def preload(self, db: Database, candidates: list[_Candidate]) -> None:
        """Loads, in one query, every aggregate the candidates name."""
        ids = {
            entity_id(i) for c in candidates for i in c.event.refs
        } - self.loaded.keys()
        found, kept = load_aggregates(self.app, db, ids, self.cache)
        for aggregate_id in ids:
            self.loaded[aggregate_id] = found.get(aggregate_id)
        self.shared |= kept

    def unchanged(self, changed: list[Aggregate]) -> list[Aggregate]:
        """The aggregates loaded and only read (not among `changed`)."""
        ids = {a.id for a in changed}
        return [a for a in self.loaded.values() if a is not None and a.id not in ids]

    def changed(self) -> list[Aggregate]:
        """The aggregates with facts to save (pending ones included)."""
        touched = {p.originator_id for p in self.pending}
        return [
            a
            for a in self.loaded.values()
            if a is not None and (a.pending_events or a.id in touched)
        ]


class Ingestor:
    def __init__(
        self,
        app: CrmApplication,
        db: Database,
        national_id_key: bytes,
        cache_size: int = 100_000,
    ) -> None:
        self.app = app
        self.db = db
        self.national_id_key = national_id_key
        # A contact takes no fact after the one that logs it, and contacts are
        # the most numerous aggregates: keeping them would only cost memory.
        self.cache = AggregateCache(cache_size, uncached=(Contact,))
        self._repeat_met_at: float | None = None

    def met_repeat(self) -> None:
        """A repeat of a stored event was met (or another writer's save):
        optimistic saves ask the log first for a while (`looks_for_repeats`)."""
        self._repeat_met_at = time.monotonic()

    @property
    def looks_for_repeats(self) -> bool:
        """Whether an optimistic save asks the log which of its event ids it
        holds: only within `REPEATS_REMEMBERED_SECONDS` of meeting a repeat.
        Repeats come in runs (a client's retries, a file fed twice) and are
        rare otherwise; a repeat not looked for is refused by the log's unique
        event_id, and the save is done again, looking."""
        met = self._repeat_met_at
        return met is not None and time.monotonic() - met < REPEATS_REMEMBERED_SECONDS

    def ingest(
        self, raw_events: list[Any], *, atomic: bool, optimistic: bool = False
    ) -> Report:
        """Stores what is new; in an atomic batch any problem rejects all of it.
        `optimistic`: as `ingest_prepared` takes it."""
        return self.ingest_prepared(
            prepare_batch(raw_events, self.national_id_key),
            atomic=atomic,
            optimistic=optimistic,
        )

    def ingest_prepared(
        self,
        prepared: list[Prepared | Invalid],
        *,
        atomic: bool,
        optimistic: bool = False,
    ) -> Report:
        """`ingest` of events validated beforehand (possibly in another process).

        `optimistic` (bulk files and group commits, where repeats are rare):
        unless this ingestor met a repeated event lately (`looks_for_repeats`),
        the log is not asked which event ids it holds before a save; its unique
        event_id index refuses a repeat, and the save is done again after
        looking (so a repeat still reports as a duplicate).
        """
        report = Report(
            [Outcome(i, p.posted_id, "pending") for i, p in enumerate(prepared)]
        )
        candidates = self.screen(prepared, report, atomic)
        for attempt in range(1, MAX_SAVE_ATTEMPTS + 1):
            look = not optimistic or self.looks_for_repeats or attempt > 1
            fresh = self._drop_known(candidates, report, atomic, look)
            try:
                self._decide_and_save(fresh, report, atomic)
                break
            except IntegrityError as error:
                # Another writer stored one of these events or aggregates first,
                # or saved anything since this one's last save (LogMoved), or
                # (optimistic) the log holds one already: look again.
                if optimistic and not isinstance(error, LogMoved):
                    self.met_repeat()
                if attempt == MAX_SAVE_ATTEMPTS:
                    raise
                log.info("ingest.retry", attempt=attempt)
        for outcome in report.outcomes:
            if outcome.same_as is not None:
                first = report.outcomes[outcome.same_as]
                outcome.position = first.position
                if first.status == "rejected":
                    outcome.status, outcome.error = "rejected", first.error
        log.info(
            "ingest.batch",
            events=len(prepared),
            stored=report.count("stored"),
            duplicates=report.count("duplicate"),
            rejected=report.count("rejected"),
            position=report.position,
        )
        return report

    def validate(
        self, raw_events: list[Any], report: Report, atomic: bool
    ) -> list[_Candidate]:
        return self.screen(
            prepare_batch(raw_events, self.national_id_key), report, atomic
        )

    def screen(
        self, prepared: list[Prepared | Invalid], report: Report, atomic: bool
    ) -> list[_Candidate]:
        """Candidates for the valid events; the invalid ones are marked rejected."""
        candidates: list[_Candidate] = []
        problems: list[Problem] = []
        for index, item in enumerate(prepared):
            if isinstance(item, Prepared):
                candidates.append(_Candidate(index, item))
                continue
            error = item.error()
            report.outcomes[index].status = "rejected"
            report.outcomes[index].error = error
            problems += [
                _problem(index, error.event_id, p, error.code) for p in error.problems
            ]
        if atomic and problems:
            raise BatchRejected("invalid_event", problems[0].message, problems)
        return candidates

    def _drop_known(
        self, candidates: list[_Candidate], report: Report, atomic: bool, look: bool
    ) -> list[_Candidate]:
        """Marks duplicates (same id, same content) and conflicts (same id, other
        content); `look`: asks the log (otherwise only the batch itself is seen)."""
        event_ids = [str(c.event.event_id) for c in candidates]
        known = self.stored_hashes(event_ids) if look else {}
        seen: dict[str, _Candidate] = {}
        fresh = [c for c in candidates if classify(c, report, known, seen)]
        refusal = conflict_refusal(report)
        if atomic and refusal is not None:
            raise refusal
        return fresh

    def stored_hashes(self, event_ids: list[str]) -> dict[str, tuple[bytes, int]]:
        """The content hash and position of each of `event_ids` that the log
        holds. Finding any is meeting a repeat (`met_repeat`): while they keep
        coming, saves keep looking first."""
        known: dict[str, tuple[bytes, int]] = {}
        with self.db.read() as cur:
            for start in range(0, len(event_ids), 1000):
                chunk = event_ids[start : start + 1000]
                if self.db.backend == "postgresql":
                    sql = "SELECT event_id, content_hash, position FROM crm_event_log WHERE event_id = ANY(%s::uuid[])"
                    params: list[Any] = [chunk]
                else:
                    placeholders, params = self.db.in_list(chunk)
                    sql = f"SELECT event_id, content_hash, position FROM crm_event_log WHERE event_id IN {placeholders}"
                for row in cur.execute(sql, params).fetchall():
                    known[str(row["event_id"])] = (
                        bytes(row["content_hash"]),
                        row["position"],
                    )
        if known:
            self.met_repeat()
        return known

    def stored_meanwhile(self, candidate: _Candidate, report: Report) -> bool:
        """An event that breaks a rule (e.g. "already exists") may be stored already,
        by a concurrent writer since we looked, or before a save that did not
        look: True if this very event is, and its outcome is then a duplicate.
        If the log holds its id with other content, its outcome becomes that
        conflict (False), as if looked up before."""
        event_id = str(candidate.event.event_id)
        known = self.stored_hashes([event_id]).get(event_id)
        if known is None:
            return False
        outcome = report.outcomes[candidate.index]
        if known[0] != candidate.content_hash:
            outcome.status, outcome.error = "rejected", _conflict(event_id)
            return False
        outcome.status, outcome.position = "duplicate", known[1]
        return True

    def _decide_and_save(
        self, fresh: list[_Candidate], report: Report, atomic: bool
    ) -> None:
        uow = UnitOfWork(self.app, self.cache)
        uow.preload(self.db, fresh)
        decider = Decider(uow, self.national_id_key, Fact.create_timestamp())
        accepted: list[_Candidate] = []
        for candidate in fresh:
            try:
                uow.decide(decider, candidate.event)
            except DomainError as error:
                if self.stored_meanwhile(candidate, report):
                    continue
                outcome = report.outcomes[candidate.index]
                if atomic:
                    raise (
                        conflict_refusal(report) or rejected_by_rule(candidate, error)
                    ) from None
                if not isinstance(outcome.error, Conflict):
                    outcome.status, outcome.error = "rejected", error
                continue
            accepted.append(candidate)
        if not accepted:
            return
        positions = save_accepted(self.app, uow, accepted, self.cache)
        for candidate in accepted:
            outcome = report.outcomes[candidate.index]
            outcome.status = "stored"
            outcome.position = positions[str(candidate.event.event_id)]


def save_accepted(
    app: CrmApplication,
    uow: UnitOfWork,
    accepted: list[_Candidate],
    cache: AggregateCache,
) -> dict[str, int]:
    """One save (one transaction) of every fact of `uow`; returns event_id -> position."""
    hashes = {str(c.event.event_id): c.content_hash for c in accepted}
    aggregates = uow.changed()
    event_log = {
        (e.originator_id, e.originator_version): (e.event_id, hashes[e.event_id])  # type: ignore[attr-defined]
        for a in aggregates
        for e in a.pending_events
    }
    event_log.update(
        ((p.originator_id, p.originator_version), (p.event_id, hashes[p.event_id]))
        for p in uow.pending
    )
    order = {str(c.event.event_id): i for i, c in enumerate(accepted)}
    try:
        positions = app.save_aggregates(
            aggregates,
            uow.pending,
            order,
            event_log=event_log,
            expect_first=cache.expected_first(),
        )
    except Exception:
        cache.saw_failed_save()
        raise
    cache.put_saved(aggregates, positions.values())
    # Read, not changed, and current as of the save: the next batch naming them
    # (a customer's next contact) confirms a version instead of replaying them.
    cache.put_read(uow.unchanged(aggregates))
    return positions


def rejected_by_rule(candidate: _Candidate, error: DomainError) -> BatchRejected:
    problem = _problem(
        candidate.index,
        str(candidate.event.event_id),
        FieldProblem(field=error.field, message=error.message),
        error.code,
    )
    return BatchRejected(error.code, error.message, [problem])


def conflict_refusal(report: Report) -> BatchRejected | None:
    """The refusal (409) of an atomic batch whose event ids clash with stored ones."""
    conflicts = conflicts_of(report)
    if not conflicts:
        return None
    return BatchRejected(Conflict.code, conflicts[0].message, conflicts, status=409)


def _conflict(event_id: str) -> Conflict:
    return Conflict(
        f"event {event_id} was already posted with different content", field="event_id"
    )


def classify(
    candidate: _Candidate,
    report: Report,
    known: dict[str, tuple[bytes, int]],
    seen: dict[str, _Candidate],
) -> bool:
    """True for an event to store; otherwise marks it duplicate or conflicting.

    `known` holds what the log already has; `seen` what came earlier in this batch."""
    outcome = report.outcomes[candidate.index]
    event_id = str(candidate.event.event_id)
    if event_id in known:
        stored_hash, position = known[event_id]
        if stored_hash == candidate.content_hash:
            outcome.status, outcome.position = "duplicate", position
            return False
    elif event_id in seen:
        if seen[event_id].content_hash == candidate.content_hash:
            outcome.status, outcome.same_as = "duplicate", seen[event_id].index
            return False
    else:
        seen[event_id] = candidate
        return True
    outcome.status, outcome.error = "rejected", _conflict(event_id)
    return False


def conflicts_of(report: Report) -> list[Problem]:
    return [
        Problem(o.index, o.event_id, "event_id", o.error.message, o.error.code)
        for o in report.outcomes
        if isinstance(o.error, Conflict)
    ]


def _raw_event_id(raw: Any) -> str | None:
    value = raw.get("event_id") if isinstance(raw, dict) else None
    return value if isinstance(value, str) else None


def _problem(
    index: int, event_id: str | None, problem: FieldProblem, code: str
) -> Problem:
    return Problem(index, event_id, problem.field, problem.message, code)
