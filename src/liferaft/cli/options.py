"""The options every API command shares, declared once.

A command that talks to a controller's API takes ``--url``, ``--token``,
``--os-cloud``, ``--config`` and ``--json``.  Rather than each command
repeating those five parameters and the :func:`~.client.connect` call,
:func:`api_command` adds them to the command's signature (after its own
options, so ``--help`` lists them last, as before) and hands the command one
:class:`Api`::

    @app.command("status")
    @api_command
    def status(api: Api) -> None:
        \"\"\"Monitors, breaker, silent hosts.\"\"\"
        api.show("/v1/ha/status", render)

The option types stay importable for a command that wants only some of
them (``liferaft demo`` takes ``--json`` alone).
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import typer

from .client import ApiClient, connect, handle_errors, output

UrlOpt = Annotated[
    str | None, typer.Option("--url", envvar="LIFERAFT_URL", help="The controller's API URL.")
]
TokenOpt = Annotated[
    str | None,
    typer.Option(
        "--token",
        envvar="LIFERAFT_TOKEN",
        help="A Keystone token (default: $OS_TOKEN, or one issued for --os-cloud).",
    ),
]
CloudOpt = Annotated[
    str | None,
    typer.Option("--os-cloud", envvar="OS_CLOUD", help="clouds.yaml cloud to get a token from."),
]
ConfigOpt = Annotated[
    Path | None,
    typer.Option(
        "--config",
        "-c",
        envvar="LIFERAFT_CONFIG",
        help="A controller config file (for the API address and site).",
    ),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of text.")]


@dataclass(frozen=True)
class Api:
    """Where a command's controller is and how it wants its output (the shared options)."""

    url: str | None = None
    token: str | None = None
    cloud: str | None = None
    config: Path | None = None
    as_json: bool = False

    def client(self) -> ApiClient:
        """A client of the controller's API (URL and token resolved as :mod:`.client` says)."""
        return connect(url=self.url, token=self.token, cloud=self.cloud, config=self.config)

    def output(self, data: Any, render: Callable[[Any], str] | None = None) -> None:
        """Print ``data`` as JSON (``--json``) or through ``render``."""
        output(data, self.as_json, render)

    def show(self, path: str, render: Callable[[Any], str], **params: Any) -> None:
        """GET ``path`` and print it; API and client errors end the command with one line."""
        with handle_errors():
            data = self.client().get(path, **params)
        self.output(data, render)


#: The shared options, in the order ``--help`` lists them (after the command's own).
_SHARED = [
    inspect.Parameter("url", inspect.Parameter.KEYWORD_ONLY, default=None, annotation=UrlOpt),
    inspect.Parameter("token", inspect.Parameter.KEYWORD_ONLY, default=None, annotation=TokenOpt),
    inspect.Parameter("cloud", inspect.Parameter.KEYWORD_ONLY, default=None, annotation=CloudOpt),
    inspect.Parameter("config", inspect.Parameter.KEYWORD_ONLY, default=None, annotation=ConfigOpt),
    inspect.Parameter("as_json", inspect.Parameter.KEYWORD_ONLY, default=False, annotation=JsonOpt),
]


def api_command(fn: Callable[..., None]) -> Callable[..., None]:
    """Give ``fn(api: Api, ...)`` the shared API options; ``api`` is built from them.

    ``fn``'s own parameters keep their place and help; the shared ones are
    appended to the signature Typer reads (``__signature__``), with the
    annotations already resolved, so ``from __future__ import annotations``
    in the command's module does not matter.
    """
    sig = inspect.signature(fn, eval_str=True)
    own = [p for name, p in sig.parameters.items() if name != "api"]
    if len(own) == len(sig.parameters):
        raise TypeError(f"{fn.__qualname__}: an api_command takes a parameter named 'api'")
    clash = {p.name for p in own} & {p.name for p in _SHARED}
    if clash:
        raise TypeError(f"{fn.__qualname__}: parameters {sorted(clash)} are the shared options'")

    @functools.wraps(fn)
    def command(**kwargs: Any) -> None:
        shared = {p.name: kwargs.pop(p.name, p.default) for p in _SHARED}
        fn(Api(**shared), **kwargs)

    params = [
        p.replace(kind=inspect.Parameter.KEYWORD_ONLY) if p.kind is not p.KEYWORD_ONLY else p
        for p in own
    ]
    command.__signature__ = sig.replace(parameters=params + _SHARED)  # type: ignore[attr-defined]
    command.__annotations__ = {p.name: p.annotation for p in params + _SHARED}
    command.__annotations__["return"] = None
    return command
