"""Mailing plans on both backends: one piece per household, every reason, idempotency,
projection lag, the violation report and the why-answer."""

from __future__ import annotations

import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from api.audit.verify import verify_log
from api.bootstrap import Platform
from api.store.mailing_plans import MailingPlanner
from domain.catalogue import InvalidEvent, parse_envelope
from projections.mailing_decisions import campaign_report, get_decision
from tests.factories import envelope, new_id, registered

HOME = "北京市朝阳区建国路88号3号楼2单元501室"
OTHER = "上海市浦东新区世纪大道100号15楼1502室"
THIRD = "广州市天河区天河路385号2栋803室"


def now_text(days_ago: int = 0) -> str:
    return (datetime.now(UTC) - timedelta(days=days_ago)).isoformat()


def ingest(platform: Platform, *events: dict[str, Any]) -> list[int]:
    report = platform.ingestor.ingest(list(events), atomic=True)
    return [o.position for o in report.outcomes]  # type: ignore[misc]


def campaign(platform: Platform, **extra: Any) -> str:
    campaign_id = new_id()
    data = {
        "campaign_id": campaign_id,
        "name": "春节理财推广",
        "channel": "mail",
        "purpose": "marketing",
        **extra,
    }
    ingest(platform, envelope("CampaignLaunched", data))
    return campaign_id


def person(platform: Platform, name: str, line: str) -> str:
    customer_id = new_id()
    ingest(platform, registered(customer_id, name=name, line=line))
    return customer_id


def plan(
    planner: MailingPlanner, campaign_id: str, targets: list[str]
) -> dict[str, Any]:
    return planner.plan(campaign_id, targets, str(uuid.uuid4()))


def reasons(answer: dict[str, Any]) -> dict[str, str]:
    return {s["customer_id"]: s["reason"] for s in answer["suppressed"]}


def stored(platform: Platform, type_: str) -> list[dict[str, Any]]:
    """Facts of one type read from the event store itself (not from a view)."""
    notifications = platform.app.recorder.select_notifications(
        1, 1_000_000, topics=[f"crm.{type_}"]
    )
    facts = [platform.app.mapper.to_domain_event(n) for n in notifications]
    return [{**f.data, "event_id": f.event_id} for f in facts]  # type: ignore[attr-defined]


@pytest.fixture
def planner(platform: Platform) -> MailingPlanner:
    return MailingPlanner(platform)


def test_one_piece_per_household_to_the_primary_recipient(
    platform: Platform, planner: MailingPlanner
) -> None:
    wang = person(platform, "王伟", HOME)
    li = person(platform, "李娜", HOME)
    zhang = person(platform, "张强", OTHER)
    ingest(platform, envelope("HouseholdHeadDesignated", {"customer_id": li}))
    campaign_id = campaign(platform)

    answer = plan(planner, campaign_id, [wang, li, zhang])

    assert sorted(p["customer_id"] for p in answer["scheduled"]) == sorted([li, zhang])
    assert reasons(answer) == {wang: "household_already_scheduled"}
    piece = next(p for p in answer["scheduled"] if p["customer_id"] == li)
    assert piece["address"]["line"] == HOME
    scheduled = {f["customer_id"]: f for f in stored(platform, "MailingScheduled")}
    cause = answer["suppressed"][0]["caused_by"]
    assert [c["event_id"] for c in cause] == [scheduled[li]["event_id"]]
    assert cause[0]["type"] == "MailingScheduled"
    assert cause[0]["position"] <= answer["position"]
    assert len(stored(platform, "MailingSuppressed")) == 1


def test_every_personal_reason(platform: Platform, planner: MailingPlanner) -> None:
    opted = person(platform, "陈静", HOME)
    dead = person(platform, "刘洋", OTHER)
    duplicate = person(platform, "赵敏", THIRD)
    survivor = person(platform, "赵敏", THIRD)
    unknown = new_id()
    consent = envelope(
        "ConsentChanged",
        {
            "customer_id": opted,
            "channel": "mail",
            "purpose": "marketing",
            "granted": False,
        },
    )
    death = envelope("CustomerDeceased", {"customer_id": dead})
    merge = envelope(
        "CustomersMerged", {"survivor_id": survivor, "duplicate_id": duplicate}
    )
    positions = ingest(platform, consent, death, merge)
    campaign_id = campaign(platform)

    answer = plan(planner, campaign_id, [opted, dead, duplicate, survivor, unknown])

    assert reasons(answer) == {
        opted: "opted_out",
        dead: "deceased",
        duplicate: "merged_duplicate",
        unknown: "unknown_customer",
    }
    assert [p["customer_id"] for p in answer["scheduled"]] == [survivor]
    causes = {s["customer_id"]: s["caused_by"] for s in answer["suppressed"]}
    for customer_id, event, position in (
        (opted, consent, positions[0]),
        (dead, death, positions[1]),
        (duplicate, merge, positions[2]),
    ):
        assert causes[customer_id] == [
            {"event_id": event["event_id"], "type": event["type"], "position": position}
        ]
    assert causes[unknown] == []


def test_consent_granted_again_lifts_the_opt_out(
    platform: Platform, planner: MailingPlanner
) -> None:
    customer = person(platform, "孙丽", HOME)
    for granted in (False, True):
        ingest(
            platform,
            envelope(
                "ConsentChanged",
                {
                    "customer_id": customer,
                    "channel": "mail",
                    "purpose": "marketing",
                    "granted": granted,
                },
            ),
        )
    other_purpose = campaign(platform, purpose="service")
    ingest(
        platform,
        envelope(
            "ConsentChanged",
            {
                "customer_id": customer,
                "channel": "mail",
                "purpose": "service",
                "granted": False,
            },
        ),
    )
    assert plan(planner, campaign(platform), [customer])["suppressed"] == []
    assert reasons(plan(planner, other_purpose, [customer])) == {customer: "opted_out"}


def test_returned_mail_makes_the_address_undeliverable_until_a_move(
    platform: Platform, planner: MailingPlanner
) -> None:
    wang = person(platform, "王伟", HOME)
    li = person(platform, "李娜", HOME)
    earlier = campaign(platform, name="年中回馈")
    mailing_id = new_id()
    sent = {"mailing_id": mailing_id, "campaign_id": earlier, "customer_id": li}
    returned = envelope(
        "MailingReturned", {"mailing_id": mailing_id, "reason": "查无此人"}
    )
    position = ingest(platform, envelope("MailingSent", sent), returned)[1]

    answer = plan(planner, campaign(platform), [wang])
    assert reasons(answer) == {wang: "undeliverable_address"}
    assert answer["suppressed"][0]["caused_by"] == [
        {
            "event_id": returned["event_id"],
            "type": "MailingReturned",
            "position": position,
        }
    ]

    moved = {"customer_id": wang, "address": {"line": OTHER}}
    ingest(platform, envelope("CustomerMoved", moved))
    answer = plan(planner, campaign(platform), [wang])
    assert [p["customer_id"] for p in answer["scheduled"]] == [wang]


def test_frequency_cap_counts_recent_pieces_of_the_same_purpose(
    platform: Platform, planner: MailingPlanner
) -> None:
    wang = person(platform, "王伟", HOME)
    li = person(platform, "李娜", HOME)
    zhang = person(platform, "张强", OTHER)
    capped = {"frequency_cap": {"max": 2, "days": 30}}
    first, second = campaign(platform), campaign(platform)
    old = campaign(platform)
    ingest(
        platform,
        envelope(
            "MailingSent",
            {"mailing_id": new_id(), "campaign_id": old, "customer_id": zhang},
            occurred_at=now_text(days_ago=90),
        ),
    )
    sent = envelope(
        "MailingSent",
        {"mailing_id": new_id(), "campaign_id": second, "customer_id": li},
        occurred_at=now_text(),
    )
    plan(planner, first, [wang])
    sent_position = ingest(platform, sent)[0]

    answer = plan(planner, campaign(platform, **capped), [wang, zhang])

    assert reasons(answer) == {wang: "frequency_cap"}
    causes = answer["suppressed"][0]["caused_by"]
    assert [c["type"] for c in causes] == ["MailingScheduled", "MailingSent"]
    assert causes[1] == {
        "event_id": sent["event_id"],
        "type": "MailingSent",
        "position": sent_position,
    }
    service = campaign(platform, purpose="service", **capped)
    assert reasons(plan(planner, service, [wang])) == {}


def test_same_request_same_answer_and_a_repeat_schedules_nothing_new(
    platform: Platform, planner: MailingPlanner
) -> None:
    family = [person(platform, n, HOME) for n in ("王伟", "李娜", "王小明")]
    single = person(platform, "张强", OTHER)
    campaign_id = campaign(platform)
    request_id = str(uuid.uuid4())
    targets = [*family, single]

    first = planner.plan(campaign_id, targets, request_id)
    ingest(platform, envelope("CustomerDeceased", {"customer_id": single}))
    again = planner.plan(campaign_id, targets, request_id)
    repeat = plan(planner, campaign_id, list(reversed(targets)))

    assert again == first
    assert len(first["scheduled"]) == 2
    assert {p["mailing_id"] for p in repeat["scheduled"]} == {
        p["mailing_id"] for p in first["scheduled"]
    }
    assert sorted(map(str, reasons(repeat).items())) == sorted(
        map(str, reasons(first).items())
    )
    assert len(stored(platform, "MailingScheduled")) == 2
    assert len(stored(platform, "MailingSuppressed")) == 2


def test_a_move_not_yet_projected_is_taken_into_account(
    platform: Platform, planner: MailingPlanner
) -> None:
    wang = person(platform, "王伟", HOME)
    li = person(platform, "李娜", OTHER)
    campaign_id = campaign(platform)
    planner.catch_up(
        platform.app.recorder.max_notification_id() or 0
    )  # views: two homes
    ingest(
        platform,
        envelope("CustomerMoved", {"customer_id": li, "address": {"line": HOME}}),
    )

    answer = plan(planner, campaign_id, [wang, li])

    assert len(answer["scheduled"]) == 1
    assert list(reasons(answer).values()) == ["household_already_scheduled"]


def test_duplicate_mailing_sent_is_stored_and_reported(
    platform: Platform, planner: MailingPlanner
) -> None:
    wang = person(platform, "王伟", HOME)
    li = person(platform, "李娜", HOME)
    campaign_id = campaign(platform)
    answer = plan(planner, campaign_id, [wang])
    mailing_id = answer["scheduled"][0]["mailing_id"]
    extra = new_id()
    events = [
        envelope(
            "MailingSent",
            {"mailing_id": mailing_id, "campaign_id": campaign_id, "customer_id": wang},
        ),
        envelope(
            "MailingSent",
            {"mailing_id": extra, "campaign_id": campaign_id, "customer_id": li},
        ),
        envelope("MailingResponded", {"mailing_id": mailing_id, "response": "已预约"}),
        envelope("MailingReturned", {"mailing_id": extra, "reason": "拒收"}),
    ]
    report = platform.ingestor.ingest(events, atomic=False)
    assert [o.status for o in report.outcomes] == ["stored"] * 4
    planner.catch_up(platform.app.recorder.max_notification_id() or 0)

    with platform.db.transaction() as cur:
        summary = campaign_report(cur, campaign_id)

    assert summary["pieces"] == {
        "scheduled": 1,
        "sent": 2,
        "returned": 1,
        "responded": 1,
    }
    assert summary["decisions"] == {"scheduled": 1, "suppressed": 0}
    assert [
        (v["mailing_id"], v["earlier_mailing_id"]) for v in summary["violations"]
    ] == [(extra, mailing_id)]
    assert summary["violations"][0]["event_id"] == events[1]["event_id"]


def test_why_answer_names_decision_reason_and_causes(
    platform: Platform, planner: MailingPlanner
) -> None:
    wang = person(platform, "王伟", HOME)
    li = person(platform, "李娜", HOME)
    campaign_id = campaign(platform)
    answer = plan(planner, campaign_id, [wang, li])
    planner.catch_up(platform.app.recorder.max_notification_id() or 0)

    with platform.db.transaction() as cur:
        got = {c: get_decision(cur, campaign_id, c) for c in (wang, li)}
        missing = get_decision(cur, campaign_id, new_id())

    outcomes = Counter(d["outcome"] for d in got.values() if d)
    assert outcomes == {"scheduled": 1, "suppressed": 1}
    loser = next(d for d in got.values() if d and d["outcome"] == "suppressed")
    winner = next(d for d in got.values() if d and d["outcome"] == "scheduled")
    assert loser["reason"] == "household_already_scheduled"
    assert loser["caused_by"] == [
        {
            "event_id": winner["event_id"],
            "type": "MailingScheduled",
            "position": winner["position"],
        }
    ]
    assert winner["mailing_id"] == answer["scheduled"][0]["mailing_id"]
    assert winner["caused_by"][0]["type"] == "CampaignLaunched"
    assert missing is None


@pytest.mark.parametrize("type_", ["MailingScheduled", "MailingSuppressed"])
def test_clients_cannot_post_platform_made_facts(type_: str) -> None:
    with pytest.raises(InvalidEvent):
        parse_envelope(envelope(type_, {"campaign_id": new_id()}))


def test_unknown_campaign_is_not_found(planner: MailingPlanner) -> None:
    from domain.errors import NotFound

    with pytest.raises(NotFound):
        plan(planner, new_id(), [new_id()])


def test_the_piece_carries_the_address_exactly_as_registered(
    platform: Platform, planner: MailingPlanner
) -> None:
    # The planner passes the view's stored JSON on without parsing it: the
    # answer, the stored fact and its hash must be those of the address itself.
    address = {
        "province": "浙江省",
        "city": "杭州市",
        "district": "西湖区",
        "line": '天目山路"26号"13栋\\2401室\t(后门)',
        "postal_code": "310013",
        "country": "CN",
    }
    customer = new_id()
    event = registered(customer)
    event["data"]["address"] = address
    ingest(platform, event)
    campaign_id = campaign(platform)

    answer = plan(planner, campaign_id, [customer])

    assert [p["address"] for p in answer["scheduled"]] == [address]
    assert [f["address"] for f in stored(platform, "MailingScheduled")] == [address]
    assert verify_log(platform.db).ok


def test_decided_and_new_targets_answer_in_the_requests_order(
    platform: Platform, planner: MailingPlanner
) -> None:
    family = [person(platform, n, HOME) for n in ("王伟", "李娜", "王小明")]
    single = person(platform, "张强", OTHER)
    later = [person(platform, "刘洋", f"{OTHER}附{i}") for i in range(3)]
    campaign_id = campaign(platform)
    plan(planner, campaign_id, [family[1], single])  # decided before
    targets = [later[0], family[0], single, later[1], family[1], family[2], later[2]]

    answer = plan(planner, campaign_id, targets)

    entries = answer["scheduled"] + answer["suppressed"]
    assert sorted(e["customer_id"] for e in entries) == sorted(targets)
    for kind in ("scheduled", "suppressed"):
        listed = [e["customer_id"] for e in answer[kind]]
        assert listed == [t for t in targets if t in listed]
    assert {e["customer_id"] for e in answer["scheduled"]} == {
        family[1],
        single,
        *later,
    }
