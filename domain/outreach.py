"""Contacts, campaigns and mailings: the platform's outbound and inbound touchpoints."""

from __future__ import annotations

from typing import Any

from eventsourcing.domain import Aggregate

from domain.events import Fact, FirstFact


class Contact(Aggregate):
    TOPIC = "crm.aggregate.Contact"

    class Created(Aggregate.Created):
        TOPIC = "crm.aggregate.Contact.Created"


class ContactLogged(FirstFact):
    TOPIC = "crm.ContactLogged"


class Campaign(Aggregate):
    TOPIC = "crm.aggregate.Campaign"

    class Created(Aggregate.Created):
        TOPIC = "crm.aggregate.Campaign.Created"

    def __init__(self) -> None:
        self.settings: dict[str, Any] = {}


class CampaignLaunched(FirstFact):
    TOPIC = "crm.CampaignLaunched"

    def apply(self, aggregate: Campaign) -> None:
        aggregate.settings = dict(self.data)


class Mailing(Aggregate):
    """One piece of a campaign for one customer (sent, returned, responded)."""

    TOPIC = "crm.aggregate.Mailing"

    class Created(Aggregate.Created):
        TOPIC = "crm.aggregate.Mailing.Created"

    def __init__(self) -> None:
        self.campaign_id = ""
        self.customer_id = ""


class MailingSent(FirstFact):
    TOPIC = "crm.MailingSent"

    def apply(self, aggregate: Mailing) -> None:
        aggregate.campaign_id = self.data["campaign_id"]
        aggregate.customer_id = self.data["customer_id"]


class MailingReturned(Fact):
    TOPIC = "crm.MailingReturned"


class MailingResponded(Fact):
    TOPIC = "crm.MailingResponded"
