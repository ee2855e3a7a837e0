"""The catalogue's validation: required fields, unknown fields, bad types, dates, money."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from domain.catalogue import DATA_MODELS, InvalidEvent, parse_envelope
from tests.factories import envelope, new_id

VALID_DATA: dict[str, dict[str, Any]] = {
    "CustomerRegistered": {
        "customer_id": new_id(),
        "name": "李娜",
        "address": {"line": "上海市浦东新区世纪大道100弄5号1202室"},
        "branch_code": "SH002",
        "national_id": "310115198803152345",
        "birth_date": "1988-03-15",
    },
    "CustomerDetailsCorrected": {"customer_id": new_id(), "name": "李娜"},
    "CustomerMoved": {
        "customer_id": new_id(),
        "address": {"line": "广州市天河区天河路385号", "city": "广州市"},
    },
    "ConsentChanged": {
        "customer_id": new_id(),
        "channel": "mail",
        "purpose": "marketing",
        "granted": False,
    },
    "CustomerDeceased": {"customer_id": new_id(), "date_of_death": "2025-06-01"},
    "RelationshipDeclared": {
        "customer_id": new_id(),
        "related_customer_id": new_id(),
        "relation": "spouse",
        "same_household": True,
    },
    "RelationshipEnded": {"customer_id": new_id(), "related_customer_id": new_id()},
    "HouseholdHeadDesignated": {"customer_id": new_id()},
    "CustomersMerged": {"survivor_id": new_id(), "duplicate_id": new_id()},
    "AccountOpened": {
        "account_id": new_id(),
        "customer_id": new_id(),
        "product": "deposit",
        "branch_code": "BJ001",
    },
    "BalanceReported": {
        "account_id": new_id(),
        "balance": "12345.67",
        "as_of": "2025-01-31",
    },
    "FeeCharged": {"account_id": new_id(), "amount": "15.00", "kind": "年费"},
    "StatementIssued": {
        "account_id": new_id(),
        "period": "2025-01",
        "closing_balance": "12345.67",
    },
    "AccountClosed": {"account_id": new_id()},
    "OrderPlaced": {
        "order_id": new_id(),
        "customer_id": new_id(),
        "product": "基金定投",
        "amount": "1200.00",
    },
    "OrderReviewed": {
        "order_id": new_id(),
        "approved": True,
        "reviewer": "officer:张伟",
    },
    "OrderShipped": {"order_id": new_id()},
    "OrderDelivered": {"order_id": new_id()},
    "OrderCancelled": {"order_id": new_id()},
    "ComplaintFiled": {
        "complaint_id": new_id(),
        "customer_id": new_id(),
        "channel": "phone",
        "category": "fees",
        "description": "年费扣款有误",
    },
    "ComplaintAssigned": {"complaint_id": new_id(), "officer": "officer:刘洋"},
    "ComplaintEscalated": {"complaint_id": new_id(), "level": 2},
    "ComplaintResolved": {"complaint_id": new_id(), "resolution": "已退还年费"},
    "ComplaintReopened": {"complaint_id": new_id()},
    "ContactLogged": {
        "contact_id": new_id(),
        "customer_id": new_id(),
        "channel": "phone",
        "direction": "inbound",
        "topic": "理财咨询",
    },
    "CampaignLaunched": {
        "campaign_id": new_id(),
        "name": "春节理财季",
        "channel": "mail",
        "purpose": "marketing",
        "frequency_cap": {"max": 2, "days": 30},
    },
    "MailingSent": {
        "mailing_id": new_id(),
        "campaign_id": new_id(),
        "customer_id": new_id(),
    },
    "MailingReturned": {"mailing_id": new_id(), "reason": "查无此人"},
    "MailingResponded": {"mailing_id": new_id(), "response": "预约面谈"},
}

OPTIONAL = {
    "national_id",
    "birth_date",
    "city",
    "name",
    "date_of_death",
    "frequency_cap",
}


def fields_of(raw: dict[str, Any]) -> set[str]:
    try:
        parse_envelope(raw)
    except InvalidEvent as error:
        return {p.field for p in error.problems}
    return set()


def test_every_type_has_a_valid_example() -> None:
    assert set(VALID_DATA) == set(DATA_MODELS)
    for type_, data in VALID_DATA.items():
        parsed = parse_envelope(envelope(type_, data))
        assert parsed.type == type_


@pytest.mark.parametrize("type_", sorted(VALID_DATA))
def test_each_required_field_is_named_when_missing(type_: str) -> None:
    model = DATA_MODELS[type_]
    required = [
        name for name, field in model.model_fields.items() if field.is_required()
    ]
    assert required, type_
    for name in required:
        data = copy.deepcopy(VALID_DATA[type_])
        data.pop(name, None)
        assert f"data.{name}" in fields_of(envelope(type_, data)), (type_, name)


@pytest.mark.parametrize("type_", sorted(VALID_DATA))
def test_unknown_fields_are_rejected_not_dropped(type_: str) -> None:
    data = {**VALID_DATA[type_], "nickname": "小王"}
    assert fields_of(envelope(type_, data)) == {"data.nickname"}


@pytest.mark.parametrize(
    ("type_", "field", "value", "expected"),
    [
        ("BalanceReported", "balance", 12.5, "data.balance"),
        ("BalanceReported", "balance", "NaN", "data.balance"),
        ("BalanceReported", "balance", "Infinity", "data.balance"),
        ("BalanceReported", "balance", "12.345", "data.balance"),
        ("BalanceReported", "as_of", "2025-02-30", "data.as_of"),
        ("BalanceReported", "as_of", 20250131, "data.as_of"),
        ("FeeCharged", "amount", "-1.00", "data.amount"),
        ("StatementIssued", "period", "2025-13", "data.period"),
        ("ConsentChanged", "granted", "yes", "data.granted"),
        ("ConsentChanged", "channel", "pigeon", "data.channel"),
        ("AccountOpened", "customer_id", "not-a-uuid", "data.customer_id"),
        ("AccountOpened", "product", "crypto", "data.product"),
        ("ComplaintEscalated", "level", "2", "data.level"),
        ("CustomerRegistered", "name", "", "data.name"),
        ("CustomerRegistered", "name", "王\x00芳", "data.name"),
        ("CustomerRegistered", "address", {"city": "北京市"}, "data.address.line"),
        (
            "CustomerRegistered",
            "address",
            {"line": "x", "floor": 3},
            "data.address.floor",
        ),
    ],
)
def test_bad_values_name_the_field(
    type_: str, field: str, value: Any, expected: str
) -> None:
    data = {**VALID_DATA[type_], field: value}
    assert expected in fields_of(envelope(type_, data))


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("occurred_at", "2025-03-01T10:00:00"),
        ("occurred_at", "2025-02-30T10:00:00+08:00"),
        ("occurred_at", 1735689600),
        ("event_id", "42"),
        ("event_id", 42),
        ("type", "CustomerTeleported"),
        ("type", "MailingScheduled"),
        ("source", ""),
    ],
)
def test_bad_envelopes_name_the_field(field: str, value: Any) -> None:
    raw = envelope("HouseholdHeadDesignated", {"customer_id": new_id()})
    raw[field] = value
    assert field in fields_of(raw)


def test_unknown_envelope_field_and_non_object() -> None:
    raw = envelope("HouseholdHeadDesignated", {"customer_id": new_id()})
    raw["priority"] = "high"
    assert fields_of(raw) == {"priority"}
    with pytest.raises(InvalidEvent):
        parse_envelope(["not", "an", "object"])


def test_chinese_text_emoji_and_rtl_are_kept_exactly() -> None:
    name = "欧阳娜娜 👩‍👩‍👧 שלום é"
    parsed = parse_envelope(
        envelope("CustomerDetailsCorrected", {"customer_id": new_id(), "name": name})
    )
    assert parsed.data.model_dump()["name"] == name
