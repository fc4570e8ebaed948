"""How CLI commands talk to a controller's API.

A command takes the shared options of :mod:`.options` (``--url``,
``--token``, ``--os-cloud``, ``--config``, ``--json``) through
:func:`~.options.api_command`, which builds an :class:`ApiClient` with
:func:`connect` and prints with :func:`output`; errors become one clear line
on stderr and a non-zero exit, never a traceback.

Where the API and the token come from, first match wins:

* URL: ``--url``, ``$LIFERAFT_URL``, the ``api`` section of ``--config`` /
  ``$LIFERAFT_CONFIG``, else ``http://127.0.0.1:8787``.
* token: ``--token``, ``$LIFERAFT_TOKEN``, ``$OS_TOKEN``, else a token issued
  for ``--os-cloud`` / ``$OS_CLOUD`` (or the configured site's cloud) from
  clouds.yaml through openstacksdk.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from liferaft.errors import LiferaftError

DEFAULT_URL = "http://127.0.0.1:8787"

err_console = Console(stderr=True)


class ClientError(Exception):
    """Something the user must be told (bad URL, rejected token, API error)."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


def _api_message(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text.strip()[:300] or response.reason_phrase
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        return str(body["error"].get("message") or body["error"])
    if isinstance(body, dict) and "detail" in body:
        return str(body["detail"])
    return json.dumps(body)[:300]


class ApiClient:
    """A small synchronous client of the Liferaft API."""

    def __init__(
        self,
        url: str,
        token: str | None,
        *,
        timeout: float = 30.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.url = url.rstrip("/")
        headers = {"X-Auth-Token": token} if token else {}
        self._http = httpx.Client(
            base_url=self.url, headers=headers, timeout=timeout, transport=transport
        )

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            r = self._http.request(method, path, **kwargs)
        except httpx.ConnectError:
            raise ClientError(
                f"cannot reach the Liferaft API at {self.url} (is `liferaft serve` running?)"
            ) from None
        except httpx.HTTPError as err:
            raise ClientError(f"{method} {self.url}{path}: {err}") from None
        if r.status_code >= 400:
            hint = " (check --token / $OS_CLOUD)" if r.status_code == 401 else ""
            raise ClientError(
                f"{method} {path}: HTTP {r.status_code}: {_api_message(r)}{hint}",
                status=r.status_code,
            )
        if not r.content:
            return None
        return r.json()

    def get(self, path: str, **params: Any) -> Any:
        return self.request("GET", path, params={k: v for k, v in params.items() if v is not None})

    def post(self, path: str, body: Any = None) -> Any:
        return self.request("POST", path, json=body)

    def delete(self, path: str) -> Any:
        return self.request("DELETE", path)

    def close(self) -> None:
        self._http.close()


def _url_from_config(config: Path) -> tuple[str, str | None]:
    from liferaft.config import load_config

    s = load_config(config)
    host = s.api.host
    if host in ("0.0.0.0", "::"):
        host = "127.0.0.1"
    url = f"http://[{host}]:{s.api.port}" if ":" in host else f"http://{host}:{s.api.port}"
    return url, s.site.cloud_name


def issue_token(cloud: str, clouds_yaml: str | None = None) -> str:
    """A token for ``cloud`` of clouds.yaml, through openstacksdk (errors classified)."""
    import openstack.config

    from liferaft.clouds.errors import convert

    try:
        cfg = openstack.config.OpenStackConfig(config_files=[clouds_yaml] if clouds_yaml else None)
        conn = openstack.connection.Connection(config=cfg.get_one(cloud=cloud))
        return str(conn.auth_token)
    except Exception as exc:
        raise convert(exc, f"get a token for cloud {cloud!r}") from None


def resolve(
    *,
    url: str | None = None,
    token: str | None = None,
    cloud: str | None = None,
    config: Path | None = None,
) -> tuple[str, str | None]:
    """(API URL, token) from flags, environment and config, in that order."""
    site_cloud: str | None = None
    if url is None and config is not None:
        url, site_cloud = _url_from_config(config)
    url = url or DEFAULT_URL
    token = token or os.environ.get("OS_TOKEN")
    if token is None and (cloud or site_cloud):
        token = issue_token(cloud or site_cloud or "")
    return url, token


def connect(
    *,
    url: str | None = None,
    token: str | None = None,
    cloud: str | None = None,
    config: Path | None = None,
) -> ApiClient:
    api_url, api_token = resolve(url=url, token=token, cloud=cloud, config=config)
    return ApiClient(api_url, api_token)


def fail(message: str, code: int = 1) -> typer.Exit:
    """Print ``liferaft: <message>`` on stderr; return the Exit to raise."""
    print(f"liferaft: {message}", file=sys.stderr)
    return typer.Exit(code)


@contextlib.contextmanager
def handle_errors() -> Iterator[None]:
    """Turn client and Liferaft errors into one line on stderr and exit code 1 (2 for config)."""
    from liferaft.errors import ConfigError

    try:
        yield
    except ConfigError as err:
        raise fail(f"config error: {err}", 2) from None
    except (ClientError, LiferaftError) as err:
        raise fail(str(err)) from None


def output(data: Any, as_json: bool, render: Callable[[Any], str] | None = None) -> None:
    """Print ``data`` as indented JSON (``--json``) or through ``render``."""
    if as_json or render is None:
        print(json.dumps(data, indent=2, sort_keys=True, default=str))
    else:
        print(render(data))


@contextlib.contextmanager
def progress(description: str, total: float | None = None) -> Iterator[Callable[..., None]]:
    """A Rich progress bar on stderr for a long run; yields ``update(completed=, description=)``.

    It draws only on a terminal, so scripts and ``--json`` output stay clean.
    """
    bar = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed:.0f}/{task.total:.0f}" if total else ""),
        TimeElapsedColumn(),
        console=err_console,
        transient=True,
        disable=not err_console.is_terminal,
    )
    with bar:
        task = bar.add_task(description, total=total)

        def update(
            *,
            completed: float | None = None,
            description: str | None = None,
            total: float | None = None,
        ) -> None:
            kwargs: dict[str, Any] = {}
            if completed is not None:
                kwargs["completed"] = completed
            if description is not None:
                kwargs["description"] = description
            if total is not None:
                kwargs["total"] = total
            bar.update(task, **kwargs)

        yield update
