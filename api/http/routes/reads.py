"""Reads of the customer, household and contact-history views.

Every read takes `min_position`: it waits (bounded) until the views have applied
that log position, so a client can read its own writes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal
from uuid import UUID

from fastapi import APIRouter, Depends, Query, Request
from starlette.concurrency import run_in_threadpool

from api.audit.replay import late_arrivals, views_at
from api.http.errors import ApiError
from api.http.responses import JSONResponse, published
from api.http.schemas import (
    READ_ERRORS,
    ContactHistoryPage,
    CustomerMatches,
    CustomerProfile,
    Household,
    HouseholdPage,
)
from api.http.security import AUDITORS, platform_of, require
from api.http.views import (
    id_of,
    not_found,
    page_of,
    public,
    public_rows,
    wait_for_position,
)
from api.keys import ApiKey
from api.store.async_reads import AsyncReads
from api.store.database import Cursor, Database
from domain.national_id import protect
from projections import contact_history, customers, households
from projections.contact_history_queries import (
    customer_history_page,
    customer_history_statement,
    known_customer_history,
)
from projections.household_overview import (
    HouseholdRead,
    TierCache,
    household_by_id,
    household_from_row,
    household_of_customer,
)
from projections.household_queries import list_households as list_household_rows
from projections.household_read_sql import HOUSEHOLD_BY_ID, HOUSEHOLD_OF_CUSTOMER
from projections.household_value import Tiers
from projections.runner import read_position

router = APIRouter(tags=["reads"], responses=READ_ERRORS)

HOUSEHOLDS_PROJECTION = "households"

MinPosition = Query(
    None,
    ge=0,
    le=2**63 - 1,
    description="Wait until the views reflect this log position",
)
AsOf = Query(
    None,
    description="Answer as recorded by this RFC 3339 time (roles audit, admin)",
)
IncludeLate = Query(
    False,
    description="With as_of: also list events recorded after as_of that happened before it",
)


def views_for(
    request: Request, key: ApiKey, min_position: int | None, as_of: datetime | None
) -> tuple[Database, int | None]:
    """The live views (after waiting for `min_position`), or the views as of `as_of`."""
    platform = platform_of(request)
    if as_of is None:
        wait_for_position(platform, min_position)
        return platform.db, None
    if key.role not in AUDITORS:
        raise ApiError(403, "forbidden", "as_of is for the audit and admin roles")
    if as_of.tzinfo is None:
        raise ApiError(
            422,
            "invalid_request",
            "as_of needs an offset",
            [{"field": "query.as_of", "message": "an RFC 3339 time with offset"}],
        )
    return views_at(platform, as_of)


def live_reads(
    request: Request, min_position: int | None, as_of: datetime | None
) -> AsyncReads | None:
    """The event loop's read pool, when this read may use it: the live views, no
    position to wait for, and a pool (PostgreSQL, opened by the app's lifespan).
    Otherwise None, and the read takes a worker thread."""
    if as_of is not None or (min_position is not None and min_position > 0):
        return None
    reads: AsyncReads | None = request.app.state.async_reads
    return reads


def _tier_cache(request: Request) -> TierCache:
    cache = platform_of(request).extras.setdefault("tier_cache", TierCache())
    assert isinstance(cache, TierCache)
    return cache


def tiers_of(request: Request, db: Database) -> Tiers:
    """Value tiers of every household: cached for the live views, fresh for a past view."""
    if db is not platform_of(request).db:
        return TierCache().tiers(db)
    return _tier_cache(request).tiers(db)


async def live_tiers(request: Request) -> Tiers:
    """`tiers_of` the live views, from the event loop: a thread only when the cache
    must look at the views (at most once per its max_age)."""
    cache = _tier_cache(request)
    current = cache.current()
    if current is not None:
        return current
    return await run_in_threadpool(cache.tiers, platform_of(request).db)


def point_in_time(
    request: Request,
    answer: dict[str, Any],
    as_of: datetime | None,
    position: int | None,
    include_late: bool,
    customer_ids: frozenset[str],
) -> dict[str, Any]:
    if as_of is None or position is None:
        return answer
    answer["as_of"] = as_of.isoformat()
    answer["as_of_position"] = position
    if include_late:
        platform = platform_of(request)
        answer["late_events"] = late_arrivals(platform, as_of, position, customer_ids)
    return answer


Limit = Query(50, ge=1, le=500)


async def history_filters(
    cursor: str | None = Query(None, max_length=200),
    limit: int = Limit,
    channel: str | None = Query(None, max_length=32),
    type: list[str] | None = Query(None),
    since: datetime | None = Query(None),
    until: datetime | None = Query(None),
) -> dict[str, Any]:
    """The contact-history filters both history endpoints take (async: pure
    parsing, so FastAPI need not hand it to a worker thread)."""
    return {
        "cursor": cursor,
        "limit": limit,
        "channel": channel,
        "types": type or None,
        "since": _utc(since, "since"),
        "until": _utc(until, "until"),
    }


@router.get("/v1/customers/search", response_model=CustomerMatches)
def search_customers(
    request: Request,
    name: str | None = Query(None, min_length=1, max_length=200),
    phone: str | None = Query(None, min_length=1, max_length=40),
    national_id: str | None = Query(None, min_length=1, max_length=40),
    limit: int = Limit,
    min_position: int | None = MinPosition,
    _key: Any = Depends(require("customers.search")),
) -> dict[str, Any]:
    """Finds customers by name, phone or national ID (matched by keyed hash only)."""
    if not (name or phone or national_id):
        raise ApiError(
            422,
            "invalid_request",
            "give name, phone or national_id",
            [{"field": "query", "message": "name, phone or national_id is required"}],
        )
    platform = platform_of(request)
    wait_for_position(platform, min_position)
    id_hash = (
        protect(national_id, platform.settings.national_id_key)[0]
        if national_id
        else None
    )
    with platform.db.read() as cur:
        rows = customers.search_customers(
            cur, name=name, phone=phone, national_id_hash=id_hash, limit=limit
        )
    return {"customers": [public(row) for row in rows]}


@router.get("/v1/customers/{customer_id}", response_model=CustomerProfile)
def get_customer(
    request: Request,
    customer_id: UUID,
    min_position: int | None = MinPosition,
    as_of: datetime | None = AsOf,
    include_late: bool = IncludeLate,
    key: ApiKey = Depends(require("customers.get")),
) -> dict[str, Any]:
    """A customer's profile: national ID as its last 4 only, consents, household."""
    db, position = views_for(request, key, min_position, as_of)
    with db.read() as cur:
        row = customers.get_customer(cur, str(customer_id))
        if row is None:
            raise not_found("customer", str(customer_id))
        profile = public(dict(row))
        if profile.get("household_id") is None:
            profile["household_id"] = _household_id_of(cur, str(customer_id))
    ids = frozenset({str(customer_id)})
    return point_in_time(request, profile, as_of, position, include_late, ids)


@router.get("/v1/customers/{customer_id}/household", response_model=Household)
async def get_customer_household(
    request: Request,
    customer_id: UUID,
    min_position: int | None = MinPosition,
    as_of: datetime | None = AsOf,
    include_late: bool = IncludeLate,
    key: ApiKey = Depends(require("customers.household")),
) -> JSONResponse:
    """The household the customer belongs to now (or as of `as_of`)."""
    return await _household_read(
        request, BY_MEMBER, str(customer_id), key, min_position, as_of, include_late
    )


@router.get("/v1/households", response_model=HouseholdPage)
def list_households(
    request: Request,
    branch_code: str | None = Query(None, max_length=32),
    region_code: str | None = Query(None, max_length=32),
    value_tier: Literal["private", "premier", "mass"] | None = Query(None),
    cursor: str | None = Query(None, max_length=200),
    limit: int = Limit,
    min_position: int | None = MinPosition,
    _key: Any = Depends(require("households.list")),
) -> dict[str, Any]:
    """Households by id, filtered by branch, region or value tier, a page at a time
    (`next_cursor` is the last household id of the page)."""
    platform = platform_of(request)
    wait_for_position(platform, min_position)
    tiers = tiers_of(request, platform.db)
    page: list[dict[str, Any]] = []
    after = cursor
    with platform.db.read() as cur:
        while len(page) < limit:
            rows = list_household_rows(cur, branch_code, region_code, after, limit)
            for row in rows:
                row["value_tier"] = tiers.of(row["household_id"], row["member_count"])
            page += [r for r in rows if value_tier in (None, r["value_tier"])]
            if len(rows) < limit:
                break
            after = rows[-1]["household_id"]
        position = read_position(cur, HOUSEHOLDS_PROJECTION)
    page = page[:limit]
    more = len(page) == limit
    return {
        "households": [public(row) for row in page],
        "next_cursor": page[-1]["household_id"] if more else None,
        "position": position,
    }


@router.get("/v1/households/{household_id}", response_model=Household)
async def get_household(
    request: Request,
    household_id: UUID,
    min_position: int | None = MinPosition,
    as_of: datetime | None = AsOf,
    include_late: bool = IncludeLate,
    key: ApiKey = Depends(require("households.get")),
) -> JSONResponse:
    """Members, address, primary recipient, whether mailable and why not."""
    return await _household_read(
        request, BY_ID, str(household_id), key, min_position, as_of, include_late
    )


@dataclass(frozen=True)
class HouseholdLookup:
    """How a household read finds its household: through a member, or by its id."""

    in_thread: Callable[[Cursor, str, Tiers], HouseholdRead | None]
    statement: str
    """The same read as one PostgreSQL statement, for the event loop."""
    missing: str
    """What a 404 says is missing."""


BY_MEMBER = HouseholdLookup(
    household_of_customer, HOUSEHOLD_OF_CUSTOMER[False], "household for customer"
)
BY_ID = HouseholdLookup(household_by_id, HOUSEHOLD_BY_ID[False], "household")


async def _household_read(
    request: Request,
    lookup: HouseholdLookup,
    id_: str,
    key: ApiKey,
    min_position: int | None,
    as_of: datetime | None,
    include_late: bool,
) -> JSONResponse:
    reads = live_reads(request, min_position, as_of)
    if reads is None:
        answer = await run_in_threadpool(
            _household_in_thread,
            request,
            lookup,
            id_,
            key,
            min_position,
            as_of,
            include_late,
        )
    else:
        tiers = await live_tiers(request)
        row = await reads.fetchone(lookup.statement, (id_,))
        answer = _household(lookup, id_, household_from_row(row, False, tiers))
    return published(Household, answer)


def _household_in_thread(
    request: Request,
    lookup: HouseholdLookup,
    id_: str,
    key: ApiKey,
    min_position: int | None,
    as_of: datetime | None,
    include_late: bool,
) -> dict[str, Any]:
    db, position = views_for(request, key, min_position, as_of)
    tiers = tiers_of(request, db)
    with db.read() as cur:
        found = lookup.in_thread(cur, id_, tiers)
    answer = _household(lookup, id_, found)
    ids = frozenset(str(m["customer_id"]) for m in answer["members"])
    return point_in_time(request, answer, as_of, position, include_late, ids)


@router.get(
    "/v1/customers/{customer_id}/contact-history", response_model=ContactHistoryPage
)
async def customer_contact_history(
    request: Request,
    customer_id: UUID,
    filters: dict[str, Any] = Depends(history_filters),
    min_position: int | None = MinPosition,
    as_of: datetime | None = AsOf,
    include_late: bool = IncludeLate,
    key: ApiKey = Depends(require("customers.contact_history")),
) -> JSONResponse:
    """Every touchpoint with the customer, newest first."""
    reads = live_reads(request, min_position, as_of)
    if reads is None:
        answer = await run_in_threadpool(
            _customer_contact_history,
            request,
            str(customer_id),
            key,
            filters,
            min_position,
            as_of,
            include_late,
        )
        return published(ContactHistoryPage, answer)
    options = dict(filters)
    limit = options.pop("limit")
    try:
        query, params = customer_history_statement(
            str(customer_id), False, limit, options
        )
    except ValueError:
        raise _bad_cursor() from None
    found = customer_history_page(await reads.fetchall(query, params), limit)
    if found is None:
        raise not_found("customer", str(customer_id))
    return published(ContactHistoryPage, _history_page(found))


def _customer_contact_history(
    request: Request,
    customer_id: str,
    key: ApiKey,
    filters: dict[str, Any],
    min_position: int | None,
    as_of: datetime | None,
    include_late: bool,
) -> dict[str, Any]:
    db, position = views_for(request, key, min_position, as_of)
    with db.read() as cur:
        found = _history(known_customer_history, cur, customer_id, filters)
    if found is None:
        raise not_found("customer", customer_id)
    page = _history_page(found)
    return point_in_time(
        request, page, as_of, position, include_late, frozenset({customer_id})
    )


@router.get(
    "/v1/households/{household_id}/contact-history", response_model=ContactHistoryPage
)
def household_contact_history(
    request: Request,
    household_id: UUID,
    filters: dict[str, Any] = Depends(history_filters),
    min_position: int | None = MinPosition,
    as_of: datetime | None = AsOf,
    include_late: bool = IncludeLate,
    key: ApiKey = Depends(require("households.contact_history")),
) -> dict[str, Any]:
    """Every touchpoint with any member of the household, newest first."""
    db, position = views_for(request, key, min_position, as_of)
    history = contact_history
    with db.read() as cur:
        if households.get_household(cur, str(household_id)) is None:
            raise not_found("household", str(household_id))
        page = _history_page(
            _history(history.household_history, cur, str(household_id), filters)
        )
        ids = frozenset(
            str(m["customer_id"]) for m in households.members(cur, str(household_id))
        )
    return point_in_time(request, page, as_of, position, include_late, ids)


def _household_id_of(cur: Cursor, customer_id: str) -> str | None:
    return id_of(households.household_of(cur, customer_id), "household_id")


def _household(
    lookup: HouseholdLookup, id_: str, found: HouseholdRead | None
) -> dict[str, Any]:
    if found is None:
        raise not_found(lookup.missing, id_)
    if found.row is None:
        raise not_found("household", found.household_id)
    household = public(dict(found.row))
    household.setdefault("household_id", found.household_id)
    head = household.get("head_customer_id")
    household["members"] = [_member(m, head) for m in found.members]
    if "position" in household:
        household["updated_position"] = household["position"]
    household["position"] = found.position
    household.update(found.overview)
    return household


def _member(member: dict[str, Any], head: Any) -> dict[str, Any]:
    """A member as published: id, name, role, deceased, since."""
    customer_id = member.get("customer_id")
    member.setdefault("role", "head" if head and customer_id == head else "member")
    return public(member)


def _utc(value: datetime | None, field: str) -> str | None:
    if value is None:
        return None
    if value.tzinfo is None:
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
        )
    return value.astimezone(UTC).isoformat()


def _history(reader: Any, cur: Cursor, id_: str, filters: dict[str, Any]) -> Any:
    try:
        return reader(cur, id_, **filters)
    except ValueError:
        raise _bad_cursor() from None


def _history_page(result: Any) -> dict[str, Any]:
    rows, next_cursor = page_of(result)
    return {"entries": public_rows(rows), "next_cursor": next_cursor}


def _bad_cursor() -> ApiError:
    return ApiError(
        422,
        "invalid_request",
        "query.cursor: not a cursor this endpoint issued",
        [{"field": "query.cursor", "message": "invalid cursor"}],
    )
