"""The seed's services: the order flow, complaints, account statements, household value.

A `customer` key reads only its own orders, complaints and accounts (as holder,
joint or not); anything else answers 403, whether it exists or not, so a
customer cannot probe for other customers' ids.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from fastapi import APIRouter, Depends, Path, Query, Request

from api.http.errors import ApiError
from api.http.schemas import READ_ERRORS
from api.http.security import platform_of, require
from api.http.views import not_found, wait_for_position
from api.keys import ApiKey
from api.store.database import Cursor
from projections import accounts, complaints, household_value, orders

router = APIRouter(tags=["services"], responses=READ_ERRORS)

MinPosition = Query(
    None, ge=0, description="Wait until the views reflect this log position"
)
Limit = Query(50, ge=1, le=500)
Period = Path(pattern=r"^\d{4}-(0[1-9]|1[0-2])$", description="YYYY-MM")


def _own(key: ApiKey, customer_ids: list[str] | str | None) -> None:
    """A customer key passes only for its own customer (403 otherwise, even if absent)."""
    if key.role != "customer":
        return
    ids = [customer_ids] if isinstance(customer_ids, str) else customer_ids or []
    mine = str(key.customer_id).lower()
    if mine not in (str(i).lower() for i in ids):
        raise ApiError(403, "forbidden", "a customer key reads only its own customer")


def _customer_filter(key: ApiKey, customer_id: UUID | None) -> str | None:
    if key.role != "customer":
        return None if customer_id is None else str(customer_id)
    if customer_id is not None:
        _own(key, str(customer_id))
    return str(key.customer_id)


def _bad_cursor() -> ApiError:
    return ApiError(
        422,
        "invalid_request",
        "query.cursor: not a cursor this endpoint issued",
        [{"field": "query.cursor", "message": "invalid cursor"}],
    )


# orders --------------------------------------------------------------------------


@router.get("/v1/orders/review-queue")
def order_review_queue(
    request: Request,
    limit: int = Limit,
    min_position: int | None = MinPosition,
    _key: ApiKey = Depends(require("orders.review_queue")),
) -> dict[str, Any]:
    """Placed orders awaiting review, oldest first, with their age in hours now."""
    platform = platform_of(request)
    wait_for_position(platform, min_position)
    with platform.db.read() as cur:
        queue = orders.review_queue(cur, now=datetime.now(UTC), limit=limit)
    return {"orders": queue}


@router.get("/v1/orders")
def list_orders(
    request: Request,
    status: str | None = Query(None, max_length=32),
    customer_id: UUID | None = Query(None),
    branch_code: str | None = Query(None, max_length=32),
    cursor: str | None = Query(None, max_length=200),
    limit: int = Limit,
    min_position: int | None = MinPosition,
    key: ApiKey = Depends(require("orders.list")),
) -> dict[str, Any]:
    """Orders newest first, by status, customer or the customer's branch."""
    only = _customer_filter(key, customer_id)
    platform = platform_of(request)
    wait_for_position(platform, min_position)
    with platform.db.read() as cur:
        try:
            rows, next_cursor = orders.list_orders(
                cur,
                status=status,
                customer_id=only,
                branch_code=branch_code,
                cursor=cursor,
                limit=limit,
            )
        except ValueError:
            raise _bad_cursor() from None
    return {"orders": rows, "next_cursor": next_cursor}


def _owned_record(
    request: Request,
    key: ApiKey,
    min_position: int | None,
    kind: str,
    record_id: str,
    owners: Callable[[Cursor, str], Any],
    fetch: Callable[[Cursor, str], Any],
) -> dict[str, Any]:
    """One record of a view; a customer key only ever gets its own."""
    platform = platform_of(request)
    wait_for_position(platform, min_position)
    with platform.db.read() as cur:
        _own(key, owners(cur, record_id))
        found: dict[str, Any] | None = fetch(cur, record_id)
    if found is None:
        raise not_found(kind, record_id)
    return found


@router.get("/v1/orders/{order_id}")
def get_order(
    request: Request,
    order_id: UUID,
    min_position: int | None = MinPosition,
    key: ApiKey = Depends(require("orders.get")),
) -> dict[str, Any]:
    """One order: amount, product, channel, customer, household and timeline."""
    return _owned_record(
        request,
        key,
        min_position,
        "order",
        str(order_id),
        orders.owner_of,
        orders.get_order,
    )


# complaints ----------------------------------------------------------------------


@router.get("/v1/complaints")
def list_complaints(
    request: Request,
    status: str | None = Query(None, pattern="^(open|resolved)$"),
    officer: str | None = Query(None, max_length=200),
    category: str | None = Query(None, max_length=200),
    customer_id: UUID | None = Query(None),
    limit: int = Limit,
    min_position: int | None = MinPosition,
    key: ApiKey = Depends(require("complaints.list")),
) -> dict[str, Any]:
    """Complaints oldest first, with escalation level and SLA flags."""
    only = _customer_filter(key, customer_id)
    platform = platform_of(request)
    wait_for_position(platform, min_position)
    with platform.db.read() as cur:
        rows = complaints.list_complaints(
            cur,
            status=status,
            officer=officer,
            category=category,
            customer_id=only,
            now=datetime.now(UTC),
            limit=limit,
        )
    return {"complaints": rows}


@router.get("/v1/complaints/{complaint_id}")
def get_complaint(
    request: Request,
    complaint_id: UUID,
    min_position: int | None = MinPosition,
    key: ApiKey = Depends(require("complaints.get")),
) -> dict[str, Any]:
    """One complaint: lifecycle, current officer, escalation level, SLA."""

    def fetch(cur: Cursor, complaint: str) -> Any:
        return complaints.get_complaint(cur, complaint, now=datetime.now(UTC))

    return _owned_record(
        request,
        key,
        min_position,
        "complaint",
        str(complaint_id),
        complaints.owner_of,
        fetch,
    )


# accounts ------------------------------------------------------------------------


@router.get("/v1/accounts/{account_id}")
def get_account(
    request: Request,
    account_id: UUID,
    min_position: int | None = MinPosition,
    key: ApiKey = Depends(require("accounts.get")),
) -> dict[str, Any]:
    """The account with its balance history and statements."""
    return _owned_record(
        request,
        key,
        min_position,
        "account",
        str(account_id),
        accounts.holders_of,
        accounts.get_account,
    )


@router.get("/v1/accounts/{account_id}/statements/{period}")
def get_statement(
    request: Request,
    account_id: UUID,
    period: str = Period,
    min_position: int | None = MinPosition,
    key: ApiKey = Depends(require("accounts.statement")),
) -> dict[str, Any]:
    """Opening and closing balance, fees of the period, and the reconciliation."""
    platform = platform_of(request)
    wait_for_position(platform, min_position)
    with platform.db.read() as cur:
        _own(key, accounts.holders_of(cur, str(account_id)))
        found: dict[str, Any] | None = accounts.statement(cur, str(account_id), period)
    if found is None:
        raise not_found(f"{period} statement for account", str(account_id))
    return found


# household value -----------------------------------------------------------------


@router.get("/v1/households/top")
def top_households(
    request: Request,
    branch_code: str | None = Query(None, max_length=32),
    region_code: str | None = Query(None, max_length=32),
    limit: int = Limit,
    min_position: int | None = MinPosition,
    _key: ApiKey = Depends(require("households.top")),
) -> dict[str, Any]:
    """The most valuable households with balances, fee income, products and tier."""
    platform = platform_of(request)
    wait_for_position(platform, min_position)
    value = household_value
    with platform.db.read() as cur:
        rows = value.top_households(
            cur, branch_code=branch_code, region_code=region_code, limit=limit
        )
    return {"households": rows}
