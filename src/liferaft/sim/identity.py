"""Identity v3 for one simulated site: password auth, Fernet tokens, catalog.

Tokens are Fernet tokens made with keys kept in Keystone's key-repository
layout (files ``0`` … ``N`` in a directory, ``0`` the staged key and the
highest number the primary), so key rotation and distribution can be
exercised on the simulator exactly as on a real Keystone.  The payload is a
msgpack list in the spirit of Keystone's project-scoped payload (user,
methods, project, expiry, audit id).

IDs are derived from names (uuid5), so the same user or project has the
same ID at every site of a simulated world: the identity data of the sites
agree, as a shared or replicated Keystone database would make them.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import msgpack
from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from .http import ApiError, error_response, json_response, read_json

if TYPE_CHECKING:
    from .world import Site

_NS = uuid.UUID("6c1f1f5e-59a5-4c0b-9a43-2f8a1b1e0d11")
TOKEN_TTL = 3600.0 * 24
DEFAULT_DOMAIN = "default"


def stable_id(*parts: str) -> str:
    """A UUID (hex, as Keystone writes them) derived from names."""
    return uuid.uuid5(_NS, "/".join(parts)).hex


def iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


@dataclass
class User:
    id: str
    name: str
    domain_id: str
    password_hash: str
    enabled: bool = True


@dataclass
class Project:
    id: str
    name: str
    domain_id: str
    description: str = ""
    enabled: bool = True


@dataclass
class Role:
    id: str
    name: str


@dataclass
class Ctx:
    """Who is calling: what a validated token says."""

    user_id: str
    user_name: str
    project_id: str
    project_name: str
    roles: list[str]
    expires_at: float
    audit_id: str

    @property
    def is_admin(self) -> bool:
        return "admin" in self.roles


def _hash_password(password: str, salt: bytes | None = None) -> str:
    salt = salt or os.urandom(8)
    digest = hashlib.sha256(salt + password.encode()).hexdigest()
    return f"{salt.hex()}${digest}"


def _check_password(stored: str, password: str) -> bool:
    salt_hex, _, digest = stored.partition("$")
    other = hashlib.sha256(bytes.fromhex(salt_hex) + password.encode()).hexdigest()
    return hmac.compare_digest(digest, other)


class KeyRepository:
    """A Fernet key repository in Keystone's layout (``0`` staged, max primary)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.mkdir(parents=True, exist_ok=True)
        if not self._indexes():
            # Keystone's fernet_setup: a staged key 0 and a primary key 1.
            self._write(0, Fernet.generate_key())
            self._write(1, Fernet.generate_key())
        self._fernet: MultiFernet | None = None

    def _indexes(self) -> list[int]:
        return sorted(int(p.name) for p in self.path.iterdir() if p.name.isdigit())

    def _write(self, index: int, key: bytes) -> None:
        tmp = self.path / f".{index}.tmp"
        tmp.write_bytes(key)
        os.chmod(tmp, 0o600)
        os.replace(tmp, self.path / str(index))

    def keys(self) -> list[bytes]:
        """Keys, primary first, then the others newest first, staged last."""
        idx = self._indexes()
        order = sorted((i for i in idx if i != 0), reverse=True) + ([0] if 0 in idx else [])
        return [(self.path / str(i)).read_bytes().strip() for i in order]

    def reload(self) -> None:
        self._fernet = None

    def fernet(self) -> MultiFernet:
        if self._fernet is None:
            self._fernet = MultiFernet([Fernet(k) for k in self.keys()])
        return self._fernet


class IdentityState:
    """Users, projects, roles and tokens of one site."""

    def __init__(self, site: Site) -> None:
        self.site = site
        self.users: dict[str, User] = {}
        self.projects: dict[str, Project] = {}
        self.roles: dict[str, Role] = {}
        self.assignments: set[tuple[str, str, str]] = set()  # (user, project, role)
        self.keys = KeyRepository(site.state_dir / "fernet-keys")
        self.revoked: set[str] = set()
        self._cache: dict[str, Ctx] = {}

    # -- seeding -------------------------------------------------------------
    def seed(self, admin_password: str, demo_password: str) -> None:
        for role in ("admin", "member", "reader"):
            self.roles[stable_id("role", role)] = Role(stable_id("role", role), role)
        admin_p = self.add_project("admin")
        self.add_project("service")
        demo_p = self.add_project("demo")
        admin = self.add_user("admin", admin_password)
        demo = self.add_user("demo", demo_password)
        for role in ("admin", "member", "reader"):
            self.assign(admin.id, admin_p.id, role)
            self.assign(admin.id, demo_p.id, role)
        for role in ("member", "reader"):
            self.assign(demo.id, demo_p.id, role)

    def add_project(
        self, name: str, domain_id: str = DEFAULT_DOMAIN, description: str = ""
    ) -> Project:
        p = Project(stable_id("project", domain_id, name), name, domain_id, description)
        self.projects[p.id] = p
        return p

    def add_user(self, name: str, password: str, domain_id: str = DEFAULT_DOMAIN) -> User:
        u = User(stable_id("user", domain_id, name), name, domain_id, _hash_password(password))
        self.users[u.id] = u
        return u

    def role_by_name(self, name: str) -> Role:
        for r in self.roles.values():
            if r.name == name:
                return r
        raise ApiError(404, f"Could not find role: {name}.")

    def assign(self, user_id: str, project_id: str, role_name: str) -> None:
        self.assignments.add((user_id, project_id, self.role_by_name(role_name).id))

    def roles_of(self, user_id: str, project_id: str) -> list[Role]:
        return [
            self.roles[r]
            for (u, p, r) in sorted(self.assignments)
            if u == user_id and p == project_id and r in self.roles
        ]

    def project_by(self, ref: dict[str, Any]) -> Project:
        if "id" in ref:
            p = self.projects.get(str(ref["id"]))
            if p is None:
                raise ApiError(401, "The request you have made requires authentication.")
            return p
        name = ref.get("name")
        dom = _domain_of(ref)
        for p in self.projects.values():
            if p.name == name and p.domain_id == dom:
                return p
        raise ApiError(401, "The request you have made requires authentication.")

    def user_by(self, ref: dict[str, Any]) -> User | None:
        if "id" in ref:
            return self.users.get(str(ref["id"]))
        dom = _domain_of(ref)
        for u in self.users.values():
            if u.name == ref.get("name") and u.domain_id == dom:
                return u
        return None

    # -- tokens --------------------------------------------------------------
    def issue(self, user: User, project: Project) -> tuple[str, Ctx]:
        roles = self.roles_of(user.id, project.id)
        if not roles:
            raise ApiError(401, "The request you have made requires authentication.")
        now = self.site.world.clock.now()
        audit = base64.urlsafe_b64encode(secrets.token_bytes(16)).decode().rstrip("=")
        payload = msgpack.packb([2, user.id, 1, project.id, now + TOKEN_TTL, [audit]])
        token = self.keys.fernet().encrypt_at_time(payload, int(now)).decode().rstrip("=")
        ctx = Ctx(
            user.id,
            user.name,
            project.id,
            project.name,
            [r.name for r in roles],
            now + TOKEN_TTL,
            audit,
        )
        self._cache[token] = ctx
        return token, ctx

    def validate(self, token: str | None) -> Ctx:
        if not token:
            raise ApiError(401, "The request you have made requires authentication.")
        now = self.site.world.clock.now()
        ctx = self._cache.get(token)
        if ctx is None:
            ctx = self._decode(token)
            self._cache[token] = ctx
        if ctx.expires_at <= now or ctx.audit_id in self.revoked:
            raise ApiError(401, "The request you have made requires authentication.")
        return ctx

    def _decode(self, token: str) -> Ctx:
        padded = token + "=" * (-len(token) % 4)
        try:
            raw = self.keys.fernet().decrypt(padded.encode())
            _ver, user_id, _methods, project_id, expires, audits = msgpack.unpackb(raw)
        except (InvalidToken, ValueError, TypeError) as exc:
            raise ApiError(401, "The request you have made requires authentication.") from exc
        user = self.users.get(user_id)
        project = self.projects.get(project_id)
        if user is None or project is None:
            raise ApiError(404, f"Could not find project: {project_id}.")
        roles = [r.name for r in self.roles_of(user.id, project.id)]
        return Ctx(user.id, user.name, project.id, project.name, roles, float(expires), audits[0])

    def revoke(self, token: str) -> None:
        ctx = self.validate(token)
        self.revoked.add(ctx.audit_id)
        self._cache.pop(token, None)

    def rotate_keys(self) -> None:
        """Keystone's fernet_rotate: staged becomes primary, a new staged key appears."""
        idx = [i for i in self.keys._indexes()]
        new_primary = max(idx) + 1
        os.replace(self.keys.path / "0", self.keys.path / str(new_primary))
        self.keys._write(0, Fernet.generate_key())
        self.keys.reload()
        self._cache.clear()


def _domain_of(ref: dict[str, Any]) -> str:
    dom = ref.get("domain") or {}
    if "id" in dom:
        return str(dom["id"])
    if dom.get("name") in (None, "Default", "default"):
        return DEFAULT_DOMAIN
    return stable_id("domain", str(dom["name"]))


# -- HTTP ------------------------------------------------------------------------
def _styled(site: Site) -> Any:
    """Wrap identity handlers: faults and clock catch-up, Keystone's error shape."""
    from .service import before_call  # service imports this module

    def deco(fn: Any) -> Any:
        async def wrapped(request: Request) -> Response:
            try:
                await before_call(site, request, charge=True)
                result: Response = await fn(request)
                return result
            except ApiError as err:
                return error_response(err, "keystone")

        return wrapped

    return deco


def routes(site: Site) -> list[Route]:
    ident = site.identity
    _style = _styled(site)

    def version_doc() -> dict[str, Any]:
        return {
            "id": "v3.14",
            "status": "stable",
            "updated": "2020-04-07T00:00:00Z",
            "links": [{"rel": "self", "href": f"{site.url}/identity/v3/"}],
            "media-types": [
                {"base": "application/json", "type": "application/vnd.openstack.identity-v3+json"}
            ],
        }

    async def versions(request: Request) -> Response:
        return json_response({"versions": {"values": [version_doc()]}}, status=300)

    async def v3(request: Request) -> Response:
        return json_response({"version": version_doc()})

    def advertised_expiry(ctx: Ctx) -> float:
        # On a stepped clock simulated time is not the clients' time: it starts at a
        # fixed date, so an expiry in simulated time is long past by the clients' wall
        # clock and keystoneauth would re-authenticate before every single call (twice
        # the calls, all of a benchmark's client CPU).  The token itself still expires
        # in simulated time (``validate``); only the advertised date is the clients'.
        if site.world.clock.mode != "stepped":
            return ctx.expires_at
        return max(ctx.expires_at, time.time() + TOKEN_TTL)

    def token_body(ctx: Ctx, issued: float) -> dict[str, Any]:
        return {
            "token": {
                "methods": ["password"],
                "expires_at": iso(advertised_expiry(ctx)),
                "issued_at": iso(issued),
                "audit_ids": [ctx.audit_id],
                "user": {
                    "id": ctx.user_id,
                    "name": ctx.user_name,
                    "domain": {"id": DEFAULT_DOMAIN, "name": "Default"},
                    "password_expires_at": None,
                },
                "project": {
                    "id": ctx.project_id,
                    "name": ctx.project_name,
                    "domain": {"id": DEFAULT_DOMAIN, "name": "Default"},
                },
                "is_domain": False,
                "roles": [{"id": stable_id("role", r), "name": r} for r in ctx.roles],
                "catalog": site.catalog(),
            }
        }

    @_style
    async def issue_token(request: Request) -> Response:
        body = await read_json(request)
        try:
            auth = body["auth"]
            methods = auth["identity"]["methods"]
        except (KeyError, TypeError) as exc:
            raise ApiError(400, "Expecting to find auth.identity.methods in request body.") from exc
        if methods == ["token"]:
            old = ident.validate(str(auth["identity"]["token"]["id"]))
            found: User | None = ident.users[old.user_id]
        elif "password" in methods:
            pw = auth["identity"].get("password", {}).get("user")
            if not isinstance(pw, dict) or "password" not in pw:
                raise ApiError(400, "Expecting to find password.user.password in request body.")
            found = ident.user_by(pw)
            if (
                found is None
                or not found.enabled
                or not _check_password(found.password_hash, str(pw["password"]))
            ):
                raise ApiError(401, "The request you have made requires authentication.")
        else:
            raise ApiError(401, f"Unsupported auth methods {methods}.")
        assert found is not None
        user: User = found
        scope = auth.get("scope") or {}
        if "project" in scope:
            project = ident.project_by(scope["project"])
        else:
            # Unscoped requests get the user's first project, enough for the clients.
            owned = sorted({p for (u, p, _r) in ident.assignments if u == user.id})
            if not owned:
                raise ApiError(401, "The request you have made requires authentication.")
            project = ident.projects[owned[0]]
        now = site.world.clock.now()
        token, ctx = ident.issue(user, project)
        return json_response(token_body(ctx, now), status=201, headers={"X-Subject-Token": token})

    @_style
    async def check_token(request: Request) -> Response:
        ident.validate(request.headers.get("x-auth-token"))
        subject = request.headers.get("x-subject-token")
        if request.method == "DELETE":
            ident.revoke(subject or "")
            return Response(status_code=204)
        try:
            ctx = ident.validate(subject)
        except ApiError as err:
            raise ApiError(404, f"Could not find token: {subject}.") from err
        if request.method == "HEAD":
            return Response(status_code=200, headers={"X-Subject-Token": subject or ""})
        return json_response(
            token_body(ctx, site.world.clock.now()), headers={"X-Subject-Token": subject or ""}
        )

    def proj_doc(p: Project) -> dict[str, Any]:
        return {
            "id": p.id,
            "name": p.name,
            "domain_id": p.domain_id,
            "description": p.description,
            "enabled": p.enabled,
            "is_domain": False,
            "parent_id": p.domain_id,
            "tags": [],
            "links": {"self": f"{site.url}/identity/v3/projects/{p.id}"},
        }

    def user_doc(u: User) -> dict[str, Any]:
        return {
            "id": u.id,
            "name": u.name,
            "domain_id": u.domain_id,
            "enabled": u.enabled,
            "password_expires_at": None,
            "links": {"self": f"{site.url}/identity/v3/users/{u.id}"},
        }

    @_style
    async def list_projects(request: Request) -> Response:
        ctx = ident.validate(request.headers.get("x-auth-token"))
        if request.method == "POST":
            _require_admin(ctx)
            body = (await read_json(request)).get("project") or {}
            if not body.get("name"):
                raise ApiError(400, "Invalid input for field 'name': a project name is required.")
            p = ident.add_project(
                str(body["name"]),
                str(body.get("domain_id", DEFAULT_DOMAIN)),
                str(body.get("description", "")),
            )
            return json_response({"project": proj_doc(p)}, status=201)
        items = list(ident.projects.values())
        if not ctx.is_admin or request.url.path.endswith("/auth/projects"):
            mine = {p for (u, p, _r) in ident.assignments if u == ctx.user_id}
            items = [p for p in items if p.id in mine]
        name = request.query_params.get("name")
        if name:
            items = [p for p in items if p.name == name]
        return json_response(
            {
                "projects": [proj_doc(p) for p in items],
                "links": {"self": str(request.url), "next": None, "previous": None},
            }
        )

    @_style
    async def get_project(request: Request) -> Response:
        ident.validate(request.headers.get("x-auth-token"))
        p = ident.projects.get(request.path_params["pid"])
        if p is None:
            raise ApiError(404, f"Could not find project: {request.path_params['pid']}.")
        return json_response({"project": proj_doc(p)})

    @_style
    async def list_users(request: Request) -> Response:
        ctx = ident.validate(request.headers.get("x-auth-token"))
        _require_admin(ctx)
        if request.method == "POST":
            body = (await read_json(request)).get("user") or {}
            if not body.get("name") or not body.get("password"):
                raise ApiError(400, "Invalid input: a user needs a name and a password.")
            u = ident.add_user(
                str(body["name"]), str(body["password"]), str(body.get("domain_id", DEFAULT_DOMAIN))
            )
            return json_response({"user": user_doc(u)}, status=201)
        items = list(ident.users.values())
        name = request.query_params.get("name")
        if name:
            items = [u for u in items if u.name == name]
        return json_response(
            {
                "users": [user_doc(u) for u in items],
                "links": {"self": str(request.url), "next": None, "previous": None},
            }
        )

    @_style
    async def get_user(request: Request) -> Response:
        ident.validate(request.headers.get("x-auth-token"))
        u = ident.users.get(request.path_params["uid"])
        if u is None:
            raise ApiError(404, f"Could not find user: {request.path_params['uid']}.")
        return json_response({"user": user_doc(u)})

    @_style
    async def list_roles(request: Request) -> Response:
        ident.validate(request.headers.get("x-auth-token"))
        items = list(ident.roles.values())
        name = request.query_params.get("name")
        if name:
            items = [r for r in items if r.name == name]
        return json_response(
            {
                "roles": [{"id": r.id, "name": r.name, "domain_id": None} for r in items],
                "links": {"self": str(request.url), "next": None, "previous": None},
            }
        )

    @_style
    async def grant_role(request: Request) -> Response:
        ctx = ident.validate(request.headers.get("x-auth-token"))
        _require_admin(ctx)
        pid, uid, rid = (request.path_params[k] for k in ("pid", "uid", "rid"))
        if pid not in ident.projects or uid not in ident.users or rid not in ident.roles:
            raise ApiError(404, "Could not find project, user or role.")
        if request.method == "DELETE":
            ident.assignments.discard((uid, pid, rid))
        else:
            ident.assignments.add((uid, pid, rid))
        return Response(status_code=204)

    @_style
    async def auth_catalog(request: Request) -> Response:
        ident.validate(request.headers.get("x-auth-token"))
        return json_response({"catalog": site.catalog(), "links": {"self": str(request.url)}})

    return [
        Route("/identity", versions, methods=["GET"]),
        Route("/identity/", versions, methods=["GET"]),
        Route("/identity/v3", v3, methods=["GET"]),
        Route("/identity/v3/", v3, methods=["GET"]),
        Route("/identity/v3/auth/tokens", issue_token, methods=["POST"]),
        Route("/identity/v3/auth/tokens", check_token, methods=["GET", "HEAD", "DELETE"]),
        Route("/identity/v3/auth/projects", list_projects, methods=["GET"]),
        Route("/identity/v3/auth/catalog", auth_catalog, methods=["GET"]),
        Route("/identity/v3/projects", list_projects, methods=["GET", "POST"]),
        Route("/identity/v3/projects/{pid}", get_project, methods=["GET"]),
        Route("/identity/v3/users", list_users, methods=["GET", "POST"]),
        Route("/identity/v3/users/{uid}", get_user, methods=["GET"]),
        Route("/identity/v3/roles", list_roles, methods=["GET"]),
        Route(
            "/identity/v3/projects/{pid}/users/{uid}/roles/{rid}",
            grant_role,
            methods=["PUT", "DELETE", "HEAD"],
        ),
    ]


def _require_admin(ctx: Ctx) -> None:
    if not ctx.is_admin:
        raise ApiError(403, "You are not authorized to perform the requested action.")
