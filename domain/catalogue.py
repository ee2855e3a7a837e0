"""The event catalogue: the envelope and each event type's `data`, as posted from outside.

This is the contract front-office systems write to. Field names here are stored
forever (see `domain.events`), so add fields, never rename them.
"""

from __future__ import annotations

import re
from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Any, Literal, Protocol
from uuid import UUID

from pydantic import (
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    ValidationError,
    create_model,
    field_validator,
    model_validator,
)

from domain.errors import DomainError

_PERIOD = re.compile(r"^\d{4}-(0[1-9]|1[0-2])$")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def _require_str(kind: str) -> Any:
    def check(value: Any) -> Any:
        if not isinstance(value, str):
            raise ValueError(f"{kind} must be a string")
        return value

    return BeforeValidator(check)


def _no_control_chars(value: Any) -> Any:
    if isinstance(value, str) and _CONTROL.search(value):
        raise ValueError("control characters are not allowed")
    return value


# Constraints go before the Python check so that pydantic-core applies them in
# its own (Rust) validator; after it, they would run as Python functions.
Text = Annotated[
    str,
    Field(min_length=1, max_length=2000),
    BeforeValidator(_no_control_chars),
]
ShortText = Annotated[
    str,
    Field(min_length=1, max_length=200),
    BeforeValidator(_no_control_chars),
]
Id = Annotated[UUID, _require_str("id")]
_MONEY_STRING = _require_str('money (a decimal string such as "1234.50")')
Money = Annotated[
    Decimal,
    Field(allow_inf_nan=False, max_digits=20, decimal_places=2),
    _MONEY_STRING,
]
NonNegativeMoney = Annotated[
    Decimal,
    Field(allow_inf_nan=False, max_digits=20, decimal_places=2, ge=0),
    _MONEY_STRING,
]
IsoDate = Annotated[date, _require_str("date (YYYY-MM-DD)")]
Timestamp = Annotated[AwareDatetime, _require_str("RFC 3339 time with offset")]


class Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)


class Address(Model):
    line: Text
    city: ShortText | None = None
    district: ShortText | None = None
    province: ShortText | None = None
    postal_code: Annotated[str, Field(pattern=r"^[0-9A-Za-z \-]{3,12}$")] | None = None
    country: Annotated[str, Field(pattern=r"^[A-Z]{2}$")] = "CN"


NationalId = Annotated[str, Field(pattern=r"^[0-9A-Za-z\- ]{5,32}$")]
NationalIdHash = Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]
NationalIdLast4 = Annotated[str, Field(pattern=r"^[0-9A-Z]{1,4}$")]


class _NationalIdForms(BaseModel):
    """`national_id`, or (re-ingesting an audit export) its stored hash and last 4.

    The hash is keyed with CRM_SECRET_KEY: re-ingest into a platform with the same key.
    """

    national_id: NationalId | None = None
    national_id_hash: NationalIdHash | None = None
    national_id_last4: NationalIdLast4 | None = None

    @model_validator(mode="after")
    def _one_form_of_national_id(self) -> Any:
        hashed = self.national_id_hash is not None
        if hashed != (self.national_id_last4 is not None):
            raise ValueError("national_id_hash and national_id_last4 come together")
        if hashed and self.national_id is not None:
            raise ValueError("give national_id or its hash, not both")
        return self


Gender = Literal["male", "female", "other", "unknown"]
Phone = Annotated[str, Field(pattern=r"^\+?[0-9][0-9 \-]{4,20}$")]
Email = Annotated[str, Field(pattern=r"^[^@\s]{1,64}@[^@\s]{1,255}$")]
Code = Annotated[str, Field(pattern=r"^[0-9A-Za-z_\-.:]{1,32}$")]


class CustomerRegistered(_NationalIdForms, Model):
    customer_id: Id
    name: ShortText
    address: Address
    birth_date: IsoDate | None = None
    gender: Gender | None = None
    phone: Phone | None = None
    email: Email | None = None
    branch_code: Code
    region_code: Code | None = None
    handling_officer: ShortText | None = None


class CustomerDetailsCorrected(_NationalIdForms, Model):
    customer_id: Id
    name: ShortText | None = None
    birth_date: IsoDate | None = None
    gender: Gender | None = None
    phone: Phone | None = None
    email: Email | None = None
    handling_officer: ShortText | None = None


class CustomerMoved(Model):
    customer_id: Id
    address: Address


class ConsentChanged(Model):
    customer_id: Id
    channel: Literal["mail", "email", "sms", "phone"]
    purpose: Literal["marketing", "service"]
    granted: StrictBool


class CustomerDeceased(Model):
    customer_id: Id
    date_of_death: IsoDate | None = None


class RelationshipDeclared(Model):
    customer_id: Id
    related_customer_id: Id
    relation: Literal["spouse", "parent", "child", "sibling", "other"]
    same_household: StrictBool


class RelationshipEnded(Model):
    customer_id: Id
    related_customer_id: Id


class HouseholdHeadDesignated(Model):
    customer_id: Id


class CustomersMerged(Model):
    survivor_id: Id
    duplicate_id: Id


Product = Literal["deposit", "loan", "card", "insurance_policy", "fund", "other"]
Currency = Annotated[str, Field(pattern=r"^[A-Z]{3}$")]


class AccountOpened(Model):
    account_id: Id
    customer_id: Id
    joint_holder_ids: Annotated[list[Id], Field(max_length=20)] = []
    product: Product
    branch_code: Code
    currency: Currency = "CNY"


class BalanceReported(Model):
    account_id: Id
    balance: Money
    as_of: IsoDate


class FeeCharged(Model):
    account_id: Id
    amount: NonNegativeMoney
    kind: ShortText


class StatementIssued(Model):
    account_id: Id
    period: Annotated[str, Field(pattern=_PERIOD.pattern)]
    closing_balance: Money
    fees_total: NonNegativeMoney | None = None


class AccountClosed(Model):
    account_id: Id


class OrderPlaced(Model):
    order_id: Id
    customer_id: Id
    product: ShortText
    amount: NonNegativeMoney
    channel: ShortText | None = None


class OrderReviewed(Model):
    order_id: Id
    approved: StrictBool
    reviewer: ShortText
    reason: Text | None = None


class OrderShipped(Model):
    order_id: Id
    tracking_ref: ShortText | None = None


class OrderDelivered(Model):
    order_id: Id


class OrderCancelled(Model):
    order_id: Id
    reason: Text | None = None


class ComplaintFiled(Model):
    complaint_id: Id
    customer_id: Id
    channel: ShortText
    category: ShortText
    description: Text


class ComplaintAssigned(Model):
    complaint_id: Id
    officer: ShortText


class ComplaintEscalated(Model):
    complaint_id: Id
    level: Annotated[StrictInt, Field(ge=1, le=10)]
    reason: Text | None = None


class ComplaintResolved(Model):
    complaint_id: Id
    resolution: Text


class ComplaintReopened(Model):
    complaint_id: Id
    reason: Text | None = None


class ContactLogged(Model):
    contact_id: Id
    customer_id: Id
    channel: Literal["branch", "phone", "email", "sms", "web", "letter", "visit"]
    direction: Literal["inbound", "outbound"]
    topic: ShortText
    officer: ShortText | None = None


class FrequencyCap(Model):
    max: Annotated[StrictInt, Field(ge=1, le=1000)]
    days: Annotated[StrictInt, Field(ge=1, le=3660)]


class CampaignLaunched(Model):
    campaign_id: Id
    name: ShortText
    channel: Literal["mail", "email", "sms"]
    purpose: Literal["marketing", "service"]
    one_per_household: StrictBool = True
    frequency_cap: FrequencyCap | None = None


class MailingSent(Model):
    mailing_id: Id
    campaign_id: Id
    customer_id: Id
    address: Address | None = None


class MailingReturned(Model):
    mailing_id: Id
    reason: ShortText


class MailingResponded(Model):
    mailing_id: Id
    response: ShortText


DATA_MODELS: dict[str, type[Model]] = {
    model.__name__: model
    for model in (
        CustomerRegistered,
        CustomerDetailsCorrected,
        CustomerMoved,
        ConsentChanged,
        CustomerDeceased,
        RelationshipDeclared,
        RelationshipEnded,
        HouseholdHeadDesignated,
        CustomersMerged,
        AccountOpened,
        BalanceReported,
        FeeCharged,
        StatementIssued,
        AccountClosed,
        OrderPlaced,
        OrderReviewed,
        OrderShipped,
        OrderDelivered,
        OrderCancelled,
        ComplaintFiled,
        ComplaintAssigned,
        ComplaintEscalated,
        ComplaintResolved,
        ComplaintReopened,
        ContactLogged,
        CampaignLaunched,
        MailingSent,
        MailingReturned,
        MailingResponded,
    )
}
"""Types a client may post. Platform-made types (MailingScheduled, ...) are not here."""

PLATFORM_MADE_TYPES = frozenset({"MailingScheduled", "MailingSuppressed"})


class Envelope(Model):
    event_id: Id
    type: ShortText
    occurred_at: Timestamp
    source: ShortText
    actor: ShortText | None = None
    data: Any

    @field_validator("type")
    @classmethod
    def _known_type(cls, value: str) -> str:
        if value in PLATFORM_MADE_TYPES:
            raise ValueError(f"{value} events are made only by the platform")
        if value not in DATA_MODELS:
            raise ValueError(f"unknown event type {value!r}")
        return value


class FieldProblem(Model):
    field: str
    message: str


class InvalidEvent(DomainError):
    """An envelope that does not match the catalogue; lists every problem."""

    code = "invalid_event"

    def __init__(self, problems: list[FieldProblem], event_id: str | None) -> None:
        first = problems[0]
        super().__init__(f"{first.field}: {first.message}", field=first.field)
        self.problems = problems
        self.event_id = event_id


class ValidEvent(Protocol):
    """An envelope that passed the catalogue; `data` is the typed model.

    The typed envelope itself, read-only: copying it into another model cost
    as much as a third of validating it."""

    @property
    def event_id(self) -> UUID: ...
    @property
    def type(self) -> str: ...
    @property
    def occurred_at(self) -> datetime: ...
    @property
    def source(self) -> str: ...
    @property
    def actor(self) -> str | None: ...
    @property
    def data(self) -> Model: ...


def _typed_envelope(type_name: str, data_model: type[Model]) -> type[Envelope]:
    """The envelope with `data` typed: one validation per event, precise error paths."""
    return create_model(
        f"{type_name}Envelope", __base__=Envelope, data=(data_model, ...)
    )


TYPED_ENVELOPES = {
    name: _typed_envelope(name, model) for name, model in DATA_MODELS.items()
}


def parse_envelope(raw: Any) -> ValidEvent:
    """Validates one posted envelope; raises `InvalidEvent` naming each bad field."""
    if not isinstance(raw, dict):
        raise InvalidEvent(
            [FieldProblem(field="", message="an event must be a JSON object")], None
        )
    event_id = raw.get("event_id") if isinstance(raw.get("event_id"), str) else None
    type_name = raw.get("type")
    model = TYPED_ENVELOPES.get(type_name) if isinstance(type_name, str) else None
    try:
        envelope = (model or Envelope).model_validate(raw)
    except ValidationError as error:
        raise InvalidEvent(_problems(error), event_id) from None
    if model is None:  # pragma: no cover - Envelope refuses unknown types itself
        raise InvalidEvent(
            [FieldProblem(field="type", message="unknown event type")], event_id
        )
    return envelope


def _problems(error: ValidationError, prefix: str = "") -> list[FieldProblem]:
    problems = []
    for item in error.errors(include_url=False, include_input=False):
        path = [prefix] if prefix else []
        path += [str(part) for part in item["loc"]]
        message = item["msg"]
        if item["type"] == "extra_forbidden":
            message = "unknown field"
        problems.append(FieldProblem(field=".".join(path), message=message))
    return problems
