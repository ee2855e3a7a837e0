"""A plan's decisions are stored in bulk, exactly as the library would store them.

The planner writes the stored events of its decisions directly instead of
creating one aggregate per decision; these tests hold it to the bytes the
library's mapper writes for the aggregate-created event, and check that what it
stores decodes, projects and verifies like any other fact.
"""

from __future__ import annotations

import gc
import threading
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
from eventsourcing.domain import Aggregate
from eventsourcing.persistence import IntegrityError, Mapper

from api.audit.rebuild_check import rebuild_check
from api.audit.verify import verify_log
from api.bootstrap import Platform, build_platform
from api.settings import Settings
from api.store import mailing_facts, mailing_plans
from api.store.mailing_facts import SOURCE, DecisionFacts, OrderedSaves
from api.store.mailing_plans import PAUSED_COLLECTOR, MailingPlanner
from domain import mailing as m
from projections.mailing_decisions import campaign_report, get_decision
from projections.records import decode
from projections.registry import all_projections
from projections.runner import ProjectionRunner
from tests.factories import campaign_launched, envelope, new_id, registered

HOME = "北京市朝阳区建国路88号3号楼2单元501室"
OTHER = "上海市浦东新区世纪大道100号15楼1502室"


def campaign(one_per_household: bool = True) -> m.Campaign:
    return m.Campaign(
        campaign_id=new_id(),
        channel="mail",
        purpose="marketing",
        one_per_household=one_per_household,
        cap_max=None,
        cap_days=None,
        launched=m.Cause(new_id(), "CampaignLaunched", 7),
    )


def decisions(chosen: m.Campaign) -> list[m.Decision]:
    household, piece = new_id(), new_id()
    joined = m.Cause(new_id(), "CustomerRegistered", 3)
    return [
        m.Decision(
            customer_id=new_id(),
            outcome=m.SCHEDULED,
            reason=m.PRIMARY_RECIPIENT,
            household_id=household,
            mailing_id=piece,
            address={"line": HOME, "country": "CN"},
            caused_by=(chosen.launched.as_json(), joined.as_json()),
        ),
        m.Decision(
            customer_id=new_id(),
            outcome=m.SUPPRESSED,
            reason=m.HOUSEHOLD_ALREADY_SCHEDULED,
            household_id=household,
            mailing_id=piece,
            caused_by=(m.Cause(new_id(), "MailingScheduled", 12).as_json(),),
        ),
        m.Decision(
            customer_id=new_id(), outcome=m.SUPPRESSED, reason="unknown_customer"
        ),
    ]


def created_by_the_library(
    chosen: m.Campaign,
    decision: m.Decision,
    request_id: str,
    actor: str | None,
    at: str,
) -> Any:
    """The decision's fact as `Aggregate._create` makes it (the planner's former way)."""
    data: dict[str, Any] = {
        "campaign_id": chosen.campaign_id,
        "customer_id": decision.customer_id,
        "household_id": decision.household_id,
        "reason": decision.reason,
        "caused_by": list(decision.caused_by),
        "request_id": request_id,
    }
    fields = {
        "event_id": m.decision_event_id(chosen.campaign_id, decision.customer_id),
        "occurred_at": at,
        "source": SOURCE,
        "actor": actor,
        "data": data,
    }
    aggregate: Aggregate
    if decision.outcome == m.SCHEDULED:
        data |= {"mailing_id": decision.mailing_id, "address": decision.address}
        key = (
            decision.household_id if chosen.one_per_household else decision.customer_id
        )
        aggregate = m.MailingSlot._create(
            m.MailingScheduled, id=m.slot_id(chosen.campaign_id, str(key)), **fields
        )
    else:
        aggregate = m.MailingDecision._create(
            m.MailingSuppressed,
            id=m.decision_id(chosen.campaign_id, decision.customer_id),
            **fields,
        )
    [event] = aggregate.collect_events()
    return event, fields


@pytest.mark.parametrize("one_per_household", [True, False])
@pytest.mark.parametrize("actor", ["api-key:crm_ab12", None])
def test_stored_bytes_are_the_library_mappers(
    platform: Platform, one_per_household: bool, actor: str | None
) -> None:
    chosen = campaign(one_per_household)
    request_id, at = new_id(), datetime.now(UTC).isoformat()
    facts = DecisionFacts(platform.app.mapper, chosen, request_id, actor, at)
    for decision in decisions(chosen):
        event, fields = created_by_the_library(chosen, decision, request_id, actor, at)

        [(stored, event_id, digest)] = facts.stored([decision], event.timestamp)

        for mapper in (platform.app.mapper, Mapper(platform.app.mapper.transcoder)):
            expected = mapper.to_stored_event(event)
            assert stored.originator_id == expected.originator_id
            assert stored.originator_version == expected.originator_version == 1
            assert stored.topic == expected.topic
            assert stored.state == expected.state
        assert event_id == event.event_id
        assert digest == m.content_hash(type(event).__name__, fields)
        assert platform.app.mapper.to_domain_event(stored) == event


def plan(
    planner: MailingPlanner, campaign_id: str, targets: list[str]
) -> dict[str, Any]:
    return planner.plan(campaign_id, targets, str(uuid.uuid4()), actor="api-key:crm_x")


def test_plans_saved_in_many_inserts_decode_project_and_verify(
    platform: Platform, monkeypatch: pytest.MonkeyPatch
) -> None:
    # One fact per save: suppressions cite pieces stored by earlier inserts;
    # households decided a few targets at a time.
    monkeypatch.setattr(mailing_facts, "SAVE_BYTES", 1)
    monkeypatch.setattr(mailing_plans, "LOT", 2)
    # And every read over the targets in several statements.
    monkeypatch.setattr(mailing_plans, "CHUNK", 3)
    monkeypatch.setattr(mailing_plans, "PG_CHUNK", 3)
    people = [new_id() for _ in range(7)]
    lines = [HOME, HOME, HOME, OTHER, OTHER, f"{OTHER}附1", f"{OTHER}附2"]
    events = [registered(c, line=line) for c, line in zip(people, lines, strict=True)]
    campaign_id = new_id()
    events.append(campaign_launched(campaign_id))
    assert platform.ingestor.ingest(events, atomic=True).count("stored") == len(events)
    head = platform.app.recorder.max_notification_id() or 0
    unknown = new_id()
    planner = MailingPlanner(platform)

    answer = plan(planner, campaign_id, [*people, unknown])

    assert len(answer["scheduled"]) == 4
    assert len(answer["suppressed"]) == 4
    notifications = platform.app.recorder.select_notifications(head + 1, 100)
    assert len(notifications) == 8
    positions = {}
    for notification in notifications:
        fact = platform.app.mapper.to_domain_event(notification)
        record = decode(platform.app, notification)
        assert record.event_id == fact.event_id  # type: ignore[attr-defined]
        assert record.data == fact.data  # type: ignore[attr-defined]
        assert record.source == SOURCE
        assert record.actor == "api-key:crm_x"
        positions[record.event_id] = notification.id
    for suppressed in answer["suppressed"]:
        for cause in suppressed["caused_by"]:
            if cause["type"] == "MailingScheduled":
                assert positions[cause["event_id"]] == cause["position"]
    assert answer["position"] == max(positions.values())
    assert verify_log(platform.db).ok

    planner.catch_up(answer["position"])
    with platform.db.transaction() as cur:
        for piece in answer["scheduled"]:
            row = get_decision(cur, campaign_id, piece["customer_id"])
            assert row is not None and row["outcome"] == "scheduled"
            assert row["mailing_id"] == piece["mailing_id"]
        for suppressed in answer["suppressed"]:
            row = get_decision(cur, campaign_id, suppressed["customer_id"])
            assert row is not None and row["reason"] == suppressed["reason"]
            assert row["caused_by"] == suppressed["caused_by"]

    again = plan(planner, campaign_id, [*people, unknown])
    assert {p["mailing_id"] for p in again["scheduled"]} == {
        p["mailing_id"] for p in answer["scheduled"]
    }
    assert platform.app.recorder.max_notification_id() == answer["position"]


def test_decisions_project_alike_in_small_pages_and_a_rebuild(
    platform: Platform,
) -> None:
    people = [new_id() for _ in range(9)]
    lines = [HOME, HOME, HOME, OTHER, OTHER] + [f"{OTHER}附{i}" for i in range(4)]
    events = [registered(c, line=line) for c, line in zip(people, lines, strict=True)]
    campaigns = []
    for name in ("春节理财推广", "中秋客户关怀"):
        campaigns.append(new_id())
        launched = {
            "campaign_id": campaigns[-1],
            "name": name,
            "channel": "mail",
            "purpose": "marketing",
        }
        events.append(envelope("CampaignLaunched", launched))
    assert platform.ingestor.ingest(events, atomic=True).count("stored") == len(events)
    planner = MailingPlanner(platform)
    plan(planner, campaigns[0], people[:6])
    plan(planner, campaigns[1], people)
    plan(planner, campaigns[0], people)  # the first six keep their decisions

    live = ProjectionRunner(platform.app, platform.db, all_projections(), batch_size=3)
    live.catch_up()

    report = rebuild_check(platform, all_projections())
    assert report.identical, report.as_json()
    with platform.db.transaction() as cur:
        for campaign_id in campaigns:
            counts = campaign_report(cur, campaign_id)["decisions"]
            assert counts == {"scheduled": 6, "suppressed": 3}


def test_a_failed_save_stops_the_later_ones() -> None:
    saved: list[int] = []

    def save_one(batch: list[Any]) -> dict[str, int]:
        if batch == [2]:
            raise IntegrityError("slot taken")
        saved.extend(batch)
        return {str(n): n for n in batch}

    with OrderedSaves(save_one) as saves:
        saves.submit([0])
        assert saves.positions() == {"0": 0}
        for n in (1, 2, 3, 4):
            saves.submit([n])
        with pytest.raises(IntegrityError):
            saves.positions()
    assert saved == [0, 1]


def test_ids_are_the_uuid5_of_their_names() -> None:
    for campaign_id, key in [(new_id(), new_id()) for _ in range(200)] + [
        ("c", "户主/王伟")
    ]:
        assert m.slot_id(campaign_id, key) == uuid.uuid5(
            m.NAMESPACE, f"campaign-slot/{campaign_id}/{key}"
        )
        assert m.decision_id(campaign_id, key) == uuid.uuid5(
            m.NAMESPACE, f"campaign-decision/{campaign_id}/{key}"
        )
        assert m.decision_event_id(campaign_id, key) == str(
            uuid.uuid5(m.NAMESPACE, f"campaign-decision-event/{campaign_id}/{key}")
        )
        assert m.mailing_id_for(campaign_id, key) == str(
            uuid.uuid5(m.NAMESPACE, f"campaign-mailing/{campaign_id}/{key}")
        )


def test_the_collector_is_paused_only_while_plans_run() -> None:
    assert gc.isenabled()
    with PAUSED_COLLECTOR:
        with PAUSED_COLLECTOR:  # a second plan at the same time
            assert not gc.isenabled()
        assert not gc.isenabled()
    assert gc.isenabled()
    gc.disable()
    try:
        with PAUSED_COLLECTOR:
            assert not gc.isenabled()
        assert not gc.isenabled()  # left as it was found
    finally:
        gc.enable()


@pytest.mark.postgres
def test_a_large_answer_is_kept_compressed_and_given_again(postgres_url: str) -> None:
    platform = build_platform(Settings(database_url=postgres_url, secret_key="k"))
    try:
        people = [new_id() for _ in range(40)]
        events = [registered(c, line=f"{OTHER}{i}号") for i, c in enumerate(people)]
        campaign_id = new_id()
        events.append(campaign_launched(campaign_id))
        assert platform.ingestor.ingest(events, atomic=True).count("stored") == 41
        planner = MailingPlanner(platform)
        request_id = str(uuid.uuid4())

        answer = planner.plan(campaign_id, people, request_id)

        with platform.db.transaction() as cur:
            row = cur.execute(
                "SELECT pg_column_compression(response) AS method "
                "FROM mailing_plan_requests WHERE request_id = %s",
                (request_id,),
            ).fetchone()
        assert row is not None and row["method"] == "lz4"
        assert MailingPlanner(platform).plan(campaign_id, people, request_id) == answer
    finally:
        platform.close()


def test_building_waits_while_the_saves_fall_behind() -> None:
    release = threading.Event()

    def save_one(batch: list[Any]) -> dict[str, int]:
        release.wait(10)
        return {str(n): n for n in batch}

    with OrderedSaves(save_one) as saves:
        for n in range(mailing_facts.AHEAD):
            saves.submit([n])
        late = threading.Thread(target=saves.submit, args=([99],))
        late.start()
        late.join(0.3)
        assert late.is_alive()  # waits for the oldest save to be done
        release.set()
        late.join(10)
        assert not late.is_alive()
        assert len(saves.positions()) == mailing_facts.AHEAD + 1
