"""Stored facts: the base classes every persisted event derives from.

Each concrete fact sets `TOPIC`, the name it is stored under forever. A fact
keeps the envelope it arrived in (event_id, occurred_at, source, actor) and the
validated `data` as plain JSON values, so upcasters work on dicts.
"""

from __future__ import annotations

from typing import Any, ClassVar

from eventsourcing.domain import AggregateCreated, AggregateEvent
from eventsourcing.utils import register_topic

TOPIC_PREFIX = "crm."
TYPE_BY_TOPIC: dict[str, str] = {}
"""Stored topic -> catalogue type name (e.g. "crm.CustomerMoved" -> "CustomerMoved")."""
CLASS_BY_TOPIC: dict[str, type[Any]] = {}


def _register(cls: type[Any]) -> None:
    topic = cls.__dict__.get("TOPIC")
    if topic is None:
        return
    register_topic(topic, cls)
    TYPE_BY_TOPIC[topic] = topic.removeprefix(TOPIC_PREFIX)
    CLASS_BY_TOPIC[topic] = cls


class Fact(AggregateEvent):
    """A fact about an existing aggregate."""

    TOPIC: ClassVar[str]
    event_id: str
    occurred_at: str
    source: str
    actor: str | None
    data: dict[str, Any]

    def __init_subclass__(cls) -> None:
        super().__init_subclass__()
        _register(cls)


class FirstFact(AggregateCreated):
    """The fact that brings an aggregate into being."""

    TOPIC: ClassVar[str]
    event_id: str
    occurred_at: str
    source: str
    actor: str | None
    data: dict[str, Any]

    def __init_subclass__(cls) -> None:
        super().__init_subclass__()
        _register(cls)


def changes_state(fact: type[Fact]) -> bool:
    """False for a fact whose `apply` is the library's no-op (a balance, a fee, a
    statement): recording it moves only its aggregate's version, so the store may
    record it without building the library's event object (api.store.pending)."""
    return fact.apply is not Fact.apply


def version_only_topics() -> list[str]:
    """The stored topics of facts that change no state: replaying an aggregate
    may skip them, all but its last (which sets the version and time)."""
    return sorted(
        topic
        for topic, cls in CLASS_BY_TOPIC.items()
        if issubclass(cls, Fact) and not changes_state(cls)
    )


def event_type(fact: Fact | FirstFact) -> str:
    """The catalogue type name of a stored fact."""
    return TYPE_BY_TOPIC[type(fact).TOPIC]
