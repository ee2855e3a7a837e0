"""Liveness, readiness and metrics."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from api.http.metrics import projection_states
from api.http.schemas import COMMON_ERRORS, Health, Readiness
from api.http.security import platform_of, require

router = APIRouter(tags=["operations"])


@router.get("/healthz", response_model=Health)
def healthz() -> dict[str, Any]:
    """The process is up (no key needed, touches nothing)."""
    return {"status": "ok"}


@router.get("/readyz", response_model=Readiness, responses=COMMON_ERRORS)
def readyz(
    request: Request, _key: Any = Depends(require("ops.readyz"))
) -> dict[str, Any]:
    """The database answers; each projection's position and lag behind the log head."""
    platform = platform_of(request)
    head, states = projection_states(platform)
    return {
        "status": "ready",
        "database": "reachable",
        "head": head,
        "projections": [vars(state) for state in states],
        "projection_error": platform.runner.last_error,
    }


@router.get(
    "/metrics",
    responses={
        **COMMON_ERRORS,
        200: {"content": {"text/plain": {}}, "description": "Prometheus text format"},
    },
    response_class=Response,
)
def metrics(request: Request, _key: Any = Depends(require("ops.metrics"))) -> Response:
    """Prometheus metrics (roles admin and audit)."""
    state = request.app.state
    state.metrics.refresh_projections(platform_of(request))
    return Response(
        generate_latest(state.metrics.registry), media_type=CONTENT_TYPE_LATEST
    )
