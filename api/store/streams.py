"""Loads many aggregates in one query, instead of one repository.get() each.

A batch of a thousand events touches hundreds of aggregates; one round trip per
aggregate would dominate bulk ingest.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate
from eventsourcing.persistence import StoredEvent

from api.store.application import CrmApplication
from api.store.database import Database

CHUNK = 1000


def load_aggregates(
    app: CrmApplication, db: Database, ids: Iterable[UUID]
) -> dict[UUID, Aggregate]:
    """The current state of each existing aggregate among `ids` (absent ids are left out)."""
    wanted = list(dict.fromkeys(ids))
    found: dict[UUID, Aggregate] = {}
    for start in range(0, len(wanted), CHUNK):
        rows = _select(db, wanted[start : start + CHUNK])
        aggregate: Any = None
        current: UUID | None = None
        for row in rows:
            oid = row["originator_id"]
            oid = oid if isinstance(oid, UUID) else UUID(oid)
            if oid != current:
                if aggregate is not None:
                    found[aggregate.id] = aggregate
                aggregate, current = None, oid
            stored = StoredEvent(
                oid, row["originator_version"], row["topic"], bytes(row["state"])
            )
            aggregate = app.mapper.to_domain_event(stored).mutate(aggregate)  # type: ignore[attr-defined]
        if aggregate is not None:
            found[aggregate.id] = aggregate
    return found


def _select(db: Database, ids: list[UUID]) -> list[dict[str, Any]]:
    with db.transaction() as cur:
        if db.backend == "postgresql":
            sql = "SELECT originator_id, originator_version, topic, state FROM crm_events WHERE originator_id = ANY(%s) ORDER BY originator_id, originator_version"
            return cur.execute(sql, (ids,)).fetchall()
        placeholders, params = db.in_list([i.hex for i in ids])
        sql = f"SELECT originator_id, originator_version, topic, state FROM stored_events WHERE originator_id IN {placeholders} ORDER BY originator_id, originator_version"
        return cur.execute(sql, params).fetchall()
