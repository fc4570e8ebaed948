"""The REST API (FastAPI): routers per resource, Keystone token check, one error shape."""

from __future__ import annotations

from .app import create_app
from .auth import TokenValidator, require_token
from .services import Services

__all__ = ["Services", "TokenValidator", "create_app", "require_token"]
