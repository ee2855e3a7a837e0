"""Response bodies, as promised to integrators (field names are a contract)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict


class EventResult(BaseModel):
    event_id: str | None
    status: Literal["stored", "duplicate"]
    position: int | None


class IngestResponse(BaseModel):
    results: list[EventResult]
    position: int | None


class ErrorDetail(BaseModel):
    index: int | None = None
    event_id: str | None = None
    field: str
    message: str
    code: str | None = None


class ErrorInfo(BaseModel):
    code: str
    message: str
    details: list[ErrorDetail]
    request_id: str | None


class ErrorBody(BaseModel):
    error: ErrorInfo


class Health(BaseModel):
    status: Literal["ok"]


class ProjectionReadiness(BaseModel):
    name: str
    position: int
    lag: int


class Readiness(BaseModel):
    status: Literal["ready"]
    database: Literal["reachable"]
    head: int
    projections: list[ProjectionReadiness]
    projection_error: str | None


class View(BaseModel):
    """A row of a view: its documented fields plus whatever the view adds."""

    model_config = ConfigDict(extra="allow")


class CustomerProfile(View):
    customer_id: str
    national_id_last4: str | None = None
    household_id: str | None = None
    consents: Any = None


class HouseholdMember(View):
    customer_id: str | None = None
    name: str | None = None
    role: str | None = None
    deceased: bool | None = None
    since: str | None = None


class AccountsSummary(BaseModel):
    count: int
    total_balance: str
    products: list[str]


class Household(View):
    household_id: str
    members: list[HouseholdMember]
    address: dict[str, Any] | None = None
    primary_recipient_id: str | None = None
    mailable: bool | None = None
    not_mailable_reason: str | None = None
    accounts: AccountsSummary
    value_tier: str | None = None
    open_complaints: int = 0
    last_contact: dict[str, Any] | None = None
    position: int


class HouseholdPage(BaseModel):
    households: list[View]
    next_cursor: str | None
    position: int


class CustomerMatches(BaseModel):
    customers: list[CustomerProfile]


class ContactHistoryPage(BaseModel):
    entries: list[View]
    next_cursor: str | None
    as_of: str | None = None
    as_of_position: int | None = None
    late_events: list[dict[str, Any]] | None = None


def _error(description: str) -> dict[str, Any]:
    return {"model": ErrorBody, "description": description}


COMMON_ERRORS: dict[int | str, dict[str, Any]] = {
    401: _error("Missing, unknown or revoked API key"),
    403: _error("The key's role may not call this endpoint"),
    422: _error("Invalid request; `details` name each field"),
    500: _error("Unexpected error; quote `request_id`"),
    503: _error("Database unavailable or view not caught up; see Retry-After"),
}
READ_ERRORS: dict[int | str, dict[str, Any]] = {
    **COMMON_ERRORS,
    404: _error("No such customer or household"),
}
