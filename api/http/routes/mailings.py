"""Mailing plans, decisions ("why did customer X get campaign C?") and campaign reports."""

from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, ConfigDict, Field

from api.http.errors import ApiError
from api.http.schemas import COMMON_ERRORS, ErrorBody
from api.http.security import ROUTE_ROLES, platform_of, require
from api.keys import ApiKey
from api.store.mailing_plans import planner_of
from domain.errors import Conflict
from projections.mailing_decisions import campaign_report, get_campaign, get_decision

MAILING_ROLES = frozenset({"mailing", "admin"})
MAILING_ROUTES = ("mailings.plan", "mailings.decision", "mailings.report")
for _route in MAILING_ROUTES:  # until security.ROUTE_ROLES lists them itself
    ROUTE_ROLES.setdefault(_route, MAILING_ROLES)

MAX_TARGETS = 100_000

router = APIRouter(tags=["mailings"])

_RESPONSES: dict[int | str, dict[str, Any]] = {
    **COMMON_ERRORS,
    404: {"model": ErrorBody, "description": "No such campaign (or decision)"},
    409: {
        "model": ErrorBody,
        "description": "request_id was used for another campaign",
    },
}


class PlanRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    request_id: UUID
    customer_ids: Annotated[list[UUID], Field(min_length=1, max_length=MAX_TARGETS)]


class Cause(BaseModel):
    event_id: str
    type: str
    position: int


class ScheduledPiece(BaseModel):
    mailing_id: str
    household_id: str | None
    customer_id: str
    address: dict[str, Any] | None


class Suppression(BaseModel):
    customer_id: str
    household_id: str | None
    reason: str
    caused_by: list[Cause]


class PlanResponse(BaseModel):
    scheduled: list[ScheduledPiece]
    suppressed: list[Suppression]
    position: int


@router.post(
    "/v1/campaigns/{campaign_id}/mailing-plans",
    response_model=PlanResponse,
    responses=_RESPONSES,
)
def make_plan(
    campaign_id: UUID,
    body: PlanRequest,
    request: Request,
    key: ApiKey = Depends(require("mailings.plan")),
) -> dict[str, Any]:
    """Decides each target once: at most one piece per household, each other target
    suppressed with its reason and the events that caused it. Idempotent by request_id."""
    planner = planner_of(platform_of(request))
    try:
        return planner.plan(
            str(campaign_id),
            [str(c) for c in body.customer_ids],
            str(body.request_id),
            actor=f"api-key:{key.prefix}",
        )
    except Conflict as error:
        raise ApiError(
            409,
            error.code,
            error.message,
            [{"field": "request_id", "message": error.message}],
        ) from None


def _caught_up(request: Request) -> Any:
    platform = platform_of(request)
    planner = planner_of(platform)
    planner.catch_up(platform.app.recorder.max_notification_id() or 0)
    return platform


@router.get("/v1/campaigns/{campaign_id}/decisions/{customer_id}", responses=_RESPONSES)
def decision(
    campaign_id: UUID,
    customer_id: UUID,
    request: Request,
    _key: Any = Depends(require("mailings.decision")),
) -> dict[str, Any]:
    """Why (or why not) this customer got this campaign: decision, reason, causing events."""
    platform = _caught_up(request)
    with platform.db.transaction() as cur:
        if get_campaign(cur, str(campaign_id)) is None:
            raise ApiError(404, "not_found", f"no campaign {campaign_id}")
        found = get_decision(cur, str(campaign_id), str(customer_id))
    if found is None:
        raise ApiError(
            404,
            "not_found",
            f"customer {customer_id} has no decision for {campaign_id}",
        )
    return found


@router.get("/v1/campaigns/{campaign_id}/report", responses=_RESPONSES)
def report(
    campaign_id: UUID,
    request: Request,
    _key: Any = Depends(require("mailings.report")),
) -> dict[str, Any]:
    """Counts by reason; pieces scheduled, sent, returned, responded; violations."""
    platform = _caught_up(request)
    with platform.db.transaction() as cur:
        if get_campaign(cur, str(campaign_id)) is None:
            raise ApiError(404, "not_found", f"no campaign {campaign_id}")
        return campaign_report(cur, str(campaign_id))
