"""The `crm` command end to end (migrate, keys, ingest) on both backends."""

from __future__ import annotations

import uuid
from pathlib import Path

import orjson
import pytest
from typer.testing import CliRunner

from api.bootstrap import build_platform
from api.cli import cli
from api.keys import authenticate
from api.settings import Settings
from tests.factories import account_opened, envelope, registered


@pytest.fixture
def run(settings: Settings, monkeypatch: pytest.MonkeyPatch, tmp_path: Path):  # type: ignore[no-untyped-def]
    monkeypatch.setenv("CRM_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("CRM_SECRET_KEY", "cli-test-key")
    monkeypatch.setenv("CRM_LOG_FORMAT", "json")
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()

    def invoke(*args: str, stdin: str | None = None):  # type: ignore[no-untyped-def]
        return runner.invoke(cli, list(args), input=stdin)

    return invoke


def write_lines(path: Path, lines: list[object]) -> Path:
    path.write_text(
        "\n".join(x if isinstance(x, str) else orjson.dumps(x).decode() for x in lines)
        + "\n"
    )
    return path


def test_migrate_then_nothing_pending(run) -> None:  # type: ignore[no-untyped-def]
    first = run("migrate")
    assert first.exit_code == 0, first.output
    second = run("migrate")
    assert second.exit_code == 0
    assert "applied 0 migration(s)" in second.output


def test_keys_create_prints_the_key_last_and_revoke_disables_it(
    run, settings: Settings
) -> None:  # type: ignore[no-untyped-def]
    result = run("keys", "create", "--role", "read")
    assert result.exit_code == 0, result.output
    key = result.output.strip().splitlines()[-1]
    platform = build_platform(
        Settings(database_url=settings.database_url, secret_key="cli-test-key")
    )
    try:
        found = authenticate(platform.db, key)
        assert found is not None
        assert found.role == "read"
        assert run("keys", "revoke", key).exit_code == 0
        assert authenticate(platform.db, key) is None
    finally:
        platform.close()
    bad = run("keys", "create", "--role", "superuser")
    assert bad.exit_code != 0
    assert "unknown role" in bad.output


def test_ingest_reports_bad_lines_and_stores_the_good_ones_once(
    run, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    customer = registered(name="刘洋")
    cid = customer["data"]["customer_id"]
    bad_type = registered()
    bad_type["data"]["name"] = 42
    lines = [
        customer,
        account_opened(cid),
        "{truncated",
        bad_type,
        envelope(
            "CustomerMoved",
            {
                "customer_id": str(uuid.uuid4()),
                "address": {"line": "成都市武侯区人民南路四段1号"},
            },
        ),
    ]
    path = write_lines(tmp_path / "events.jsonl", lines)
    first = run("ingest", str(path))
    assert first.exit_code == 1
    assert "stored 2, duplicates 0, rejected 3" in first.output
    assert "line 3: not valid JSON" in first.output
    assert "line 4: data.name" in first.output
    assert "line 5: data.customer_id" in first.output
    again = run("ingest", str(path))
    assert "stored 0, duplicates 2, rejected 3" in again.output
    clean = write_lines(tmp_path / "clean.jsonl", [customer])
    assert run("ingest", str(clean)).exit_code == 0


def test_ingest_from_stdin_and_strict_mode(run, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    customer = registered()
    broken = registered()
    broken["data"]["address"] = {}
    stdin = "\n".join(orjson.dumps(x).decode() for x in [customer, broken]) + "\n"
    strict = run("ingest", "-", "--strict", stdin=stdin)
    assert strict.exit_code == 1
    assert "line 2: data.address.line" in strict.output
    assert "nothing from this batch was stored" in strict.output
    relaxed = run("ingest", "-", stdin=stdin)
    assert "stored 1, duplicates 0, rejected 1" in relaxed.output


def test_ingest_of_a_missing_file_is_a_clear_error(run) -> None:  # type: ignore[no-untyped-def]
    result = run("ingest", "no-such-file.jsonl")
    assert result.exit_code == 2
    assert "no such file" in result.output


def test_the_monthly_balance_csv_is_idempotent_per_account_and_date(
    run, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    customer = registered(name="周敏")
    cid = customer["data"]["customer_id"]
    opened = account_opened(cid)
    aid = opened["data"]["account_id"]
    assert (
        run(
            "ingest", str(write_lines(tmp_path / "setup.jsonl", [customer, opened]))
        ).exit_code
        == 0
    )
    csv_file = tmp_path / "balances-2025-01.csv"
    csv_file.write_text(
        f"account_id,balance,as_of\n{aid},12000.50,2025-01-31\n{aid},oops,2025-02-28\n{uuid.uuid4()},1.00,2025-01-31\n"
    )
    first = run("ingest", str(csv_file))
    assert first.exit_code == 1
    assert "stored 1, duplicates 0, rejected 2" in first.output
    assert "line 3:" in first.output
    assert "line 4: data.account_id" in first.output
    again = run("ingest", str(csv_file))
    assert "stored 0, duplicates 1, rejected 2" in again.output


def test_a_balance_csv_without_its_columns_is_refused_before_any_row(
    run, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    csv_file = tmp_path / "balances.csv"
    csv_file.write_text(f"account_id,balance\n{uuid.uuid4()},1.00\n")
    result = run("ingest", str(csv_file))
    assert result.exit_code == 2
    assert "the header lacks as_of" in result.output
    assert "line 2" not in result.output
    spaced = tmp_path / "spaced.csv"
    spaced.write_text(f"account_id, balance, as_of\n{uuid.uuid4()},1.00,2025-01-31\n")
    assert "data.account_id" in run("ingest", str(spaced)).output  # read, then refused


@pytest.mark.parametrize(
    ("source", "problem"), [("", "at least 1"), ("a\x07b", "control")]
)
def test_a_balance_csv_source_the_catalogue_refuses_is_refused_once(
    run, tmp_path: Path, source: str, problem: str
) -> None:  # type: ignore[no-untyped-def]
    csv_file = tmp_path / "balances.csv"
    csv_file.write_text(f"account_id,balance,as_of\n{uuid.uuid4()},1.00,2025-01-31\n")
    result = run("ingest", str(csv_file), "--source", source)
    assert result.exit_code == 2
    assert "--source:" in result.output and problem in result.output
    assert "line 2" not in result.output


def test_demo_builds_households_through_the_ingest_path(
    run, settings: Settings
) -> None:  # type: ignore[no-untyped-def]
    result = run("demo", "--households", "4", "--seed", "3")
    assert result.exit_code == 0, result.output
    assert "rejected 0" in result.output
    platform = build_platform(
        Settings(database_url=settings.database_url, secret_key="cli-test-key")
    )
    try:
        with platform.db.transaction() as cur:
            households = cur.execute("SELECT count(*) AS n FROM households").fetchone()
            logged = cur.execute("SELECT count(*) AS n FROM crm_event_log").fetchone()
        assert households["n"] >= 4
        assert (
            platform.runner.min_position()
            == platform.app.recorder.max_notification_id()
        )
        again = run("demo", "--households", "4", "--seed", "3")
        assert "stored 0" in again.output
        with platform.db.transaction() as cur:
            assert (
                cur.execute("SELECT count(*) AS n FROM crm_event_log").fetchone()
                == logged
            )
    finally:
        platform.close()
