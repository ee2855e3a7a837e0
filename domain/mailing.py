"""Mailing plans: which target of a campaign gets a piece, and why the others do not.

Pure decision logic over facts loaded by the caller. The platform records each
decision as a `MailingScheduled` or `MailingSuppressed` fact. Uniqueness is made
by ids, not by checks alone: the piece of a one-per-household campaign is the
first fact of a slot aggregate whose id is derived from (campaign, household),
and every decision's event_id is derived from (campaign, customer), so a second
writer of either fails on save, reloads and decides again.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, NamedTuple
from uuid import UUID

import orjson
from eventsourcing.domain import Aggregate

from domain.events import FirstFact
from domain.name_ids import uuid5_int, uuid5_text

NAMESPACE = UUID("6f1c2d4e-93a0-5b7e-8c41-2a9d0e6b7f35")

SCHEDULED = "scheduled"
SUPPRESSED = "suppressed"

HOUSEHOLD_ALREADY_SCHEDULED = "household_already_scheduled"
OPTED_OUT = "opted_out"
DECEASED = "deceased"
UNDELIVERABLE_ADDRESS = "undeliverable_address"
FREQUENCY_CAP = "frequency_cap"
MERGED_DUPLICATE = "merged_duplicate"
NO_ELIGIBLE_MEMBER = "no_eligible_member"
UNKNOWN_CUSTOMER = "unknown_customer"
PRIMARY_RECIPIENT = "primary_recipient"
ELIGIBLE = "eligible"


_NAMESPACE_BYTES = NAMESPACE.bytes


def _uuid5_int(name: str) -> int:
    """`uuid5(NAMESPACE, name).int` (a plan makes ~250,000 of these ids)."""
    return uuid5_int(_NAMESPACE_BYTES, name)


def _uuid5_text(name: str) -> str:
    """`str(uuid5(NAMESPACE, name))`."""
    return uuid5_text(_NAMESPACE_BYTES, name)


def slot_id(campaign_id: str, household_id: str) -> UUID:
    return UUID(int=_uuid5_int(f"campaign-slot/{campaign_id}/{household_id}"))


def decision_id(campaign_id: str, customer_id: str) -> UUID:
    """The aggregate of a suppression (and of a piece when not one per household)."""
    return UUID(int=_uuid5_int(f"campaign-decision/{campaign_id}/{customer_id}"))


def decision_event_id(campaign_id: str, customer_id: str) -> str:
    """One decision per customer and campaign: the log's unique event_id enforces it."""
    return _uuid5_text(f"campaign-decision-event/{campaign_id}/{customer_id}")


def mailing_id_for(campaign_id: str, slot_key: str) -> str:
    return _uuid5_text(f"campaign-mailing/{campaign_id}/{slot_key}")


def content_hash(type_: str, fields: dict[str, Any]) -> bytes:
    """The same shape `api.store.ingest.content_hash` hashes: every field but event_id."""
    body = dict(fields)
    del body["event_id"]
    body["type"] = type_
    return body_hash(body)


def body_hash(body: dict[str, Any]) -> bytes:
    """`content_hash` of a body built directly: every field but event_id, and "type"."""
    return hashlib.sha256(orjson.dumps(body, option=orjson.OPT_SORT_KEYS)).digest()


# facts and aggregates ----------------------------------------------------------


class MailingSlot(Aggregate):
    """The one piece a household may get from a campaign (or a customer, if not per household)."""

    TOPIC = "crm.aggregate.MailingSlot"

    class Created(Aggregate.Created):
        TOPIC = "crm.aggregate.MailingSlot.Created"

    def __init__(self) -> None:
        self.decision: dict[str, Any] = {}


class MailingDecision(Aggregate):
    """A target's suppression for a campaign."""

    TOPIC = "crm.aggregate.MailingDecision"

    class Created(Aggregate.Created):
        TOPIC = "crm.aggregate.MailingDecision.Created"

    def __init__(self) -> None:
        self.decision: dict[str, Any] = {}


class MailingScheduled(FirstFact):
    TOPIC = "crm.MailingScheduled"

    def apply(self, aggregate: MailingSlot) -> None:
        aggregate.decision = dict(self.data)


class MailingSuppressed(FirstFact):
    TOPIC = "crm.MailingSuppressed"

    def apply(self, aggregate: MailingDecision) -> None:
        aggregate.decision = dict(self.data)


# decision inputs ---------------------------------------------------------------
# Causes, people, households and decisions are named tuples: immutable, as frozen
# dataclasses would be, and built in half the time (a plan of 100,000 targets
# builds several of each per target; docs/benchmarks.md, ninth pass).


class Cause(NamedTuple):
    event_id: str
    type: str
    position: int

    def as_json(self) -> dict[str, Any]:
        return {"event_id": self.event_id, "type": self.type, "position": self.position}


@dataclass(frozen=True)
class Campaign:
    campaign_id: str
    channel: str
    purpose: str
    one_per_household: bool
    cap_max: int | None
    cap_days: int | None
    launched: Cause


# An address goes through a plan untouched, from its view into the piece's fact
# and the answer: a mapping, or (as the planner reads it) its stored JSON as an
# `orjson.Fragment`. The rules only ask whether there is one.
Address = Any


class Person(NamedTuple):
    customer_id: str
    household_id: str | None
    address: Address | None
    deceased: Cause | None = None
    merged: Cause | None = None
    opted_out: Cause | None = None  # the latest consent change, when it withdrew
    registered_position: int = 0
    head_designated_position: int | None = None
    balance_cents: int = 0


class Household(NamedTuple):
    household_id: str
    address: Address | None
    joined: tuple[Cause, ...] = ()  # why the target is in it (membership events)
    piece: Cause | None = None  # a piece of this campaign already there
    returned: Cause | None = None  # a return since the household's last move
    recent_pieces: tuple[Cause, ...] = ()  # same purpose, within the cap window


class Decision(NamedTuple):
    customer_id: str
    outcome: str
    reason: str
    household_id: str | None = None
    mailing_id: str | None = None
    address: Address | None = None
    caused_by: tuple[dict[str, Any], ...] = ()

    def as_json(self) -> dict[str, Any]:
        return {
            "customer_id": self.customer_id,
            "outcome": self.outcome,
            "reason": self.reason,
            "household_id": self.household_id,
            "mailing_id": self.mailing_id,
            "address": self.address,
            "caused_by": list(self.caused_by),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Decision:
        return cls(
            customer_id=data["customer_id"],
            outcome=data["outcome"],
            reason=data["reason"],
            household_id=data.get("household_id"),
            mailing_id=data.get("mailing_id"),
            address=data.get("address"),
            caused_by=tuple(data.get("caused_by") or ()),
        )


# the decision ------------------------------------------------------------------


def _causes(*causes: Cause | None) -> tuple[dict[str, Any], ...]:
    return tuple(c.as_json() for c in causes if c is not None)


def personal_reason(person: Person | None) -> tuple[str, tuple[Cause, ...]] | None:
    """Why this customer may not get the campaign at all (None: eligible)."""
    if person is None:
        return UNKNOWN_CUSTOMER, ()
    if person.merged is not None:
        return MERGED_DUPLICATE, (person.merged,)
    if person.deceased is not None:
        return DECEASED, (person.deceased,)
    if person.opted_out is not None:
        return OPTED_OUT, (person.opted_out,)
    if person.household_id is None or not person.address:
        return NO_ELIGIBLE_MEMBER, ()
    return None


def household_reason(
    campaign: Campaign, household: Household
) -> tuple[str, tuple[Cause, ...]] | None:
    """Why the household may not get a piece of this campaign now (None: it may)."""
    if campaign.one_per_household and household.piece is not None:
        return HOUSEHOLD_ALREADY_SCHEDULED, (household.piece,)
    if household.returned is not None:
        return UNDELIVERABLE_ADDRESS, (household.returned,)
    if (
        campaign.cap_max is not None
        and len(household.recent_pieces) >= campaign.cap_max
    ):
        return FREQUENCY_CAP, household.recent_pieces
    return None


def rank(person: Person) -> tuple[int, int, int, str]:
    """The household's primary-recipient order: designated head, balance, seniority."""
    head = person.head_designated_position
    return (
        0 if head is not None else 1,
        -(head or 0),
        -person.balance_cents,
        f"{person.registered_position:020d}/{person.customer_id}",
    )


def plan(
    campaign: Campaign,
    targets: Iterable[str],
    people: dict[str, Person],
    households: dict[str, Household],
    decided: dict[str, Decision],
) -> list[Decision]:
    """One decision per distinct target, in the targets' order.

    Targets already decided keep their decision. Among a household's eligible
    targets the piece goes to the primary recipient; the others are suppressed as
    `household_already_scheduled` (one-per-household campaigns only).
    """
    order = list(dict.fromkeys(targets))
    result: dict[str, Decision] = {}
    eligible: dict[str, list[Person]] = {}
    launched = campaign.launched.as_json()
    for customer_id in order:
        if customer_id in decided:
            result[customer_id] = decided[customer_id]
            continue
        person = people.get(customer_id)
        why = personal_reason(person)
        if why is not None:
            result[customer_id] = _suppress(customer_id, person, *why)
            continue
        assert person is not None and person.household_id is not None
        group = person.household_id if campaign.one_per_household else customer_id
        eligible.setdefault(group, []).append(person)
    for group, candidates in eligible.items():
        household = households[candidates[0].household_id or ""]
        why_not = household_reason(campaign, household)
        if why_not is not None:
            for person in candidates:
                result[person.customer_id] = _suppress(
                    person.customer_id, person, *why_not
                )
            continue
        recipient = candidates[0] if len(candidates) == 1 else min(candidates, key=rank)
        piece = Decision(
            customer_id=recipient.customer_id,
            outcome=SCHEDULED,
            reason=PRIMARY_RECIPIENT if campaign.one_per_household else ELIGIBLE,
            household_id=household.household_id,
            mailing_id=mailing_id_for(campaign.campaign_id, group),
            address=household.address or recipient.address,
            caused_by=(launched, *_causes(*household.joined)),
        )
        result[recipient.customer_id] = piece
        for person in candidates:
            if person is not recipient:
                result[person.customer_id] = Decision(
                    customer_id=person.customer_id,
                    outcome=SUPPRESSED,
                    reason=HOUSEHOLD_ALREADY_SCHEDULED,
                    household_id=household.household_id,
                    mailing_id=piece.mailing_id,
                    caused_by=(),  # the piece's own event, filled in once stored
                )
    return [result[c] for c in order]


def _suppress(
    customer_id: str,
    person: Person | None,
    reason: str,
    causes: tuple[Cause, ...],
) -> Decision:
    return Decision(
        customer_id=customer_id,
        outcome=SUPPRESSED,
        reason=reason,
        household_id=None if person is None else person.household_id,
        caused_by=_causes(*causes),
    )
