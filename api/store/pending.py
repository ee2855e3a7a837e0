"""Facts that change nothing but their aggregate's version, kept as plain data until saved.

Balances, fees and statements are nine events in ten of a bank's log, and the
domain gives them no `apply`: recording one only moves its account's version.
Building the library's event object for each (a frozen dataclass), mutating
the aggregate with it and mapping it back to a dict for the stored bytes was a
fifth of the writer's time per event (docs/benchmarks.md, fifth pass). A unit
of work keeps such a fact as a `PendingFact` instead, moves the version
itself, and the save writes exactly the bytes the library's mapper would have
written for the same fact (tests compare them). Reading it back goes through
the library as usual. Every fact that changes state still goes through
`trigger_event`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, NamedTuple
from uuid import UUID

from eventsourcing.domain import Aggregate

from domain.events import Fact, changes_state


class PendingFact(NamedTuple):
    originator_id: UUID
    originator_version: int
    fact: type[Fact]
    timestamp: datetime
    fields: dict[str, Any]  # event_id, occurred_at, source, actor, data
    # `fields` as JSON when the writer has it already (api.store.prepare): the
    # save writes the timestamp in front instead of encoding them again.
    body: bytes | None = None

    @property
    def event_id(self) -> str:
        return str(self.fields["event_id"])


def pending_fact(
    aggregate: Aggregate,
    fact: type[Fact],
    fields: dict[str, Any],
    body: bytes | None = None,
) -> PendingFact | None:
    """The fact as pending data, with `aggregate`'s version moved on; None (and
    the aggregate untouched) for a fact that changes state. `body`: `fields`
    (the timestamp aside) as JSON, if known."""
    if changes_state(fact):
        return None
    if "timestamp" in fields:
        fields = dict(fields)
        timestamp = fields.pop("timestamp")
    else:
        timestamp = fact.create_timestamp()
    aggregate.version += 1
    return PendingFact(aggregate.id, aggregate.version, fact, timestamp, fields, body)
