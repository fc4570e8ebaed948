"""Convert openstacksdk / keystoneauth errors into Liferaft's classified errors.

This is the adapter's boundary: nothing above it sees a third-party
exception.  The original message is kept, prefixed with the site and the
operation, so an operator reading a paused workflow knows what failed where.

=====================================================  ===============
what happened                                          becomes
=====================================================  ===============
connection refused/reset, timeout, 5xx, 408, 429       ``RetryLater``
(``Retry-After`` is honoured)
a resource that stayed in a transient state too long   ``RetryLater``
404                                                    ``ResourceNotFound`` (a ``GiveUp``)
other 4xx (400, 409, 413 without Retry-After, ...)     ``GiveUp``
401, 403 (credentials, roles, policy)                  ``NeedsHuman``
a resource that went to ERROR                          ``GiveUp``
a cloud missing from clouds.yaml, a bad clouds.yaml    ``ConfigError``
=====================================================  ===============
"""

from __future__ import annotations

from typing import Any

from keystoneauth1 import exceptions as ksa
from openstack import exceptions as osx

from liferaft.errors import ConfigError, GiveUp, LiferaftError, NeedsHuman, RetryLater

from .port import ResourceNotFound

_RETRY_STATUS = {408, 429}


def _retry_after(response: Any) -> float | None:
    headers = getattr(response, "headers", None) or {}
    value = headers.get("Retry-After") if hasattr(headers, "get") else None
    try:
        return max(0.0, float(value)) if value is not None else None
    except (TypeError, ValueError):
        return None


def from_status(status: int, message: str, response: Any = None) -> LiferaftError:
    """The class for an HTTP status code."""
    if status >= 500 or status in _RETRY_STATUS:
        return RetryLater(message, after=_retry_after(response))
    if status == 413 and _retry_after(response) is not None:
        return RetryLater(message, after=_retry_after(response))
    if status in (401, 403):
        return NeedsHuman(message)
    if status == 404:
        return ResourceNotFound(message)
    return GiveUp(message)


def convert(exc: BaseException, where: str) -> LiferaftError:
    """Liferaft's error for ``exc``; ``where`` is ``"<site>: <operation>"``."""
    if isinstance(exc, LiferaftError):
        return exc
    text = str(exc).strip() or type(exc).__name__
    message = f"{where}: {text}"
    if isinstance(exc, osx.ConfigException):
        return ConfigError(message)
    if isinstance(exc, osx.ResourceTimeout):
        return RetryLater(message)
    if isinstance(exc, osx.ResourceFailure):
        return GiveUp(message)
    if isinstance(exc, osx.HttpException):
        status = exc.status_code
        if status is None:
            return RetryLater(message)
        return from_status(int(status), message, exc.response)
    if isinstance(exc, ksa.HttpError):
        return from_status(int(exc.http_status or 500), message, exc.response)
    if isinstance(exc, (ksa.ConnectionError, ksa.RetriableConnectionFailure)):
        return RetryLater(message)
    if isinstance(exc, ksa.DiscoveryFailure):
        # Version discovery failed: usually the endpoint did not answer.
        return RetryLater(message)
    if isinstance(exc, ksa.EndpointNotFound):
        return GiveUp(f"{message} (the service is not in the site's catalog)")
    if isinstance(exc, (ksa.AuthorizationFailure, ksa.MissingAuthPlugin, ksa.AuthPluginException)):
        return NeedsHuman(message)
    if isinstance(exc, (ConnectionError, TimeoutError)):
        return RetryLater(message)
    if isinstance(exc, osx.SDKException):
        return GiveUp(message)
    return GiveUp(f"{where}: unexpected {type(exc).__name__}: {text}")
