"""Group commit: concurrent HTTP posts that arrive together share one `save()`.

Every PostgreSQL save takes the events table lock and waits for its own fsync,
so one save per request caps the platform near a thousand requests a second.
Here one writer thread takes every request waiting in the queue, decides each
one on its own copy of the aggregates (a request stays atomic: all its events
or none), and saves all the accepted ones in one transaction. Each request is
answered only after that commit.

While requests come together (the last group held more than one), a group
waits up to `delay_seconds` after its first request before it is closed, as
PostgreSQL's `commit_delay` does for WAL flushes (`gather`). In an HTTP
process this thread shares the interpreter with the event loop that parses
the posts: taking the next group at once, it took the two or three posts
parsed so far and then contended with the loop for the rest. Larger groups
cost less per post, the server and PostgreSQL both (docs/benchmarks.md,
twenty-fourth pass). A request on a quiet server is not delayed.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

import structlog
from eventsourcing.persistence import IntegrityError

from api.store.ingest import (
    BatchRejected,
    Ingestor,
    Report,
    UnitOfWork,
    _Candidate,
    classify,
    conflict_refusal,
    rejected_by_rule,
    save_accepted,
)
from api.store.recorders import LogMoved
from domain.errors import DomainError
from domain.handling import Decider

log = structlog.get_logger("crm.group_commit")


class OverlayUnitOfWork(UnitOfWork):
    """A request's private view of the group's aggregates: discarded if it fails."""

    def __init__(self, base: UnitOfWork) -> None:
        super().__init__(base.app)
        self.base = base

    def find(self, cls: type[Any], aggregate_id: UUID) -> Any:
        if aggregate_id not in self.loaded:
            found = self.base.find(cls, aggregate_id)
            self.loaded[aggregate_id] = found
            if found is not None:
                self.shared.add(aggregate_id)  # the group's: copied before a change
        return super().find(cls, aggregate_id)

    def merge_into_base(self) -> None:
        owned = {i: a for i, a in self.loaded.items() if i not in self.shared}
        self.base.loaded.update(owned)
        self.base.shared -= owned.keys()
        self.base.pending += self.pending


@dataclass
class _Request:
    raw_events: list[Any]
    future: Future[Report] = field(default_factory=Future)
    report: Report | None = None
    accepted: list[_Candidate] = field(default_factory=list)


class GroupCommitter:
    """`delay_seconds`: while the last group had company, the next one waits this
    long after its first request before it is closed (module doc)."""

    def __init__(
        self,
        ingestor: Ingestor,
        max_group_events: int = 5000,
        delay_seconds: float = 0.0,
    ) -> None:
        self.ingestor = ingestor
        self.max_group_events = max_group_events
        self.delay_seconds = delay_seconds
        self.gather: Callable[[float], object] = time.sleep
        """How a group waits for company, at most `delay_seconds`: a sleep, or in
        an HTTP process until its event loop has handed over the posts it is
        parsing (`api/http/gathering.py`)."""
        self._queue: queue.Queue[_Request | None] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        # Counts for /metrics, written by the group-commit thread alone: their
        # ratio is the mean group, what `delay_seconds` is tuned by.
        self.groups = 0
        self.grouped_requests = 0
        self.waits = 0

    def ingest(self, raw_events: list[Any]) -> Report:
        """Stores an atomic batch together with whatever else is waiting; blocks until committed."""
        return self.submit(raw_events).result()

    def submit(self, raw_events: list[Any]) -> Future[Report]:
        """Queues an atomic batch; the future resolves after its commit (or its rejection)."""
        self._ensure_started()
        request = _Request(raw_events)
        self._queue.put(request)
        return request.future

    def close(self) -> None:
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join(timeout=10)
            self._thread = None

    def _ensure_started(self) -> None:
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="group-commit", daemon=True
                )
                self._thread.start()

    def _run(self) -> None:
        busy = False
        while True:
            first = self._queue.get()
            if first is None:
                return
            if busy and self.delay_seconds:
                self.waits += 1
                self._wait_for_company()
            group = [first]
            size = len(first.raw_events)
            while size < self.max_group_events:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    self._queue.put(None)
                    break
                group.append(item)
                size += len(item.raw_events)
            busy = len(group) > 1
            self.groups += 1
            self.grouped_requests += len(group)
            self._process(group)
            # Let the group's bodies and answers go while waiting for the next.
            first = item = None
            group.clear()

    def _wait_for_company(self) -> None:
        try:
            self.gather(self.delay_seconds)
        except Exception:  # the group goes as it is: never a post left unanswered
            log.exception("group_commit.gather_failed")

    def _process(self, group: list[_Request]) -> None:
        if len(group) == 1:
            self._alone(group[0])
            return
        try:
            self._together(group)
        except IntegrityError as error:
            # A repeat of a stored event, or another process wrote the same
            # aggregates or anything at all since the last save (LogMoved):
            # each request again on its own, looking first.
            if not isinstance(error, LogMoved):
                self.ingestor.met_repeat()
            for request in group:
                if not request.future.done():
                    self._alone(request)
        except (
            BaseException
        ) as error:  # answer every waiting request, whatever happened
            for request in group:
                if not request.future.done():
                    request.future.set_exception(error)

    def _alone(self, request: _Request) -> None:
        """One request on its own, optimistic as a group is (`_together`)."""
        try:
            request.future.set_result(
                self.ingestor.ingest(request.raw_events, atomic=True, optimistic=True)
            )
        except BaseException as error:
            request.future.set_exception(error)

    def _together(self, group: list[_Request]) -> None:
        live = self._validate_all(group)
        # Repeats of stored events are rare until a client retries, so a group
        # does not ask the log for them (a query per group) unless one was met
        # lately: the log's unique event_id refuses a repeat, and the group is
        # then stored request by request, each looking (`_process`).
        known = {}
        if self.ingestor.looks_for_repeats:
            ids = [str(c.event.event_id) for r in live for c in r.accepted]
            known = self.ingestor.stored_hashes(ids)
        seen: dict[str, _Candidate] = {}
        base = UnitOfWork(self.ingestor.app, self.ingestor.cache)
        base.preload(self.ingestor.db, [c for r in live for c in r.accepted])
        decider_key = self.ingestor.national_id_key
        survivors: list[_Request] = []
        for request in live:
            assert request.report is not None
            own: dict[str, _Candidate] = {}
            fresh = [
                c for c in request.accepted if classify(c, request.report, known, own)
            ]
            refusal = conflict_refusal(request.report)
            if refusal is not None:
                request.future.set_exception(refusal)
                continue
            fresh = self._drop_seen_in_group(request, fresh, seen)
            if request.future.done():
                continue
            overlay = OverlayUnitOfWork(base)
            decider = Decider(overlay, decider_key)
            fresh = self._decide(decider, overlay, request, fresh)
            if request.future.done():
                continue
            overlay.merge_into_base()
            seen.update((str(c.event.event_id), c) for c in fresh)
            request.accepted = fresh
            survivors.append(request)
        self._save(base, survivors)

    def _decide(
        self,
        decider: Decider,
        overlay: OverlayUnitOfWork,
        request: _Request,
        fresh: list[_Candidate],
    ) -> list[_Candidate]:
        assert request.report is not None
        decided = []
        for candidate in fresh:
            try:
                overlay.decide(decider, candidate.event)
            except DomainError as error:
                if self.ingestor.stored_meanwhile(candidate, request.report):
                    continue
                request.future.set_exception(
                    conflict_refusal(request.report)
                    or rejected_by_rule(candidate, error)
                )
                return []
            decided.append(candidate)
        return decided

    def _validate_all(self, group: list[_Request]) -> list[_Request]:
        live = []
        for request in group:
            report = Report.for_batch(request.raw_events)
            try:
                request.accepted = self.ingestor.validate(
                    request.raw_events, report, atomic=True
                )
            except BatchRejected as error:
                request.future.set_exception(error)
                continue
            request.report = report
            live.append(request)
        return live

    @staticmethod
    def _drop_seen_in_group(
        request: _Request, fresh: list[_Candidate], seen: dict[str, _Candidate]
    ) -> list[_Candidate]:
        """Two requests of one group carrying the same event (a client retry racing itself).

        `seen` holds only events of earlier requests already accepted in this group."""
        assert request.report is not None
        kept = []
        for candidate in fresh:
            event_id = str(candidate.event.event_id)
            earlier = seen.get(event_id)
            if earlier is None:
                kept.append(candidate)
            elif earlier.content_hash == candidate.content_hash:
                outcome = request.report.outcomes[candidate.index]
                outcome.status, outcome.same_event = "duplicate", earlier
            else:
                message = f"event {event_id} was already posted with different content"
                error = BatchRejected("event_id_conflict", message, [], status=409)
                request.future.set_exception(error)
                return []
        return kept

    def _save(self, base: UnitOfWork, survivors: list[_Request]) -> None:
        accepted = [c for r in survivors for c in r.accepted]
        positions = (
            save_accepted(self.ingestor.app, base, accepted, self.ingestor.cache)
            if accepted
            else {}
        )
        for request in survivors:
            assert request.report is not None
            for candidate in request.accepted:
                outcome = request.report.outcomes[candidate.index]
                outcome.status, outcome.position = (
                    "stored",
                    positions[str(candidate.event.event_id)],
                )
            for outcome in request.report.outcomes:
                if outcome.same_event is not None:
                    outcome.position = positions.get(
                        str(outcome.same_event.event.event_id)
                    )
            request.future.set_result(request.report)
        log.info(
            "ingest.group",
            requests=len(survivors),
            events=len(accepted),
            position=max(positions.values(), default=None),
        )
