"""The wrapper every simulated OpenStack API handler goes through.

It catches up the clock, applies the site's injected faults (extra latency,
error rate), authenticates the token, and renders :class:`ApiError` in the
service's own error shape, so no well-formed request ever sees a 500 body
that the clients cannot parse.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import Response

from .http import ApiError, Style, error_response
from .identity import Ctx

if TYPE_CHECKING:
    from .world import Site

log = logging.getLogger(__name__)

Handler = Callable[[Request, Ctx], Awaitable[Response]]
PublicHandler = Callable[[Request], Awaitable[Response]]


def endpoint(
    site: Site, style: Style, *, admin: bool = False, latency: bool = True
) -> Callable[[Handler], PublicHandler]:
    """Decorate ``async def handler(request, ctx)`` into a Starlette endpoint."""

    def deco(fn: Handler) -> PublicHandler:
        async def wrapped(request: Request) -> Response:
            try:
                await before_call(site, request, charge=latency)
                ctx = site.identity.validate(request.headers.get("x-auth-token"))
                if admin and not ctx.is_admin:
                    raise ApiError(403, "Policy doesn't allow this operation to be performed.")
                return await fn(request, ctx)
            except ApiError as err:
                return error_response(err, style)
            except Exception:
                log.exception("simulator handler %s failed", fn.__name__)
                return error_response(ApiError(500, "Unexpected error in the simulator."), style)

        wrapped.__name__ = fn.__name__
        return wrapped

    return deco


def public(site: Site, style: Style) -> Callable[[PublicHandler], PublicHandler]:
    """Like :func:`endpoint` for unauthenticated routes (version discovery)."""

    def deco(fn: PublicHandler) -> PublicHandler:
        async def wrapped(request: Request) -> Response:
            try:
                await before_call(site, request, charge=False)
                return await fn(request)
            except ApiError as err:
                return error_response(err, style)

        wrapped.__name__ = fn.__name__
        return wrapped

    return deco


async def before_call(site: Site, request: Request, *, charge: bool) -> None:
    clock = site.clock
    clock.run_due()
    faults = site.faults
    if faults.down:
        raise ApiError(503, f"Site {site.name} is down.")
    delay = faults.extra_latency + (site.latency.api_call if charge else 0.0)
    if delay > 0:
        await clock.sleep(delay)
        clock.run_due()
    if faults.error_rate > 0 and random.random() < faults.error_rate:
        raise ApiError(503, f"Injected API error on site {site.name}.")
