"""Contact history: every touchpoint per customer (and per household), newest first.

Events that name only an order, complaint, account or mailing are attributed
through small lookup tables kept by this projection; a touchpoint on a joint
account is written once per holder. Each page reads the lookup rows it needs in
a few bulk queries, keeps them current in memory as its events write them, and
sends its writes at the end, one statement per kind (see `projections.batch`). Summaries use names as they were when the
event happened, so a rebuild writes the same rows. Channels: see
`projections.contact_summaries`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from api.store.database import Cursor
from projections import contact_history_sql as sql
from projections.base import ReadsAhead
from projections.batch import PageTable, Writes
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


# Fields of an event's data that name customers whose names a summary may need.
_CUSTOMER_FIELDS = ("customer_id", "related_customer_id", "survivor_id", "duplicate_id")


class ContactHistoryProjection(ReadsAhead):
    name: str = "contact_history"
    tables: tuple[str, ...] = sql.TABLES

    def __init__(self) -> None:
        self._writes = Writes()
        self._names = PageTable(sql.NAMES_IN, "customer_id")
        self._orders = PageTable(sql.ORDERS_IN, "order_id")
        self._complaints = PageTable(sql.COMPLAINTS_IN, "complaint_id")
        self._accounts = PageTable(sql.ACCOUNTS_IN, "account_id")
        self._holders = PageTable(sql.HOLDERS_IN, "account_id", many=True)
        self._campaigns = PageTable(sql.CAMPAIGNS_IN, "campaign_id")
        self._mailings = PageTable(sql.MAILINGS_IN, "mailing_id")
        self._tables = (
            self._names,
            self._orders,
            self._complaints,
            self._accounts,
            self._holders,
            self._campaigns,
            self._mailings,
        )

    def _read(self, cur: Cursor, records: list[EventRecord]) -> None:
        for table in self._tables:
            table.clear()
        self._prefetch(cur, [r for r in records if self._handler(r.type)])

    def _write(self, cur: Cursor, records: list[EventRecord]) -> None:
        self._writes.clear()
        for record in records:
            handler = self._handler(record.type)
            if handler is not None:
                self._apply_one(cur, record, handler)
        self._writes.flush(cur)

    def _handler(self, type_: str) -> Any:
        return getattr(self, f"_on_{type_}", None)

    def _prefetch(self, cur: Cursor, records: list[EventRecord]) -> None:
        """Reads every lookup row the page's events name, a few queries in all."""
        keys: dict[str, set[str]] = {
            k: set() for k in ("account_id", "order_id", "complaint_id", "mailing_id")
        }
        customers: set[str] = set()
        campaigns: set[str] = set()
        for record in records:
            data = record.data
            for column, values in keys.items():
                if column in data:
                    values.add(data[column])
            customers.update(data[f] for f in _CUSTOMER_FIELDS if f in data)
            customers.update(data.get("joint_holder_ids", ()))
            if "campaign_id" in data:
                campaigns.add(data["campaign_id"])
        self._accounts.load(cur, keys["account_id"])
        self._holders.load(cur, keys["account_id"])
        self._orders.load(cur, keys["order_id"])
        self._complaints.load(cur, keys["complaint_id"])
        self._mailings.load(cur, keys["mailing_id"])
        for table in (self._orders, self._complaints, self._mailings):
            customers.update(r["customer_id"] for r in table.rows.values() if r)
        for rows in self._holders.rows.values():
            customers.update(r["customer_id"] for r in rows)
        campaigns.update(r["campaign_id"] for r in self._mailings.rows.values() if r)
        self._names.load(cur, customers)
        self._campaigns.load(cur, campaigns)

    def _apply_one(self, cur: Cursor, record: EventRecord, handler: Any) -> None:
        if record.type == "CustomersMerged":
            merge = (record.data["duplicate_id"], record.data["survivor_id"])
            self._writes.add(sql.UPSERT_MERGE, (*merge, record.position))
        attribution: Attribution | None = handler(cur, record.data)
        if attribution is None or record.type not in SUMMARIES:
            return
        ids = list(dict.fromkeys(attribution.customer_ids))
        context = Context(name=self._name(cur, ids[0]), **attribution.context)
        summary = summarise(record.type, record.data, context)
        channel = channel_of(record.type, record.data)
        occurred_at_utc = utc_text(record.occurred_at)
        self._writes.extend(
            sql.INSERT_ROW,
            (
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
            ),
        )

    # lookups ---------------------------------------------------------------

    def _name(self, cur: Cursor, customer_id: str) -> str:
        row = self._names.get(cur, customer_id)
        return "Customer" if row is None else str(row["name"])

    def _set_name(self, customer_id: str, name: str) -> None:
        self._writes.add(sql.UPSERT_CUSTOMER, (customer_id, name))
        self._names.put(customer_id, {"customer_id": customer_id, "name": name})

    # customers -------------------------------------------------------------

    def _on_CustomerRegistered(self, cur: Cursor, data: dict[str, Any]) -> Attribution:
        self._set_name(data["customer_id"], data["name"])
        return Attribution([data["customer_id"]])

    def _on_CustomerDetailsCorrected(
        self, cur: Cursor, data: dict[str, Any]
    ) -> Attribution:
        previous = self._name(cur, data["customer_id"])
        if "name" in data:
            self._set_name(data["customer_id"], data["name"])
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
        product, currency = data["product"], data.get("currency", "CNY")
        self._writes.add(sql.UPSERT_ACCOUNT, (account_id, product, currency))
        self._accounts.put(
            account_id,
            {"account_id": account_id, "product": product, "currency": currency},
        )
        joint = [
            h for h in data.get("joint_holder_ids", []) if h != data["customer_id"]
        ]
        holders = [data["customer_id"], *joint]
        self._writes.extend(sql.ADD_HOLDER, [(account_id, h) for h in holders])
        known = self._holders.get(cur, account_id)
        held = {row["customer_id"] for row in known}
        for holder in dict.fromkeys(holders):
            if holder not in held:
                known.append({"account_id": account_id, "customer_id": holder})
        return Attribution(
            holders,
            {
                "product": product,
                "currency": currency,
                "joint_names": [self._name(cur, h) for h in joint],
            },
        )

    def _on_account_event(
        self, cur: Cursor, data: dict[str, Any]
    ) -> Attribution | None:
        account = self._accounts.get(cur, data["account_id"])
        holders = self._holders.get(cur, data["account_id"])
        if account is None or not holders:
            return None
        return Attribution(
            sorted(str(h["customer_id"]) for h in holders),
            {"product": account["product"], "currency": account["currency"]},
        )

    _on_StatementIssued = _on_account_event
    _on_AccountClosed = _on_account_event

    # orders and complaints -------------------------------------------------

    def _on_OrderPlaced(self, cur: Cursor, data: dict[str, Any]) -> Attribution:
        row = (data["order_id"], data["customer_id"], data["product"])
        self._writes.add(sql.UPSERT_ORDER, row)
        self._orders.put(
            row[0], dict(zip(("order_id", "customer_id", "product"), row, strict=True))
        )
        return Attribution([data["customer_id"]], {"product": data["product"]})

    def _on_order_event(self, cur: Cursor, data: dict[str, Any]) -> Attribution | None:
        order = self._orders.get(cur, data["order_id"])
        if order is None:
            return None
        return Attribution([str(order["customer_id"])], {"product": order["product"]})

    _on_OrderReviewed = _on_order_event
    _on_OrderShipped = _on_order_event
    _on_OrderDelivered = _on_order_event
    _on_OrderCancelled = _on_order_event

    def _on_ComplaintFiled(self, cur: Cursor, data: dict[str, Any]) -> Attribution:
        row = (data["complaint_id"], data["customer_id"], data["category"])
        self._writes.add(sql.UPSERT_COMPLAINT, row)
        self._complaints.put(
            row[0],
            dict(zip(("complaint_id", "customer_id", "category"), row, strict=True)),
        )
        return Attribution([data["customer_id"]], {"category": data["category"]})

    def _on_complaint_event(
        self, cur: Cursor, data: dict[str, Any]
    ) -> Attribution | None:
        complaint = self._complaints.get(cur, data["complaint_id"])
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
        row = (data["campaign_id"], data["name"], data["channel"])
        self._writes.add(sql.UPSERT_CAMPAIGN, row)
        self._campaigns.put(
            row[0], dict(zip(("campaign_id", "name", "channel"), row, strict=True))
        )

    def _campaign_context(self, cur: Cursor, campaign_id: str) -> dict[str, Any]:
        campaign = self._campaigns.get(cur, campaign_id)
        if campaign is None:
            return {"campaign": "(unknown)"}
        return {"campaign": campaign["name"], "campaign_channel": campaign["channel"]}

    def _on_MailingSent(self, cur: Cursor, data: dict[str, Any]) -> Attribution:
        row = (data["mailing_id"], data["customer_id"], data["campaign_id"])
        self._writes.add(sql.UPSERT_MAILING, row)
        self._mailings.put(
            row[0],
            dict(zip(("mailing_id", "customer_id", "campaign_id"), row, strict=True)),
        )
        return Attribution(
            [data["customer_id"]], self._campaign_context(cur, data["campaign_id"])
        )

    def _on_mailing_event(
        self, cur: Cursor, data: dict[str, Any]
    ) -> Attribution | None:
        mailing = self._mailings.get(cur, data["mailing_id"])
        if mailing is None:
            return None
        return Attribution(
            [str(mailing["customer_id"])],
            self._campaign_context(cur, str(mailing["campaign_id"])),
        )

    _on_MailingReturned = _on_mailing_event
    _on_MailingResponded = _on_mailing_event
