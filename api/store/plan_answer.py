"""A mailing plan's answer: built a decision at a time, published as one JSON
document in the targets' order, without ever being held whole in memory.

A 100,000-target answer is 25 MB of JSON. Held as bytes it was in memory two
or three times at the plan's end (its entries, the joined answer, the copies
made on its way to PostgreSQL and to the client), and the entries, kept for
the whole plan, pinned heap pages between everything else it allocated. Here
the entries go to a temporary file as they are decided, and the answer is read
back from it in pieces of about 1 MB, once to store it and once to send it.
"""

from __future__ import annotations

import os
import tempfile
from array import array
from collections.abc import Iterator
from typing import Any, Protocol

import orjson

from domain import mailing as m

PIECE = 1 << 20
"""Bytes of the answer read back and handed on at a time."""

_SCHEDULED, _SUPPRESSED = 1, 2


class PublishedAnswer(Protocol):
    """What a plan answers with: its JSON, in pieces."""

    size: int

    def pieces(self) -> Iterator[bytes]: ...

    def close(self) -> None: ...


class Answer:
    """The entries of one attempt at a plan, each at its target's place (slot) in
    the request's targets: `count` of them."""

    def __init__(self, count: int) -> None:
        self._count = count
        # Closed by discard(), or by the answer that owns it from finish() on.
        self._file = tempfile.TemporaryFile(prefix="crm-plan-")  # noqa: SIM115
        self._written = 0
        self._starts = array("q", bytes(8 * self._count))
        self._ends = array("q", bytes(8 * self._count))
        self._kinds = bytearray(self._count)  # 0: not decided (yet)

    def add(self, d: m.Decision, slot: int) -> None:
        entry: dict[str, Any]
        if d.outcome == m.SCHEDULED:
            kind, entry = (
                _SCHEDULED,
                {
                    "mailing_id": d.mailing_id,
                    "household_id": d.household_id,
                    "customer_id": d.customer_id,
                    "address": d.address,
                },
            )
        else:
            kind, entry = (
                _SUPPRESSED,
                {
                    "customer_id": d.customer_id,
                    "household_id": d.household_id,
                    "reason": d.reason,
                    "caused_by": list(d.caused_by),
                },
            )
        encoded = orjson.dumps(entry)
        self._file.write(encoded)
        self._starts[slot] = self._written
        self._written += len(encoded)
        self._ends[slot] = self._written
        self._kinds[slot] = kind

    def finish(self, position: int) -> FileAnswer:
        """The answer as `PlanResponse` has it, `position` being the log position that
        holds every decision in it. The answer owns the file from here."""
        self._file.flush()
        return FileAnswer(self, position)

    def discard(self) -> None:
        self._file.close()


class FileAnswer:
    """A finished answer, read back from its entries' file in the targets' order."""

    def __init__(self, entries: Answer, position: int) -> None:
        self._entries = entries
        self._parts = (
            (_SCHEDULED, b'{"scheduled":['),
            (_SUPPRESSED, b'],"suppressed":['),
            (0, b'],"position":%d}' % int(position)),
        )
        self.size = sum(len(text) for _, text in self._parts)
        kinds, starts, ends = entries._kinds, entries._starts, entries._ends
        for kind in (_SCHEDULED, _SUPPRESSED):
            count = kinds.count(kind)
            self.size += max(count - 1, 0)  # the commas
        self.size += sum(ends) - sum(starts)  # every decided target's entry

    def pieces(self) -> Iterator[bytes]:
        entries = self._entries
        fd = entries._file.fileno()
        kinds, starts, ends = entries._kinds, entries._starts, entries._ends
        piece = bytearray()
        for kind, opening in self._parts:
            piece += opening
            if not kind:
                break
            first = True
            for slot in range(entries._count):
                if kinds[slot] != kind:
                    continue
                if not first:
                    piece += b","
                first = False
                piece += os.pread(fd, ends[slot] - starts[slot], starts[slot])
                if len(piece) >= PIECE:
                    yield bytes(piece)
                    piece.clear()
        yield bytes(piece)

    def close(self) -> None:
        self._entries.discard()


class StoredAnswer:
    """An answer as it was stored, for a request made again."""

    def __init__(self, json: bytes) -> None:
        self._json = json
        self.size = len(json)

    def pieces(self) -> Iterator[bytes]:
        for at in range(0, len(self._json), PIECE):
            yield self._json[at : at + PIECE]

    def close(self) -> None:
        self._json = b""


def joined(answer: PublishedAnswer) -> bytes:
    """The whole answer as bytes (tests, and SQLite, which stores it in one value)."""
    return b"".join(answer.pieces())
