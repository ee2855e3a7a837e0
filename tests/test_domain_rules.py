"""Domain rules as given events -> new event -> expected facts or the rule's error."""

from __future__ import annotations

from typing import Any
from uuid import UUID

import pytest
from eventsourcing.domain import Aggregate

from domain.catalogue import parse_envelope
from domain.errors import DomainError
from domain.events import Fact, event_type
from domain.handling import Decider, trigger
from tests.factories import account_opened, envelope, new_id, registered


class MemorySource:
    def __init__(self) -> None:
        self.aggregates: dict[UUID, Aggregate] = {}

    def find(self, cls: type[Any], aggregate_id: UUID) -> Any:
        found = self.aggregates.get(aggregate_id)
        assert found is None or isinstance(found, cls)
        return found

    def add(self, aggregate: Aggregate) -> None:
        self.aggregates[aggregate.id] = aggregate

    def record(
        self, aggregate: Aggregate, fact: type[Fact], fields: dict[str, Any]
    ) -> None:
        trigger(aggregate, fact, fields)


def given(*envelopes: dict[str, Any]) -> Decider:
    decider = Decider(MemorySource(), b"k")
    for raw in envelopes:
        decider.handle(parse_envelope(raw))
    for aggregate in decider.source.aggregates.values():  # type: ignore[attr-defined]
        aggregate.collect_events()
    return decider


def then_facts(decider: Decider, raw: dict[str, Any]) -> list[str]:
    decider.handle(parse_envelope(raw))
    return [
        event_type(e)
        for a in decider.source.aggregates.values()
        for e in a.collect_events()
    ]  # type: ignore[attr-defined]


def then_rule(decider: Decider, raw: dict[str, Any]) -> str:
    with pytest.raises(DomainError) as caught:
        decider.handle(parse_envelope(raw))
    assert not any(a.pending_events for a in decider.source.aggregates.values())  # type: ignore[attr-defined]
    return caught.value.code


CID = new_id()
OTHER = new_id()


def customer(cid: str = CID, name: str = "王芳") -> dict[str, Any]:
    return registered(cid, name=name)


def test_registration_then_move() -> None:
    decider = given(customer())
    moved = envelope(
        "CustomerMoved",
        {"customer_id": CID, "address": {"line": "北京市海淀区中关村大街1号"}},
    )
    assert then_facts(decider, moved) == ["CustomerMoved"]


def test_events_about_unknown_entities_are_rejected() -> None:
    decider = given()
    assert (
        then_rule(
            decider,
            envelope(
                "CustomerMoved", {"customer_id": CID, "address": {"line": "x路1号"}}
            ),
        )
        == "unknown_entity"
    )
    assert then_rule(decider, account_opened(CID)) == "unknown_entity"
    assert (
        then_rule(
            decider,
            envelope(
                "BalanceReported",
                {"account_id": new_id(), "balance": "1.00", "as_of": "2025-01-31"},
            ),
        )
        == "unknown_entity"
    )
    assert (
        then_rule(decider, envelope("OrderShipped", {"order_id": new_id()}))
        == "unknown_entity"
    )
    assert (
        then_rule(
            decider,
            envelope(
                "ComplaintResolved", {"complaint_id": new_id(), "resolution": "ok"}
            ),
        )
        == "unknown_entity"
    )
    assert (
        then_rule(
            decider,
            envelope(
                "MailingSent",
                {"mailing_id": new_id(), "campaign_id": new_id(), "customer_id": CID},
            ),
        )
        == "unknown_entity"
    )


def test_registering_twice_is_rejected() -> None:
    assert then_rule(given(customer()), customer()) == "already_exists"


def order_placed(order_id: str) -> dict[str, Any]:
    return envelope(
        "OrderPlaced",
        {
            "order_id": order_id,
            "customer_id": CID,
            "product": "基金定投",
            "amount": "1000.00",
        },
    )


def reviewed(order_id: str, approved: bool = True) -> dict[str, Any]:
    return envelope(
        "OrderReviewed",
        {"order_id": order_id, "approved": approved, "reviewer": "officer:张伟"},
    )


def test_an_order_is_reviewed_only_once_and_only_when_placed() -> None:
    oid = new_id()
    decider = given(customer(), order_placed(oid))
    assert then_facts(decider, reviewed(oid)) == ["OrderReviewed"]
    assert then_rule(decider, reviewed(oid)) == "order_already_reviewed"
    cancelled_id = new_id()
    decider = given(
        customer(),
        order_placed(cancelled_id),
        envelope("OrderCancelled", {"order_id": cancelled_id}),
    )
    assert then_rule(decider, reviewed(cancelled_id)) == "order_already_reviewed"


def test_order_flow_rules() -> None:
    oid = new_id()
    decider = given(customer(), order_placed(oid), reviewed(oid, approved=False))
    assert (
        then_rule(decider, envelope("OrderShipped", {"order_id": oid}))
        == "order_not_approved"
    )
    oid2 = new_id()
    decider = given(customer(), order_placed(oid2), reviewed(oid2))
    assert (
        then_rule(decider, envelope("OrderDelivered", {"order_id": oid2}))
        == "order_not_shipped"
    )
    assert then_facts(decider, envelope("OrderShipped", {"order_id": oid2})) == [
        "OrderShipped"
    ]


def complaint_events(kid: str) -> list[dict[str, Any]]:
    return [
        envelope(
            "ComplaintFiled",
            {
                "complaint_id": kid,
                "customer_id": CID,
                "channel": "phone",
                "category": "fees",
                "description": "年费扣款有误",
            },
        ),
        envelope("ComplaintResolved", {"complaint_id": kid, "resolution": "已退款"}),
    ]


def test_a_resolved_complaint_is_only_reopened_not_resolved_again() -> None:
    kid = new_id()
    decider = given(customer(), *complaint_events(kid))
    assert (
        then_rule(
            decider,
            envelope("ComplaintResolved", {"complaint_id": kid, "resolution": "again"}),
        )
        == "complaint_resolved"
    )
    assert then_facts(
        decider, envelope("ComplaintReopened", {"complaint_id": kid})
    ) == ["ComplaintReopened"]
    assert then_facts(
        decider,
        envelope("ComplaintResolved", {"complaint_id": kid, "resolution": "再次处理"}),
    ) == ["ComplaintResolved"]
    assert (
        then_rule(
            decider,
            envelope("ComplaintAssigned", {"complaint_id": kid, "officer": "x"}),
        )
        == "complaint_resolved"
    )


def test_reopening_an_open_complaint_is_rejected() -> None:
    kid = new_id()
    decider = given(customer(), complaint_events(kid)[0])
    assert (
        then_rule(decider, envelope("ComplaintReopened", {"complaint_id": kid}))
        == "complaint_not_resolved"
    )


def test_a_closed_account_takes_no_balances() -> None:
    aid = new_id()
    decider = given(
        customer(),
        account_opened(CID, aid),
        envelope("AccountClosed", {"account_id": aid}),
    )
    balance = envelope(
        "BalanceReported",
        {"account_id": aid, "balance": "10.00", "as_of": "2025-02-28"},
    )
    assert then_rule(decider, balance) == "account_closed"


def test_a_merged_duplicate_takes_no_new_events() -> None:
    decider = given(
        customer(CID),
        customer(OTHER, "王 芳"),
        envelope("CustomersMerged", {"survivor_id": CID, "duplicate_id": OTHER}),
    )
    moved = envelope(
        "CustomerMoved",
        {"customer_id": OTHER, "address": {"line": "上海市黄浦区南京东路1号"}},
    )
    assert then_rule(decider, moved) == "customer_merged"
    assert then_rule(decider, account_opened(OTHER)) == "customer_merged"
    assert then_facts(decider, account_opened(CID)) == ["AccountOpened"]


def test_relationships_need_two_known_people_and_end_only_when_declared() -> None:
    decider = given(customer(CID), customer(OTHER, "李强"))
    ended = envelope(
        "RelationshipEnded", {"customer_id": CID, "related_customer_id": OTHER}
    )
    assert then_rule(decider, ended) == "relationship_not_found"
    declared = envelope(
        "RelationshipDeclared",
        {
            "customer_id": CID,
            "related_customer_id": OTHER,
            "relation": "spouse",
            "same_household": True,
        },
    )
    assert then_facts(decider, declared) == ["RelationshipDeclared"]
    assert then_facts(decider, ended) == ["RelationshipEnded"]
    self_related = envelope(
        "RelationshipDeclared",
        {
            "customer_id": CID,
            "related_customer_id": CID,
            "relation": "other",
            "same_household": True,
        },
    )
    assert then_rule(decider, self_related) == "same_customer"


def test_deceased_customers_place_no_orders() -> None:
    decider = given(
        customer(),
        envelope(
            "CustomerDeceased", {"customer_id": CID, "date_of_death": "2025-05-01"}
        ),
    )
    assert then_rule(decider, order_placed(new_id())) == "customer_deceased"


def test_national_id_is_stored_only_as_hash_and_last4() -> None:
    decider = given()
    raw = registered(CID, national_id="11010519900101123X")
    decider.handle(parse_envelope(raw))
    fact = decider.source.aggregates[UUID(CID)].pending_events[0]  # type: ignore[attr-defined]
    assert "national_id" not in fact.data
    assert fact.data["national_id_last4"] == "123X"
    assert len(fact.data["national_id_hash"]) == 64
    assert "11010519900101123X" not in str(fact.data)
