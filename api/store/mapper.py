"""The stored form of facts, written without the transcoder's walk over every value.

A fact's state is a timestamp plus strings and its `data`, which holds plain
JSON values by the contract in `domain.events`. So only the timestamp needs a
registered transcoding; everything else goes to orjson as it is. The bytes are
exactly those the library's mapper writes (tests compare them), and any other
event, or a mapper with a cipher or compressor, takes the library's path.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

import orjson
from eventsourcing.domain import DomainEventProtocol
from eventsourcing.persistence import Mapper, StoredEvent

from api.store.json_bytes import kept
from api.store.pending import PendingFact
from api.store.transcoder import PASSTHROUGH
from domain.events import Fact, FirstFact


class FactMapper(Mapper[UUID]):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._fast = self.compressor is None and self.cipher is None
        self._topics: dict[type[Any], str | None] = {}
        # Events saved together share one timestamp (see Ingestor): format it
        # once. One tuple, so that threads saving at once never mix two pairs.
        self._last: tuple[datetime | None, str] = (None, "")

    def to_stored_event(self, domain_event: DomainEventProtocol[UUID]) -> StoredEvent:
        cls = type(domain_event)
        topic = self._topics.get(cls, "")
        if topic == "":
            topic = self._topics[cls] = (
                cls.TOPIC if issubclass(cls, Fact | FirstFact) else None
            )
        if topic is None or not self._fast:
            return super().to_stored_event(domain_event)
        state = dict(vars(domain_event))
        originator_id = state.pop("originator_id")
        originator_version = state.pop("originator_version")
        return StoredEvent(
            originator_id=originator_id,
            originator_version=originator_version,
            topic=topic,
            state=self._encode(cls, state),
        )

    def pending_to_stored_event(self, pending: PendingFact) -> StoredEvent:
        """The stored form of a pending fact: the bytes `to_stored_event` writes
        for the library event with the same values (same keys, same order)."""
        cls = pending.fact
        if not self._fast:
            return super().to_stored_event(
                cls(
                    originator_id=pending.originator_id,
                    originator_version=pending.originator_version,
                    timestamp=pending.timestamp,
                    **pending.fields,
                )
            )
        if pending.body is None:
            state = self._encode(
                cls, {"timestamp": pending.timestamp, **pending.fields}
            )
        else:
            state = self._behind_timestamp(cls, pending.timestamp, pending.body)
        return StoredEvent(
            originator_id=pending.originator_id,
            originator_version=pending.originator_version,
            topic=cls.TOPIC,
            state=state,
        )

    def _behind_timestamp(
        self, cls: type[Any], timestamp: datetime, body: bytes
    ) -> bytes:
        """What `_encode` writes for `{"timestamp": timestamp, **fields}`, given
        `fields` already encoded as `body`: the same keys in the same order."""
        head = b'{"timestamp":{"_type_":"datetime_iso","_data_":"%s"},' % (
            self._iso(timestamp).encode()
        )
        class_version = getattr(cls, "class_version", 1)
        if class_version > 1:
            return b'%s%s,"class_version":%d}' % (head, body[1:-1], class_version)
        return head + body[1:]

    def _encode(self, cls: type[Any], state: dict[str, Any]) -> bytes:
        """A fact's state as stored: its timestamp transcoded (in place, keeping
        the key order), its class version if above 1, the rest as plain JSON."""
        state["timestamp"] = {
            "_type_": "datetime_iso",
            "_data_": self._iso(state["timestamp"]),
        }
        class_version = getattr(cls, "class_version", 1)
        if class_version > 1:
            state["class_version"] = class_version
        return kept(
            orjson.dumps(
                state,
                default=self.transcoder._encode_obj,  # type: ignore[attr-defined]
                option=PASSTHROUGH,
            )
        )

    def _iso(self, timestamp: datetime) -> str:
        last = self._last
        if last[0] is not timestamp:
            last = self._last = (timestamp, timestamp.isoformat())
        return last[1]
