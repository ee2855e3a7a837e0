"""Auditors' reads: the log itself, chain verification, views as of a past moment,
and household membership history. Only `audit` and `admin` keys may call these.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from fastapi import APIRouter, Depends, Query, Request
from starlette.concurrency import run_in_threadpool

from api.audit.export import (
    LogFilter,
    Scan,
    household_customers,
    owned_streams,
    scan_log,
    start_after,
)
from api.audit.replay import utc
from api.audit.verify import verify_log
from api.http.errors import ApiError
from api.http.schemas import READ_ERRORS
from api.http.security import platform_of, require
from api.http.views import not_found
from projections import households

router = APIRouter(tags=["audit"], responses=READ_ERRORS)

# One request scans at most this many events, so a narrow filter over a long log
# answers in bounded time; the client continues from `next_after_position`.
MAX_SCANNED = 20_000

AsOf = Query(
    ..., description="RFC 3339 time with offset: the answer as recorded by then"
)
IncludeLate = Query(
    False, description="Also list events recorded after as_of that occurred before it"
)


def _moment(value: datetime | None, field: str) -> datetime | None:
    if value is None:
        return None
    try:
        return utc(value)
    except ValueError:
        raise ApiError(
            422,
            "invalid_request",
            f"query.{field}: needs a UTC offset",
            [
                {
                    "field": f"query.{field}",
                    "message": "a time with an offset is required",
                }
            ],
        ) from None


@router.get("/v1/audit/events")
def audit_events(
    request: Request,
    after_position: int = Query(0, ge=0, le=2**63 - 1),
    limit: int = Query(100, ge=1, le=1000),
    customer_id: UUID | None = Query(None),
    household_id: UUID | None = Query(None),
    type: list[str] | None = Query(None),
    since: datetime | None = Query(None, description="Recorded at or after"),
    until: datetime | None = Query(None, description="Recorded before"),
    _key: Any = Depends(require("audit.events")),
) -> dict[str, Any]:
    """The log in global order with each event's chain hash; filters as `crm audit export`."""
    platform = platform_of(request)
    log_filter = LogFilter(
        types=frozenset(type) if type else None,
        since=_moment(since, "since"),
        until=_moment(until, "until"),
    )
    if customer_id is not None or household_id is not None:
        ids = {str(customer_id)} if customer_id is not None else set()
        if household_id is not None:
            with platform.db.transaction() as cur:
                ids |= household_customers(cur, str(household_id))
        log_filter.customer_ids = frozenset(ids)
        log_filter.owned_streams = owned_streams(platform, log_filter.customer_ids)
    start = max(after_position, start_after(platform, log_filter))
    scan = Scan()
    events = []
    for entry in scan_log(
        platform, log_filter, after_position=start, max_scanned=MAX_SCANNED, scan=scan
    ):
        events.append(entry.as_json())
        if len(events) >= limit:
            break
    return {
        "events": events,
        "next_after_position": scan.position,
        "end_of_log": scan.finished,
    }


@router.get("/v1/audit/verify")
async def audit_verify(
    request: Request, _key: Any = Depends(require("audit.verify"))
) -> dict[str, Any]:
    """Recomputes the hash chain over the whole log and compares it with the stored one."""
    platform = platform_of(request)
    report = await run_in_threadpool(verify_log, platform.db)
    return report.as_json()


@router.get("/v1/households/{household_id}/history")
def household_history(
    request: Request,
    household_id: UUID,
    _key: Any = Depends(require("households.history")),
) -> dict[str, Any]:
    """Every membership change of the household: who joined or left, when, and which event did it."""
    platform = platform_of(request)
    with platform.db.transaction() as cur:
        rows = households.membership_history(cur, str(household_id))
        if not rows and households.get_household(cur, str(household_id)) is None:
            raise not_found("household", str(household_id))
    return {"household_id": str(household_id), "changes": _changes(rows)}


def _changes(memberships: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Membership spans, unrolled into joined/left changes in log order."""
    changes = []
    for m in memberships:
        changes.append(
            {
                "change": "joined",
                "customer_id": m["customer_id"],
                "position": m["from_position"],
                "recorded_at": m["since"],
                "occurred_at": m["occurred_since"],
                "event_id": m["joined_by_event_id"],
                "event_type": m["joined_by_type"],
                "reason": m["reason"],
            }
        )
        if m["to_position"] is not None:
            changes.append(
                {
                    "change": "left",
                    "customer_id": m["customer_id"],
                    "position": m["to_position"],
                    "recorded_at": m["until"],
                    "occurred_at": m["occurred_until"],
                    "event_id": m["left_by_event_id"],
                    "event_type": m["left_by_type"],
                    "reason": m["left_reason"],
                }
            )
    changes.sort(
        key=lambda c: (c["position"], c["change"] == "joined", c["customer_id"])
    )
    return changes
