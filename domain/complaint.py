"""The complaint aggregate: filed, assigned, escalated, resolved, reopened."""

from __future__ import annotations

from eventsourcing.domain import Aggregate

from domain.errors import RuleViolated
from domain.events import Fact, FirstFact


class Complaint(Aggregate):
    TOPIC = "crm.aggregate.Complaint"

    class Created(Aggregate.Created):
        TOPIC = "crm.aggregate.Complaint.Created"

    def __init__(self) -> None:
        self.customer_id = ""
        self.resolved = False

    def ensure_open(self, action: str) -> None:
        if self.resolved:
            raise RuleViolated(
                f"complaint {self.id} is resolved; it can only be reopened, "
                f"not {action}",
                code="complaint_resolved",
                field="data.complaint_id",
            )


class ComplaintFiled(FirstFact):
    TOPIC = "crm.ComplaintFiled"

    def apply(self, aggregate: Complaint) -> None:
        aggregate.customer_id = self.data["customer_id"]


class ComplaintAssigned(Fact):
    TOPIC = "crm.ComplaintAssigned"


class ComplaintEscalated(Fact):
    TOPIC = "crm.ComplaintEscalated"


class ComplaintResolved(Fact):
    TOPIC = "crm.ComplaintResolved"

    def apply(self, aggregate: Complaint) -> None:
        aggregate.resolved = True


class ComplaintReopened(Fact):
    TOPIC = "crm.ComplaintReopened"

    def apply(self, aggregate: Complaint) -> None:
        aggregate.resolved = False
