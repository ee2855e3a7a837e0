"""`crm ingest` deciding in a second process while the first one saves.

A bulk file's writer used to validate, decide and save each batch on one core
while the other core's validation worker idled two thirds of the time
(docs/benchmarks.md, twelfth pass). Here the work is split where it balances:
a worker process applies the rules to the aggregates and maps the facts to
their stored rows, up to three batches ahead of the saves; this process saves
them on a saving thread. Each batch is validated by whichever of the two is
less busy.

The worker decides on the log as this process will have saved it, which holds
only while nothing else writes and every batch is clean. So its answer is
used only when both are true, and checked:

- a batch with a rule violation, or an event repeated within it, comes back as
  `None`: this process stores that batch, and those decided after it, itself
  (`Ingestor.ingest_prepared`, the ordinary path, which also tells repeats of
  stored events from conflicts), then has the worker forget what it holds;
- each save must take the positions right after the previous one's
  (`expect_first`): a save by anyone else in between makes it fail whole
  (`LogMoved`), and that batch goes the ordinary way too;
- a save that fails for any other reason (an event_id the log already holds)
  is rolled back whole, and goes the ordinary way.

After `MAX_IRREGULAR` such batches, or once the worker is gone, the rest of the
file goes the ordinary way."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ProcessPoolExecutor, ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from contextlib import suppress
from typing import Any, NamedTuple
from uuid import UUID

import structlog
from eventsourcing.domain import Aggregate
from eventsourcing.persistence import IntegrityError, StoredEvent

from api.gc_tuning import tune_garbage_collector
from api.settings import Settings
from api.spawning import spawn_context
from api.store.application import CrmApplication, eventsourcing_env
from api.store.ingest import Ingestor, Outcome, Report, UnitOfWork
from api.store.prepare import Invalid, Parse, Prepared, prepare_items
from api.store.recorders import LogMoved, uuid_bytes
from api.store.streams import AggregateCache
from domain.errors import DomainError
from domain.events import Fact
from domain.handling import Decider

try:
    import fcntl
except ImportError:  # Windows has no fcntl: there the pipes keep their size
    fcntl = None  # type: ignore[assignment]

log = structlog.get_logger("crm.ingest")

MAX_IRREGULAR = 3
SAVES_IN_FLIGHT = 2  # on the saving thread, while this one validates


class Rows(NamedTuple):
    """A batch's decided facts as the worker sends them: a list per column, in
    posting order. Plain lists pickle ten times faster than a NamedTuple per
    row (2 ms a batch of 1,000), whose pickling calls back into Python for each."""

    originator_ids: list[bytes]  # each UUID's 16 bytes
    originator_versions: list[int]
    topics: list[str]
    states: list[bytes]
    event_ids: list[str]
    content_hashes: list[bytes]


class DecidedCache(AggregateCache):
    """The worker's aggregates: the log as this run's saves will leave it.

    Every aggregate decided stays (contacts too), so that a later batch finds
    what an earlier one created before that one is saved."""

    def current_at(self, head: int) -> bool:
        return True

    def put_decided(self, aggregates: Iterable[Aggregate]) -> None:
        with self._lock:
            self._keep(aggregates)

    def forget(self) -> None:
        with self._lock:
            self._items = OrderedDict()


# The worker process's own store, set up by `_start_worker`.
_worker: Ingestor | None = None


def _start_worker(settings: Settings, cache_size: int) -> None:
    global _worker
    from api.bootstrap import open_database

    tune_garbage_collector()
    national_id_key = settings.national_id_key
    app = CrmApplication(env=eventsourcing_env(settings))
    _worker = Ingestor(app, open_database(settings), national_id_key, cache_size)
    # Every decided aggregate must stay until it is saved: far more than a few
    # batches ahead could ever touch.
    _worker.cache = DecidedCache(max(cache_size, 20_000))


class Screened(NamedTuple):
    """A valid event as the worker that validated it reports it back."""

    posted_id: str
    event_id: str


Checked = Prepared | Invalid | Screened
"""An item of a batch as the saving side knows it."""


class Decided(NamedTuple):
    rows: Rows | None  # None: the batch is not clean
    checked: list[Checked] | None  # the worker's validation, when it did it


def _decide(prepared: list[Prepared | Invalid]) -> Decided:
    """The stored rows of a clean batch's facts; None for a batch that is not clean."""
    assert _worker is not None
    return Decided(decide_batch(_worker, prepared), None)


def _validate_and_decide(items: list[Any], parse: Parse | None) -> Decided:
    """`_decide` of a batch of a file's items, validated here first."""
    assert _worker is not None
    prepared = prepare_items(items, _worker.national_id_key, parse)
    checked: list[Checked] = [
        Screened(p.posted_id, p.event_id) if isinstance(p, Prepared) else p
        for p in prepared
    ]
    return Decided(decide_batch(_worker, prepared), checked)


def _forget() -> None:
    assert _worker is not None and isinstance(_worker.cache, DecidedCache)
    _worker.cache.forget()


class InPlaceUnitOfWork(UnitOfWork):
    """The worker's unit of work: facts change the cached aggregates themselves.

    An ordinary unit copies a cached aggregate before its first change, so that
    a batch that fails leaves the cache as it was. The worker needs no such
    copy: after a batch that fails, the saving side discards every decision
    the worker made from then on and has it forget its aggregates
    (`AheadPipeline._go_ordinary_way`). The copies were a tenth of the
    worker's time, and the worker is the busier of `crm ingest`'s processes."""

    def _own(self, aggregate: Aggregate) -> Aggregate:
        return self.loaded.get(aggregate.id) or aggregate


def decide_batch(ingestor: Ingestor, prepared: list[Prepared | Invalid]) -> Rows | None:
    """Applies a batch's valid events to `ingestor`'s aggregates and maps their
    facts to stored rows, in posting order; None if an event breaks a rule or
    comes twice. After a None the cache may hold part of that batch: it must be
    forgotten (`_forget`) before the worker's next decision is used."""
    cache = ingestor.cache
    assert isinstance(cache, DecidedCache)
    report = Report(
        [Outcome(i, p.posted_id, "pending") for i, p in enumerate(prepared)]
    )
    candidates = ingestor.screen(prepared, report, atomic=False)
    if len({c.event.event_id for c in candidates}) != len(candidates):
        return None
    uow = InPlaceUnitOfWork(ingestor.app, cache)
    uow.preload(ingestor.db, candidates)
    decider = Decider(uow, ingestor.national_id_key, Fact.create_timestamp())
    try:
        for candidate in candidates:
            uow.decide(decider, candidate.event)
    except DomainError:
        return None
    hashes = {c.event.event_id: c.content_hash for c in candidates}
    order = {c.event.event_id: i for i, c in enumerate(candidates)}
    aggregates = uow.changed()
    facts = ingestor.app.stored_facts(aggregates, uow.pending, order)
    cache.put_decided(aggregates)
    cache.put_read(uow.unchanged(aggregates))
    return Rows(
        [uuid_bytes(s.originator_id) for _, s in facts],
        [s.originator_version for _, s in facts],
        [s.topic for _, s in facts],
        [s.state for _, s in facts],
        [e for e, _ in facts],
        [hashes[e] for e, _ in facts],
    )


class DecidingWorker:
    """The worker process, and the order of what it was asked."""

    def __init__(self, settings: Settings) -> None:
        self._pool = ProcessPoolExecutor(
            1,
            mp_context=spawn_context(),
            initializer=_start_worker,
            initargs=(settings, settings.aggregate_cache_size),
        )
        widen_pipes(self._pool)

    def decide(self, prepared: list[Prepared | Invalid]) -> Future[Decided]:
        return self._pool.submit(_decide, prepared)

    def validate_and_decide(
        self, items: list[Any], parse: Parse | None
    ) -> Future[Decided]:
        return self._pool.submit(_validate_and_decide, items, parse)

    def forget(self) -> None:
        """Drops the worker's aggregates (after batches saved the ordinary way):
        batches asked after this are decided on the log as it is."""
        self._pool.submit(_forget)

    def close(self) -> None:
        self._pool.shutdown(cancel_futures=True)


PIPE_BYTES = 1 << 20
"""Room for a whole batch each way (decided rows: about 460 KB a batch of
1,000); Linux's default cap for a pipe that an unprivileged process may ask."""


def widen_pipes(pool: ProcessPoolExecutor) -> None:
    """Gives the pipes to and from the worker `PIPE_BYTES` (64 KB by default).

    Through a 64 KB pipe, a batch crossed in chunks, each waiting for the
    thread at this end to take the GIL from the validating and saving threads
    (up to a switch interval, 5 ms, each time): the worker spent 14 % of its
    time sending, and while it waited this process waited for it. The pipes
    are private attributes of the executor, read defensively: without them (or
    where a pipe cannot grow) they keep their size."""
    set_size = getattr(fcntl, "F_SETPIPE_SZ", None) if fcntl is not None else None
    if set_size is None:
        return
    for queue in (
        getattr(pool, "_call_queue", None),
        getattr(pool, "_result_queue", None),
    ):
        reader = getattr(queue, "_reader", None)
        if reader is None:
            continue
        with suppress(OSError, ValueError):
            fcntl.fcntl(reader.fileno(), set_size, PIPE_BYTES)


def save_decided(
    ingestor: Ingestor,
    checked: list[Checked],
    rows: Rows,
    expect_first: int,
) -> Report:
    """Saves a batch the worker decided, as one transaction that must start at
    position `expect_first`; reports it as `ingest_prepared` would."""
    stored = [
        StoredEvent(UUID(bytes=oid), version, topic, state)
        for oid, version, topic, state in zip(
            rows.originator_ids,
            rows.originator_versions,
            rows.topics,
            rows.states,
            strict=True,
        )
    ]
    event_log = {
        (s.originator_id, s.originator_version): (event_id, content_hash)
        for s, event_id, content_hash in zip(
            stored, rows.event_ids, rows.content_hashes, strict=True
        )
    }
    positions = (
        ingestor.app.recorder.insert_events(
            stored, event_log=event_log, expect_first=expect_first
        )
        if stored
        else []
    )
    assert positions is not None
    at = dict(zip(rows.event_ids, positions, strict=True))
    report = Report()
    for index, item in enumerate(checked):
        if isinstance(item, Invalid):
            report.outcomes.append(
                Outcome(index, item.posted_id, "rejected", error=item.error())
            )
        else:
            report.outcomes.append(
                Outcome(index, item.posted_id, "stored", at[item.event_id])
            )
    return report


class Batch(NamedTuple):
    items: list[Any]  # as read from the file
    prepared: list[Prepared | Invalid] | None  # None: the worker validates them
    decided: Future[Decided]
    lines: list[int]  # each item's line number


class Saving(NamedTuple):
    batch: Batch
    report: Future[Report]
    lines: list[int]  # of the items reported (unreadable ones left out)


class NotAttempted(Exception):
    """A save after one that failed: not tried, since it builds on the failed one."""


class OrderedSaver:
    """Saves decided batches one after another on a thread of their own, so
    that this process validates the next batch while PostgreSQL takes the
    last one. A save that fails stops every save queued after it (they were
    decided on top of it) until `resume`."""

    def __init__(self, ingestor: Ingestor) -> None:
        self.ingestor = ingestor
        self._thread = ThreadPoolExecutor(1, thread_name_prefix="ingest-saver")
        self._failed = False

    def submit(
        self, checked: list[Checked], rows: Rows, expect_first: int
    ) -> Future[Report]:
        return self._thread.submit(self._save, checked, rows, expect_first)

    def _save(self, checked: list[Checked], rows: Rows, expect_first: int) -> Report:
        if self._failed:
            raise NotAttempted
        try:
            return save_decided(self.ingestor, checked, rows, expect_first)
        except BaseException:
            self._failed = True
            raise

    def resume(self) -> None:
        """After the failed saves' batches were stored the ordinary way (every
        queued save has ended by then)."""
        self._failed = False

    def close(self) -> None:
        self._thread.shutdown(wait=True, cancel_futures=True)


class FileBatches(NamedTuple):
    """What the pipeline needs of the file being ingested."""

    parse: Parse | None  # item -> envelope (see api.store.prepare)
    done: Callable[[Report, list[int]], None]  # a batch stored: its report, lines
    unreadable: Callable[[int, str], None]  # a line that never became an event


class AheadPipeline:
    """Batches on their way: validated (here or by the worker, whichever is
    less busy), decided by the worker, saved here on the saving thread.

    `file.done(report, lines)` is called for each batch in order, once stored."""

    def __init__(self, ingestor: Ingestor, file: FileBatches, depth: int = 3) -> None:
        self.ingestor = ingestor
        # None until `use`: batches go the ordinary way.
        self.worker: DecidingWorker | None = None
        self.saver = OrderedSaver(ingestor)
        self.file = file
        self.depth = depth
        self.deciding: list[Batch] = []
        self.saving: list[Saving] = []
        self.irregular = 0
        self.saved_ahead = False
        # Whether the worker validates the next batch: it does when its last
        # decision was ready before this process asked for it.
        self.worker_validates = False
        self.expect_first = 0

    def use(self, worker: DecidingWorker) -> None:
        """Batches submitted from now on are decided by `worker`."""
        self.worker = worker
        self.expect_first = self._next_position()

    def _next_position(self) -> int:
        return (self.ingestor.app.recorder.max_notification_id() or 0) + 1

    def submit(self, items: list[Any], lines: list[int]) -> None:
        if self.worker is None:
            self._ordinary(Batch(items, None, Future(), lines))
            return
        try:
            if self.worker_validates:
                decided = self.worker.validate_and_decide(items, self.file.parse)
                self.deciding.append(Batch(items, None, decided, lines))
            else:
                prepared = self._prepare(items)
                decided = self.worker.decide(prepared)
                self.deciding.append(Batch(items, prepared, decided, lines))
        except BrokenProcessPool:
            lost: Future[Decided] = Future()
            lost.set_exception(BrokenProcessPool("the deciding worker is gone"))
            self.deciding.append(Batch(items, None, lost, lines))
        while len(self.deciding) > self.depth:
            self._save_oldest()
        while len(self.saving) > SAVES_IN_FLIGHT:
            self._report_oldest()

    def finish(self) -> None:
        while self.deciding:
            self._save_oldest()
        while self.saving:
            self._report_oldest()

    def close(self) -> None:
        self.saver.close()

    def _prepare(self, items: list[Any]) -> list[Prepared | Invalid]:
        return prepare_items(items, self.ingestor.national_id_key, self.file.parse)

    def _save_oldest(self) -> None:
        batch = self.deciding[0]
        self.worker_validates = batch.decided.done()
        try:
            rows, checked = batch.decided.result()
        except BrokenProcessPool:
            # The worker died (killed, out of memory): this process does the rest.
            log.warning("ingest.ahead_worker_lost")
            self.irregular = MAX_IRREGULAR
            rows, checked = None, None
        if rows is None:
            while self.saving:  # the batches before it come first
                self._report_oldest()
            if self.deciding and self.deciding[0] is batch:
                self._go_ordinary_way(self.deciding.pop(0))
            return
        self.deciding.pop(0)
        if checked is None:
            assert batch.prepared is not None
            checked = list(batch.prepared)
        kept, lines = self._readable(checked, batch.lines)
        report = self.saver.submit(kept, rows, self.expect_first)
        self.saving.append(Saving(batch, report, lines))
        # Positions are taken in order, one per row, so the next save's first
        # is known now; a save in between by anyone else is refused (LogMoved).
        self.expect_first += len(rows.event_ids)

    def _readable(
        self, checked: list[Checked], lines: list[int], report: bool = True
    ) -> tuple[list[Checked], list[int]]:
        """The items that became events, and their lines; the others are
        reported (once: not when `report` is False)."""
        kept: list[Checked] = []
        kept_lines: list[int] = []
        for item, line in zip(checked, lines, strict=True):
            if isinstance(item, Invalid) and not item.parsed:
                if report:
                    self.file.unreadable(line, item.problems[0][1])
                continue
            kept.append(item)
            kept_lines.append(line)
        return kept, kept_lines

    def _report_oldest(self) -> None:
        saving = self.saving.pop(0)
        try:
            report = saving.report.result()
        except (LogMoved, IntegrityError, NotAttempted) as error:
            log.info("ingest.ahead_save_refused", error=repr(error))
            self._go_ordinary_way(saving.batch, reported=True)
            return
        self.saved_ahead = True
        self.file.done(report, saving.lines)

    def _go_ordinary_way(self, first: Batch, reported: bool = False) -> None:
        """Stores `first` and every batch after it the ordinary way (the saves
        after it were not attempted); the worker then starts again from the log
        as saved. `reported`: `first`'s unreadable lines were reported."""
        self.irregular += 1
        self._ordinary(first, reported)
        for saving in self.saving:
            if saving.report.exception() is None:
                raise AssertionError("a save after a failed one was attempted")
            self._ordinary(saving.batch, reported=True)
        for batch in self.deciding:
            self._ordinary(batch)
        self.saving, self.deciding = [], []
        self.saver.resume()
        if self.irregular >= MAX_IRREGULAR or self.worker is None:
            log.info("ingest.ahead_stopped", irregular=self.irregular)
            self.worker = None
            return
        self.worker.forget()
        self.expect_first = self._next_position()

    def _ordinary(self, batch: Batch, reported: bool = False) -> None:
        prepared = batch.prepared
        if prepared is None:
            prepared = self._prepare(batch.items)
        kept, lines = self._readable(list(prepared), batch.lines, not reported)
        if self.saved_ahead:
            # This process's cache never saw the worker's saves: it starts again.
            cache = self.ingestor.cache
            self.ingestor.cache = AggregateCache(cache.maxsize, cache.uncached)
            self.saved_ahead = False
        report = self.ingestor.ingest_prepared(
            kept,  # type: ignore[arg-type]  # Screened never reaches here
            atomic=False,
            optimistic=True,
        )
        self.file.done(report, lines)
