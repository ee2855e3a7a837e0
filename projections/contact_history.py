"""Contact history: every touchpoint per customer (and per household), newest first.

Events that name only an order, complaint, account or mailing are attributed
through small lookup tables kept by this projection; a touchpoint on a joint
account is written once per holder. Summaries use names as they were when the
event happened, so a rebuild writes the same rows. Channels: see
`projections.contact_summaries`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from api.store.database import Cursor
from projections import contact_history_sql as sql
from projections.contact_history_queries import (
    InvalidCursor,
    customer_history,
    household_history,
    utc_text,
)
from projections.contact_summaries import SUMMARIES, Context, channel_of, summarise
from projections.records import EventRecord

__all__ = [
    "ContactHistoryProjection",
    "InvalidCursor",
    "customer_history",
    "household_history",
    "utc_text",
]


@dataclass
class Attribution:
    """Whose histories an event belongs in, and what its summary needs to know."""

    customer_ids: list[str]
    context: dict[str, Any] = field(default_factory=dict)


class ContactHistoryProjection:
    name: str = "contact_history"
    tables: tuple[str, ...] = sql.TABLES

    def __init__(self) -> None:
        self._names: dict[str, str] = {}  # names read or written in this batch
        self._accounts: dict[str, Attribution | None] = {}  # statements come monthly

    def apply(self, cur: Cursor, records: list[EventRecord]) -> None:
        self._names = {}
        self._accounts = {}
        for record in records:
            self._apply_one(cur, record)

    def _apply_one(self, cur: Cursor, record: EventRecord) -> None:
        handler = getattr(self, f"_on_{record.type}", None)
        if handler is None:
            return  # not a touchpoint (BalanceReported, FeeCharged, ...)
        if record.type == "CustomersMerged":
            merge = (record.data["duplicate_id"], record.data["survivor_id"])
            cur.execute(sql.UPSERT_MERGE, (*merge, record.position))
        attribution: Attribution | None = handler(cur, record.data)
        if attribution is None or record.type not in SUMMARIES:
            return
        ids = list(dict.fromkeys(attribution.customer_ids))
        context = Context(name=self._name(cur, ids[0]), **attribution.context)
        summary = summarise(record.type, record.data, context)
        channel = channel_of(record.type, record.data)
        occurred_at_utc = utc_text(record.occurred_at)
        cur.executemany(
            sql.INSERT_ROW,
            [
                (
                    customer_id,
                    record.position,
                    record.event_id,
                    record.type,
                    record.occurred_at,
                    occurred_at_utc,
                    record.recorded_at,
                    record.source,
                    record.actor,
                    channel,
                    summary,
                )
                for customer_id in ids
            ],
        )

    # lookups ---------------------------------------------------------------

    @staticmethod
    def _one(cur: Cursor, query: str, key: str) -> dict[str, Any] | None:
        return cur.execute(query, (key,)).fetchone()

    def _name(self, cur: Cursor, customer_id: str) -> str:
        if customer_id not in self._names:
            row = self._one(cur, sql.CUSTOMER_NAME, customer_id)
            self._names[customer_id] = str(row["name"]) if row else "Customer"
        return self._names[customer_id]

    def _set_name(self, cur: Cursor, customer_id: str, name: str) -> None:
        cur.execute(sql.UPSERT_CUSTOMER, (customer_id, name))
        self._names[customer_id] = name

    # customers -------------------------------------------------------------

    def _on_CustomerRegistered(self, cur: Cursor, data: dict[str, Any]) -> Attribution:
        self._set_name(cur, data["customer_id"], data["name"])
        return Attribution([data["customer_id"]])

    def _on_CustomerDetailsCorrected(
        self, cur: Cursor, data: dict[str, Any]
    ) -> Attribution:
        previous = self._name(cur, data["customer_id"])
        if "name" in data:
            self._set_name(cur, data["customer_id"], data["name"])
        return Attribution([data["customer_id"]], {"previous_name": previous})

    def _on_customer_event(self, _: Cursor, data: dict[str, Any]) -> Attribution:
        return Attribution([data["customer_id"]])

    _on_CustomerMoved = _on_customer_event
    _on_ConsentChanged = _on_customer_event
    _on_CustomerDeceased = _on_customer_event
    _on_HouseholdHeadDesignated = _on_customer_event
    _on_ContactLogged = _on_customer_event

    def _on_relationship(self, cur: Cursor, data: dict[str, Any]) -> Attribution:
        related = data["related_customer_id"]
        return Attribution(
            [data["customer_id"], related], {"other_name": self._name(cur, related)}
        )

    _on_RelationshipDeclared = _on_relationship
    _on_RelationshipEnded = _on_relationship

    def _on_CustomersMerged(self, cur: Cursor, data: dict[str, Any]) -> Attribution:
        survivor, duplicate = data["survivor_id"], data["duplicate_id"]
        return Attribution(
            [duplicate, survivor], {"other_name": self._name(cur, survivor)}
        )

    # accounts --------------------------------------------------------------

    def _on_AccountOpened(self, cur: Cursor, data: dict[str, Any]) -> Attribution:
        account_id = data["account_id"]
        currency = data.get("currency", "CNY")
        cur.execute(sql.UPSERT_ACCOUNT, (account_id, data["product"], currency))
        joint = [
            h for h in data.get("joint_holder_ids", []) if h != data["customer_id"]
        ]
        holders = [data["customer_id"], *joint]
        cur.executemany(sql.ADD_HOLDER, [(account_id, h) for h in holders])
        self._accounts.pop(account_id, None)
        return Attribution(
            holders,
            {
                "product": data["product"],
                "currency": currency,
                "joint_names": [self._name(cur, h) for h in joint],
            },
        )

    def _on_account_event(
        self, cur: Cursor, data: dict[str, Any]
    ) -> Attribution | None:
        account_id = data["account_id"]
        if account_id not in self._accounts:
            account = self._one(cur, sql.ACCOUNT, account_id)
            holders = cur.execute(sql.HOLDERS, (account_id,)).fetchall()
            self._accounts[account_id] = (
                None
                if account is None or not holders
                else Attribution(
                    [str(h["customer_id"]) for h in holders],
                    {"product": account["product"], "currency": account["currency"]},
                )
            )
        return self._accounts[account_id]

    _on_StatementIssued = _on_account_event
    _on_AccountClosed = _on_account_event

    # orders and complaints -------------------------------------------------

    def _on_OrderPlaced(self, cur: Cursor, data: dict[str, Any]) -> Attribution:
        cur.execute(
            sql.UPSERT_ORDER, (data["order_id"], data["customer_id"], data["product"])
        )
        return Attribution([data["customer_id"]], {"product": data["product"]})

    def _on_order_event(self, cur: Cursor, data: dict[str, Any]) -> Attribution | None:
        order = self._one(cur, sql.ORDER, data["order_id"])
        if order is None:
            return None
        return Attribution([str(order["customer_id"])], {"product": order["product"]})

    _on_OrderReviewed = _on_order_event
    _on_OrderShipped = _on_order_event
    _on_OrderDelivered = _on_order_event
    _on_OrderCancelled = _on_order_event

    def _on_ComplaintFiled(self, cur: Cursor, data: dict[str, Any]) -> Attribution:
        cur.execute(
            sql.UPSERT_COMPLAINT,
            (data["complaint_id"], data["customer_id"], data["category"]),
        )
        return Attribution([data["customer_id"]], {"category": data["category"]})

    def _on_complaint_event(
        self, cur: Cursor, data: dict[str, Any]
    ) -> Attribution | None:
        complaint = self._one(cur, sql.COMPLAINT, data["complaint_id"])
        if complaint is None:
            return None
        return Attribution(
            [str(complaint["customer_id"])], {"category": complaint["category"]}
        )

    _on_ComplaintAssigned = _on_complaint_event
    _on_ComplaintEscalated = _on_complaint_event
    _on_ComplaintResolved = _on_complaint_event
    _on_ComplaintReopened = _on_complaint_event

    # campaigns and mailings ------------------------------------------------

    def _on_CampaignLaunched(self, cur: Cursor, data: dict[str, Any]) -> None:
        cur.execute(
            sql.UPSERT_CAMPAIGN, (data["campaign_id"], data["name"], data["channel"])
        )

    def _campaign_context(self, cur: Cursor, campaign_id: str) -> dict[str, Any]:
        campaign = self._one(cur, sql.CAMPAIGN, campaign_id)
        if campaign is None:
            return {"campaign": "(unknown)"}
        return {"campaign": campaign["name"], "campaign_channel": campaign["channel"]}

    def _on_MailingSent(self, cur: Cursor, data: dict[str, Any]) -> Attribution:
        cur.execute(
            sql.UPSERT_MAILING,
            (data["mailing_id"], data["customer_id"], data["campaign_id"]),
        )
        return Attribution(
            [data["customer_id"]], self._campaign_context(cur, data["campaign_id"])
        )

    def _on_mailing_event(
        self, cur: Cursor, data: dict[str, Any]
    ) -> Attribution | None:
        mailing = self._one(cur, sql.MAILING, data["mailing_id"])
        if mailing is None:
            return None
        return Attribution(
            [str(mailing["customer_id"])],
            self._campaign_context(cur, str(mailing["campaign_id"])),
        )

    _on_MailingReturned = _on_mailing_event
    _on_MailingResponded = _on_mailing_event
