"""A household's row: head, primary recipient, address, branch and mailability.

Primary recipient: the designated head if alive and reachable (has an address and
was not merged away), else the member with the highest total balance, else the
earliest registered. Deceased members stay members but never receive mail.
Mail consent is per campaign, so it is not looked at here.
"""

from __future__ import annotations

from typing import Any

from projections.household_graph import Person
from projections.household_store import HouseholdStore

NO_ELIGIBLE_MEMBER = "no_eligible_member"


def _reachable(person: Person) -> bool:
    return not person.deceased and person.merged_into is None and bool(person.address)


def primary_recipient(members: list[Person]) -> Person | None:
    designated = [m for m in members if m.head_designated_position is not None]
    head = max(designated, key=lambda m: m.head_designated_position or 0, default=None)
    if head is not None and _reachable(head):
        return head
    eligible = [m for m in members if _reachable(m)]
    return min(eligible, key=lambda m: (-m.balance_cents, *m.order), default=None)


def summarise(members: list[Person]) -> dict[str, Any]:
    designated = [m for m in members if m.head_designated_position is not None]
    head = max(designated, key=lambda m: m.head_designated_position or 0, default=None)
    primary = primary_recipient(members)
    shown = primary or head
    return {
        "address": shown.address if shown else None,
        "address_key": shown.address_key if shown else None,
        "head_customer_id": head.customer_id if head else None,
        "primary_recipient_id": primary.customer_id if primary else None,
        "member_count": len(members),
        "branch_code": primary.branch_code if primary else None,
        "region_code": primary.region_code if primary else None,
        "mailable": 1 if primary else 0,
        "not_mailable_reason": None if primary else NO_ELIGIBLE_MEMBER,
    }


def refresh_household(
    store: HouseholdStore, household_id: str, position: int, *, touched: bool = False
) -> None:
    """Rewrites the row from its members; `position` moves only if something changed,
    or always when `touched` (a member's balance was reported: see households.py)."""
    row = store.household(household_id)
    if row is None:
        return
    ids = store.live_with("household_id", (household_id,))
    people = [store.person(i) for i in ids]
    members = sorted((p for p in people if p is not None), key=lambda m: m.order)
    summary = summarise(members)
    if all(row[key] == value for key, value in summary.items()):
        if touched:
            store.update_household(household_id, position=position)
        return
    store.update_household(household_id, **summary, position=position)
