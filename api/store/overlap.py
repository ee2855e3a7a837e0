"""Bulk ingest with each batch's save overlapping the deciding of the next.

A save spends most of its time waiting for PostgreSQL (lock, insert, commit);
the writer's next batch needs only the aggregates as that save will leave
them, which are known before it starts. So batch N+1 is screened and decided
on copies of batch N's aggregates while N is saved in a writer thread, and
N+1 is saved only after N committed, in log order.

Nothing here weakens the store's guarantees: if N's save fails (another writer
got there first), N+1's decisions are thrown away and both batches go through
`Ingestor.ingest_prepared` again, one after the other, with its retries. A
batch that repeats an event of the batch in flight waits for that save first.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from uuid import UUID

from eventsourcing.domain import Aggregate

from api.store.ingest import (
    Ingestor,
    Outcome,
    Report,
    UnitOfWork,
    _Candidate,
    finish_report,
    mark_stored,
    save_accepted,
)
from api.store.prepare import Invalid, Prepared
from api.store.streams import clone


@dataclass
class _Saving:
    prepared: list[Prepared | Invalid]
    report: Report
    accepted: list[_Candidate]
    after: dict[UUID, Aggregate]  # the changed aggregates as the save leaves them
    event_ids: frozenset[str]
    positions: Future[dict[str, int]]


def _settled(aggregate: Aggregate) -> Aggregate:
    """A copy of `aggregate` as it will be once its pending events are saved."""
    twin = clone(aggregate)
    twin._pending_events = []  # type: ignore[attr-defined]
    return twin


class OverlappedIngest:
    """Non-atomic bulk ingest (`crm ingest` without --strict), in order, overlapped."""

    def __init__(self, ingestor: Ingestor) -> None:
        self.ingestor = ingestor
        self._writer = ThreadPoolExecutor(1, thread_name_prefix="ingest-writer")
        self._saving: _Saving | None = None

    def run(self, batches: Iterable[list[Prepared | Invalid]]) -> Iterator[Report]:
        """Reports, one per batch and in order, each once its batch is committed."""
        try:
            for prepared in batches:
                yield from self._one(prepared)
            if self._saving is not None:
                yield from self._settle()
        finally:
            self._writer.shutdown(wait=True)

    def _one(self, prepared: list[Prepared | Invalid]) -> Iterator[Report]:
        ingestor = self.ingestor
        report = Report(
            [Outcome(i, p.posted_id, "pending") for i, p in enumerate(prepared)]
        )
        candidates = ingestor.screen(prepared, report, atomic=False)
        saving = self._saving
        if saving is not None and not saving.event_ids.isdisjoint(
            c.event.event_id for c in candidates
        ):
            yield from self._settle()  # a repeat of an event being saved right now
            saving = None
        fresh = ingestor._drop_known(candidates, report, atomic=False)
        uow = UnitOfWork(ingestor.app, ingestor.cache)
        if saving is not None:
            for aggregate in saving.after.values():
                uow.add(clone(aggregate))
        uow.preload(ingestor.db, fresh)
        accepted = ingestor.decide(uow, fresh, report, atomic=False)
        changed = uow.changed()
        after = {a.id: _settled(a) for a in changed}
        if saving is not None:
            try:
                saving.positions.result()
            except Exception:
                # The batch in flight lost a race: its decisions and ours are void.
                self._saving = None
                yield ingestor.ingest_prepared(saving.prepared, atomic=False)
                yield ingestor.ingest_prepared(prepared, atomic=False)
                return
            yield self._finished(saving)
        self._saving = _Saving(
            prepared,
            report,
            accepted,
            after,
            frozenset(c.event.event_id for c in candidates),
            self._writer.submit(
                save_accepted, ingestor.app, changed, accepted, ingestor.cache
            )
            if accepted
            else _done({}),
        )

    def _settle(self) -> Iterator[Report]:
        saving, self._saving = self._saving, None
        assert saving is not None
        try:
            saving.positions.result()
        except Exception:
            yield self.ingestor.ingest_prepared(saving.prepared, atomic=False)
            return
        yield self._finished(saving)

    @staticmethod
    def _finished(saving: _Saving) -> Report:
        mark_stored(saving.report, saving.accepted, saving.positions.result())
        return finish_report(saving.report)


def _done(positions: dict[str, int]) -> Future[dict[str, int]]:
    future: Future[dict[str, int]] = Future()
    future.set_result(positions)
    return future
