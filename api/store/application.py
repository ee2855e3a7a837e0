"""The one eventsourcing Application that owns the log (stored in `crm_events`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from uuid import UUID

from eventsourcing.application import Application
from eventsourcing.domain import Aggregate
from eventsourcing.persistence import StoredEvent

import domain.mailing  # noqa: F401  (every process that reads the log knows every stored topic)
from api.settings import Settings
from api.store.mapper import FactMapper
from api.store.pending import PendingFact

POSTGRES_RECORDER = "api.store.recorders:PostgresCrmRecorder"
SQLITE_RECORDER = "api.store.recorders:SQLiteCrmRecorder"


class CrmApplication(Application[UUID]):
    # The name is schema: it names the PostgreSQL table `crm_events`.
    name = "crm"

    def save_aggregates(
        self,
        aggregates: Sequence[Aggregate],
        pending: Sequence[PendingFact] = (),
        order: dict[str, int] | None = None,
        **kwargs: Any,
    ) -> dict[str, int]:
        """`save()` for a known list of aggregates and pending facts, in one
        transaction; returns each fact's event_id -> its position in the log.

        The steps of `Application.save` (collect, map, insert), without its two
        runtime-protocol isinstance checks per object, which cost more than the
        insert in bulk, and with pending facts mapped straight to stored events
        (see api.store.pending). This application takes no snapshots and keeps
        no repository cache, so `save`'s other steps have nothing to do.
        `order`: event_id -> rank; positions follow the order the events were
        posted in, not the order of the aggregates.
        """
        facts = self.stored_facts(aggregates, pending, order)
        positions = self.recorder.insert_events([s for _, s in facts], **kwargs)
        assert positions is not None
        return {
            event_id: position
            for (event_id, _), position in zip(facts, positions, strict=True)
        }

    def stored_facts(
        self,
        aggregates: Sequence[Aggregate],
        pending: Sequence[PendingFact] = (),
        order: dict[str, int] | None = None,
    ) -> list[tuple[str, StoredEvent]]:
        """The stored form of every new fact of `aggregates` and of `pending`,
        with its event_id, in the order they are to be saved."""
        mapper = self.mapper
        assert isinstance(mapper, FactMapper)
        events = [e for a in aggregates for e in a.collect_events()]
        facts: list[tuple[str, StoredEvent]] = [
            (e.event_id, mapper.to_stored_event(e))  # type: ignore[attr-defined]
            for e in events
        ]
        facts += [(p.event_id, mapper.pending_to_stored_event(p)) for p in pending]
        if order is not None:
            facts.sort(key=lambda fact: order[fact[0]])
        return facts


def eventsourcing_env(settings: Settings) -> dict[str, Any]:
    """The library's environment for the configured backend (tables come from migrations)."""
    env: dict[str, Any] = {
        "CREATE_TABLE": "n",
        "TRANSCODER_TOPIC": "api.store.transcoder:OrjsonTranscoder",
        "MAPPER_TOPIC": "api.store.mapper:FactMapper",
    }
    if settings.is_postgres:
        parts = settings.postgres_parts
        env.update(
            PERSISTENCE_MODULE="eventsourcing.postgres",
            POSTGRES_DBNAME=parts["dbname"],
            POSTGRES_HOST=parts["host"],
            POSTGRES_PORT=parts["port"],
            POSTGRES_USER=parts["user"],
            POSTGRES_PASSWORD=parts["password"],
            POSTGRES_POOL_SIZE="4",
            POSTGRES_MAX_OVERFLOW="8",
            POSTGRES_CONNECT_TIMEOUT="10",
            POSTGRES_LOCK_TIMEOUT="10",
            # No ping per save: a dead connection fails its statement and the
            # library retries insert_events on a fresh one (OperationalError).
            POSTGRES_PRE_PING="n",
            APPLICATION_RECORDER_TOPIC=POSTGRES_RECORDER,
        )
    else:
        env.update(
            PERSISTENCE_MODULE="eventsourcing.sqlite",
            SQLITE_DBNAME=settings.sqlite_path,
            SQLITE_LOCK_TIMEOUT="30",
            APPLICATION_RECORDER_TOPIC=SQLITE_RECORDER,
        )
    return env
