"""JSON bytes that are kept a while (stored events in flight).

orjson (3.12 and later) returns each result in the buffer it wrote it in, rounded
up to a power of two and at least 4 KiB, and never shrinks it: a stored event of
300 bytes holds 4 KiB until it is freed. 100,000 of them held 393 MB where their
bytes are 29 MB. Home Assistant trims its cached orjson output the same way.
"""

from __future__ import annotations


def kept(encoded: bytes) -> bytes:
    """`encoded` copied into an allocation of its own size (0.1-0.2 µs for an event)."""
    return bytes(memoryview(encoded))
