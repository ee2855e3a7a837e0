"""What keeps a large mailing plan's memory down: stored bytes in allocations of
their own size, lots that stop growing, an answer kept in a file and read back in
pieces in the targets' order, cursors that let go of their results."""

from __future__ import annotations

import os
import tracemalloc
import uuid
from array import array
from typing import Any

import orjson
import pytest
from pydantic import ValidationError

from api.bootstrap import Platform
from api.http.routes.mailings import PlanRequest, PlanResponse
from api.store import mailing_plans, plan_answer
from api.store.database import DatabaseUnavailable, PostgresDatabase
from api.store.json_bytes import kept
from api.store.mailing_plans import MailingPlanner, _lots
from api.store.mapper import FactMapper
from api.store.plan_answer import Answer, joined
from api.store.transcoder import OrjsonTranscoder
from domain import mailing as m
from domain.errors import NotFound
from tests.factories import new_id, registered, registered_fact
from tests.test_mailing_plans import campaign


def held_bytes(make: Any, count: int = 2000) -> float:
    """Bytes traced per object still held from `count` calls of `make`."""
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        held = [make(i) for i in range(count)]
        after = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    assert len(held) == count
    return (after - before) / count


def test_kept_bytes_are_equal_and_take_about_their_size() -> None:
    value = {"customer_id": new_id(), "address": {"line": "北京市朝阳区建国路88号"}}
    encoded = orjson.dumps(value)

    assert kept(encoded) == encoded
    assert held_bytes(lambda _: kept(orjson.dumps(value))) < len(encoded) + 100


def test_stored_events_hold_about_their_size() -> None:
    mapper = FactMapper(transcoder=OrjsonTranscoder())
    size = len(mapper.to_stored_event(registered_fact("0")).state)

    held = held_bytes(lambda i: mapper.to_stored_event(registered_fact(str(i))).state)
    encoded = held_bytes(lambda i: mapper.transcoder.encode({"n": i, "pad": "x" * 300}))

    assert held < size + 100
    assert encoded < 400


def test_lots_hold_whole_households_and_stop_growing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(mailing_plans, "LOT", 4)
    monkeypatch.setattr(mailing_plans, "MAX_LOT", 10)
    slots = array("q", range(10, 110))  # the request's first ten were decided before
    home = {i: f"h{(i * 7) % 30}" for i in range(len(slots)) if i % 5}

    lots = list(_lots(slots, sorted(home.items())))

    assert sorted(s for lot in lots for s in lot) == list(slots)
    assert [len(lot) <= 10 + 4 for lot in lots] == [True] * len(lots)
    assert max(len(lot) for lot in lots) > 8  # it did grow, to MAX_LOT
    lot_of = {s: n for n, lot in enumerate(lots) for s in lot}
    for household in set(home.values()):
        members = [slots[i] for i, h in home.items() if h == household]
        assert len({lot_of[s] for s in members}) == 1
        lot = lots[lot_of[members[0]]]
        assert [s for s in lot if s in members] == members  # in the request's order


def test_homes_come_by_place_in_the_list_on_both_backends(
    platform: Platform, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(mailing_plans, "CHUNK", 2)
    monkeypatch.setattr(mailing_plans, "PG_CHUNK", 2)
    together = [new_id(), new_id()]
    alone, unknown = new_id(), new_id()
    platform.ingestor.ingest(
        [
            registered(together[0], line="上海市浦东新区世纪大道100号"),
            registered(together[1], line="上海市浦东新区世纪大道100号"),
            registered(alone, line="上海市徐汇区漕溪北路88号"),
        ],
        atomic=True,
    )
    platform.runner.catch_up()
    ids = [unknown, together[0], alone, together[1]]

    with platform.db.transaction() as cur:
        homes = list(mailing_plans._homes(cur, ids))

    assert [i for i, _ in homes] == [1, 2, 3]
    household = dict(homes)
    assert household[1] == household[3] != household[2]


@pytest.mark.parametrize("piece", [1 << 20, 5])
def test_the_answer_is_in_the_targets_order_and_the_models_shape(
    piece: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(plan_answer, "PIECE", piece)
    scheduled = m.Decision(
        customer_id="b",
        outcome=m.SCHEDULED,
        reason=m.PRIMARY_RECIPIENT,
        household_id="h1",
        mailing_id="p1",
        address={"line": "广州市天河区天河路385号"},
        caused_by=({"event_id": "e1", "type": "CampaignLaunched", "position": 3},),
    )
    other = m.Decision(
        customer_id="a",
        outcome=m.SUPPRESSED,
        reason=m.HOUSEHOLD_ALREADY_SCHEDULED,
        household_id="h1",
        mailing_id="p1",
        caused_by=({"event_id": "e2", "type": "MailingScheduled", "position": 9},),
    )
    unknown = m.Decision(
        customer_id="c", outcome=m.SUPPRESSED, reason=m.UNKNOWN_CUSTOMER
    )
    slot = {"a": 0, "b": 1, "c": 2, "d": 3}
    building = Answer(len(slot))
    for decision in (unknown, scheduled, other):
        building.add(decision, slot[decision.customer_id])
    answer = building.finish(9)

    pieces = list(answer.pieces())
    whole = joined(answer)
    answer.close()

    assert len(whole) == answer.size
    assert len(pieces) > 1 if piece < 100 else len(pieces) == 1
    published = orjson.loads(whole)

    assert [s["customer_id"] for s in published["suppressed"]] == ["a", "c"]
    assert published["scheduled"] == [
        {
            "mailing_id": "p1",
            "household_id": "h1",
            "customer_id": "b",
            "address": {"line": "广州市天河区天河路385号"},
        }
    ]
    assert published["position"] == 9
    assert PlanResponse.model_validate(published).model_dump(mode="json") == published


def test_an_answer_with_nothing_of_a_kind_is_still_the_models_shape() -> None:
    building = Answer(1)
    building.add(
        m.Decision(customer_id="a", outcome=m.SUPPRESSED, reason=m.UNKNOWN_CUSTOMER),
        0,
    )
    answer = building.finish(0)

    whole = joined(answer)
    answer.close()

    assert len(whole) == answer.size
    published = orjson.loads(whole)

    assert published["scheduled"] == []
    assert [s["customer_id"] for s in published["suppressed"]] == ["a"]
    assert PlanResponse.model_validate(published).model_dump(mode="json") == published


def test_the_stored_answer_is_the_answer_byte_for_byte(
    platform: Platform, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Sent by COPY in pieces that cut through multi-byte characters, with JSON's
    own escapes (quotes, backslashes, tabs, newlines) in the addresses."""
    monkeypatch.setattr(plan_answer, "PIECE", 7)
    lines = [
        '北京市"朝阳区"建国路\\88号',
        "上海市\t浦东新区,世纪大道\n100号",
        "广州市天河区",
    ]
    targets = []
    for line in lines:
        event = registered(line=line)
        targets.append(event["data"]["customer_id"])
        platform.ingestor.ingest([event], atomic=True)
    campaign_id = campaign(platform)
    planner = MailingPlanner(platform)
    request_id = new_id()

    first = planner.plan_json(campaign_id, [*targets, new_id()], request_id)
    again = planner.plan_json(campaign_id, [*targets, new_id()], request_id)

    assert again == first
    published = orjson.loads(first)
    assert len(published["scheduled"]) == 3
    assert [p["address"]["line"] for p in published["scheduled"]] == lines


def test_a_cursor_lets_go_of_its_result_when_its_transaction_ends(
    platform: Platform,
) -> None:
    with platform.db.transaction() as cur:
        cur.execute("SELECT 1 AS one")
        assert cur.fetchall() == [{"one": 1}]

    assert cur.raw is None


def test_rows_read_in_pages_are_all_the_rows(
    platform: Platform, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(mailing_plans, "CHUNK", 2)  # SQLite: several IN lists
    monkeypatch.setattr(mailing_plans, "PG_CHUNK", 2)  # PostgreSQL: several statements
    names = [f"view-{i}" for i in range(5)]
    with platform.db.transaction() as cur:
        for i, name in enumerate(names):
            cur.execute(
                "INSERT INTO projection_positions (name, position) VALUES (%s, %s)",
                (name, i),
            )
        cur.execute("SELECT name, position FROM projection_positions ORDER BY name")
        expected = cur.tuples()
        streamed = cur.streamed(
            "SELECT name, position FROM projection_positions WHERE position >= %s "
            "ORDER BY name",
            (0,),
            page=2,
        )
        assert list(map(tuple, streamed)) == list(map(tuple, expected))
        sql = "SELECT name, position FROM projection_positions WHERE name IN {ids}"
        rows = mailing_plans._rows(cur, sql, [*names, "x"], tuples=True)
        streamed_rows = list(mailing_plans._streamed(cur, sql, [*names, "x"]))
    assert sorted(map(tuple, rows)) == [(name, i) for i, name in enumerate(names)]
    assert sorted(map(tuple, streamed_rows)) == sorted(map(tuple, rows))


def test_targets_stay_the_posted_strings_in_canonical_form() -> None:
    canonical = new_id()
    shouting = str(uuid.uuid4()).upper()
    request = PlanRequest.model_validate(
        {"request_id": new_id(), "customer_ids": [canonical, shouting]}
    )

    assert request.customer_ids is not None
    assert request.customer_ids[0] is canonical  # no copy of a canonical id
    assert request.customer_ids[1] == shouting.lower()
    with pytest.raises(ValidationError) as error:
        PlanRequest.model_validate({"request_id": new_id(), "customer_ids": ["../x"]})
    assert error.value.errors()[0]["loc"] == ("customer_ids", 0)
    schema = PlanRequest.model_json_schema()["properties"]["customer_ids"]
    assert {"type": "string", "format": "uuid"} in [
        option.get("items") for option in schema["anyOf"]
    ]


def deleted_temporary_files() -> int:
    """Open descriptors of this process on files already unlinked (where
    TemporaryFile's are)."""
    count = 0
    for fd in os.listdir("/proc/self/fd"):
        try:
            count += os.readlink(f"/proc/self/fd/{fd}").endswith("(deleted)")
        except OSError:
            continue
    return count


def test_a_plan_closes_its_answers_file(platform: Platform) -> None:
    targets = [registered()["data"]["customer_id"] for _ in range(3)]
    campaign_id = campaign(platform)
    planner = MailingPlanner(platform)
    before = deleted_temporary_files()

    answer = planner.plan_answer(campaign_id, targets, new_id())
    assert deleted_temporary_files() == before + 1
    published = orjson.loads(joined(answer))
    answer.close()

    assert deleted_temporary_files() == before
    assert len(published["suppressed"]) == 3  # unknown customers


def test_a_plan_that_fails_leaves_no_file_open(platform: Platform) -> None:
    planner = MailingPlanner(platform)
    before = deleted_temporary_files()

    with pytest.raises(NotFound) as failed:
        planner.plan_answer(new_id(), [new_id()], new_id())  # no such campaign

    # Closed by the plan, not by the collector: the traceback still holds the
    # failed attempt's frames.
    assert failed.traceback
    assert deleted_temporary_files() == before


def test_a_large_transaction_without_a_server_is_unavailable() -> None:
    db = PostgresDatabase("postgresql://postgres@127.0.0.1:1/nowhere?connect_timeout=2")

    with pytest.raises(DatabaseUnavailable), db.large_transaction() as cur:
        cur.execute("SELECT 1")
