"""Validation of posted envelopes into their stored form: the part of ingest that
needs no database, so `crm ingest` can run it in another process.

A `Prepared` event is plain data (picklable): the fact fields exactly as they
will be stored, and the hash that tells a retry from a conflicting re-post.
Both results are named tuples because a worker's results are unpickled by the
writer's process, and a tuple unpickles in half the time of a dataclass.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from typing import Any, NamedTuple

import orjson
import structlog

from api.gc_tuning import tune_garbage_collector
from api.spawning import spawn_context
from domain.catalogue import FieldProblem, InvalidEvent, parse_envelope
from domain.handling import fact_fields, stored_data


class Prepared(NamedTuple):
    type: str
    event_id: str  # canonical form
    posted_id: str  # as the client wrote it (echoed in answers)
    data: dict[str, Any]  # `data` as stored (national IDs already hashed)
    fields: dict[str, Any]  # event_id, occurred_at, source, actor, data
    content_hash: bytes
    refs: tuple[str, ...]  # the ids `data` names (aggregates the writer loads)
    # `fields` as JSON, in the order a stored fact lists them: a fact that
    # changes no state is stored as these bytes behind its timestamp.
    body: bytes


class Invalid(NamedTuple):
    """An envelope the catalogue refused: every problem, by field.

    `parsed` is False for a line of text that was not JSON at all."""

    posted_id: str | None
    problems: tuple[tuple[str, str], ...]
    parsed: bool = True

    def error(self) -> InvalidEvent:
        return InvalidEvent(
            [FieldProblem(field=f, message=m) for f, m in self.problems],
            self.posted_id,
        )


def prepare(raw: Any, national_id_key: bytes) -> Prepared | Invalid:
    try:
        event = parse_envelope(raw)
    except InvalidEvent as error:
        return Invalid(
            error.event_id, tuple((p.field, p.message) for p in error.problems)
        )
    data = stored_data(event, national_id_key)
    return prepared_from_fields(
        event.type, raw["event_id"], data, fact_fields(event, data)
    )


def prepared_from_fields(
    event_type: str, posted_id: str, data: dict[str, Any], fields: dict[str, Any]
) -> Prepared:
    """The `Prepared` form of an event whose stored `fields` are made already."""
    return Prepared(
        event_type,
        fields["event_id"],
        posted_id,
        data,
        fields,
        content_hash(event_type, fields),
        referenced_ids(data),
        orjson.dumps(fields),
    )


def referenced_ids(data: dict[str, Any]) -> tuple[str, ...]:
    """The ids of the aggregates an event's `data` names (`*_id` fields and joint holders)."""
    ids = [v for k, v in data.items() if k.endswith("_id") and isinstance(v, str)]
    return (*ids, *data.get("joint_holder_ids", ()))


def prepare_batch(
    raw_events: list[Any], national_id_key: bytes
) -> list[Prepared | Invalid]:
    return [prepare(raw, national_id_key) for raw in raw_events]


class Unreadable(ValueError):
    """An item of a file that never became an envelope; the message says why."""


Parse = Callable[[Any], Any]
"""Turns one item of a file (a line, a CSV row) into an envelope, or raises
Unreadable. It may also return the item's `Prepared` form, when it can make
that form exactly as `prepare` would, for less (see api.balance_file)."""


def parse_json_line(line: str) -> Any:
    try:
        return orjson.loads(line)
    except orjson.JSONDecodeError as error:
        raise Unreadable(f"not valid JSON ({error})") from None


def prepare_items(
    items: list[Any], national_id_key: bytes, parse: Parse | None
) -> list[Prepared | Invalid]:
    """`prepare_batch` of a file's items, each parsed here by `parse` (None: as they are)."""
    if parse is None:
        return prepare_batch(items, national_id_key)
    prepared: list[Prepared | Invalid] = []
    for item in items:
        try:
            raw = parse(item)
        except Unreadable as error:
            prepared.append(Invalid(None, (("", str(error)),), parsed=False))
            continue
        prepared.append(
            raw if isinstance(raw, Prepared) else prepare(raw, national_id_key)
        )
    return prepared


def content_hash(event_type: str, fields: dict[str, Any]) -> bytes:
    """The hash of what the event says, without its id (stable across retries)."""
    hashed = dict(fields, type=event_type)
    del hashed["event_id"]
    return hashlib.sha256(orjson.dumps(hashed, option=orjson.OPT_SORT_KEYS)).digest()


log = structlog.get_logger("crm.ingest")

_worker_key: bytes = b""


def _init_worker(national_id_key: bytes) -> None:
    global _worker_key
    tune_garbage_collector()
    _worker_key = national_id_key


def _prepare_in_worker(
    raw_events: list[Any], parse: Parse | None
) -> list[Prepared | Invalid]:
    return prepare_items(raw_events, _worker_key, parse)


class Preparer:
    """Prepares batches ahead of the writer: in worker processes when `workers` > 0.

    Validation is CPU-bound Python; in its own process it runs on another core
    while the writer decides and saves the batch before. Results come back in
    submission order. The pool starts with the second batch, so a small file
    never pays for starting a process. With `parse`, batches are a file's
    items (lines of JSON, CSV rows), parsed where they are validated: the
    writer only reads the file.
    """

    def __init__(
        self, national_id_key: bytes, workers: int, *, parse: Parse | None = None
    ) -> None:
        self.national_id_key = national_id_key
        self.workers = workers
        self.parse = parse
        self._pool: ProcessPoolExecutor | None = None
        self._submitted = 0

    def submit(self, raw_events: list[Any]) -> Pending:
        self._submitted += 1
        if self.workers > 0 and self._submitted > 1:
            if self._pool is None:
                self._pool = ProcessPoolExecutor(
                    self.workers,
                    mp_context=spawn_context(),
                    initializer=_init_worker,
                    initargs=(self.national_id_key,),
                )
            return Pending(
                raw_events,
                self._pool.submit(_prepare_in_worker, raw_events, self.parse),
                self,
            )
        return Pending(raw_events, None, self)

    def here(self, raw_events: list[Any]) -> list[Prepared | Invalid]:
        return prepare_items(raw_events, self.national_id_key, self.parse)

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(cancel_futures=True)
            self._pool = None

    def __enter__(self) -> Preparer:
        return self

    def __exit__(self, *_: Any) -> None:
        self.close()


@dataclass
class Pending:
    """A batch on its way through a Preparer."""

    raw_events: list[Any]
    future: Future[list[Prepared | Invalid]] | None
    preparer: Preparer

    def result(self) -> list[Prepared | Invalid]:
        if self.future is None:
            return self.preparer.here(self.raw_events)
        try:
            return self.future.result()
        except BrokenProcessPool:
            # A worker died (killed, out of memory): this process does the work.
            log.warning("ingest.worker_lost", events=len(self.raw_events))
            self.preparer.workers = 0
            return self.preparer.here(self.raw_events)
