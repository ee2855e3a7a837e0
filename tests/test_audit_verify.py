"""Tamper evidence: the chain is recomputed, every tamper is caught and located, on both backends.

The tampering helpers disable the append-only triggers first, as an attacker with
database access would (PostgreSQL: DISABLE TRIGGER as superuser; SQLite: DROP TRIGGER).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg
import pytest
from typer.testing import CliRunner

from api.audit.checkpoint import (
    BadCheckpoint,
    generate_keys,
    load_checkpoint,
    load_private_key,
    sign_head,
    write_checkpoint,
)
from api.audit.verify import verify_log
from api.bootstrap import Platform
from api.store.chain import GENESIS, link
from tests.factories import account_opened, registered


@pytest.fixture(autouse=True)
def _logging_restored() -> Iterator[None]:
    """The commands bind structlog to the runner's captured stderr, which closes after each run."""
    import structlog

    saved = structlog.get_config()
    yield
    structlog.configure(**saved)


NAMES = [
    "王芳",
    "李娜",
    "张伟",
    "刘洋",
    "陈静",
    "杨磊",
    "赵敏",
    "黄晓明",
    "周婷",
    "吴强",
]
LINES = [
    "北京市朝阳区建国路88号3号楼2单元501室",
    "上海市浦东新区世纪大道100号15楼1502室",
    "广州市天河区天河路385号太古汇2座1203室",
    "深圳市南山区科技园南区高新南七道18号",
    "杭州市西湖区文三路478号华星时代广场A座",
]


def fill(platform: Platform, customers: int = 10) -> int:
    events: list[dict[str, Any]] = []
    for i in range(customers):
        customer = registered(name=NAMES[i % len(NAMES)], line=LINES[i % len(LINES)])
        events += [customer, account_opened(customer["data"]["customer_id"])]
    platform.ingestor.ingest(events, atomic=True)
    return int(platform.app.recorder.max_notification_id() or 0)


class Attacker:
    """Raw access to the database, with the append-only triggers out of the way."""

    def __init__(self, platform: Platform) -> None:
        self.settings = platform.settings
        self.postgres = platform.settings.is_postgres
        self.events = "crm_events" if self.postgres else "stored_events"
        self.pos = "notification_id" if self.postgres else "rowid"

    @contextmanager
    def connect(self) -> Iterator[Any]:
        if self.postgres:
            with psycopg.connect(self.settings.database_url, autocommit=True) as conn:
                for table in (self.events, "crm_event_log"):
                    conn.execute(f"ALTER TABLE {table} DISABLE TRIGGER ALL")
                yield conn
        else:
            lite = sqlite3.connect(self.settings.sqlite_path, isolation_level=None)
            try:
                for trigger in (
                    "stored_events_no_update",
                    "stored_events_no_delete",
                    "crm_event_log_no_update",
                    "crm_event_log_no_delete",
                ):
                    lite.execute(f"DROP TRIGGER IF EXISTS {trigger}")
                yield lite
            finally:
                lite.close()

    def sql(self, text: str) -> str:
        return text if self.postgres else text.replace("%s", "?")

    def state(self, conn: Any, position: int) -> bytes:
        row = conn.execute(
            self.sql(f"SELECT state FROM {self.events} WHERE {self.pos} = %s"),
            (position,),
        ).fetchone()
        return bytes(row[0])

    def set_state(self, conn: Any, position: int, state: bytes) -> None:
        conn.execute(
            self.sql(f"UPDATE {self.events} SET state = %s WHERE {self.pos} = %s"),
            (state, position),
        )

    def alter(self, position: int) -> None:
        with self.connect() as conn:
            state = self.state(conn, position)
            self.set_state(
                conn,
                position,
                state.replace("北京".encode(), "南京".encode())
                if "北京".encode() in state
                else state + b" ",
            )

    def delete_event(self, position: int, with_log_row: bool) -> None:
        with self.connect() as conn:
            conn.execute(
                self.sql(f"DELETE FROM {self.events} WHERE {self.pos} = %s"),
                (position,),
            )
            if with_log_row:
                conn.execute(
                    self.sql("DELETE FROM crm_event_log WHERE position = %s"),
                    (position,),
                )

    def insert_event(self, copy_of: int, position: int) -> None:
        """A forged event at `position`, with no row in the index."""
        import uuid

        with self.connect() as conn:
            row = conn.execute(
                self.sql(
                    f"SELECT originator_version, topic, state FROM {self.events} WHERE {self.pos} = %s"
                ),
                (copy_of,),
            ).fetchone()
            oid: Any = uuid.uuid4() if self.postgres else str(uuid.uuid4())
            conn.execute(
                self.sql(
                    f"INSERT INTO {self.events} (originator_id, originator_version, topic, state, {self.pos}) VALUES (%s, %s, %s, %s, %s)"
                ),
                (oid, row[0], row[1], row[2], position),
            )

    def swap(self, first: int, second: int) -> None:
        with self.connect() as conn:
            a, b = self.state(conn, first), self.state(conn, second)
            self.set_state(conn, first, b)
            self.set_state(conn, second, a)

    def rewrite_chain(self, from_position: int) -> None:
        """Alters one event and recomputes every chain hash after it, as a careful attacker would."""
        self.alter(from_position)
        with self.connect() as conn:
            rows = conn.execute(
                f"SELECT {self.pos}, originator_id, originator_version, topic, state FROM {self.events} ORDER BY {self.pos}"
            ).fetchall()
            previous = GENESIS
            for position, oid, version, topic, state in rows:
                previous = link(previous, position, oid, version, topic, bytes(state))
                if position >= from_position:
                    conn.execute(
                        self.sql(
                            "UPDATE crm_event_log SET chain_hash = %s WHERE position = %s"
                        ),
                        (previous, position),
                    )


def test_an_untouched_log_verifies(platform: Platform) -> None:
    head = fill(platform)
    report = verify_log(platform.db, page=7)
    assert report.ok, report.as_json()
    assert report.checked == head
    assert report.head_position == head
    with platform.db.transaction() as cur:
        stored = cur.execute(
            "SELECT chain_hash FROM crm_event_log WHERE position = %s", (head,)
        ).fetchone()
    assert stored is not None
    assert report.as_json()["head"]["hash"] == bytes(stored["chain_hash"]).hex()


def test_an_empty_log_verifies(platform: Platform) -> None:
    report = verify_log(platform.db)
    assert report.as_json() == {
        "ok": True,
        "checked": 0,
        "head": {"position": 0, "hash": GENESIS.hex()},
        "first_mismatch": None,
        "altered_positions": [],
        "checkpoint": None,
    }


@pytest.mark.parametrize("position", [1, 9, 20])
def test_altered_event_bytes_are_caught_at_their_position(
    platform: Platform, position: int
) -> None:
    fill(platform)
    Attacker(platform).alter(position)
    report = verify_log(platform.db, page=4)
    assert not report.ok
    assert report.first_mismatch is not None
    assert (report.first_mismatch.position, report.first_mismatch.kind) == (
        position,
        "chain_hash",
    )
    assert report.altered_positions == [position]
    assert report.checked == 20


def test_a_deleted_event_is_caught(platform: Platform) -> None:
    fill(platform)
    Attacker(platform).delete_event(7, with_log_row=False)
    report = verify_log(platform.db, page=5)
    assert report.first_mismatch is not None
    assert (report.first_mismatch.position, report.first_mismatch.kind) == (
        7,
        "log_row_without_event",
    )
    assert report.altered_positions == [7]


def test_an_event_deleted_with_its_index_row_breaks_the_next_link(
    platform: Platform,
) -> None:
    fill(platform)
    Attacker(platform).delete_event(7, with_log_row=True)
    report = verify_log(platform.db, page=5)
    assert report.first_mismatch is not None
    assert (report.first_mismatch.position, report.first_mismatch.kind) == (
        8,
        "chain_hash",
    )
    assert report.altered_positions == [8]
    assert report.checked == 19


def test_an_inserted_event_is_caught(platform: Platform) -> None:
    head = fill(platform)
    Attacker(platform).insert_event(copy_of=3, position=head + 1)
    report = verify_log(platform.db, page=6)
    assert report.first_mismatch is not None
    assert (report.first_mismatch.position, report.first_mismatch.kind) == (
        head + 1,
        "event_without_log_row",
    )
    assert report.checked == head + 1


def test_swapped_events_are_both_located(platform: Platform) -> None:
    fill(platform)
    Attacker(platform).swap(4, 15)
    report = verify_log(platform.db, page=3)
    assert report.first_mismatch is not None
    assert report.first_mismatch.position == 4
    assert report.altered_positions == [4, 15]


def test_a_rewritten_chain_passes_alone_but_fails_the_signed_checkpoint(
    platform: Platform, tmp_path: Path
) -> None:
    fill(platform)
    generate_keys(tmp_path / "private.pem", tmp_path / "public.pem")
    document = sign_head(
        verify_log(platform.db), load_private_key(tmp_path / "private.pem")
    )
    write_checkpoint(document, tmp_path / "checkpoint.json")
    checkpoint = load_checkpoint(tmp_path / "checkpoint.json", tmp_path / "public.pem")
    assert verify_log(platform.db, checkpoint=checkpoint).ok
    fill(platform, customers=2)  # the log grows past the checkpoint
    Attacker(platform).rewrite_chain(from_position=5)
    assert verify_log(platform.db).ok  # the chain alone cannot tell
    report = verify_log(platform.db, checkpoint=checkpoint, page=6)
    assert not report.ok
    assert report.first_mismatch is not None
    assert (report.first_mismatch.position, report.first_mismatch.kind) == (
        20,
        "checkpoint",
    )
    assert report.checkpoint == {"position": 20, "ok": False}


def test_a_forged_checkpoint_is_refused(platform: Platform, tmp_path: Path) -> None:
    fill(platform, customers=2)
    generate_keys(tmp_path / "private.pem", tmp_path / "public.pem")
    generate_keys(tmp_path / "other.pem", tmp_path / "other.pub")
    document = sign_head(
        verify_log(platform.db), load_private_key(tmp_path / "private.pem")
    )
    write_checkpoint(document, tmp_path / "checkpoint.json")
    with pytest.raises(BadCheckpoint):
        load_checkpoint(tmp_path / "checkpoint.json", tmp_path / "other.pub")
    document["statement"]["position"] = 3
    write_checkpoint(document, tmp_path / "edited.json")
    with pytest.raises(BadCheckpoint):
        load_checkpoint(tmp_path / "edited.json", tmp_path / "public.pem")


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE {events} SET state = state WHERE {pos} = 1",
        "DELETE FROM {events} WHERE {pos} = 1",
        "UPDATE crm_event_log SET chain_hash = content_hash WHERE position = 1",
        "DELETE FROM crm_event_log WHERE position = 1",
    ],
)
def test_the_triggers_refuse_updates_and_deletes(
    platform: Platform, statement: str
) -> None:
    fill(platform, customers=1)
    attacker = Attacker(platform)
    sql = statement.format(events=attacker.events, pos=attacker.pos)
    with (
        pytest.raises(Exception, match="append-only"),
        platform.db.transaction() as cur,
    ):
        cur.execute(sql)
    assert verify_log(platform.db).ok


def test_truncate_is_refused_on_postgresql(platform: Platform) -> None:
    if not platform.settings.is_postgres:
        pytest.skip(reason="SQLite has no TRUNCATE")
    fill(platform, customers=1)
    for table in ("crm_events", "crm_event_log"):
        with (
            pytest.raises(psycopg.Error, match="append-only"),
            platform.db.transaction() as cur,
        ):
            cur.execute(f"TRUNCATE {table}")
    assert verify_log(platform.db).checked == 2


def test_the_commands_sign_and_check_a_checkpoint(
    platform: Platform, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import orjson
    import typer

    from api.audit.cli import audit_cli
    from tests.conftest import SECRET

    monkeypatch.setenv("CRM_DATABASE_URL", platform.settings.database_url)
    monkeypatch.setenv("CRM_SECRET_KEY", SECRET)
    monkeypatch.setenv("CRM_LOG_LEVEL", "WARNING")
    app = typer.Typer()
    app.add_typer(audit_cli, name="audit")
    runner = CliRunner()
    head = fill(platform, customers=3)
    private, public, saved = (
        tmp_path / "audit.key",
        tmp_path / "audit.pub",
        tmp_path / "cp.json",
    )
    assert (
        runner.invoke(
            app,
            [
                "audit",
                "keygen",
                "--out-private",
                str(private),
                "--out-public",
                str(public),
            ],
        ).exit_code
        == 0
    )
    made = runner.invoke(
        app, ["audit", "checkpoint", "--private-key", str(private), "--out", str(saved)]
    )
    assert made.exit_code == 0, made.output
    assert orjson.loads(saved.read_bytes())["statement"]["position"] == head
    args = ["audit", "verify", "--checkpoint", str(saved), "--public-key", str(public)]
    good = runner.invoke(app, args)
    assert good.exit_code == 0, good.output
    assert orjson.loads(good.stdout)["checkpoint"] == {"position": head, "ok": True}
    Attacker(platform).rewrite_chain(from_position=2)
    bad = runner.invoke(app, args)
    assert bad.exit_code == 1
    assert orjson.loads(bad.stdout)["first_mismatch"]["kind"] == "checkpoint"
    assert (
        runner.invoke(app, ["audit", "verify"]).exit_code == 0
    )  # without the checkpoint, nothing shows
    refused = runner.invoke(
        app,
        [
            "audit",
            "checkpoint",
            "--private-key",
            str(private),
            "--out",
            str(tmp_path / "x.json"),
        ],
    )
    assert (
        refused.exit_code == 0
    )  # the rewritten chain is self-consistent, so it can be signed anew
    Attacker(platform).alter(1)
    refused = runner.invoke(
        app,
        [
            "audit",
            "checkpoint",
            "--private-key",
            str(private),
            "--out",
            str(tmp_path / "y.json"),
        ],
    )
    assert refused.exit_code == 1 and not (tmp_path / "y.json").exists()


def test_a_truncated_tail_is_caught_by_the_checkpoint(
    platform: Platform, tmp_path: Path
) -> None:
    head = fill(platform, customers=3)
    generate_keys(tmp_path / "private.pem", tmp_path / "public.pem")
    document = sign_head(
        verify_log(platform.db), load_private_key(tmp_path / "private.pem")
    )
    write_checkpoint(document, tmp_path / "checkpoint.json")
    checkpoint = load_checkpoint(tmp_path / "checkpoint.json", tmp_path / "public.pem")
    Attacker(platform).delete_event(head, with_log_row=True)
    assert verify_log(platform.db).ok  # a clean cut at the end leaves a sound chain
    report = verify_log(platform.db, checkpoint=checkpoint)
    assert report.first_mismatch is not None
    assert report.first_mismatch.kind == "checkpoint_position_missing"
    assert report.first_mismatch.position == head
