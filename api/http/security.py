"""Who may call what: one table of route -> roles, checked by one dependency.

A `customer` key is bound to one customer: it reads only that customer's own
profile and posts only that customer's own orders and complaints.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.concurrency import run_in_threadpool

from api.bootstrap import Platform
from api.http.errors import ApiError
from api.keys import ApiKey, authenticate_cached, key_cache
from api.store.database import Database

READERS = frozenset({"read", "audit", "admin"})
AUDITORS = frozenset({"audit", "admin"})
OPERATORS = frozenset({"ingest", "read", "mailing", "audit", "admin"})

ROUTE_ROLES: dict[str, frozenset[str]] = {
    "events.post": frozenset({"ingest", "admin", "customer"}),
    "customers.get": READERS | {"customer"},
    "customers.search": READERS,
    "customers.household": READERS,
    "customers.contact_history": READERS,
    "households.list": READERS,
    "households.get": READERS,
    "households.contact_history": READERS,
    "orders.get": READERS | {"customer"},
    "orders.list": READERS | {"customer"},
    "orders.review_queue": READERS,
    "complaints.get": READERS | {"customer"},
    "complaints.list": READERS | {"customer"},
    "accounts.get": READERS | {"customer"},
    "accounts.statement": READERS | {"customer"},
    "households.top": READERS | {"mailing"},
    "mailings.plan": frozenset({"mailing", "admin"}),
    "mailings.decision": frozenset({"mailing", "audit", "admin"}),
    "mailings.report": frozenset({"mailing", "admin"}),
    "audit.events": AUDITORS,
    "audit.verify": AUDITORS,
    "households.history": READERS,
    "ops.readyz": OPERATORS,
    "ops.metrics": frozenset({"admin", "audit"}),
}
"""The role matrix. `/healthz` is the only route without a key."""

CUSTOMER_EVENT_TYPES = frozenset({"OrderPlaced", "ComplaintFiled"})

bearer = HTTPBearer(auto_error=False, description="An API key from `crm keys create`")


def platform_of(request: Request) -> Platform:
    platform: Platform = request.app.state.platform
    return platform


def require(route: str) -> Callable[..., Awaitable[ApiKey]]:
    """A dependency that admits a valid key whose role may call `route`."""
    allowed = ROUTE_ROLES[route]

    async def dependency(
        request: Request,
        credentials: HTTPAuthorizationCredentials | None = Depends(bearer),
    ) -> ApiKey:
        if credentials is None or credentials.scheme.lower() != "bearer":
            raise _unauthorized("an API key is required: Authorization: Bearer <key>")
        key = await _authenticate(platform_of(request).db, credentials.credentials)
        if key is None:
            raise _unauthorized("unknown or revoked API key")
        if key.role not in allowed:
            raise _forbidden(f"the {key.role} role may not call this endpoint")
        path_customer = request.path_params.get("customer_id")
        if (
            key.role == "customer"
            and path_customer is not None
            and str(path_customer).lower() != str(key.customer_id).lower()
        ):
            raise _forbidden("a customer key reads only its own customer")
        request.state.role = key.role
        return key

    return dependency


async def _authenticate(db: Database, key: str) -> ApiKey | None:
    """From the key cache on the event loop; only a cache miss waits for a thread
    (the dependency is async so that most requests skip that hop)."""
    return key_cache(db).recent(key) or await run_in_threadpool(
        authenticate_cached, db, key
    )


def check_customer_events(key: ApiKey, events: list[Any]) -> None:
    """A customer key may post only its own orders and complaints."""
    if key.role != "customer":
        return
    for index, event in enumerate(events):
        data = event.get("data") if isinstance(event, dict) else None
        own = (
            isinstance(data, dict)
            and str(data.get("customer_id", "")).lower() == str(key.customer_id).lower()
        )
        allowed_type = (
            isinstance(event, dict) and event.get("type") in CUSTOMER_EVENT_TYPES
        )
        if not (allowed_type and own):
            raise _forbidden(
                f"event {index}: a customer key posts only its own "
                + " or ".join(sorted(CUSTOMER_EVENT_TYPES))
                + " events"
            )


def _unauthorized(message: str) -> ApiError:
    return ApiError(
        401, "unauthorized", message, headers={"WWW-Authenticate": "Bearer"}
    )


def _forbidden(message: str) -> ApiError:
    return ApiError(403, "forbidden", message)
