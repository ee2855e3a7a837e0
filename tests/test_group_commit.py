"""Group commit: concurrent atomic requests share saves but keep their own outcomes."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor

import pytest

from api.bootstrap import Platform
from api.store.group_commit import GroupCommitter
from api.store.ingest import BatchRejected
from tests.factories import account_opened, envelope, new_id, registered


def test_concurrent_requests_are_each_atomic_and_stored_once(
    platform: Platform,
) -> None:
    committer = GroupCommitter(platform.ingestor)
    customers = [registered(name=f"黄{i}") for i in range(60)]
    requests: list[list[dict]] = []
    for i, customer in enumerate(customers):
        cid = customer["data"]["customer_id"]
        if (
            i % 10 == 3
        ):  # a request whose second event breaks a rule: nothing of it is stored
            requests.append(
                [
                    customer,
                    envelope(
                        "BalanceReported",
                        {
                            "account_id": new_id(),
                            "balance": "1.00",
                            "as_of": "2025-01-31",
                        },
                    ),
                ]
            )
        else:
            requests.append([customer, account_opened(cid)])
    requests += [list(r) for r in requests[:5]]  # retries racing the originals
    conflicting = json.loads(json.dumps(customers[7]))
    conflicting["data"]["name"] = "不同"
    requests.append([conflicting])

    def post(events: list[dict]) -> object:
        try:
            return committer.ingest(events)
        except BatchRejected as error:
            return error

    try:
        with ThreadPoolExecutor(16) as pool:
            answers = list(pool.map(post, requests))
    finally:
        committer.close()

    rejected = [a for a in answers if isinstance(a, BatchRejected)]
    codes = sorted(a.code for a in rejected)
    assert codes.count("unknown_entity") == 7  # 6 bad requests + the retry of one
    assert codes.count("event_id_conflict") == 1
    with platform.db.transaction() as cur:
        logged = cur.execute(
            "SELECT count(*) AS n, count(DISTINCT event_id) AS ids FROM crm_event_log"
        ).fetchone()
    assert logged == {"n": 108, "ids": 108}  # 54 good requests x 2 events, none twice
    for answer in answers:
        if not isinstance(answer, BatchRejected):
            assert all(
                o.status in {"stored", "duplicate"} and o.position
                for o in answer.outcomes
            )  # type: ignore[attr-defined]


def test_a_lone_request_behaves_like_plain_ingest(platform: Platform) -> None:
    committer = GroupCommitter(platform.ingestor)
    try:
        customer = registered()
        first = committer.ingest([customer])
        second = committer.ingest([customer])
        assert first.outcomes[0].status == "stored"
        assert second.outcomes[0].status == "duplicate"
        with pytest.raises(BatchRejected):
            committer.ingest([account_opened(new_id())])
    finally:
        committer.close()
