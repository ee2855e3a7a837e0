"""The hash chain over the log: each link covers the previous hash and the stored bytes."""

from __future__ import annotations

import hashlib
from uuid import UUID

GENESIS = bytes(32)


def link(
    previous: bytes,
    position: int,
    originator_id: UUID | str,
    version: int,
    topic: str,
    state: bytes,
) -> bytes:
    oid = originator_id if isinstance(originator_id, UUID) else UUID(str(originator_id))
    digest = hashlib.sha256(previous)
    digest.update(position.to_bytes(8, "big"))
    digest.update(oid.bytes)
    digest.update(version.to_bytes(8, "big"))
    encoded_topic = topic.encode()
    digest.update(len(encoded_topic).to_bytes(4, "big"))
    digest.update(encoded_topic)
    digest.update(bytes(state))
    return digest.digest()
