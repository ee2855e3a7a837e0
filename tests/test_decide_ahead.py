"""`crm ingest` deciding in a worker process a batch ahead of the saves
(api.store.decide_ahead): the log it writes is the one the ordinary path
writes, and every irregular batch (a broken rule, a repeat, another writer)
is stored the ordinary way."""

from __future__ import annotations

import fcntl
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
from eventsourcing.persistence import StoredEvent
from typer.testing import CliRunner

from api.audit.verify import verify_log
from api.bootstrap import Platform, build_platform
from api.cli import cli
from api.demo_data import generate_demo_events
from api.settings import Settings
from api.store.decide_ahead import (
    PIPE_BYTES,
    AheadPipeline,
    DecidingWorker,
    FileBatches,
)
from api.store.ingest import Report
from api.store.mapper import FactMapper
from api.store.recorders import LogMoved
from api.store.transcoder import OrjsonTranscoder
from domain.account import BalanceReported
from tests.factories import account_opened, envelope, registered

KEY = "ahead-test-key"


def _write(path: Path, events: list[Any]) -> Path:
    path.write_text(
        "".join(
            (e if isinstance(e, str) else orjson.dumps(e).decode()) + "\n"
            for e in events
        )
    )
    return path


def _ingest(url: str, path: Path, monkeypatch: pytest.MonkeyPatch, ahead: bool) -> str:
    monkeypatch.setenv("CRM_DATABASE_URL", url)
    monkeypatch.setenv("CRM_SECRET_KEY", KEY)
    monkeypatch.setenv("CRM_INGEST_WORKERS", "1")
    monkeypatch.setenv("CRM_LOG_LEVEL", "WARNING")
    monkeypatch.setenv("CRM_INGEST_DECIDE_AHEAD", "true" if ahead else "false")
    result = CliRunner().invoke(cli, ["ingest", str(path), "--batch-size", "7"])
    return result.output


def _pipeline_with_a_worker(
    settings: Settings, platform: Platform
) -> tuple[AheadPipeline, DecidingWorker, list[Report]]:
    """A pipeline deciding one batch ahead in a worker, the worker, and the reports
    the pipeline gives."""
    reports: list[Report] = []
    worker = DecidingWorker(settings)
    file = FileBatches(None, lambda r, _: reports.append(r), lambda line, problem: None)
    pipeline = AheadPipeline(platform.ingestor, file, depth=1)
    pipeline.use(worker)
    return pipeline, worker, reports


def _log(url: str) -> list[tuple[str, int, str, dict[str, Any]]]:
    """The log in order: stream, version, topic and state without its timestamp."""
    platform = build_platform(Settings(database_url=url, secret_key=KEY))
    try:
        rows = platform.app.recorder.select_log_rows(0, 1_000_000)  # type: ignore[attr-defined]
    finally:
        platform.close()
    logged = []
    for _, stream, version, topic, state in rows:
        decoded = orjson.loads(bytes(state))
        del decoded["timestamp"]
        logged.append((str(uuid.UUID(stream)), version, topic, decoded))
    return logged


def test_the_log_decided_ahead_is_the_ordinary_log(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    events = list(generate_demo_events(households=3, seed=11))
    path = _write(tmp_path / "demo.jsonl", events)
    ahead = _ingest(settings.database_url, path, monkeypatch, ahead=True)
    assert f"stored {len(events)}, duplicates 0, rejected 0" in ahead
    ordinary_url = f"sqlite:///{tmp_path / 'ordinary.db'}"
    assert "rejected 0" in _ingest(ordinary_url, path, monkeypatch, ahead=False)
    assert _log(settings.database_url) == _log(ordinary_url)
    verified = CliRunner().invoke(cli, ["audit", "verify"])
    assert verified.exit_code == 0, verified.output


def test_irregular_batches_are_reported_as_the_ordinary_path_reports_them(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A broken rule, a repeat within a batch and a repeat of an earlier batch's
    event: the same answers and the same log as without the worker."""
    lines: list[Any] = []
    for n in range(20):
        customer = registered(name=f"周{n}")
        lines += [customer, account_opened(customer["data"]["customer_id"])]
    lines.insert(
        17,
        envelope(
            "CustomerMoved",
            {
                "customer_id": str(uuid.uuid4()),
                "address": {"line": "广州市天河区体育西路1号"},
            },
        ),
    )
    lines.insert(25, lines[24])  # the same event twice in one batch
    lines.insert(33, lines[3])  # an event of an earlier batch, again
    path = _write(tmp_path / "irregular.jsonl", lines)
    ahead = _ingest(settings.database_url, path, monkeypatch, ahead=True)
    ordinary_url = f"sqlite:///{tmp_path / 'ordinary.db'}"
    ordinary = _ingest(ordinary_url, path, monkeypatch, ahead=False)
    assert "stored 40, duplicates 2, rejected 1" in ahead, ahead
    assert sorted(ahead.splitlines()) == sorted(ordinary.splitlines())
    assert _log(settings.database_url) == _log(ordinary_url)
    again = _ingest(settings.database_url, path, monkeypatch, ahead=True)
    assert "stored 0, duplicates 42, rejected 1" in again, again


def test_nothing_of_a_failed_batch_reaches_the_decisions_after_it(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The worker changes its aggregates in place, and stops a batch at its first
    broken rule: what it holds after a failed batch is neither the log before
    nor after it. A customer who dies in a failed batch, after the broken rule,
    cannot open an account in a later batch: the worker's aggregates are
    forgotten, not used."""
    customer = registered(name="吴敏")
    customer_id = customer["data"]["customer_id"]
    fillers = [registered(name=f"郑{n}") for n in range(45)]
    unknown = str(uuid.uuid4())
    lines: list[Any] = [
        *fillers[:7],  # batch 1 of 7 lines: stored before the worker starts
        customer,
        *fillers[7:13],  # batch 2: the worker keeps the customer
        envelope("CustomerDeceased", {"customer_id": unknown}),
        envelope("CustomerDeceased", {"customer_id": customer_id}),
        *fillers[13:18],  # batch 3: the worker stops at its first line
        # Batches 4 to 6 are decided before batch 3's answer is read, then
        # stored the ordinary way; batch 7 is decided after.
        *fillers[18:39],
        account_opened(customer_id),
        *fillers[39:],
    ]
    path = _write(tmp_path / "died.jsonl", lines)
    ahead = _ingest(settings.database_url, path, monkeypatch, ahead=True)
    ordinary_url = f"sqlite:///{tmp_path / 'ordinary.db'}"
    ordinary = _ingest(ordinary_url, path, monkeypatch, ahead=False)
    assert "stored 47, duplicates 0, rejected 2" in ahead, ahead
    assert "deceased" in ahead
    assert sorted(ahead.splitlines()) == sorted(ordinary.splitlines())
    assert _log(settings.database_url) == _log(ordinary_url)


def test_a_save_after_another_writers_goes_the_ordinary_way(
    settings: Settings,
) -> None:
    platform = build_platform(settings)
    other = build_platform(settings)
    pipeline, worker, reports = _pipeline_with_a_worker(settings, platform)
    customer = registered(name="孙丽")
    opened = account_opened(customer["data"]["customer_id"])
    aid = opened["data"]["account_id"]
    balances = [
        envelope(
            "BalanceReported",
            {"account_id": aid, "balance": f"{n}.00", "as_of": f"2026-01-{n:02d}"},
        )
        for n in range(1, 6)
    ]
    try:
        pipeline.submit([customer, opened], [1, 2])
        pipeline.finish()
        pipeline.submit(balances[:2], [3, 4])
        assert pipeline.deciding[0].decided.result() is not None  # decided: v2, v3
        # Another writer takes version 2 before that batch is saved.
        assert other.ingestor.ingest(balances[4:], atomic=True).count("stored") == 1
        pipeline.finish()
        pipeline.submit(balances[2:4], [5, 6])
        pipeline.finish()
    finally:
        pipeline.close()
        worker.close()
        other.close()
    try:
        assert [r.count("stored") for r in reports] == [2, 2, 2]
        assert pipeline.irregular == 1  # the second batch, refused and redone
        assert pipeline.worker is not None  # and the third decided ahead again
        rows = platform.app.recorder.select_log_rows(0, 100)  # type: ignore[attr-defined]
        assert [r[2] for r in rows if r[1] == aid] == [1, 2, 3, 4, 5, 6]
        verified = verify_log(platform.db)
        assert verified.ok, verified
    finally:
        platform.close()


def test_a_save_expecting_another_position_stores_nothing(settings: Settings) -> None:
    platform = build_platform(settings)
    try:
        customer = registered(name="吴刚")
        assert platform.ingestor.ingest([customer], atomic=True).count("stored") == 1
        head = platform.app.recorder.max_notification_id()
        event = StoredEvent(uuid.uuid4(), 1, "crm.CustomerRegistered", b"{}")
        with pytest.raises(LogMoved):
            platform.app.recorder.insert_events(
                [event],
                event_log={(event.originator_id, 1): (str(uuid.uuid4()), bytes(32))},
                expect_first=head + 5,
            )
        assert platform.app.recorder.max_notification_id() == head
    finally:
        platform.close()


def test_a_fact_stored_behind_its_timestamp_is_the_fact_encoded() -> None:
    mapper = FactMapper(transcoder=OrjsonTranscoder())
    fields = {
        "event_id": str(uuid.uuid4()),
        "occurred_at": "2026-01-31T23:59:59+08:00",
        "source": "core-banking",
        "actor": "batch:月结",
        "data": {
            "account_id": str(uuid.uuid4()),
            "balance": "1.00",
            "as_of": "2026-01-31",
        },
    }
    now = datetime.now(UTC)
    body = orjson.dumps(fields)
    version_two = type("VersionTwo", (), {"class_version": 2})
    for cls in (BalanceReported, version_two):
        encoded = mapper._encode(cls, {"timestamp": now, **fields})
        assert mapper._behind_timestamp(cls, now, body) == encoded


def test_a_lost_worker_leaves_the_rest_to_this_process(settings: Settings) -> None:
    platform = build_platform(settings)
    pipeline, worker, reports = _pipeline_with_a_worker(settings, platform)
    customers = [registered(name=f"郑{n}") for n in range(6)]
    try:
        pipeline.submit(customers[:2], [1, 2])
        pipeline.finish()
        for process in list(worker._pool._processes.values()):  # type: ignore[union-attr]
            process.kill()
            process.join()
        pipeline.submit(customers[2:4], [3, 4])
        pipeline.submit(customers[4:], [5, 6])
        pipeline.finish()
    finally:
        pipeline.close()
        worker.close()
    try:
        assert [r.count("stored") for r in reports] == [2, 2, 2]
        assert pipeline.worker is None
        assert platform.app.recorder.max_notification_id() is not None
        rows = platform.app.recorder.select_log_rows(0, 100)  # type: ignore[attr-defined]
        assert len(rows) == 6
    finally:
        platform.close()


@pytest.mark.skipif(
    not hasattr(fcntl, "F_GETPIPE_SZ")
    or int(Path("/proc/sys/fs/pipe-max-size").read_text()) < PIPE_BYTES,
    reason="pipes cannot grow to a batch's size here",
)
def test_the_pipes_to_and_from_the_worker_hold_a_whole_batch(
    settings: Settings,
) -> None:
    """A batch's decided rows (about 460 KB) cross in one write: through the
    default 64 KB pipes the worker waited on this process for every chunk."""
    worker = DecidingWorker(settings)
    try:
        pool = worker._pool
        for queue in (pool._call_queue, pool._result_queue):  # type: ignore[attr-defined]
            size = fcntl.fcntl(queue._reader.fileno(), fcntl.F_GETPIPE_SZ)
            assert size >= PIPE_BYTES
    finally:
        worker.close()
