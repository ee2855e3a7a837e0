"""Name-based ids (RFC 4122 version 5) made without building `uuid.UUID` objects.

`uuid.uuid5` builds a UUID from the hash's bytes in Python, and `str()` of it
formats it in Python again: about 4 µs an id, more than the SHA-1 itself.
The mailing plan makes some 250,000 ids a plan and the balance file one a
row, so both make them here, from the hash's integer, in about 1.5 µs.
Tests hold every function equal to `uuid.uuid5`.
"""

from __future__ import annotations

import hashlib
import re

_VERSION_MASK = ~((0xF000 << 64) | (0xC000 << 48))
_VERSION_5 = (0x5000 << 64) | (0x8000 << 48)

CANONICAL_UUID = re.compile(
    r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
)
"""A UUID in the form `str(UUID(...))` gives: lower case, with dashes."""


def uuid5_int(namespace: bytes, name: str) -> int:
    """`uuid5(UUID(bytes=namespace), name).int`."""
    digest = hashlib.sha1(namespace + name.encode(), usedforsecurity=False)
    return (int.from_bytes(digest.digest()[:16]) & _VERSION_MASK) | _VERSION_5


def uuid_text(value: int) -> str:
    """`str(UUID(int=value))`."""
    h = f"{value:032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def uuid5_text(namespace: bytes, name: str) -> str:
    """`str(uuid5(UUID(bytes=namespace), name))`."""
    return uuid_text(uuid5_int(namespace, name))
