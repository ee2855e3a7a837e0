"""Facts that change no state (balances, fees, statements) are saved without the
library's event objects and replayed without being read: the log and the
aggregates must be exactly what the library's own path gives."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import pytest
from eventsourcing.application import Application
from eventsourcing.persistence import JSONTranscoder, Mapper

from api.bootstrap import Platform, build_platform
from api.settings import Settings
from api.store import ingest
from api.store.group_commit import GroupCommitter
from api.store.ingest import BatchRejected
from api.store.mapper import FactMapper
from api.store.pending import PendingFact, pending_fact
from api.store.streams import clone, load_aggregates
from api.store.transcoder import OrjsonTranscoder
from domain.account import Account, AccountClosed, AccountOpened, BalanceReported
from domain.events import version_only_topics
from tests.factories import account_opened, envelope, new_id, registered
from tests.test_group_commit import answers_of


def balance(account_id: str, amount: str, as_of: str) -> dict[str, Any]:
    return envelope(
        "BalanceReported",
        {"account_id": account_id, "balance": amount, "as_of": as_of},
    )


def closed(account_id: str) -> dict[str, Any]:
    return envelope("AccountClosed", {"account_id": account_id})


def test_only_facts_without_apply_are_version_only() -> None:
    topics = version_only_topics()
    assert {"crm.BalanceReported", "crm.FeeCharged", "crm.StatementIssued"} <= set(
        topics
    )
    assert "crm.AccountClosed" not in topics
    assert "crm.CustomerMoved" not in topics


def test_a_pending_fact_is_stored_as_the_library_would_store_it() -> None:
    plain, fast = JSONTranscoder(), OrjsonTranscoder()
    for transcoder in (plain, fast):
        Application().register_transcodings(transcoder)
    library, ours = Mapper(transcoder=plain), FactMapper(transcoder=fast)
    account = Account._create(
        AccountOpened,
        id=uuid.uuid4(),
        event_id=str(uuid.uuid4()),
        occurred_at="2025-01-01T09:00:00+08:00",
        source="branch:SH001",
        actor=None,
        data={"customer_id": "c", "product": "deposit"},
    )
    fields = {
        "event_id": str(uuid.uuid4()),
        "occurred_at": "2025-01-31T23:59:59+08:00",
        "source": "core-banking",
        "actor": "batch:月结",
        "data": {
            "account_id": str(account.id),
            "balance": "88.80",
            "as_of": "2025-01-31",
        },
        "timestamp": datetime.now(UTC),
    }
    account.collect_events()
    twin = clone(account)
    pending = pending_fact(account, BalanceReported, fields)
    assert isinstance(pending, PendingFact)
    assert account.version == 2 and not account.pending_events
    twin.trigger_event(BalanceReported, **fields)
    (triggered,) = twin.collect_events()
    expected = library.to_stored_event(triggered)
    assert ours.pending_to_stored_event(pending) == expected
    # A fact that changes state is left to the library.
    assert pending_fact(account, AccountClosed, fields) is None
    assert account.version == 2


def _account_with_history(platform: Platform, balances: int) -> tuple[str, str]:
    customer = registered(name="欧阳娜")
    cid = customer["data"]["customer_id"]
    opened = account_opened(cid)
    aid = opened["data"]["account_id"]
    events = [customer, opened] + [
        balance(aid, f"{i}.00", f"2024-{1 + i // 28:02d}-{1 + i % 28:02d}")
        for i in range(balances)
    ]
    report = platform.ingestor.ingest(events, atomic=True)
    assert report.count("stored") == len(events)
    return cid, aid


def test_replay_skips_version_only_rows_and_equals_the_librarys_replay(
    settings: Settings,
) -> None:
    writer = build_platform(settings)
    try:
        _cid, open_id = _account_with_history(writer, 40)
        _cid2, closed_id = _account_with_history(writer, 12)
        report = writer.ingestor.ingest(
            [closed(closed_id), balance(open_id, "1.00", "2025-01-01")], atomic=True
        )
        assert report.count("stored") == 2
    finally:
        writer.close()
    fresh = build_platform(settings)  # nothing cached: every aggregate is replayed
    try:
        ids = [UUID(open_id), UUID(closed_id)]
        loaded, _ = load_aggregates(fresh.app, fresh.db, ids)
        for aggregate_id in ids:
            full = fresh.app.repository.get(aggregate_id)
            assert vars(loaded[aggregate_id]) == vars(full)
        assert loaded[UUID(open_id)].version == 42
        assert loaded[UUID(closed_id)].closed
        late = fresh.ingestor.ingest(
            [
                balance(closed_id, "2.00", "2025-02-01"),
                balance(open_id, "3.00", "2025-02-01"),
            ],
            atomic=False,
        )
        assert [o.status for o in late.outcomes] == ["rejected", "stored"]
        assert late.outcomes[0].error is not None
        assert late.outcomes[0].error.code == "account_closed"
        assert fresh.app.repository.get(UUID(open_id)).version == 43
    finally:
        fresh.close()


def test_balances_between_state_changes_keep_versions_and_order(
    platform: Platform,
) -> None:
    """Pending facts and library facts on one aggregate in one batch: versions
    follow on, and positions follow the order of posting."""
    customer = registered()
    cid = customer["data"]["customer_id"]
    opened = account_opened(cid)
    aid = opened["data"]["account_id"]
    batch = [
        customer,
        opened,
        balance(aid, "1.00", "2025-01-01"),
        closed(aid),
        balance(aid, "2.00", "2025-01-02"),
    ]
    report = platform.ingestor.ingest(batch, atomic=False)
    assert [o.status for o in report.outcomes] == [
        "stored",
        "stored",
        "stored",
        "stored",
        "rejected",
    ]
    notes = platform.app.recorder.select_notifications(1, 10)
    assert [(n.topic, n.originator_version) for n in notes[1:]] == [
        ("crm.AccountOpened", 1),
        ("crm.BalanceReported", 2),
        ("crm.AccountClosed", 3),
    ]
    assert [n.id for n in notes] == [o.position for o in report.outcomes[:4]]
    events = platform.app.repository.get(UUID(aid))
    assert events.version == 3 and events.closed


def test_a_rejected_request_in_a_group_leaves_no_pending_fact_behind(
    platform: Platform,
) -> None:
    _cid, aid = _account_with_history(platform, 3)
    committer = GroupCommitter(platform.ingestor)
    try:
        failing = [
            balance(aid, "9.00", "2025-03-01"),
            balance(str(uuid.uuid4()), "1.00", "2025-03-01"),
        ]
        good = [balance(aid, "10.00", "2025-03-02")]
        answers = answers_of([committer.submit(failing), committer.submit(good)])
    finally:
        committer.close()
    assert isinstance(answers[0], BatchRejected)
    assert answers[1].outcomes[0].status == "stored"  # type: ignore[union-attr]
    account = platform.app.repository.get(UUID(aid))
    assert account.version == 5  # opened, 3 balances, the good request's balance
    with platform.db.read() as cur:
        stored = cur.execute("SELECT count(*) AS n FROM crm_event_log").fetchone()
    assert stored is not None and stored["n"] == 6


def test_optimistic_ingest_still_finds_repeats_and_conflicts(
    platform: Platform,
) -> None:
    """Bulk files skip the event-id lookup until the log refuses a repeat; the
    batch is then done again after looking, so the outcomes are as ever."""
    _cid, aid = _account_with_history(platform, 2)
    first = [balance(aid, f"{i}.00", f"2025-04-{i:02d}") for i in range(1, 4)]
    prepared = _prepare(platform, first)
    report = platform.ingestor.ingest_prepared(prepared, atomic=False, optimistic=True)
    assert report.count("stored") == 3
    assert not platform.ingestor.looks_for_repeats
    conflicting = dict(first[1], data=dict(first[1]["data"], balance="999.00"))
    second = [
        balance(aid, "7.00", "2025-04-07"),
        first[0],
        conflicting,
        balance(aid, "8.00", "2025-04-08"),
    ]
    report = platform.ingestor.ingest_prepared(
        _prepare(platform, second), atomic=False, optimistic=True
    )
    statuses = [o.status for o in report.outcomes]
    assert statuses == ["stored", "duplicate", "rejected", "stored"]
    assert report.outcomes[2].error is not None
    assert report.outcomes[2].error.code == "event_id_conflict"
    assert platform.ingestor.looks_for_repeats
    with platform.db.read() as cur:
        stored = cur.execute("SELECT count(*) AS n FROM crm_event_log").fetchone()
    assert stored is not None and stored["n"] == 4 + 3 + 2
    with pytest.raises(BatchRejected) as refused:
        platform.ingestor.ingest_prepared(
            _prepare(platform, [balance(aid, "1.00", "2025-05-01"), conflicting]),
            atomic=True,
            optimistic=True,
        )
    assert refused.value.status == 409
    from api.audit.verify import verify_log

    assert verify_log(platform.db).ok


def test_a_repeat_met_is_remembered_for_a_while(
    platform: Platform, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Met, and met again each time a look finds one: repeats come in runs."""
    ingestor = platform.ingestor
    customer = registered(name="赵云")
    ingestor.ingest([customer], atomic=True, optimistic=True)
    assert ingestor.stored_hashes([new_id()]) == {}
    assert not ingestor.looks_for_repeats
    assert customer["event_id"] in ingestor.stored_hashes([customer["event_id"]])
    assert ingestor.looks_for_repeats
    monkeypatch.setattr(ingest, "REPEATS_REMEMBERED_SECONDS", 0.0)
    assert not ingestor.looks_for_repeats


def test_a_repeat_that_breaks_a_rule_is_still_told_apart_without_a_lookup(
    platform: Platform, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Unlooked-for, a repeated registration first meets the rule "already
    exists": the same event is then a duplicate, other content a conflict.
    (Repeats are forgotten at once here, so that no save looks first.)"""
    monkeypatch.setattr(ingest, "REPEATS_REMEMBERED_SECONDS", 0.0)
    customer = registered(name="马超")
    platform.ingestor.ingest_prepared(
        _prepare(platform, [customer]), atomic=False, optimistic=True
    )
    changed = dict(customer, data=dict(customer["data"], name="马岱"))
    for events, status, code in (
        ([changed], "rejected", "event_id_conflict"),
        ([customer], "duplicate", None),
    ):
        report = platform.ingestor.ingest_prepared(
            _prepare(platform, events), atomic=False, optimistic=True
        )
        outcome = report.outcomes[0]
        assert outcome.status == status
        assert (outcome.error and outcome.error.code) == code
    with pytest.raises(BatchRejected) as refused:
        platform.ingestor.ingest_prepared(
            _prepare(platform, [changed]), atomic=True, optimistic=True
        )
    assert refused.value.status == 409


def _prepare(platform: Platform, events: list[dict[str, Any]]) -> list[Any]:
    from api.store.prepare import prepare_batch

    return prepare_batch(events, platform.settings.national_id_key)


def test_the_state_changes_index_lists_every_version_only_topic() -> None:
    """A fact added without `apply` must come with a migration that leaves it
    out of the partial index (else accounts load without using it)."""
    from api.store.streams import LOAD_POSTGRESQL, LOAD_SQLITE
    from migrations import POSTGRESQL, SQLITE

    listed = ", ".join(f"'{topic}'" for topic in version_only_topics())
    newest = sorted(POSTGRESQL.glob("*_state_changes.sql"))[-1].read_text()
    assert f"topic <> ALL (ARRAY[{listed}])" in newest
    assert f"topic <> ALL (ARRAY[{listed}])" in LOAD_POSTGRESQL
    newest = sorted(SQLITE.glob("*_state_changes.sql"))[-1].read_text()
    assert f"topic NOT IN ({listed})" in newest
    assert f"topic NOT IN ({listed})" in LOAD_SQLITE


def test_accounts_load_through_the_state_changes_index(platform: Platform) -> None:
    _cid, aid = _account_with_history(platform, 30)
    from api.store.streams import LOAD_POSTGRESQL, LOAD_SQLITE

    with platform.db.read() as cur:
        if platform.settings.is_postgres:
            cur.execute("SET LOCAL enable_seqscan = off")
            rows = cur.execute("EXPLAIN " + LOAD_POSTGRESQL, ([UUID(aid)],)).fetchall()
        else:
            sql = "EXPLAIN QUERY PLAN " + LOAD_SQLITE.format(ids="(%s)")
            rows = cur.execute(sql, [UUID(aid).hex]).fetchall()
    plan = " ".join(str(value) for row in rows for value in row.values())
    assert "state_changes" in plan, plan


def test_loading_needs_no_statistics_and_no_jit(platform: Platform) -> None:
    """A log loaded since its last ANALYZE has no statistics: the load must
    still probe the index per id, and JIT (100 ms of compiling where the
    planner overestimates) is off on the platform's connections."""
    if not platform.settings.is_postgres:
        pytest.skip(reason="a PostgreSQL plan; SQLite keeps no statistics")
    _cid, aid = _account_with_history(platform, 5)
    from api.store.streams import LOAD_POSTGRESQL

    with platform.db.transaction() as cur:
        assert cur.execute("SHOW jit").fetchone() == {"jit": "off"}
        # No statistics, as for a log loaded since its last ANALYZE; and no
        # table scan, which is what a table this small would rightly get.
        cur.execute("DELETE FROM pg_statistic WHERE starelid = 'crm_events'::regclass")
        cur.execute("SET LOCAL enable_seqscan = off")
        ids = [UUID(aid)] + [uuid.uuid4() for _ in range(999)]
        rows = cur.execute("EXPLAIN " + LOAD_POSTGRESQL, (ids,)).fetchall()
        cur.execute("ROLLBACK")
    plan = " ".join(row["QUERY PLAN"] for row in rows)
    assert "Seq Scan on crm_events" not in plan, plan
    assert "Index Cond: (originator_id = i.id)" in plan, plan
