"""A plan's decisions as stored events, built and saved in bulk.

Each decision is the first (and only) fact of its aggregate: a
`MailingScheduled` on the household's slot or a `MailingSuppressed` on the
customer's decision. Creating those aggregates and mapping their events one at a
time cost more than the rest of a plan, so the stored events are written here
directly: the bytes the library's mapper writes for `Aggregate._create(...)`
(tests compare them), saved through the application's recorder with their
`crm_event_log` rows, as every other save.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor, wait
from datetime import UTC, datetime
from types import TracebackType
from typing import Any
from uuid import UUID

import orjson
from eventsourcing.domain import Aggregate
from eventsourcing.persistence import ApplicationRecorder, Mapper, StoredEvent
from eventsourcing.utils import get_topic

from api.store.json_bytes import kept
from domain import mailing as m
from domain.events import TYPE_BY_TOPIC, FirstFact

SOURCE = "crm-platform:mailing-planner"

# Bytes of stored state per save. Fewer, larger saves mean fewer table locks and
# commits; smaller ones keep other writers waiting on the lock for less time.
# This is what the planner's 2,000-piece saves always sent (the recorder's
# earlier pipelined insert could hang on a few MB; its COPY has no such limit).
SAVE_BYTES = 2 * 1024 * 1024

AHEAD = 3  # batches built but not yet saved, at most (each up to SAVE_BYTES)

Fact = tuple[StoredEvent, str, bytes]  # the stored event, its event_id, content hash

KINDS: dict[str, tuple[type[FirstFact], type[Aggregate]]] = {
    m.SCHEDULED: (m.MailingScheduled, m.MailingSlot),
    m.SUPPRESSED: (m.MailingSuppressed, m.MailingDecision),
}


def _kind(fact: type[FirstFact], aggregate: type[Aggregate]) -> tuple[str, str, str]:
    """The fact's topic, its aggregate's topic and the fact's catalogue type."""
    if getattr(fact, "class_version", 1) != 1:
        # A new version would add "class_version" to the stored state.
        raise NotImplementedError(f"{fact.__name__} has a class_version")
    return get_topic(fact), get_topic(aggregate), TYPE_BY_TOPIC[fact.TOPIC]


class DecisionFacts:
    """Builds the stored events of one plan's decisions."""

    def __init__(
        self,
        mapper: Mapper[UUID],
        campaign: m.Campaign,
        request_id: str,
        actor: str | None,
        occurred_at: str,
    ) -> None:
        self.mapper = mapper
        self.campaign = campaign
        self.request_id = request_id
        self.actor = actor
        self.occurred_at = occurred_at
        self.piece_events: dict[str, str] = {}  # mailing_id -> its piece's event_id
        self._kinds = {outcome: _kind(*classes) for outcome, classes in KINDS.items()}

    def batches(
        self, decisions: Iterable[m.Decision], max_bytes: int | None = None
    ) -> Iterator[list[Fact]]:
        """The facts in saves of at most `max_bytes` of state, each recorded at one time."""
        limit = SAVE_BYTES if max_bytes is None else max_bytes
        pending = iter(decisions)
        while True:
            timestamp = self._timestamp(datetime.now(UTC))
            batch: list[Fact] = []
            size = 0
            for decision in pending:
                fact = self._one(decision, timestamp)
                batch.append(fact)
                size += len(fact[0].state)
                if size >= limit:
                    break
            if not batch:
                return
            yield batch

    def stored(
        self, decisions: Iterable[m.Decision], recorded_at: datetime
    ) -> list[Fact]:
        """The facts of `decisions`, recorded at `recorded_at`."""
        timestamp = self._timestamp(recorded_at)
        return [self._one(d, timestamp) for d in decisions]

    def _timestamp(self, moment: datetime) -> Any:
        """The event timestamp as the application's transcoder writes it."""
        return orjson.loads(self.mapper.transcoder.encode(moment))

    def _one(self, decision: m.Decision, timestamp: Any) -> Fact:
        campaign_id = self.campaign.campaign_id
        customer_id = decision.customer_id
        event_id = m.decision_event_id(campaign_id, customer_id)
        data: dict[str, Any] = {
            "campaign_id": campaign_id,
            "customer_id": customer_id,
            "household_id": decision.household_id,
            "reason": decision.reason,
            "caused_by": list(decision.caused_by),
            "request_id": self.request_id,
        }
        if decision.outcome == m.SCHEDULED:
            self.piece_events[str(decision.mailing_id)] = event_id
            data["mailing_id"] = decision.mailing_id
            data["address"] = decision.address
            slot_key = (
                decision.household_id
                if self.campaign.one_per_household
                else customer_id
            )
            originator_id = m.slot_id(campaign_id, str(slot_key))
        else:
            originator_id = m.decision_id(campaign_id, customer_id)
        topic, aggregate_topic, type_name = self._kinds[decision.outcome]
        # The created event's vars() in their order, as the library's mapper encodes them.
        state: dict[str, Any] = {
            "timestamp": timestamp,
            "originator_topic": aggregate_topic,
            "event_id": event_id,
            "occurred_at": self.occurred_at,
            "source": SOURCE,
            "actor": self.actor,
            "data": data,
        }
        encoded = kept(orjson.dumps(state))
        if self.mapper.compressor:
            encoded = self.mapper.compressor.compress(encoded)
        if self.mapper.cipher:
            encoded = self.mapper.cipher.encrypt(encoded)
        body = {
            "occurred_at": self.occurred_at,
            "source": SOURCE,
            "actor": self.actor,
            "data": data,
            "type": type_name,
        }
        stored = StoredEvent(
            originator_id=originator_id,
            originator_version=1,
            topic=topic,
            state=encoded,
        )
        return stored, event_id, m.body_hash(body)


def save(recorder: ApplicationRecorder, facts: list[Fact]) -> dict[str, int]:
    """One insert through the recorder (one transaction, one table lock): event_id -> position."""
    event_log = {
        (stored.originator_id, stored.originator_version): (event_id, digest)
        for stored, event_id, digest in facts
    }
    positions = recorder.insert_events(
        [stored for stored, _, _ in facts], event_log=event_log
    )
    assert positions is not None and len(positions) == len(facts)
    return {
        event_id: position
        for (_, event_id, _), position in zip(facts, positions, strict=True)
    }


class OrderedSaves:
    """Saves batches one after another on a thread while the caller builds the next.

    After a failed save the later ones are skipped; `positions()` raises the
    first failure (an IntegrityError when another plan got there first).
    """

    def __init__(self, save_one: Callable[[list[Fact]], dict[str, int]]) -> None:
        self._save_one = save_one
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="mailing-save")
        self._pending: list[tuple[int, Future[dict[str, int]]]] = []
        self._failed = threading.Event()
        self.submitted = 0  # batches submitted so far

    def __enter__(self) -> OrderedSaves:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc is not None:
            self._failed.set()  # what has not started yet is not saved
        self._pool.shutdown(wait=True)

    def submit(self, batch: list[Fact]) -> None:
        """Queues a save; waits first while AHEAD saves are still to be done."""
        unfinished = [f for _, f in self._pending if not f.done()]
        if len(unfinished) >= AHEAD:
            wait(unfinished[: len(unfinished) - AHEAD + 1])
        self._pending.append((self.submitted, self._pool.submit(self._run, batch)))
        self.submitted += 1

    def _run(self, batch: list[Fact]) -> dict[str, int]:
        if self._failed.is_set():
            return {}
        try:
            return self._save_one(batch)
        except BaseException:
            self._failed.set()
            raise

    def positions(self, through: int | None = None) -> dict[str, int]:
        """Waits for the batches submitted so far (the first `through` of all,
        when given) and not waited for yet: event_id -> position."""
        limit = self.submitted if through is None else through
        waited = [future for index, future in self._pending if index < limit]
        self._pending = [(i, f) for i, f in self._pending if i >= limit]
        positions: dict[str, int] = {}
        error: BaseException | None = None
        for future in waited:
            try:
                positions |= future.result()
            except BaseException as failed:
                error = error or failed
        if error is not None:
            raise error
        return positions
