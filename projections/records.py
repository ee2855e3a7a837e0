"""What projections consume: one stored event, decoded and upcast, as plain values."""

from __future__ import annotations

from functools import cache
from typing import Any, NamedTuple
from uuid import UUID

import orjson
from eventsourcing.application import Application
from eventsourcing.persistence import JSONTranscoder, Notification
from eventsourcing.utils import resolve_topic

from api.store.recorders import LogRow
from api.store.transcoder import TRANSCODED
from domain.events import TYPE_BY_TOPIC, event_type


class EventRecord(NamedTuple):
    """A named tuple, not a frozen dataclass: a frozen dataclass's `__init__` sets
    each field through `object.__setattr__`, which was 8 % of a rebuild's CPU
    (py-spy); a tuple is built in one step and is just as immutable."""

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
    row = (
        notification.id,
        str(notification.originator_id),
        notification.originator_version,
        notification.topic,
        notification.state,
    )
    plain = _decode_plain(app, row)
    return plain if plain is not None else _decode_mapped(app, notification)


def decode_row(app: Application[Any], row: LogRow) -> EventRecord:
    """`decode` of a row as `select_log_rows` reads it; a Notification is built
    only for the rare event that needs the library's mapper."""
    plain = _decode_plain(app, row)
    if plain is not None:
        return plain
    position, stream_id, version, topic, state = row
    notification = Notification(
        id=position,
        originator_id=UUID(stream_id),
        originator_version=version,
        topic=topic,
        state=state,
    )
    return _decode_mapped(app, notification)


def _decode_mapped(app: Application[Any], notification: Notification) -> EventRecord:
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


def _decode_plain(app: Application[Any], row: LogRow) -> EventRecord | None:
    """The common case read straight from the stored JSON, without building the
    domain event: plain JSON state, the class's current version, and no
    transcoded value but the timestamp (whose stored text is its isoformat).
    Anything else (a cipher, an upcast, another transcoded value) is None and
    goes through the library's mapper."""
    position, stream_id, version, topic, state = row
    mapper = app.mapper
    if (
        mapper.cipher is not None
        or mapper.compressor is not None
        or not isinstance(mapper.transcoder, JSONTranscoder)
        or state.count(TRANSCODED) != 1
    ):
        return None
    values = orjson.loads(state)
    cls = resolve_topic(topic)
    stamp = values.get("timestamp")
    if (
        values.get("class_version", 1) != getattr(cls, "class_version", 1)
        or not isinstance(stamp, dict)
        or stamp.get("_type_") != "datetime_iso"
        or len(stamp) != 2
    ):
        return None
    return EventRecord(
        position,
        values["event_id"],
        TYPE_BY_TOPIC[cls.TOPIC],
        values["occurred_at"],
        stamp["_data_"],
        values["source"],
        values["actor"],
        values["data"],
        stream_id,
        version,
    )


@cache
def type_of_topic(topic: str) -> str:
    """The catalogue type of the events stored under `topic` (renamed topics too)."""
    return TYPE_BY_TOPIC[resolve_topic(topic).TOPIC]
