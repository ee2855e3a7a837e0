"""Group commit: concurrent atomic requests share saves but keep their own outcomes."""

from __future__ import annotations

import json
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from uuid import UUID

import pytest

from api.bootstrap import Platform
from api.store.group_commit import GroupCommitter
from api.store.ingest import BatchRejected, Report
from tests.factories import account_opened, contact_logged, envelope, new_id, registered


def answers_of(futures: list[Future[Report]]) -> list[Report | BatchRejected]:
    """Each submitted request's report, or the refusal it was answered with."""
    answers: list[Report | BatchRejected] = []
    for future in futures:
        try:
            answers.append(future.result(timeout=30))
        except BatchRejected as error:
            answers.append(error)
    return answers


def hold_first_group(
    committer: GroupCommitter,
) -> tuple[threading.Event, threading.Event, list[int]]:
    """Makes the committer's first group wait for `release` once `entered` is
    set, so that the next requests queue up; `groups` records each group's size."""
    entered, release = threading.Event(), threading.Event()
    groups: list[int] = []
    process = committer._process

    def held(group: list) -> None:
        if not groups:
            entered.set()
            release.wait(10)
        groups.append(len(group))
        process(group)

    committer._process = held  # type: ignore[method-assign]
    return entered, release, groups


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


def test_a_lone_request_asks_the_log_for_repeats_only_after_meeting_one(
    platform: Platform, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A repeated move changes no rule's answer: only the log's unique event_id
    tells it from a new one. Not looked up first, it is still a duplicate, and
    the same id with other content still a conflict; from then on, lone
    requests look first."""
    looked: list[int] = []
    stored_hashes = platform.ingestor.stored_hashes

    def counted(event_ids: list[str]) -> dict[str, tuple[bytes, int]]:
        looked.append(len(event_ids))
        return stored_hashes(event_ids)

    monkeypatch.setattr(platform.ingestor, "stored_hashes", counted)
    committer = GroupCommitter(platform.ingestor)
    try:
        customer = registered(name="黄忠")
        moving = envelope(
            "CustomerMoved",
            {
                "customer_id": customer["data"]["customer_id"],
                "address": {"line": "长沙市岳麓区麓山南路2号"},
            },
        )
        committer.ingest([customer])
        moved = committer.ingest([moving])
        assert looked == []
        again = committer.ingest([moving])
        assert again.outcomes[0].status == "duplicate"
        assert again.outcomes[0].position == moved.outcomes[0].position
        changed = json.loads(json.dumps(moving))
        changed["data"]["address"]["line"] = "长沙市开福区湘江中路1号"
        with pytest.raises(BatchRejected) as refused:
            committer.ingest([changed])
        assert refused.value.code == "event_id_conflict"
        assert looked, "after a repeat, a lone request looks first"
    finally:
        committer.close()
    with platform.db.read() as cur:
        logged = cur.execute("SELECT count(*) AS n FROM crm_event_log").fetchone()
    assert logged == {"n": 2}


def test_repeats_in_a_group_that_did_not_look_are_still_duplicates_or_conflicts(
    platform: Platform,
) -> None:
    """A group asks the log for repeats only after meeting one: the first group
    with repeats stores nothing twice, and answers each repeat as it should."""
    committer = GroupCommitter(platform.ingestor)
    entered, release, groups = hold_first_group(committer)
    try:
        customer, moved = registered(name="孔明"), registered(name="刘备")
        first = committer.submit([customer, moved])
        assert entered.wait(10)
        moving = envelope(
            "CustomerMoved",
            {
                "customer_id": moved["data"]["customer_id"],
                "address": {"line": "成都市武侯区武侯祠大街231号"},
            },
        )
        changed = json.loads(json.dumps(customer))
        changed["data"]["name"] = "诸葛亮"
        fresh = registered(name="关羽")
        queued = [
            committer.submit(events)
            for events in ([fresh], [customer], [moving], [changed], [moving])
        ]
        release.set()
        stored = first.result(timeout=30)
        answers = answers_of(queued)
    finally:
        committer.close()
    assert groups[:2] == [1, 5]
    fresh_answer, repeat, move, conflict, move_again = answers
    assert fresh_answer.outcomes[0].status == "stored"  # type: ignore[attr-defined]
    assert repeat.outcomes[0].status == "duplicate"  # type: ignore[attr-defined]
    assert repeat.outcomes[0].position == stored.outcomes[0].position  # type: ignore[attr-defined]
    assert move.outcomes[0].status == "stored"  # type: ignore[attr-defined]
    assert isinstance(conflict, BatchRejected) and conflict.code == "event_id_conflict"
    assert move_again.outcomes[0].status == "duplicate"  # type: ignore[attr-defined]
    with platform.db.read() as cur:
        logged = cur.execute(
            "SELECT count(*) AS n, count(DISTINCT event_id) AS ids FROM crm_event_log"
        ).fetchone()
    assert logged == {"n": 4, "ids": 4}  # two customers, the move, the fresh one


def test_a_refused_request_leaves_the_groups_shared_aggregates_as_they_were(
    platform: Platform,
) -> None:
    """Three requests saved as one group name the same kept customer: the first
    moves it and is then refused, the second logs a contact, the third moves it.
    Only the third move is stored, on the customer as it was before the group."""
    from api.store.group_commit import _Request

    customer = registered(name="林琳")
    cid = customer["data"]["customer_id"]
    platform.ingestor.ingest([customer], atomic=True)

    def moved(line: str) -> dict:
        return envelope(
            "CustomerMoved", {"customer_id": cid, "address": {"line": line}}
        )

    refused = envelope(
        "BalanceReported",
        {"account_id": new_id(), "balance": "1.00", "as_of": "2025-01-31"},
    )
    contact = contact_logged(cid, topic="地址核实", channel="branch")
    group = [
        _Request([moved("广州市天河区天河路1号"), refused]),
        _Request([contact]),
        _Request([moved("成都市武侯区人民南路2号")]),
    ]
    GroupCommitter(platform.ingestor)._together(group)

    with pytest.raises(BatchRejected):
        group[0].future.result(timeout=10)
    assert group[1].future.result(timeout=10).count("stored") == 1
    assert group[2].future.result(timeout=10).count("stored") == 1
    stored = platform.app.repository.get(UUID(cid))
    assert stored.version == 2  # registered, then the one move
    assert "成都市" in str(vars(stored))
    assert "广州市" not in str(vars(stored))
    kept = platform.ingestor.cache.get(UUID(cid))
    assert kept is not None and vars(kept) == vars(stored)


def test_a_group_waits_for_company_only_while_requests_come_together(
    platform: Platform,
) -> None:
    """A request on a quiet committer is taken at once; after a group of
    several, the next group waits (`gather`), and what arrives meanwhile joins
    it in one save."""
    committer = GroupCommitter(platform.ingestor, delay_seconds=0.25)
    waits: list[float] = []
    joined: list[Future[Report]] = []

    def gather(seconds: float) -> None:  # a request arrives while the group waits
        waits.append(seconds)
        joined.append(committer.submit([registered(name="赵云")]))

    committer.gather = gather
    entered, release, groups = hold_first_group(committer)
    try:
        first = committer.submit([registered(name="张飞")])
        assert entered.wait(10)
        assert waits == []  # the first request found the committer quiet
        queued = [committer.submit([registered(name=n)]) for n in ("关羽", "刘备")]
        release.set()
        answers = answers_of([first, *queued])
        assert waits == []  # after a lone request, the next group did not wait
        last = committer.ingest([registered(name="黄忠")])
        answers += [last, *answers_of(joined)]
    finally:
        committer.close()
    assert waits == [0.25]
    assert groups == [1, 2, 2]
    counts = (committer.groups, committer.grouped_requests, committer.waits)
    assert counts == (3, 5, 1)  # as /metrics reports them
    assert all(a.outcomes[0].status == "stored" for a in answers)  # type: ignore[union-attr]
    assert answers[-1].outcomes[0].position == last.outcomes[0].position + 1  # type: ignore[union-attr]


def test_a_wait_for_company_that_fails_leaves_no_request_unanswered(
    platform: Platform,
) -> None:
    committer = GroupCommitter(platform.ingestor, delay_seconds=0.25)

    def broken(seconds: float) -> None:
        raise RuntimeError("the loop is gone")

    committer.gather = broken
    entered, release, groups = hold_first_group(committer)
    try:
        first = committer.submit([registered(name="周瑜")])
        assert entered.wait(10)
        queued = [committer.submit([registered(name=n)]) for n in ("鲁肃", "吕蒙")]
        release.set()
        answers = answers_of([first, *queued])
        answers.append(
            committer.ingest([registered(name="陆逊")])
        )  # after a group of two
    finally:
        committer.close()
    assert groups == [1, 2, 1]
    assert all(a.outcomes[0].status == "stored" for a in answers)  # type: ignore[union-attr]
