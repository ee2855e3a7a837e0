"""Turns a validated envelope into facts on aggregates, enforcing the domain rules.

Every check runs before any fact is triggered, so a rejected event leaves the
aggregates untouched and the rest of a batch can go on.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from functools import lru_cache
from typing import Any, Protocol, TypeVar
from uuid import UUID

from eventsourcing.domain import Aggregate

from domain import account, complaint, customer, order, outreach
from domain.catalogue import ValidEvent
from domain.errors import RuleViolated, UnknownEntity
from domain.events import Fact, FirstFact
from domain.national_id import protect

A = TypeVar("A", bound=Aggregate)


@lru_cache(maxsize=8192)
def entity_id(raw_id: str) -> UUID:
    """The UUID of an id as stored in `data`. A batch names each id several times
    (loading, rules, facts), and building a UUID costs more than a cache lookup."""
    return UUID(raw_id)


class AggregateSource(Protocol):
    """Where handlers find aggregates, put new ones and record facts (a unit of work)."""

    def find(self, cls: type[A], aggregate_id: UUID) -> A | None: ...

    def add(self, aggregate: Aggregate) -> None: ...

    def record(
        self, aggregate: Aggregate, fact: type[Fact], fields: dict[str, Any]
    ) -> None:
        """Records `fact` on `aggregate`; `fields` as `fact_fields` makes them, and
        the timestamp when the decider fixes one (see `trigger`)."""
        ...


def trigger(aggregate: Aggregate, fact: type[Fact], fields: dict[str, Any]) -> None:
    """The plain way to record a fact: the library's `trigger_event`."""
    aggregate.trigger_event(fact, **fields)


def stored_data(event: ValidEvent, national_id_key: bytes) -> dict[str, Any]:
    """The JSON form of `data` as stored: national IDs become a hash and last 4."""
    data: dict[str, Any] = event.data.model_dump(mode="json", exclude_none=True)
    national_id = data.pop("national_id", None)
    if national_id is not None:
        data["national_id_hash"], data["national_id_last4"] = protect(
            national_id, national_id_key
        )
    return data


def fact_fields(event: ValidEvent, data: dict[str, Any]) -> dict[str, Any]:
    return {
        "event_id": str(event.event_id),
        "occurred_at": event.occurred_at.isoformat(),
        "source": event.source,
        "actor": event.actor,
        "data": data,
    }


Handler = Callable[[AggregateSource, dict[str, Any]], Callable[[dict[str, Any]], None]]


class Decider:
    """Applies one validated event to the aggregates it concerns."""

    def __init__(
        self,
        source: AggregateSource,
        national_id_key: bytes,
        recorded_at: datetime | None = None,
    ) -> None:
        """`recorded_at`: the timestamp of every fact, for facts saved together
        (one clock reading instead of one per fact); None reads the clock each time."""
        self.source = source
        self.national_id_key = national_id_key
        self.stamp = {} if recorded_at is None else {"timestamp": recorded_at}

    def handle(self, event: ValidEvent, data: dict[str, Any] | None = None) -> None:
        """Applies `event`; `data` is its stored form when the caller already made it."""
        if data is None:
            data = stored_data(event, self.national_id_key)
        self.apply(event.type, data, fact_fields(event, data))

    def apply(
        self, event_type: str, data: dict[str, Any], fields: dict[str, Any]
    ) -> None:
        """Applies an event already in its stored form (`fields` as `fact_fields` makes them)."""
        getattr(self, f"_on_{event_type}")(data, fields)

    # lookups -------------------------------------------------------------

    def _existing(self, cls: type[A], raw_id: str, field: str) -> A:
        found = self.source.find(cls, entity_id(raw_id))
        if found is None:
            kind = cls.__name__.lower()
            raise UnknownEntity(f"unknown {kind} {raw_id}", field=field)
        return found

    def _new(self, cls: type[Aggregate], raw_id: str, field: str) -> None:
        if self.source.find(cls, entity_id(raw_id)) is not None:
            kind = cls.__name__.lower()
            raise RuleViolated(
                f"{kind} {raw_id} already exists", code="already_exists", field=field
            )

    def _customer(
        self, raw_id: str, field: str = "data.customer_id"
    ) -> customer.Customer:
        found = self._existing(customer.Customer, raw_id, field)
        found.ensure_can_take_events()
        return found

    def _living_customer(
        self, raw_id: str, field: str = "data.customer_id"
    ) -> customer.Customer:
        found = self._customer(raw_id, field)
        if found.deceased:
            raise RuleViolated(
                f"customer {raw_id} is deceased", code="customer_deceased", field=field
            )
        return found

    def _create(
        self, cls: type[A], raw_id: str, fact: type[FirstFact], fields: dict[str, Any]
    ) -> None:
        aggregate = cls._create(fact, id=entity_id(raw_id), **fields, **self.stamp)
        self.source.add(aggregate)

    def _trigger(
        self, aggregate: Aggregate, fact: type[Fact], fields: dict[str, Any]
    ) -> None:
        self.source.record(aggregate, fact, {**fields, **self.stamp})

    # customers -----------------------------------------------------------

    def _on_CustomerRegistered(
        self, data: dict[str, Any], fields: dict[str, Any]
    ) -> None:
        self._new(customer.Customer, data["customer_id"], "data.customer_id")
        self._create(
            customer.Customer, data["customer_id"], customer.CustomerRegistered, fields
        )

    def _on_CustomerDetailsCorrected(
        self, data: dict[str, Any], fields: dict[str, Any]
    ) -> None:
        if len(data) == 1:
            raise RuleViolated(
                "a correction must change at least one detail",
                code="empty_correction",
                field="data",
            )
        self._trigger(
            self._customer(data["customer_id"]),
            customer.CustomerDetailsCorrected,
            fields,
        )

    def _on_CustomerMoved(self, data: dict[str, Any], fields: dict[str, Any]) -> None:
        self._trigger(
            self._customer(data["customer_id"]), customer.CustomerMoved, fields
        )

    def _on_ConsentChanged(self, data: dict[str, Any], fields: dict[str, Any]) -> None:
        self._trigger(
            self._customer(data["customer_id"]), customer.ConsentChanged, fields
        )

    def _on_CustomerDeceased(
        self, data: dict[str, Any], fields: dict[str, Any]
    ) -> None:
        found = self._customer(data["customer_id"])
        if found.deceased:
            raise RuleViolated(
                f"customer {found.id} is already recorded as deceased",
                code="customer_deceased",
                field="data.customer_id",
            )
        self._trigger(found, customer.CustomerDeceased, fields)

    def _on_RelationshipDeclared(
        self, data: dict[str, Any], fields: dict[str, Any]
    ) -> None:
        self._ensure_two_people(data["customer_id"], data["related_customer_id"])
        found = self._customer(data["customer_id"])
        self._customer(data["related_customer_id"], "data.related_customer_id")
        self._trigger(found, customer.RelationshipDeclared, fields)

    def _on_RelationshipEnded(
        self, data: dict[str, Any], fields: dict[str, Any]
    ) -> None:
        found = self._customer(data["customer_id"])
        related = data["related_customer_id"]
        if related not in found.related:
            raise RuleViolated(
                f"customer {found.id} has no declared relationship with {related}",
                code="relationship_not_found",
                field="data.related_customer_id",
            )
        self._trigger(found, customer.RelationshipEnded, fields)

    def _on_HouseholdHeadDesignated(
        self, data: dict[str, Any], fields: dict[str, Any]
    ) -> None:
        self._trigger(
            self._living_customer(data["customer_id"]),
            customer.HouseholdHeadDesignated,
            fields,
        )

    def _on_CustomersMerged(self, data: dict[str, Any], fields: dict[str, Any]) -> None:
        self._ensure_two_people(data["survivor_id"], data["duplicate_id"])
        self._customer(data["survivor_id"], "data.survivor_id")
        duplicate = self._customer(data["duplicate_id"], "data.duplicate_id")
        self._trigger(duplicate, customer.CustomersMerged, fields)

    @staticmethod
    def _ensure_two_people(first: str, second: str) -> None:
        if first == second:
            raise RuleViolated(
                "a customer cannot be related to or merged with itself",
                code="same_customer",
                field="data",
            )

    # accounts ------------------------------------------------------------

    def _on_AccountOpened(self, data: dict[str, Any], fields: dict[str, Any]) -> None:
        self._new(account.Account, data["account_id"], "data.account_id")
        self._living_customer(data["customer_id"])
        for index, holder in enumerate(data.get("joint_holder_ids", [])):
            self._living_customer(holder, f"data.joint_holder_ids.{index}")
        self._create(account.Account, data["account_id"], account.AccountOpened, fields)

    def _open_account(self, data: dict[str, Any]) -> account.Account:
        found = self._existing(account.Account, data["account_id"], "data.account_id")
        found.ensure_open()
        return found

    def _on_BalanceReported(self, data: dict[str, Any], fields: dict[str, Any]) -> None:
        self._trigger(self._open_account(data), account.BalanceReported, fields)

    def _on_FeeCharged(self, data: dict[str, Any], fields: dict[str, Any]) -> None:
        self._trigger(self._open_account(data), account.FeeCharged, fields)

    def _on_StatementIssued(self, data: dict[str, Any], fields: dict[str, Any]) -> None:
        self._trigger(self._open_account(data), account.StatementIssued, fields)

    def _on_AccountClosed(self, data: dict[str, Any], fields: dict[str, Any]) -> None:
        self._trigger(self._open_account(data), account.AccountClosed, fields)

    # orders --------------------------------------------------------------

    def _on_OrderPlaced(self, data: dict[str, Any], fields: dict[str, Any]) -> None:
        self._new(order.Order, data["order_id"], "data.order_id")
        self._living_customer(data["customer_id"])
        self._create(order.Order, data["order_id"], order.OrderPlaced, fields)

    def _order(self, data: dict[str, Any]) -> order.Order:
        return self._existing(order.Order, data["order_id"], "data.order_id")

    def _on_OrderReviewed(self, data: dict[str, Any], fields: dict[str, Any]) -> None:
        found = self._order(data)
        found.ensure_status(
            {"placed"}, "reviewed (an order is reviewed once)", "order_already_reviewed"
        )
        self._trigger(found, order.OrderReviewed, fields)

    def _on_OrderShipped(self, data: dict[str, Any], fields: dict[str, Any]) -> None:
        found = self._order(data)
        found.ensure_status(
            {"approved"}, "shipped (only approved orders ship)", "order_not_approved"
        )
        self._trigger(found, order.OrderShipped, fields)

    def _on_OrderDelivered(self, data: dict[str, Any], fields: dict[str, Any]) -> None:
        found = self._order(data)
        found.ensure_status(
            {"shipped"}, "delivered before it is shipped", "order_not_shipped"
        )
        self._trigger(found, order.OrderDelivered, fields)

    def _on_OrderCancelled(self, data: dict[str, Any], fields: dict[str, Any]) -> None:
        found = self._order(data)
        found.ensure_status(
            {"placed", "approved"}, "cancelled", "order_not_cancellable"
        )
        self._trigger(found, order.OrderCancelled, fields)

    # complaints ----------------------------------------------------------

    def _on_ComplaintFiled(self, data: dict[str, Any], fields: dict[str, Any]) -> None:
        self._new(complaint.Complaint, data["complaint_id"], "data.complaint_id")
        self._customer(data["customer_id"])
        self._create(
            complaint.Complaint, data["complaint_id"], complaint.ComplaintFiled, fields
        )

    def _complaint(self, data: dict[str, Any]) -> complaint.Complaint:
        return self._existing(
            complaint.Complaint, data["complaint_id"], "data.complaint_id"
        )

    def _on_ComplaintAssigned(
        self, data: dict[str, Any], fields: dict[str, Any]
    ) -> None:
        found = self._complaint(data)
        found.ensure_open("assigned")
        self._trigger(found, complaint.ComplaintAssigned, fields)

    def _on_ComplaintEscalated(
        self, data: dict[str, Any], fields: dict[str, Any]
    ) -> None:
        found = self._complaint(data)
        found.ensure_open("escalated")
        self._trigger(found, complaint.ComplaintEscalated, fields)

    def _on_ComplaintResolved(
        self, data: dict[str, Any], fields: dict[str, Any]
    ) -> None:
        found = self._complaint(data)
        found.ensure_open("resolved again")
        self._trigger(found, complaint.ComplaintResolved, fields)

    def _on_ComplaintReopened(
        self, data: dict[str, Any], fields: dict[str, Any]
    ) -> None:
        found = self._complaint(data)
        if not found.resolved:
            raise RuleViolated(
                f"complaint {found.id} is not resolved, so it cannot be reopened",
                code="complaint_not_resolved",
                field="data.complaint_id",
            )
        self._trigger(found, complaint.ComplaintReopened, fields)

    # contacts, campaigns, mailings ---------------------------------------

    def _on_ContactLogged(self, data: dict[str, Any], fields: dict[str, Any]) -> None:
        self._new(outreach.Contact, data["contact_id"], "data.contact_id")
        self._customer(data["customer_id"])
        self._create(
            outreach.Contact, data["contact_id"], outreach.ContactLogged, fields
        )

    def _on_CampaignLaunched(
        self, data: dict[str, Any], fields: dict[str, Any]
    ) -> None:
        self._new(outreach.Campaign, data["campaign_id"], "data.campaign_id")
        self._create(
            outreach.Campaign, data["campaign_id"], outreach.CampaignLaunched, fields
        )

    def _on_MailingSent(self, data: dict[str, Any], fields: dict[str, Any]) -> None:
        self._new(outreach.Mailing, data["mailing_id"], "data.mailing_id")
        self._existing(outreach.Campaign, data["campaign_id"], "data.campaign_id")
        self._customer(data["customer_id"])
        self._create(outreach.Mailing, data["mailing_id"], outreach.MailingSent, fields)

    def _mailing(self, data: dict[str, Any]) -> outreach.Mailing:
        return self._existing(outreach.Mailing, data["mailing_id"], "data.mailing_id")

    def _on_MailingReturned(self, data: dict[str, Any], fields: dict[str, Any]) -> None:
        self._trigger(self._mailing(data), outreach.MailingReturned, fields)

    def _on_MailingResponded(
        self, data: dict[str, Any], fields: dict[str, Any]
    ) -> None:
        self._trigger(self._mailing(data), outreach.MailingResponded, fields)
