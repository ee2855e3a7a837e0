"""Household ids, membership history and household rows after a change of links.

Ids are stable: when households join, the one created at the lowest position
keeps its id; when one splits, the part holding its head (else its earliest
registered member) keeps it; the other parts get ids derived from the causing
event, so a rebuild reproduces them.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from projections.household_graph import Neighbourhood, Person, partition
from projections.household_store import HouseholdStore
from projections.records import EventRecord

HOUSEHOLD_NAMESPACE = uuid.UUID("6f1d8c52-3a4e-5b7f-9c21-0d4e8a6b2f13")

EVENT_REASONS = {
    "RelationshipDeclared": "declared_relationship",
    "RelationshipEnded": "relationship_ended",
    "CustomersMerged": "same_person",
    "CustomerDetailsCorrected": "same_person",
    "CustomerRegistered": "registered",
    "CustomerMoved": "moved",
}


def new_household_id(event_id: str, index: int) -> str:
    return str(uuid.uuid5(HOUSEHOLD_NAMESPACE, f"{event_id}/{index}"))


@dataclass(frozen=True)
class Change:
    """What caused a recomputation: the event and whom it concerns directly."""

    record: EventRecord
    subject: str | None = None  # the mover / the new customer
    leaving: str | None = None  # the merged-away duplicate


def _head(members: list[Person]) -> Person | None:
    designated = [m for m in members if m.head_designated_position is not None]
    return max(designated, key=lambda m: m.head_designated_position or 0, default=None)


def _keeper(members: list[Person]) -> str:
    head = _head(members)
    return (head or min(members, key=lambda m: m.order)).customer_id


def reassign(store: HouseholdStore, hood: Neighbourhood, change: Change) -> set[str]:
    """Writes the new partition of `hood`; returns the household ids to refresh."""
    people = hood.people
    components = partition(people, hood.decisions)
    component_of = {c: i for i, comp in enumerate(components) for c in comp}
    old_members: dict[str, list[Person]] = {}
    for person in people.values():
        if person.household_id:
            old_members.setdefault(person.household_id, []).append(person)
    created = _created_positions(store, old_members)
    claims: dict[int, list[str]] = {}
    for household_id, members in old_members.items():
        claims.setdefault(component_of[_keeper(members)], []).append(household_id)
    new_ids: list[str] = []
    fresh: set[str] = set()
    for index in range(len(components)):
        candidates = claims.get(index)
        if candidates:
            new_ids.append(min(candidates, key=lambda h: (created[h], h)))
        else:
            household_id = new_household_id(change.record.event_id, len(fresh))
            fresh.add(household_id)
            new_ids.append(household_id)
    for household_id in fresh:
        _insert_household(store, household_id, change.record.position)
    for index, component in enumerate(components):
        for customer in component:
            old = people[customer].household_id
            if old != new_ids[index]:
                reason = _join_reason(
                    change, hood, customer, component, new_ids[index] in fresh
                )
                left_reason = _leave_reason(
                    change, customer, new_ids[index] in fresh, reason
                )
                _move(
                    store,
                    change.record,
                    customer,
                    old,
                    new_ids[index],
                    reason,
                    left_reason,
                )
    if change.leaving:
        leaving = store.person(change.leaving)
        if leaving and leaving.household_id:
            old_members.setdefault(leaving.household_id, [])
            _move(
                store,
                change.record,
                leaving.customer_id,
                leaving.household_id,
                None,
                "",
                "merged",
            )
    kept = set(new_ids)
    for household_id in sorted(set(old_members) - kept):
        store.delete_household(household_id)
    return kept


def _created_positions(
    store: HouseholdStore, old_members: dict[str, list[Person]]
) -> dict[str, int]:
    store.load_households(old_members)
    created = {}
    for household_id in old_members:
        row = store.household(household_id)
        created[household_id] = int(row["created_position"]) if row else 0
    return created


def _insert_household(store: HouseholdStore, household_id: str, position: int) -> None:
    store.insert_household(
        {
            "household_id": household_id,
            "created_position": position,
            "address": None,
            "address_key": None,
            "head_customer_id": None,
            "primary_recipient_id": None,
            "member_count": 0,
            "branch_code": None,
            "region_code": None,
            "mailable": 0,
            "not_mailable_reason": "no_eligible_member",
            "position": position,
        }
    )


def _link_kind(hood: Neighbourhood, customer: str, component: list[str]) -> str | None:
    person = hood.people[customer]
    kinds = set()
    for other in component:
        if other == customer:
            continue
        if hood.decisions.get(frozenset((customer, other))):
            kinds.add("declared_relationship")
        other_person = hood.people[other]
        if (
            person.national_id_hash
            and person.national_id_hash == other_person.national_id_hash
        ):
            kinds.add("same_person")
        if person.address_key == other_person.address_key:
            kinds.add("same_address")
    for kind in ("declared_relationship", "same_person", "same_address"):
        if kind in kinds:
            return kind
    return None


def _join_reason(
    change: Change,
    hood: Neighbourhood,
    customer: str,
    component: list[str],
    fresh: bool,
) -> str:
    event_type = change.record.type
    if change.subject is not None and event_type in (
        "CustomerRegistered",
        "CustomerMoved",
    ):
        if customer == change.subject and len(component) == 1:
            return EVENT_REASONS[event_type]
        if customer == change.subject or not fresh:
            return (
                _link_kind(hood, change.subject, component) or EVENT_REASONS[event_type]
            )
    if fresh:
        return "split"
    return EVENT_REASONS.get(event_type, "relinked")


def _leave_reason(change: Change, customer: str, fresh: bool, join_reason: str) -> str:
    if change.record.type == "CustomerMoved" and customer == change.subject:
        return "moved"
    if change.record.type == "RelationshipEnded":
        return "relationship_ended"
    return "split" if fresh else join_reason


def _move(
    store: HouseholdStore,
    record: EventRecord,
    customer: str,
    old: str | None,
    new: str | None,
    reason: str,
    left_reason: str,
) -> None:
    if old is not None:
        store.close_membership(
            old,
            customer,
            to_position=record.position,
            until=record.recorded_at,
            occurred_until=record.occurred_at,
            left_by_event_id=record.event_id,
            left_by_type=record.type,
            left_reason=left_reason,
        )
    if new is not None:
        store.open_membership(
            {
                "household_id": new,
                "customer_id": customer,
                "from_position": record.position,
                "to_position": None,
                "since": record.recorded_at,
                "until": None,
                "occurred_since": record.occurred_at,
                "occurred_until": None,
                "joined_by_event_id": record.event_id,
                "joined_by_type": record.type,
                "left_by_event_id": None,
                "left_by_type": None,
                "reason": reason,
                "left_reason": None,
            }
        )
    store.update_person(customer, household_id=new)
