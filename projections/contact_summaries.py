"""One-line plain-text summaries and channels of contact-history touchpoints.

Summaries name the customer and, for moves, the new address line; they never
carry the national ID, phone, email, balances or free text (descriptions,
resolutions, reasons), which may hold personal data.

Channel mapping:
- ContactLogged, ComplaintFiled, OrderPlaced: the event's own `channel`
  (an order placed without one has channel NULL);
- MailingSent, MailingReturned, MailingResponded: "mail";
- CustomerRegistered, AccountOpened: "branch" (both name the branch they happen at);
- everything else (follow-ups, back-office and lifecycle events): "system".
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

OWN_CHANNEL_TYPES = frozenset({"ContactLogged", "ComplaintFiled", "OrderPlaced"})
MAIL_TYPES = frozenset({"MailingSent", "MailingReturned", "MailingResponded"})
BRANCH_TYPES = frozenset({"CustomerRegistered", "AccountOpened"})

PRODUCT_WORDS = {
    "deposit": "Deposit",
    "loan": "Loan",
    "card": "Card",
    "insurance_policy": "Insurance policy",
    "fund": "Fund",
    "other": "Other",
}

CORRECTABLE_FIELDS = {
    "name": "name",
    "national_id_hash": "national ID",
    "birth_date": "birth date",
    "gender": "gender",
    "phone": "phone",
    "email": "email",
    "handling_officer": "handling officer",
}


@dataclass(frozen=True)
class Context:
    """What the lookups know about the event's subjects, as of the event."""

    name: str = "Customer"  # the customer the touchpoint is about
    other_name: str = "customer"  # related customer, survivor of a merge
    previous_name: str | None = None  # before a name correction
    product: str = ""  # order product, or account product code
    currency: str = "CNY"
    category: str = ""  # complaint category
    campaign: str = ""  # campaign name
    campaign_channel: str = "mail"
    joint_names: list[str] = field(default_factory=list)


def channel_of(type_: str, data: dict[str, Any]) -> str | None:
    if type_ in OWN_CHANNEL_TYPES:
        value = data.get("channel")
        return str(value) if value is not None else None
    if type_ in MAIL_TYPES:
        return "mail"
    if type_ in BRANCH_TYPES:
        return "branch"
    return "system"


def money(amount: str) -> str:
    return f"{Decimal(amount):,.2f}"


def _account(ctx: Context) -> str:
    return f"{PRODUCT_WORDS.get(ctx.product, ctx.product)} account"


def _registered(d: dict[str, Any], c: Context) -> str:
    return f"{c.name} registered at branch {d['branch_code']}"


def _corrected(d: dict[str, Any], c: Context) -> str:
    fields = [label for key, label in CORRECTABLE_FIELDS.items() if key in d]
    if "name" in d and c.previous_name and c.previous_name != d["name"]:
        return f"{c.previous_name} is now {d['name']}: corrected {', '.join(fields)}"
    return f"{c.name}'s details corrected: {', '.join(fields)}"


def _moved(d: dict[str, Any], c: Context) -> str:
    return f"{c.name} changed address to {d['address']['line']}"


def _consent(d: dict[str, Any], c: Context) -> str:
    verb = "granted" if d["granted"] else "withdrew"
    return f"{c.name} {verb} consent to {d['purpose']} contact by {d['channel']}"


def _deceased(d: dict[str, Any], c: Context) -> str:
    when = f" ({d['date_of_death']})" if d.get("date_of_death") else ""
    return f"{c.name} recorded as deceased{when}"


def _related(d: dict[str, Any], c: Context) -> str:
    together = ", same household" if d["same_household"] else ""
    return f"{c.name} declared {d['relation']} of {c.other_name}{together}"


def _unrelated(_: dict[str, Any], c: Context) -> str:
    return f"{c.name} ended relationship with {c.other_name}"


def _head(_: dict[str, Any], c: Context) -> str:
    return f"{c.name} designated head of household"


def _merged(_: dict[str, Any], c: Context) -> str:
    return f"Duplicate record of {c.name} merged into {c.other_name}"


def _account_opened(d: dict[str, Any], c: Context) -> str:
    joint = f", joint with {'、'.join(c.joint_names)}" if c.joint_names else ""
    return f"{_account(c)} ({c.currency}) opened at branch {d['branch_code']}{joint}"


def _statement(d: dict[str, Any], c: Context) -> str:
    return f"Statement for {d['period']} issued for {_account(c).lower()}"


def _account_closed(_: dict[str, Any], c: Context) -> str:
    return f"{_account(c)} closed"


def _order_placed(d: dict[str, Any], _: Context) -> str:
    via = f" via {d['channel']}" if d.get("channel") else ""
    return f"Order {money(d['amount'])} CNY for {d['product']} placed{via}"


def _order_reviewed(d: dict[str, Any], c: Context) -> str:
    verdict = "approved" if d["approved"] else "rejected"
    return f"Order for {c.product} {verdict} by {d['reviewer']}"


def _order_shipped(d: dict[str, Any], c: Context) -> str:
    tracking = f" (tracking {d['tracking_ref']})" if d.get("tracking_ref") else ""
    return f"Order for {c.product} shipped{tracking}"


def _order_delivered(_: dict[str, Any], c: Context) -> str:
    return f"Order for {c.product} delivered"


def _order_cancelled(_: dict[str, Any], c: Context) -> str:
    return f"Order for {c.product} cancelled"


def _complaint_filed(d: dict[str, Any], _: Context) -> str:
    return f"Complaint ({d['category']}) filed by {d['channel']}"


def _complaint_assigned(d: dict[str, Any], c: Context) -> str:
    return f"Complaint ({c.category}) assigned to {d['officer']}"


def _complaint_escalated(d: dict[str, Any], c: Context) -> str:
    return f"Complaint ({c.category}) escalated to level {d['level']}"


def _complaint_resolved(_: dict[str, Any], c: Context) -> str:
    return f"Complaint ({c.category}) resolved"


def _complaint_reopened(_: dict[str, Any], c: Context) -> str:
    return f"Complaint ({c.category}) reopened"


def _contact(d: dict[str, Any], c: Context) -> str:
    officer = f" with {d['officer']}" if d.get("officer") else ""
    return (
        f"{d['direction'].capitalize()} {d['channel']} contact with {c.name} "
        f"about {d['topic']}{officer}"
    )


def _mailing_sent(_: dict[str, Any], c: Context) -> str:
    by = "" if c.campaign_channel == "mail" else f" by {c.campaign_channel}"
    return f"Mailing for campaign {c.campaign} sent to {c.name}{by}"


def _mailing_returned(d: dict[str, Any], c: Context) -> str:
    return f"Mailing for campaign {c.campaign} returned: {d['reason']}"


def _mailing_responded(d: dict[str, Any], c: Context) -> str:
    return f"{c.name} responded to campaign {c.campaign}: {d['response']}"


SUMMARIES: dict[str, Callable[[dict[str, Any], Context], str]] = {
    "CustomerRegistered": _registered,
    "CustomerDetailsCorrected": _corrected,
    "CustomerMoved": _moved,
    "ConsentChanged": _consent,
    "CustomerDeceased": _deceased,
    "RelationshipDeclared": _related,
    "RelationshipEnded": _unrelated,
    "HouseholdHeadDesignated": _head,
    "CustomersMerged": _merged,
    "AccountOpened": _account_opened,
    "StatementIssued": _statement,
    "AccountClosed": _account_closed,
    "OrderPlaced": _order_placed,
    "OrderReviewed": _order_reviewed,
    "OrderShipped": _order_shipped,
    "OrderDelivered": _order_delivered,
    "OrderCancelled": _order_cancelled,
    "ComplaintFiled": _complaint_filed,
    "ComplaintAssigned": _complaint_assigned,
    "ComplaintEscalated": _complaint_escalated,
    "ComplaintResolved": _complaint_resolved,
    "ComplaintReopened": _complaint_reopened,
    "ContactLogged": _contact,
    "MailingSent": _mailing_sent,
    "MailingReturned": _mailing_returned,
    "MailingResponded": _mailing_responded,
}
"""Every touchpoint type. BalanceReported, FeeCharged and CampaignLaunched are not."""


def summarise(type_: str, data: dict[str, Any], ctx: Context) -> str:
    return SUMMARIES[type_](data, ctx)
