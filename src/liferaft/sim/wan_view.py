"""A site's APIs as a client at another site reaches them: every request crosses the WAN link.

A real controller at site A that talks to site B's object store or image
service sends and receives those bytes over the A-B link. The simulator's
ordinary per-site URL is "local": it charges nothing. For every site S and
every site C linked to it, the server also binds a **remote view** of S for
clients at C (``clouds.yaml`` cloud ``S@C``): the same APIs, behind this
middleware, which

* reads the request's body and carries it C → S on the link model
  (:meth:`~liferaft.sim.links.LinkState.transfer`, tag :data:`TAG`) before
  the request reaches S's API, and
* holds S's response until its body has been carried S → C.

So each call pays the link's one-way delay each way and shares the link's
capacity with backups, replication and the other remote calls (max-min
fair, under the link's background traffic, tag limits and outages: while
the link is down the call waits, as a TCP connection would, until the
client's timeout). Headers are not counted (small next to chunk bodies).
Bytes show in ``GET /control/links`` under ``bytes_by_tag[TAG]``.

The Keystone catalog served through a view names the view's URL, so a
client that authenticated through it stays on it. Everything else about
the site (its state, its faults) is the site's own: a view is only a path
to it. A site that is down refuses connections on its views too.
"""

from __future__ import annotations

import asyncio
import contextvars
from typing import TYPE_CHECKING, Any

from .http import ApiError

if TYPE_CHECKING:
    from starlette.types import ASGIApp, Message, Receive, Scope, Send

    from .world import Site

#: The link tag of calls made through a remote view.
TAG = "client"
#: The URL the current request came in on, when through a remote view (the catalog names it).
VIEW_URL: contextvars.ContextVar[str | None] = contextvars.ContextVar("VIEW_URL", default=None)


def view_name(site: str, client: str) -> str:
    """The clouds.yaml name of ``site`` as reached from ``client``."""
    return f"{site}@{client}"


class WanView:
    """ASGI middleware: carry each request and response body over the ``client``-site link."""

    def __init__(self, app: ASGIApp, site: Site, client: str) -> None:
        self.app = app
        self.site = site
        self.client = client
        self.url = ""  # set when the view's listener is bound

    async def cross(self, src: str, dst: str, nbytes: int) -> None:
        """Wait until ``nbytes`` sent now from ``src`` arrived at ``dst`` (the link's model)."""
        loop = asyncio.get_running_loop()
        arrived: asyncio.Future[None] = loop.create_future()

        def done() -> None:
            if not arrived.done():
                arrived.set_result(None)

        self.site.world.links.transfer(src, dst, nbytes, done, tag=TAG)
        await arrived

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        parts: list[bytes] = []
        while True:
            msg = await receive()
            if msg["type"] == "http.disconnect":
                return
            parts.append(msg.get("body", b""))
            if not msg.get("more_body", False):
                break
        body = b"".join(parts)
        try:
            await self.cross(self.client, self.site.name, len(body))
        except ApiError as err:  # no link between the sites
            await _plain(send, err.status, str(err))
            return
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        start: Message | None = None
        out: list[bytes] = []

        async def hold(msg: Message) -> None:
            nonlocal start
            if msg["type"] == "http.response.start":
                start = msg
                return
            if msg["type"] != "http.response.body":
                await send(msg)
                return
            out.append(msg.get("body", b""))
            if msg.get("more_body", False):
                return
            data = b"".join(out)
            await self.cross(self.site.name, self.client, len(data))
            assert start is not None
            await send(start)
            await send({"type": "http.response.body", "body": data, "more_body": False})

        token = VIEW_URL.set(self.url)
        try:
            await self.app(scope, replay, hold)
        finally:
            VIEW_URL.reset(token)


async def _plain(send: Send, status: int, text: str) -> None:
    body = text.encode()
    headers: list[Any] = [(b"content-type", b"text/plain"), (b"content-length", b"%d" % len(body))]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
