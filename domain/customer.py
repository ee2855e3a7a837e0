"""The customer aggregate: identity, address, consents, relationships, merges."""

from __future__ import annotations

from typing import Any

from eventsourcing.domain import Aggregate

from domain.errors import RuleViolated
from domain.events import Fact, FirstFact


class Customer(Aggregate):
    TOPIC = "crm.aggregate.Customer"

    class Created(Aggregate.Created):
        TOPIC = "crm.aggregate.Customer.Created"

    def __init__(self) -> None:
        self.name = ""
        self.address: dict[str, Any] = {}
        self.deceased = False
        self.merged_into: str | None = None
        self.related: dict[str, bool] = {}
        self.consents: dict[str, bool] = {}

    def ensure_can_take_events(self) -> None:
        """A merged-away record takes no new events: they go to the survivor."""
        if self.merged_into is not None:
            raise RuleViolated(
                f"customer {self.id} was merged into {self.merged_into}; "
                "post events for the survivor",
                code="customer_merged",
                field="data.customer_id",
            )


def _address_with_country(state: dict[str, Any]) -> None:
    # v1 stored addresses had no country; the catalogue's default has always been CN.
    state["data"]["address"].setdefault("country", "CN")


class CustomerRegistered(FirstFact):
    TOPIC = "crm.CustomerRegistered"
    class_version = 2

    @staticmethod
    def upcast_v1_v2(state: dict[str, Any]) -> None:
        _address_with_country(state)

    def apply(self, aggregate: Customer) -> None:
        aggregate.name = self.data["name"]
        aggregate.address = self.data["address"]


class CustomerDetailsCorrected(Fact):
    TOPIC = "crm.CustomerDetailsCorrected"

    def apply(self, aggregate: Customer) -> None:
        aggregate.name = self.data.get("name", aggregate.name)


class CustomerMoved(Fact):
    TOPIC = "crm.CustomerMoved"
    class_version = 2

    @staticmethod
    def upcast_v1_v2(state: dict[str, Any]) -> None:
        _address_with_country(state)

    def apply(self, aggregate: Customer) -> None:
        aggregate.address = self.data["address"]


class ConsentChanged(Fact):
    TOPIC = "crm.ConsentChanged"

    def apply(self, aggregate: Customer) -> None:
        key = f"{self.data['channel']}/{self.data['purpose']}"
        aggregate.consents[key] = self.data["granted"]


class CustomerDeceased(Fact):
    TOPIC = "crm.CustomerDeceased"

    def apply(self, aggregate: Customer) -> None:
        aggregate.deceased = True


class RelationshipDeclared(Fact):
    TOPIC = "crm.RelationshipDeclared"

    def apply(self, aggregate: Customer) -> None:
        aggregate.related[self.data["related_customer_id"]] = self.data[
            "same_household"
        ]


class RelationshipEnded(Fact):
    TOPIC = "crm.RelationshipEnded"

    def apply(self, aggregate: Customer) -> None:
        aggregate.related.pop(self.data["related_customer_id"], None)


class HouseholdHeadDesignated(Fact):
    TOPIC = "crm.HouseholdHeadDesignated"


class CustomersMerged(Fact):
    """Stored on the duplicate's stream: it becomes a pointer to the survivor."""

    TOPIC = "crm.CustomersMerged"

    def apply(self, aggregate: Customer) -> None:
        aggregate.merged_into = self.data["survivor_id"]
