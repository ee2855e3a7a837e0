"""Mailing plans, decisions ("why did customer X get campaign C?") and campaign reports."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import StreamingResponse
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    WithJsonSchema,
    model_validator,
)
from starlette.background import BackgroundTask

from api.http.errors import ApiError
from api.http.routes.reads import views_for
from api.http.schemas import COMMON_ERRORS, ErrorBody
from api.http.security import platform_of, require
from api.keys import ApiKey
from api.store.mailing_plans import planner_of
from domain.errors import Conflict
from projections.household_value import members_in_tiers
from projections.mailing_decisions import campaign_report, get_campaign, get_decision

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


Tier = Literal["private", "premier", "mass"]


def _uuid_text(value: str) -> str:
    """A UUID's canonical text; the posted string itself when it already is.

    Targets stay strings: validated into UUID objects and turned back into
    strings, parsing a 100,000-target body took 63 MB of RSS instead of 9."""
    try:
        canonical = str(UUID(value))
    except ValueError:
        raise ValueError("must be a UUID") from None
    return value if value == canonical else canonical


CustomerId = Annotated[
    str,
    AfterValidator(_uuid_text),
    WithJsonSchema({"type": "string", "format": "uuid"}),
]


class PlanRequest(BaseModel):
    """Targets are `customer_ids`, or every current member of the households in `value_tiers`."""

    model_config = ConfigDict(extra="forbid")

    request_id: UUID
    customer_ids: (
        Annotated[list[CustomerId], Field(min_length=1, max_length=MAX_TARGETS)] | None
    ) = None
    value_tiers: Annotated[list[Tier], Field(min_length=1)] | None = None

    @model_validator(mode="after")
    def _one_kind_of_target(self) -> PlanRequest:
        if (self.customer_ids is None) == (self.value_tiers is None):
            raise ValueError("give either customer_ids or value_tiers")
        return self


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
) -> Response:
    """Decides each target once: at most one piece per household, each other target
    suppressed with its reason and the events that caused it. Idempotent by request_id."""
    platform = platform_of(request)
    planner = planner_of(platform)
    targets = list(body.customer_ids or [])
    if body.value_tiers is not None:
        head = platform.app.recorder.max_notification_id() or 0
        platform.runner.ensure_caught_up(head, platform.settings.read_wait_seconds)
        with platform.db.transaction() as cur:
            targets = members_in_tiers(cur, body.value_tiers)[:MAX_TARGETS]
    try:
        answer = planner.plan_answer(
            str(campaign_id),
            targets,
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
    # The answer (25 MB for 100,000 targets) is sent as it is read back from its
    # file, never whole in memory; it is built in exactly PlanResponse's shape
    # (tests hold it to the model): validating it took 1 s and 140 MB.
    return StreamingResponse(
        answer.pieces(),
        media_type="application/json",
        headers={"Content-Length": str(answer.size)},
        background=BackgroundTask(answer.close),
    )


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
    as_of: datetime | None = Query(
        None, description="Answer as recorded by this time (roles audit, admin)"
    ),
    key: ApiKey = Depends(require("mailings.decision")),
) -> dict[str, Any]:
    """Why (or why not) this customer got this campaign: decision, reason, causing events."""
    if as_of is None:
        _caught_up(request)
    db, _position = views_for(request, key, None, as_of)
    with db.transaction() as cur:
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
