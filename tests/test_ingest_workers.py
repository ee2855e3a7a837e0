"""`crm ingest` validating in worker processes gives the same answers as in one process."""

from __future__ import annotations

import uuid
from concurrent.futures import Future
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path

import orjson
import pytest
from typer.testing import CliRunner

from api.cli import cli
from api.settings import Settings
from api.store.prepare import (
    Invalid,
    Pending,
    Prepared,
    Preparer,
    parse_json_line,
    prepare,
)
from tests.factories import account_opened, envelope, registered


def _lines() -> list[object]:
    lines: list[object] = []
    for n in range(12):
        customer = registered(name=f"王{n}")
        lines += [customer, account_opened(customer["data"]["customer_id"])]
    bad = registered()
    bad["data"]["name"] = 42
    lines[5:5] = ["{truncated"]
    lines[17:17] = [bad]
    lines.append(
        envelope(
            "CustomerMoved",
            {
                "customer_id": str(uuid.uuid4()),
                "address": {"line": "上海市浦东新区张杨路812弄"},
            },
        )
    )
    lines.append(lines[0])  # a retry of the first line: a duplicate
    return lines


def _ingest(
    settings: Settings, path: Path, workers: str, monkeypatch: pytest.MonkeyPatch
) -> str:
    monkeypatch.setenv("CRM_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("CRM_SECRET_KEY", "worker-test-key")
    monkeypatch.setenv("CRM_INGEST_WORKERS", workers)
    result = CliRunner().invoke(cli, ["ingest", str(path), "--batch-size", "4"])
    assert result.exit_code == 1, result.output
    return result.output


@pytest.mark.parametrize("workers", ["0", "1"])
def test_workers_store_and_report_exactly_what_one_process_does(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, workers: str
) -> None:
    path = tmp_path / "events.jsonl"
    path.write_text(
        "\n".join(
            x if isinstance(x, str) else orjson.dumps(x).decode() for x in _lines()
        )
        + "\n"
    )
    output = _ingest(settings, path, workers, monkeypatch)
    assert "stored 24, duplicates 1, rejected 3" in output
    assert "line 6: not valid JSON" in output
    assert "line 18: data.name" in output
    assert "line 27: data.customer_id" in output
    again = _ingest(settings, path, workers, monkeypatch)
    assert "stored 0, duplicates 25, rejected 3" in again


def test_a_lost_worker_falls_back_to_this_process() -> None:
    raw = [registered(), {"type": "Nope"}]
    broken: Future[list[Prepared | Invalid]] = Future()
    broken.set_exception(BrokenProcessPool("worker killed"))
    preparer = Preparer(b"k", workers=1)
    result = Pending(raw, broken, preparer).result()
    assert [type(r) for r in result] == [Prepared, Invalid]
    assert result[0] == prepare(raw[0], b"k")
    assert preparer.workers == 0  # no more batches sent to a broken pool


@pytest.mark.parametrize("workers", ["0", "1"])
def test_strict_mode_stops_at_a_line_that_is_not_json(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, workers: str
) -> None:
    first_batch = [registered(name=f"李{n}") for n in range(4)]
    second_batch = [registered(name="赵敏"), "not json at all", registered()]
    path = tmp_path / "events.jsonl"
    path.write_text(
        "\n".join(
            x if isinstance(x, str) else orjson.dumps(x).decode()
            for x in first_batch + second_batch
        )
        + "\n"
    )
    monkeypatch.setenv("CRM_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("CRM_SECRET_KEY", "worker-test-key")
    monkeypatch.setenv("CRM_INGEST_WORKERS", workers)
    args = ["ingest", str(path), "--batch-size", "4", "--strict"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 1, result.output
    assert "line 6: not valid JSON" in result.output
    assert "stopped at line 6 (--strict)" in result.output
    relaxed = CliRunner().invoke(cli, ["ingest", str(path), "--batch-size", "4"])
    # The strict run stored the first batch only; the second line-6 batch was not.
    assert "stored 2, duplicates 4, rejected 1" in relaxed.output, relaxed.output


def test_a_batch_posted_as_json_text_is_not_parsed_again() -> None:
    """Only `crm ingest` sends lines of text; a posted string stays a bad event."""
    text = orjson.dumps(registered()).decode()
    (result,) = Preparer(b"k", workers=0).here([text])
    assert isinstance(result, Invalid) and result.parsed
    (line,) = Preparer(b"k", workers=0, parse=parse_json_line).here([text])
    assert isinstance(line, Prepared)


@pytest.mark.parametrize("workers", ["0", "1"])
def test_balance_rows_are_parsed_and_reported_alike_in_a_worker(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, workers: str
) -> None:
    """The CSV rows go to the worker as read; bad rows keep their line numbers."""
    customer = registered(name="钱芳")
    opened = [account_opened(customer["data"]["customer_id"]) for _ in range(3)]
    setup = tmp_path / "setup.jsonl"
    setup.write_text("\n".join(orjson.dumps(x).decode() for x in [customer, *opened]))
    accounts = [o["data"]["account_id"] for o in opened]
    rows = [f"{a},{n}.25,2026-0{n + 1}-28" for n, a in enumerate(accounts)]
    rows += [
        f"{accounts[0]},12.345,2026-05-31",  # line 5: three decimals
        "",  # a blank line is no row
        f"{accounts[1]},7.00",  # line 7: no date
        "not-a-uuid,1.00,2026-05-31",  # line 8
        f"{uuid.uuid4()},1.00,2026-05-31",  # line 9: no such account
        f'{accounts[2]},"1,000.00",2026-05-31',  # line 10: quoted, still no decimal
        f"{accounts[2]},1000.00,2026-06-30",
        f"{accounts[1]},1e40,2026-07-31",  # line 12: beyond decimal arithmetic
        f"{accounts[1]},123456789012345678901.00,2026-07-31",  # 13: 23 digits
    ]
    path = tmp_path / "balances.csv"
    path.write_text("account_id,balance,as_of\n" + "\n".join(rows) + "\n")
    monkeypatch.setenv("CRM_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("CRM_SECRET_KEY", "worker-test-key")
    monkeypatch.setenv("CRM_INGEST_WORKERS", workers)
    runner = CliRunner()
    assert runner.invoke(cli, ["ingest", str(setup)]).exit_code == 0
    result = runner.invoke(cli, ["ingest", str(path), "--batch-size", "2"])
    assert result.exit_code == 1, result.output
    assert "stored 4, duplicates 0, rejected 7" in result.output
    assert "line 5: balance must have at most 2 decimals" in result.output
    assert "line 7: as_of is missing" in result.output
    assert "line 8: account_id is not a UUID" in result.output
    assert "line 9: data.account_id" in result.output
    assert "line 10: balance is not a decimal number" in result.output
    assert "line 12: balance is too large" in result.output
    assert "line 13: data.balance" in result.output
    again = runner.invoke(cli, ["ingest", str(path), "--batch-size", "2"])
    assert "stored 0, duplicates 4, rejected 7" in again.output
