"""The order aggregate: the seed's "order information flow" from placement to delivery."""

from __future__ import annotations

from eventsourcing.domain import Aggregate

from domain.errors import RuleViolated
from domain.events import Fact, FirstFact


class Order(Aggregate):
    TOPIC = "crm.aggregate.Order"

    class Created(Aggregate.Created):
        TOPIC = "crm.aggregate.Order.Created"

    def __init__(self) -> None:
        self.customer_id = ""
        self.status = "placed"

    def ensure_status(self, allowed: set[str], action: str, code: str) -> None:
        if self.status not in allowed:
            raise RuleViolated(
                f"order {self.id} is {self.status}; it cannot be {action}",
                code=code,
                field="data.order_id",
            )


class OrderPlaced(FirstFact):
    TOPIC = "crm.OrderPlaced"

    def apply(self, aggregate: Order) -> None:
        aggregate.customer_id = self.data["customer_id"]


class OrderReviewed(Fact):
    TOPIC = "crm.OrderReviewed"

    def apply(self, aggregate: Order) -> None:
        aggregate.status = "approved" if self.data["approved"] else "rejected"


class OrderShipped(Fact):
    TOPIC = "crm.OrderShipped"

    def apply(self, aggregate: Order) -> None:
        aggregate.status = "shipped"


class OrderDelivered(Fact):
    TOPIC = "crm.OrderDelivered"

    def apply(self, aggregate: Order) -> None:
        aggregate.status = "delivered"


class OrderCancelled(Fact):
    TOPIC = "crm.OrderCancelled"

    def apply(self, aggregate: Order) -> None:
        aggregate.status = "cancelled"
