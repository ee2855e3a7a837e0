"""The event store on both backends: migrations, idempotent and atomic ingest, old events."""

from __future__ import annotations

import json
import sqlite3
import threading
import traceback
from pathlib import Path
from typing import Any, cast
from uuid import UUID

import pytest
from eventsourcing.persistence import StoredEvent

from api.bootstrap import Platform, build_platform
from api.settings import Settings
from api.store.chain import GENESIS, link
from api.store.database import SQLiteDatabase
from api.store.ingest import BatchRejected
from api.store.migrate import apply_migrations
from api.store.recorders import ReadsLogRows
from domain.account import Account
from domain.customer import Customer
from projections.records import decode, decode_row
from tests.factories import account_opened, contact_logged, envelope, new_id, registered

FIXTURES = Path(__file__).parent / "fixtures"


def positions(platform: Platform) -> int:
    return platform.app.recorder.max_notification_id() or 0


def test_migrations_apply_to_an_empty_database_once(settings: Settings) -> None:
    assert (
        apply_migrations(settings) != [] or settings.is_postgres
    )  # the PG template is pre-migrated
    assert apply_migrations(settings) == []
    platform = build_platform(settings)
    try:
        report = platform.ingestor.ingest([registered()], atomic=True)
        assert report.outcomes[0].status == "stored"
    finally:
        platform.close()


def test_reposting_the_same_events_stores_nothing_twice(platform: Platform) -> None:
    customer = registered(name="陈静", national_id="440106198507071234")
    batch = [customer, account_opened(customer["data"]["customer_id"])]
    first = platform.ingestor.ingest(batch, atomic=True)
    head = positions(platform)
    second = platform.ingestor.ingest(batch, atomic=True)
    assert [o.status for o in first.outcomes] == ["stored", "stored"]
    assert [o.status for o in second.outcomes] == ["duplicate", "duplicate"]
    assert [o.position for o in second.outcomes] == [o.position for o in first.outcomes]
    assert positions(platform) == head == 2


def test_the_same_event_twice_in_one_batch_is_stored_once(platform: Platform) -> None:
    customer = registered()
    report = platform.ingestor.ingest([customer, dict(customer)], atomic=True)
    assert [o.status for o in report.outcomes] == ["stored", "duplicate"]
    assert report.outcomes[0].position == report.outcomes[1].position
    assert positions(platform) == 1


def test_same_event_id_with_other_content_is_a_conflict(platform: Platform) -> None:
    customer = registered(name="赵磊")
    platform.ingestor.ingest([customer], atomic=True)
    changed = json.loads(json.dumps(customer))
    changed["data"]["name"] = "赵蕾"
    with pytest.raises(BatchRejected) as caught:
        platform.ingestor.ingest([registered(), changed], atomic=True)
    assert caught.value.status == 409
    assert caught.value.problems[0].event_id == customer["event_id"]
    assert positions(platform) == 1


def test_an_atomic_batch_with_one_bad_event_stores_nothing(platform: Platform) -> None:
    good = registered()
    unknown_account = envelope(
        "BalanceReported",
        {"account_id": new_id(), "balance": "1.00", "as_of": "2025-01-31"},
    )
    with pytest.raises(BatchRejected) as caught:
        platform.ingestor.ingest([good, unknown_account], atomic=True)
    assert caught.value.code == "unknown_entity"
    assert caught.value.problems[0].index == 1
    invalid = registered()
    invalid["data"]["address"] = {"city": "北京市"}
    with pytest.raises(BatchRejected) as caught:
        platform.ingestor.ingest([good, invalid], atomic=True)
    assert caught.value.problems[0].field == "data.address.line"
    assert positions(platform) == 0


def test_a_non_atomic_batch_stores_the_good_events(platform: Platform) -> None:
    good = registered()
    bad = envelope(
        "CustomerMoved",
        {"customer_id": new_id(), "address": {"line": "深圳市南山区科技园路1号"}},
    )
    report = platform.ingestor.ingest(
        [good, bad, account_opened(good["data"]["customer_id"])], atomic=False
    )
    assert [o.status for o in report.outcomes] == ["stored", "rejected", "stored"]
    assert (
        report.outcomes[1].error is not None
        and report.outcomes[1].error.code == "unknown_entity"
    )
    assert positions(platform) == 2


def test_a_sqlite_file_locked_by_another_writer_is_switched_to_wal_once_free(
    tmp_path: Path,
) -> None:
    """The switch to WAL fails at once while another connection holds a lock;
    the store tries again rather than failing the request that opened it."""
    path = tmp_path / "crm.db"
    other = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    other.execute("CREATE TABLE t (x)")
    assert other.execute("PRAGMA journal_mode").fetchone() == ("delete",)
    other.execute("BEGIN IMMEDIATE")
    other.execute("INSERT INTO t VALUES (1)")
    release = threading.Timer(0.3, lambda: other.execute("COMMIT"))
    release.start()
    db = SQLiteDatabase(str(path))
    try:
        with db.read() as cur:
            assert cur.execute("SELECT count(*) AS n FROM t").fetchone() == {"n": 1}
            assert cur.execute("PRAGMA journal_mode").fetchone() == {
                "journal_mode": "wal"
            }
    finally:
        release.join()
        db.close()
        other.close()


def test_concurrent_writers_never_store_an_event_twice(platform: Platform) -> None:
    customers = [registered(name=f"客户{i}") for i in range(40)]
    errors: list[str] = []  # with their tracebacks, to say where a rare one came from

    def post(offset: int) -> None:
        try:
            for start in range(0, 40, 8):
                chunk = customers[(start + offset) % 40 : (start + offset) % 40 + 8]
                platform.ingestor.ingest(chunk, atomic=True)
        except BaseException:  # pragma: no cover - reported below
            errors.append(traceback.format_exc())

    threads = [threading.Thread(target=post, args=(i * 8,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    with platform.db.transaction() as cur:
        logged = cur.execute(
            "SELECT count(*) AS n, count(DISTINCT event_id) AS ids FROM crm_event_log"
        ).fetchone()
    assert logged == {"n": 40, "ids": 40}
    assert len(platform.app.recorder.select_notifications(1, 1000)) == 40


def test_the_chain_links_every_event_in_position_order(platform: Platform) -> None:
    customer = registered()
    platform.ingestor.ingest(
        [customer, account_opened(customer["data"]["customer_id"])], atomic=True
    )
    platform.ingestor.ingest([registered()], atomic=True)
    with platform.db.transaction() as cur:
        rows = cur.execute(
            "SELECT position, chain_hash FROM crm_event_log ORDER BY position"
        ).fetchall()
    previous = GENESIS
    for notification, row in zip(
        platform.app.recorder.select_notifications(1, 10), rows, strict=True
    ):
        previous = link(
            previous,
            notification.id,
            notification.originator_id,
            notification.originator_version,
            notification.topic,
            notification.state,
        )
        assert bytes(row["chain_hash"]) == previous


def load_frozen(platform: Platform) -> list[dict[str, Any]]:
    frozen = json.loads((FIXTURES / "stored_events_v1.json").read_text())
    stored = [
        StoredEvent(
            originator_id=UUID(item["originator_id"]),
            originator_version=item["originator_version"],
            topic=item["topic"],
            state=json.dumps(item["state"], ensure_ascii=False).encode(),
        )
        for item in frozen
    ]
    event_log = {
        (s.originator_id, s.originator_version): (
            json.loads(s.state)["event_id"],
            b"frozen",
        )
        for s in stored
    }
    platform.app.recorder.insert_events(stored, event_log=event_log)
    return frozen


def test_frozen_v1_stored_events_still_load(platform: Platform) -> None:
    frozen = load_frozen(platform)
    customer = platform.app.repository.get(UUID(frozen[0]["originator_id"]))
    assert isinstance(customer, Customer)
    assert customer.name == "张伟"
    assert customer.address == {
        "line": "上海市浦东新区世纪大道100弄5号1202室",
        "city": "上海市",
        "country": "CN",
    }
    account = platform.app.repository.get(UUID(frozen[2]["originator_id"]))
    assert isinstance(account, Account)
    assert account.customer_id == frozen[0]["originator_id"]
    # and new events can follow the old ones on the same streams
    moved = envelope(
        "CustomerMoved",
        {
            "customer_id": frozen[0]["originator_id"],
            "address": {"line": "杭州市西湖区文三路90号"},
        },
    )
    assert platform.ingestor.ingest([moved], atomic=True).outcomes[0].status == "stored"


def test_the_views_read_of_the_log_decodes_as_the_librarys_does(
    platform: Platform,
) -> None:
    """The rows the views read (`select_log_rows`, decoded from the stored JSON,
    or through the mapper for an old version) equal the library's notifications
    decoded event by event: the frozen v1 events are upcast on both paths."""
    frozen = load_frozen(platform)
    customer = registered()
    platform.ingestor.ingest(
        [customer, account_opened(customer["data"]["customer_id"])], atomic=True
    )
    app = platform.app
    recorder = cast(ReadsLogRows, app.recorder)
    by_rows = [decode_row(app, row) for row in recorder.select_log_rows(0, 100)]
    by_library = [decode(app, n) for n in app.recorder.select_notifications(1, 100)]
    assert by_rows == by_library
    assert len(by_rows) == len(frozen) + 2
    assert by_rows[0].stream_id == frozen[0]["originator_id"]
    assert by_rows[0].data["address"]["country"] == "CN"  # added by the upcaster
    assert "country" not in frozen[0]["state"]["data"]["address"]
    assert recorder.select_log_rows(by_rows[-2].position, 100) == [
        recorder.select_log_rows(0, 100)[-1]
    ]


def test_positions_follow_the_order_events_were_posted_in(platform: Platform) -> None:
    first, second = registered(name="甲"), registered(name="乙")
    contact = envelope(
        "ContactLogged",
        {
            "contact_id": new_id(),
            "customer_id": first["data"]["customer_id"],
            "channel": "phone",
            "direction": "inbound",
            "topic": "咨询",
        },
    )
    batch = [
        first,
        second,
        contact,
        account_opened(second["data"]["customer_id"]),
        envelope(
            "CustomerMoved",
            {
                "customer_id": first["data"]["customer_id"],
                "address": {"line": "杭州市西湖区文三路90号"},
            },
        ),
    ]
    report = platform.ingestor.ingest(batch, atomic=True)
    positions_in_batch = [o.position for o in report.outcomes]
    assert positions_in_batch == sorted(positions_in_batch)
    stored_ids = [
        json.loads(n.state)["event_id"]
        for n in platform.app.recorder.select_notifications(1, 10)
    ]
    assert stored_ids == [e["event_id"] for e in batch]


def test_a_second_runner_waits_for_the_one_already_feeding_the_views(
    platform: Platform,
) -> None:
    from projections.registry import all_projections
    from projections.runner import PositionMoved, ProjectionRunner

    platform.ingestor.ingest(
        [registered(name="冯磊"), registered(name="韩梅")], atomic=True
    )
    platform.runner.start()  # as under crm serve: someone already feeds the views
    try:
        latecomer = ProjectionRunner(platform.app, platform.db, all_projections())

        def collide() -> int:
            raise PositionMoved("customers")

        latecomer.catch_up = collide  # type: ignore[method-assign]
        assert latecomer.bring_up_to_date(timeout=10)
        assert latecomer.min_position() == platform.app.recorder.max_notification_id()
    finally:
        platform.runner.stop()


def test_the_writer_caches_what_it_will_load_again_but_not_contacts(
    platform: Platform,
) -> None:
    customer = registered(name="郑爽")
    cid = customer["data"]["customer_id"]
    contact_id = new_id()
    contact = envelope(
        "ContactLogged",
        {
            "contact_id": contact_id,
            "customer_id": cid,
            "channel": "phone",
            "direction": "inbound",
            "topic": "信用卡账单",
        },
    )
    report = platform.ingestor.ingest([customer, contact], atomic=True)
    assert report.count("stored") == 2
    cache = platform.ingestor.cache
    assert isinstance(cache.get(UUID(cid)), Customer)
    assert cache.get(UUID(contact_id)) is None


def test_a_failed_save_stores_nothing_and_later_saves_chain_on_after_its_gap(
    platform: Platform,
) -> None:
    """A save that loses a race (here: a version already taken) is rolled back
    whole. On PostgreSQL it took its notification ids from the sequence under
    the table lock and leaves them unused: later saves follow the gap, the
    views read past it and the chain still verifies."""
    from eventsourcing.persistence import IntegrityError

    from api.audit.verify import verify_log

    customer = registered()
    platform.ingestor.ingest([customer], atomic=True)
    first = platform.app.recorder.select_notifications(1, 10)[0]
    clash = StoredEvent(first.originator_id, 1, first.topic, first.state)
    fresh = StoredEvent(UUID(new_id()), 1, first.topic, first.state)
    log = {
        (clash.originator_id, 1): (new_id(), b"c" * 32),
        (fresh.originator_id, 1): (new_id(), b"f" * 32),
    }
    with pytest.raises(IntegrityError):
        platform.app.recorder.insert_events([fresh, clash], event_log=log)
    assert positions(platform) == 1  # neither event of the failed save is stored
    report = platform.ingestor.ingest(
        [account_opened(customer["data"]["customer_id"]), registered()], atomic=True
    )
    stored = [o.position for o in report.outcomes]
    assert stored[1] == stored[0] + 1
    # On PostgreSQL the failed save left ids 2 and 3 unused. The ingestor, which
    # saw nobody else write, expected to save at 2: its save found the log moved
    # (ids 4 and 5 taken, rolled back, unused too) and was made again after looking.
    assert stored[0] == (6 if platform.settings.is_postgres else 2)  # after the gaps
    notifications = platform.app.recorder.select_notifications(1, 10)
    assert [n.id for n in notifications] == [1, *stored]
    assert verify_log(platform.db).ok
    assert platform.runner.catch_up() == 3


def _deceased(customer_id: str) -> dict[str, Any]:
    return envelope(
        "CustomerDeceased", {"customer_id": customer_id, "date_of_death": "2026-05-01"}
    )


def test_a_sole_writer_trusts_its_cache_and_another_writer_ends_that(
    settings: Settings,
) -> None:
    """While one process writes alone, its cached aggregates are the latest
    without checking each one's version. Once another process has written,
    each is checked again: here a customer cached as living, recorded as
    deceased by the other writer, must not get an account (a rule on another
    aggregate, so no version clash would catch it at save)."""
    first, second = build_platform(settings), build_platform(settings)
    try:
        customer = registered(name="冯静")
        cid = customer["data"]["customer_id"]
        first.ingestor.ingest([customer], atomic=True)
        assert (
            first.ingestor.ingest([account_opened(cid)], atomic=True).outcomes[0].status
            == "stored"
        )
        cache = first.ingestor.cache
        assert cache.current_at(positions(first))  # nobody else has written
        assert second.ingestor.ingest([_deceased(cid)], atomic=True).count("stored")
        late = first.ingestor.ingest([account_opened(cid)], atomic=False).outcomes[0]
        assert late.status == "rejected", late
        assert late.error is not None and late.error.code == "customer_deceased"
        assert not cache.current_at(positions(first))  # and not trusted again
    finally:
        first.close()
        second.close()


def test_a_sole_writer_does_not_ask_the_log_its_head_before_each_save(
    platform: Platform, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Its save names the position it must start at instead (`expect_first`):
    a round trip less per batch, and another writer is still caught (above)."""
    recorder = platform.app.recorder
    asked = []
    real = recorder.max_notification_id

    def counted() -> int | None:
        asked.append(1)
        return real()

    monkeypatch.setattr(recorder, "max_notification_id", counted)
    customer = registered(name="褚红")
    cid = customer["data"]["customer_id"]
    platform.ingestor.ingest([customer], atomic=True)
    looked = len(asked)  # the first load: the cache learns where the log is
    for _ in range(3):
        report = platform.ingestor.ingest([contact_logged(cid)], atomic=True)
        assert report.count("stored") == 1
    assert len(asked) == looked
    assert platform.ingestor.cache.expected_first() == positions(platform) + 1


def test_without_trust_only_cached_aggregates_are_checked_and_stale_ones_reloaded(
    settings: Settings,
) -> None:
    """After another writer, a load mixes three kinds of id: cached and still the
    latest (taken from the cache), cached but changed by the other writer
    (read again), and never cached (read). Each comes back at its version."""
    from api.store.streams import load_aggregates

    first, second = build_platform(settings), build_platform(settings)
    try:
        kept, changed = registered(name="周杰"), registered(name="吴倩")
        first.ingestor.ingest([kept, changed], atomic=True)
        uncached = registered(name="郑洁")
        second.ingestor.ingest([uncached], atomic=True)
        second.ingestor.ingest([_deceased(changed["data"]["customer_id"])], atomic=True)
        cache = first.ingestor.cache
        assert not cache.current_at(positions(first))
        ids = [UUID(e["data"]["customer_id"]) for e in (kept, changed, uncached)]
        before = cache.get(ids[0])
        loaded, kept = load_aggregates(
            first.app, first.db, [*ids, UUID(new_id())], cache
        )
        assert [loaded[i].version for i in ids] == [1, 2, 1]
        assert loaded[ids[1]].deceased
        assert len(loaded) == 3  # the unknown id is absent
        # The cache's own object, marked so: a unit of work copies it to change it.
        assert before is not None and loaded[ids[0]] is before
        assert kept == {ids[0]}
    finally:
        first.close()
        second.close()


def test_a_load_reads_new_ids_and_confirms_kept_ones_in_one_statement(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A group commit of single posts loads the ids its events create and the
    customers it keeps: on PostgreSQL both in one statement (SQLite: two)."""
    from api.store.database import Cursor
    from api.store.streams import load_aggregates

    first, second = build_platform(settings), build_platform(settings)
    try:
        kept = registered(name="孙丽")
        first.ingestor.ingest([kept], atomic=True)
        second.ingestor.ingest([registered(name="李强")], atomic=True)
        cache = first.ingestor.cache
        assert not cache.current_at(positions(first))  # versions are checked
        statements: list[str] = []
        execute = Cursor.execute

        def counted(self: Cursor, sql: str, *args: Any, **kwargs: Any) -> Any:
            statements.append(sql)
            return execute(self, sql, *args, **kwargs)

        monkeypatch.setattr(Cursor, "execute", counted)
        kept_id, absent_id = UUID(kept["data"]["customer_id"]), UUID(new_id())
        loaded, _ = load_aggregates(first.app, first.db, [kept_id, absent_id], cache)
        assert list(loaded) == [kept_id] and loaded[kept_id].version == 1
        assert len(statements) == (1 if settings.is_postgres else 2)
    finally:
        first.close()
        second.close()


def test_aggregates_only_read_are_kept_after_the_save_and_checked_like_saved_ones(
    settings: Settings,
) -> None:
    """A contact reads its customer and changes nothing on it: once the contact
    is saved, the customer is kept all the same, so the next contact does not
    replay its history. A load hands out the kept object itself, marked as
    the cache's; a kept aggregate is not replaced by an older read of it;
    another writer's change is seen."""
    from api.store.streams import clone, load_aggregates

    first, second = build_platform(settings), build_platform(settings)
    try:
        customer = registered(name="钱多多")
        cid = UUID(customer["data"]["customer_id"])
        second.ingestor.ingest([customer], atomic=True)
        cache = first.ingestor.cache
        assert cache.get(cid) is None
        contact = envelope(
            "ContactLogged",
            {
                "contact_id": new_id(),
                "customer_id": str(cid),
                "channel": "phone",
                "direction": "inbound",
                "topic": "理财咨询",
            },
        )
        assert first.ingestor.ingest([contact], atomic=True).count("stored") == 1
        kept = cache.get(cid)
        assert kept is not None and kept.version == 1
        loaded, from_cache = load_aggregates(first.app, first.db, [cid], cache)
        assert loaded[cid] is kept and from_cache == {cid}
        read = clone(kept)
        read.deceased = True
        cache.put_read([read])  # an older read than the kept one: ignored
        assert cache.get(cid) is kept
        second.ingestor.ingest([_deceased(str(cid))], atomic=True)
        opened = first.ingestor.ingest([account_opened(str(cid))], atomic=False)
        assert opened.outcomes[0].error is not None
        assert opened.outcomes[0].error.code == "customer_deceased"
    finally:
        first.close()
        second.close()


def test_a_failed_save_ends_the_sole_writers_trust(platform: Platform) -> None:
    customer = registered()
    platform.ingestor.ingest([customer], atomic=True)
    cache = platform.ingestor.cache
    assert cache.current_at(positions(platform))
    cache.saw_failed_save()
    assert not cache.current_at(positions(platform))


@pytest.mark.parametrize("pipeline", [False, True])
def test_positions_move_together_or_not_at_all(
    platform: Platform, pipeline: bool
) -> None:
    from projections.runner import PositionMoved, read_positions, write_positions

    names = ["view-a", "view-b", "view-c"]
    with platform.db.transaction() as cur:  # the first page of each: inserted
        write_positions(cur, [(name, 0, 5) for name in names])()
    with platform.db.transaction(pipeline=pipeline) as cur:
        write_positions(cur, [(name, 5, 9) for name in names])()
    with platform.db.read() as cur:
        assert read_positions(cur, names) == dict.fromkeys(names, 9)

    # Another runner moved view-b meanwhile: nothing of this page may stay.
    with (
        pytest.raises(PositionMoved, match="view-b"),
        platform.db.transaction(pipeline=pipeline) as cur,
    ):
        write_positions(
            cur, [("view-a", 9, 12), ("view-b", 7, 12), ("view-c", 9, 12)]
        )()
    with platform.db.read() as cur:
        assert read_positions(cur, names) == dict.fromkeys(names, 9)


def _moved(customer_id: str, line: str) -> dict[str, Any]:
    return envelope(
        "CustomerMoved", {"customer_id": customer_id, "address": {"line": line}}
    )


def test_a_kept_aggregate_is_copied_only_by_a_batch_that_changes_it(
    platform: Platform, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A contact only reads its customer: the kept customer is used as it is,
    with no copy. A batch that moves the customer changes a copy, so when a
    later event of that atomic batch is refused, the kept one is as it was."""
    import copy

    from api.store import ingest, streams

    customer = registered(name="陈静")
    cid = customer["data"]["customer_id"]
    platform.ingestor.ingest([customer], atomic=True)
    cache = platform.ingestor.cache
    kept = cache.get(UUID(cid))
    assert kept is not None
    before = copy.deepcopy(vars(kept))
    copies: list[Any] = []
    clone = streams.clone

    def counted(aggregate: Any) -> Any:
        copies.append(aggregate.id)
        return clone(aggregate)

    monkeypatch.setattr(ingest, "clone", counted, raising=False)
    monkeypatch.setattr(streams, "clone", counted)

    assert (
        platform.ingestor.ingest([contact_logged(cid)], atomic=True).count("stored")
        == 1
    )
    assert copies == [] and cache.get(UUID(cid)) is kept

    refused = envelope(
        "BalanceReported",
        {"account_id": new_id(), "balance": "1.00", "as_of": "2025-01-31"},
    )
    with pytest.raises(BatchRejected):
        platform.ingestor.ingest(
            [_moved(cid, "上海市浦东新区世纪大道100号"), refused], atomic=True
        )
    assert copies == [UUID(cid)]
    assert cache.get(UUID(cid)) is kept and vars(kept) == before

    moved = platform.ingestor.ingest(
        [_moved(cid, "上海市浦东新区世纪大道100号")], atomic=True
    )
    assert moved.count("stored") == 1
    now = cache.get(UUID(cid))
    assert now is not kept and now is not None and now.version == kept.version + 1
    assert vars(kept) == before


def test_copy_fields_go_through_c_dumpers_and_uuids_as_their_bytes(
    settings: Settings,
) -> None:
    """A save's COPY writes a UUID as its 16 bytes through the bytes dumper,
    which `use_c_dumpers` makes psycopg's C one on each connection."""
    if not settings.is_postgres:
        pytest.skip(reason="COPY is PostgreSQL's")
    import psycopg
    from psycopg.adapt import PyFormat
    from psycopg.pq import Format

    from api.store.recorders import BYTEA_OID, use_c_dumpers

    stream_id = UUID(new_id())
    with psycopg.connect(settings.database_url, autocommit=True) as conn:
        use_c_dumpers(conn)
        dumper = conn.adapters.get_dumper_by_oid(BYTEA_OID, Format.BINARY)
        assert dumper is psycopg.adapters.get_dumper(bytes, PyFormat.BINARY)
        conn.execute("CREATE TEMP TABLE copied (id uuid, state bytea)")
        with conn.cursor().copy("COPY copied FROM STDIN (FORMAT BINARY)") as copy:
            copy.set_types(["bytea", "bytea"])
            copy.write_row((stream_id.bytes, b"\x00\xff"))
        row = conn.execute("SELECT id, state FROM copied").fetchone()
    assert row == (stream_id, b"\x00\xff")
