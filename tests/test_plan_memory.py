"""What keeps a large mailing plan's memory down: stored and answer bytes in
allocations of their own size, lots that stop growing, and an answer kept as
JSON entries in the targets' order."""

from __future__ import annotations

import tracemalloc
import uuid
from typing import Any

import orjson
import pytest
from pydantic import ValidationError

from api.http.routes.mailings import PlanRequest, PlanResponse
from api.memory import release_free_memory
from api.store import mailing_plans
from api.store.json_bytes import kept
from api.store.mailing_plans import Answer, _lots
from api.store.mapper import FactMapper
from api.store.transcoder import OrjsonTranscoder
from domain import mailing as m
from tests.factories import new_id, registered_fact


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
    targets = [f"c{i}" for i in range(100)]
    homes = {t: f"h{i // 3}" for i, t in enumerate(targets) if i % 5}

    lots = list(_lots(targets, homes))

    assert sorted(t for lot in lots for t in lot) == sorted(targets)
    assert [len(lot) <= 10 + 2 for lot in lots] == [True] * len(lots)
    assert max(len(lot) for lot in lots) > 8  # it did grow, to MAX_LOT
    lot_of = {t: i for i, lot in enumerate(lots) for t in lot}
    for household in set(homes.values()):
        members = [t for t, h in homes.items() if h == household]
        assert len({lot_of[t] for t in members}) == 1


def test_the_answer_is_in_the_targets_order_and_the_models_shape() -> None:
    piece = m.Decision(
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
    answer = Answer()
    for decision in (unknown, piece, other):
        answer.add(decision)

    published = orjson.loads(answer.json(["a", "b", "c"], 9))

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


def test_free_heap_memory_is_given_back_on_glibc() -> None:
    assert release_free_memory() is True


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
