"""Builders of realistic envelopes for tests (Chinese names and addresses by default)."""

from __future__ import annotations

import uuid
from typing import Any


def new_id() -> str:
    return str(uuid.uuid4())


def envelope(
    type_: str,
    data: dict[str, Any],
    *,
    occurred_at: str = "2025-03-01T10:00:00+08:00",
    source: str = "branch:BJ001",
    actor: str | None = "officer:王芳",
    event_id: str | None = None,
) -> dict[str, Any]:
    return {
        "event_id": event_id or new_id(),
        "type": type_,
        "occurred_at": occurred_at,
        "source": source,
        "actor": actor,
        "data": data,
    }


def address(
    line: str = "北京市朝阳区建国路88号3号楼2单元501室", **extra: Any
) -> dict[str, Any]:
    return {"line": line, **extra}


def registered(
    customer_id: str | None = None,
    *,
    name: str = "王芳",
    line: str = "北京市朝阳区建国路88号3号楼2单元501室",
    **extra: Any,
) -> dict[str, Any]:
    data = {
        "customer_id": customer_id or new_id(),
        "name": name,
        "address": address(line),
        "branch_code": "BJ001",
        **extra,
    }
    return envelope("CustomerRegistered", data)


def account_opened(
    customer_id: str, account_id: str | None = None, product: str = "deposit"
) -> dict[str, Any]:
    return envelope(
        "AccountOpened",
        {
            "account_id": account_id or new_id(),
            "customer_id": customer_id,
            "product": product,
            "branch_code": "BJ001",
        },
    )


def contact_logged(
    customer_id: str, topic: str = "理财咨询", channel: str = "phone"
) -> dict[str, Any]:
    """An inbound contact with the customer."""
    return envelope(
        "ContactLogged",
        {
            "contact_id": new_id(),
            "customer_id": customer_id,
            "channel": channel,
            "direction": "inbound",
            "topic": topic,
        },
    )


def campaign_launched(
    campaign_id: str | None = None, name: str = "春节理财推广"
) -> dict[str, Any]:
    """A mail marketing campaign."""
    return envelope(
        "CampaignLaunched",
        {
            "campaign_id": campaign_id or new_id(),
            "name": name,
            "channel": "mail",
            "purpose": "marketing",
        },
    )


def registered_fact(customer_id: str = "x", actor: str | None = None) -> Any:
    """A stored-shape `CustomerRegistered` fact (the library event), as a
    Customer aggregate's first event."""
    from datetime import UTC, datetime

    from domain.customer import CustomerRegistered

    return CustomerRegistered(
        originator_id=uuid.uuid4(),
        originator_version=1,
        timestamp=datetime.now(UTC),
        originator_topic="crm.aggregate.Customer",
        event_id=new_id(),
        occurred_at="2025-03-01T10:00:00+08:00",
        source="branch:BJ001",
        actor=actor,
        data={
            "customer_id": customer_id,
            "name": "张伟",
            "address": {"line": "上海市黄浦区南京东路1号"},
        },
    )
