"""What projections consume: one stored event, decoded and upcast, as plain values."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from eventsourcing.application import Application
from eventsourcing.persistence import Notification

from domain.events import event_type


@dataclass(frozen=True)
class EventRecord:
    position: int
    event_id: str
    type: str
    occurred_at: str  # RFC 3339 with the offset the client sent
    recorded_at: str  # RFC 3339, UTC
    source: str
    actor: str | None
    data: dict[str, Any]
    stream_id: str
    stream_version: int


def decode(app: Application[Any], notification: Notification) -> EventRecord:
    fact = app.mapper.to_domain_event(notification)
    return EventRecord(
        position=notification.id,
        event_id=fact.event_id,  # type: ignore[attr-defined]
        type=event_type(fact),  # type: ignore[arg-type]
        occurred_at=fact.occurred_at,  # type: ignore[attr-defined]
        recorded_at=fact.timestamp.isoformat(),  # type: ignore[attr-defined]
        source=fact.source,  # type: ignore[attr-defined]
        actor=fact.actor,  # type: ignore[attr-defined]
        data=fact.data,  # type: ignore[attr-defined]
        stream_id=str(notification.originator_id),
        stream_version=notification.originator_version,
    )
