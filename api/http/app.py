"""The HTTP API: `create_app(platform)` is what `crm serve` hands to uvicorn."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from api.bootstrap import Platform
from api.http.admission import BytesInFlight
from api.http.body_limit import BodyLimit
from api.http.errors import install_error_handlers
from api.http.gathering import loop_gatherer
from api.http.metrics import GroupCommitCounts, HttpMetrics
from api.http.middleware import RequestContext
from api.http.openapi import install_openapi
from api.http.query_guard import QueryGuard
from api.http.responses import JSONResponse
from api.http.routes import audit, events, health, mailings, reads, services
from api.http.shortcuts import Shortcuts
from api.memory import release_free_memory_every

DESCRIPTION = """\
Event-sourced customer interactions: post events, read households and contact history.

Every endpoint but `/healthz` needs `Authorization: Bearer <key>` (`crm keys create`).
Errors always have the shape `{"error": {"code", "message", "details", "request_id"}}`.
"""


def app_from_env() -> FastAPI:
    """The app of one `crm serve --workers N` process: its own platform, no projections
    (the serving parent runs those), and it stops if that parent dies."""
    import os
    import signal

    from api.bootstrap import build_platform, settings_from_env
    from api.worker import stop_when_orphaned

    platform = build_platform(settings_from_env(), migrate=False, serving=True)
    platform.runner.followed_elsewhere = True
    stop_when_orphaned(lambda: os.kill(os.getpid(), signal.SIGTERM))
    return create_app(platform, close_platform=True)


def create_app(
    platform: Platform, *, run_projections: bool = False, close_platform: bool = False
) -> FastAPI:
    """The web app over `platform`; with `run_projections` it also feeds the views."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if run_projections:
            platform.runner.start()
        platform.committer.gather = loop_gatherer(asyncio.get_running_loop())
        # Opened here, on the loop that serves the requests: the pool belongs to it.
        async_reads = platform.db.async_reads(platform.settings.read_pool_size)
        releasing = asyncio.create_task(release_free_memory_every())
        try:
            if async_reads is not None:
                await async_reads.open()
                app.state.async_reads = async_reads
            yield
        finally:
            releasing.cancel()
            app.state.async_reads = None
            if async_reads is not None:
                await async_reads.close()
            if run_projections:
                platform.runner.stop()
            if close_platform:
                platform.close()

    app = FastAPI(
        title="CRM platform",
        version="0.1.0",
        description=DESCRIPTION,
        lifespan=lifespan,
        default_response_class=JSONResponse,
        # Metrics are Prometheus (/metrics); FastAPI's OpenTelemetry hooks would
        # otherwise look up the global providers on every request.
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    app.state.platform = platform
    app.state.async_reads = None  # until the lifespan opens it (PostgreSQL only)
    app.state.metrics = HttpMetrics()
    # Thread-safe and bound to no event loop, so it may be built before any loop runs.
    app.state.event_bytes_in_flight = BytesInFlight(
        platform.settings.max_event_bytes_in_flight
    )
    app.state.event_bytes_in_flight.export(app.state.metrics.registry)
    app.state.metrics.registry.register(GroupCommitCounts(platform.committer))
    install_error_handlers(app)
    app.include_router(health.router)
    app.include_router(events.router)
    app.include_router(services.router)  # before reads: /v1/households/top is not an id
    app.include_router(reads.router)
    app.include_router(mailings.router)
    app.include_router(audit.router)
    install_openapi(app)
    # Innermost: where FastAPI's router would be reached (added first, runs last).
    app.add_middleware(Shortcuts, fastapi=app, routers=(events.router, reads.router))
    app.add_middleware(BodyLimit, limit=platform.settings.max_body_bytes)
    app.add_middleware(QueryGuard)
    app.add_middleware(RequestContext, metrics=app.state.metrics)
    return app
