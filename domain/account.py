"""The account aggregate: products held, balances, fees, statements."""

from __future__ import annotations

from eventsourcing.domain import Aggregate

from domain.errors import RuleViolated
from domain.events import Fact, FirstFact


class Account(Aggregate):
    TOPIC = "crm.aggregate.Account"

    class Created(Aggregate.Created):
        TOPIC = "crm.aggregate.Account.Created"

    def __init__(self) -> None:
        self.customer_id = ""
        self.closed = False

    def ensure_open(self) -> None:
        if self.closed:
            raise RuleViolated(
                f"account {self.id} is closed and takes no new balances, fees "
                "or statements",
                code="account_closed",
                field="data.account_id",
            )


class AccountOpened(FirstFact):
    TOPIC = "crm.AccountOpened"

    def apply(self, aggregate: Account) -> None:
        aggregate.customer_id = self.data["customer_id"]


class BalanceReported(Fact):
    TOPIC = "crm.BalanceReported"


class FeeCharged(Fact):
    TOPIC = "crm.FeeCharged"


class StatementIssued(Fact):
    TOPIC = "crm.StatementIssued"


class AccountClosed(Fact):
    TOPIC = "crm.AccountClosed"

    def apply(self, aggregate: Account) -> None:
        aggregate.closed = True
