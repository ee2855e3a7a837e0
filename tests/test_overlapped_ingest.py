"""Bulk ingest with saves overlapping the next batch: the same outcome as one batch at a time."""

from __future__ import annotations

from typing import Any

import pytest
from eventsourcing.persistence import IntegrityError

import api.store.overlap as overlap
from api.bootstrap import Platform
from api.store.ingest import Report
from api.store.overlap import OverlappedIngest
from api.store.prepare import prepare_batch
from tests.factories import account_opened, envelope, registered


def balances(account_id: str, days: range) -> list[dict[str, Any]]:
    return [
        envelope(
            "BalanceReported",
            {
                "account_id": account_id,
                "balance": f"{1000 + day}.00",
                "as_of": f"2026-03-{day:02d}",
            },
            event_id=None,
        )
        for day in days
    ]


def run(platform: Platform, batches: list[list[dict[str, Any]]]) -> list[Report]:
    key = platform.ingestor.national_id_key
    prepared = (prepare_batch(batch, key) for batch in batches)
    return list(OverlappedIngest(platform.ingestor).run(prepared))


def stored_versions(platform: Platform, account_id: str) -> list[int]:
    """The account's versions as stored (SQLite keeps ids as hex)."""
    postgres = platform.db.backend == "postgresql"
    table = "crm_events" if postgres else "stored_events"
    with platform.db.read() as cur:
        rows = cur.execute(
            f"SELECT originator_version FROM {table} WHERE originator_id = %s ORDER BY 1",
            (account_id if postgres else account_id.replace("-", ""),),
        ).fetchall()
    return [row["originator_version"] for row in rows]


def test_batches_that_touch_the_same_aggregates_are_all_stored_in_order(
    platform: Platform,
) -> None:
    customer = registered(name="陈晓东")
    opened = account_opened(customer["data"]["customer_id"])
    account = opened["data"]["account_id"]
    batches = [[customer, opened]] + [
        balances(account, range(day, day + 3)) for day in range(1, 28, 3)
    ]
    reports = run(platform, batches)
    assert [r.count("stored") for r in reports] == [len(b) for b in batches]
    positions = [o.position for r in reports for o in r.outcomes]
    assert positions == sorted(positions)
    assert len(set(positions)) == len(positions)
    assert stored_versions(platform, account) == list(range(1, 29))


def test_an_event_repeated_in_the_next_batch_is_a_duplicate_of_the_first(
    platform: Platform,
) -> None:
    customer = registered(name="刘洋")
    opened = account_opened(customer["data"]["customer_id"])
    reports = run(platform, [[customer], [opened, customer], [customer]])
    assert [o.status for r in reports for o in r.outcomes] == [
        "stored",
        "stored",
        "duplicate",
        "duplicate",
    ]
    first = reports[0].outcomes[0].position
    assert reports[1].outcomes[1].position == first
    assert reports[2].outcomes[0].position == first


def test_a_save_that_loses_a_race_is_redone_with_the_batch_after_it(
    platform: Platform, monkeypatch: pytest.MonkeyPatch
) -> None:
    customer = registered(name="张伟")
    opened = account_opened(customer["data"]["customer_id"])
    account = opened["data"]["account_id"]
    batches = [[customer, opened]] + [
        balances(account, range(day, day + 2)) for day in range(1, 9, 2)
    ]
    real_save = overlap.save_accepted
    calls = {"n": 0}

    def save_losing_the_second_race(*args: Any) -> dict[str, int]:
        calls["n"] += 1
        if calls["n"] == 2:
            raise IntegrityError("another writer saved these aggregates first")
        return real_save(*args)

    monkeypatch.setattr(overlap, "save_accepted", save_losing_the_second_race)
    reports = run(platform, batches)
    assert [r.count("stored") for r in reports] == [len(b) for b in batches]
    assert stored_versions(platform, account) == list(range(1, 10))


def test_rule_violations_are_reported_and_the_rest_stored(platform: Platform) -> None:
    customer = registered(name="黄丽")
    opened = account_opened(customer["data"]["customer_id"])
    unknown = account_opened("00000000-0000-4000-8000-000000000001")
    reports = run(platform, [[customer], [unknown, opened], [registered()]])
    assert [o.status for r in reports for o in r.outcomes] == [
        "stored",
        "rejected",
        "stored",
        "stored",
    ]
    assert reports[1].outcomes[0].error is not None
    assert reports[1].outcomes[0].error.code == "unknown_entity"
