"""The REST API's app factory."""

from __future__ import annotations

import time

from fastapi import FastAPI, Request, Response
from prometheus_client import Counter, Gauge, Histogram
from starlette.middleware.base import RequestResponseEndpoint

import liferaft
from liferaft.config import Settings

from . import errors
from .auth import TokenValidator
from .routers import events, ha, health, info, logic, metrics, protection, recovery
from .services import Services


def create_app(settings: Settings, services: Services) -> FastAPI:
    """Build the API for ``settings`` on top of ``services`` (nothing global, nothing at import)."""
    app = FastAPI(
        title="Liferaft",
        version=liferaft.__version__,
        description=(
            "Keeps OpenStack workloads alive when a compute host or a whole datacenter fails. "
            "Every route except `/health` and `/metrics` needs `X-Auth-Token`: a Keystone token "
            "of the site this controller serves."
        ),
    )
    app.state.settings = settings
    app.state.services = services
    app.state.tokens = TokenValidator(
        services.cloud, services.clock, ttl=settings.api.token_cache_seconds
    )
    errors.install(app)

    registry = services.registry
    requests = Counter(
        "liferaft_api_requests_total",
        "API requests by route and status code.",
        ["method", "route", "code"],
        registry=registry,
    )
    latency = Histogram(
        "liferaft_api_request_seconds",
        "API request latency in real seconds.",
        ["route"],
        registry=registry,
    )
    leader = Gauge(
        "liferaft_leader", "1 while this controller holds the leadership.", registry=registry
    )
    leader.set_function(
        lambda: float(services.leadership is not None and services.leadership.is_leader)
    )

    @app.middleware("http")
    async def count(request: Request, call_next: RequestResponseEndpoint) -> Response:
        t0 = time.perf_counter()  # measures the request itself, not simulated time
        response = await call_next(request)
        route = request.scope.get("route")
        path = getattr(route, "path", "unmatched")
        requests.labels(request.method, path, str(response.status_code)).inc()
        latency.labels(path).observe(time.perf_counter() - t0)
        return response

    app.include_router(health.router)
    if settings.metrics.enabled:
        app.include_router(metrics.router)
    app.include_router(info.router)
    app.include_router(events.router)
    app.include_router(protection.router)
    app.include_router(recovery.router)
    app.include_router(ha.router)
    app.include_router(logic.router)
    return app
