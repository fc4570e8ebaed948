"""Token check: every route but ``/health`` and ``/metrics`` needs ``X-Auth-Token``.

The token is validated by the site's Keystone (``GET /v3/auth/tokens`` with
the token as ``X-Subject-Token``, authenticated with the controller's own
service credentials from clouds.yaml, through the Cloud port).  Answers are
cached for ``ttl`` seconds on the injected clock, never past the token's own
expiry, so a busy dashboard does not hammer Keystone.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime

from fastapi import Depends, HTTPException, Request
from fastapi.security import APIKeyHeader

from liferaft.clouds import Cloud
from liferaft.clouds.model import TokenInfo
from liferaft.engine.clock import Clock
from liferaft.errors import LiferaftError, RetryLater

token_header = APIKeyHeader(
    name="X-Auth-Token",
    auto_error=False,
    description="A Keystone token of the site this controller serves.",
)


@dataclass(frozen=True)
class _Cached:
    info: TokenInfo
    until: float


def _expiry(info: TokenInfo) -> float | None:
    try:
        return datetime.fromisoformat(info.expires_at.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


class TokenValidator:
    """Validates tokens through the Cloud port, with a short cache on the clock."""

    def __init__(
        self, cloud: Cloud, clock: Clock, *, ttl: float = 60.0, max_entries: int = 10000
    ) -> None:
        self.cloud = cloud
        self.clock = clock
        self.ttl = ttl
        self.max_entries = max_entries
        self._cache: dict[str, _Cached] = {}
        self.lookups = 0  # calls made to Keystone (for metrics and tests)

    async def validate(self, token: str) -> TokenInfo | None:
        key = hashlib.sha256(token.encode()).hexdigest()
        now = self.clock.now()
        hit = self._cache.get(key)
        if hit is not None and hit.until > now:
            return hit.info
        self._cache.pop(key, None)
        self.lookups += 1
        info = await self.cloud.validate_token(token)
        if info is None:
            return None
        if self.ttl > 0:
            until = now + self.ttl
            exp = _expiry(info)
            if exp is not None:
                until = min(until, exp)
            if len(self._cache) >= self.max_entries:
                self._cache = {k: v for k, v in self._cache.items() if v.until > now}
                if len(self._cache) >= self.max_entries:
                    self._cache.clear()
            self._cache[key] = _Cached(info, until)
        return info


async def require_token(request: Request, token: str | None = Depends(token_header)) -> TokenInfo:
    """FastAPI dependency: the caller's validated token, or 401/503."""
    if not token:
        raise HTTPException(
            401,
            "missing X-Auth-Token header: get a token with `openstack token issue`",
            headers={"WWW-Authenticate": "Keystone"},
        )
    validator: TokenValidator = request.app.state.tokens
    try:
        info = await validator.validate(token)
    except RetryLater as err:
        raise HTTPException(503, f"cannot validate the token now: {err}") from None
    except LiferaftError as err:
        raise HTTPException(503, f"cannot validate the token: {err}") from None
    if info is None:
        raise HTTPException(
            401, "invalid or expired token", headers={"WWW-Authenticate": "Keystone"}
        )
    request.state.token = info
    return info
