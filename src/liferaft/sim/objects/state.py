"""The object store of one site: accounts, containers and objects with real bytes.

Object bytes are files under ``site.state_dir / "objects"`` (one directory
per account and container, files named by a hash of the object name so any
Swift name fits a file name); the index of names, sizes, ETags and metadata
is kept in memory.  Every operation answers ``ApiError(503)`` while the site
is down: a dead datacenter's store is unreachable, not empty.

The Python API (used by the volume service's backups) works in the service
project's account unless given ``project_id``; the Swift facade in
``api.py`` works in ``AUTH_{project_id}`` accounts.
"""

from __future__ import annotations

import contextlib
import hashlib
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..http import ApiError
from ..identity import DEFAULT_DOMAIN, stable_id

if TYPE_CHECKING:
    from ..topology import Topology
    from ..world import Site


def _hashed(name: str) -> str:
    return hashlib.sha256(name.encode()).hexdigest()


@dataclass
class StoredObject:
    name: str
    size: int
    etag: str  # md5 of the bytes, as Swift
    content_type: str
    last_modified: float
    path: Path
    meta: dict[str, str] = field(default_factory=dict)


@dataclass
class Container:
    name: str
    created_at: float
    path: Path
    meta: dict[str, str] = field(default_factory=dict)
    objects: dict[str, StoredObject] = field(default_factory=dict)

    @property
    def bytes_used(self) -> int:
        return sum(o.size for o in self.objects.values())


class ObjectState:
    """Accounts (``AUTH_<project id>``) → containers → objects."""

    def __init__(self, site: Site) -> None:
        self.site = site
        self.root = site.state_dir / "objects"
        self.accounts: dict[str, dict[str, Container]] = {}

    def seed(self, topology: Topology, *args: Any) -> None:
        """Nothing to seed: stores start empty."""

    # -- helpers ---------------------------------------------------------------
    @staticmethod
    def account_of(project_id: str | None) -> str:
        """The Swift account of a project (the service project when ``None``)."""
        if project_id is None:
            project_id = stable_id("project", DEFAULT_DOMAIN, "service")
        return f"AUTH_{project_id}"

    def check_up(self) -> None:
        if self.site.faults.down:
            raise ApiError(503, f"The object store of site {self.site.name} is unreachable.")

    def containers(self, account: str) -> dict[str, Container]:
        self.check_up()
        return self.accounts.get(account, {})

    def container(self, account: str, name: str) -> Container:
        found = self.containers(account).get(name)
        if found is None:
            raise ApiError(404, f"Container {name} not found.")
        return found

    def obj(self, account: str, container: str, name: str) -> StoredObject:
        found = self.container(account, container).objects.get(name)
        if found is None:
            raise ApiError(404, f"Object {container}/{name} not found.")
        return found

    # -- containers -------------------------------------------------------------
    def create_container(
        self, account: str, name: str, meta: dict[str, str] | None = None
    ) -> tuple[Container, bool]:
        """Create (or update the metadata of) a container; True if it is new."""
        self.check_up()
        _check_name(name, "container")
        conts = self.accounts.setdefault(account, {})
        existing = conts.get(name)
        if existing is not None:
            existing.meta.update(meta or {})
            return existing, False
        path = self.root / _hashed(account) / _hashed(name)
        path.mkdir(parents=True, exist_ok=True)
        cont = Container(name, self.site.clock.now(), path, dict(meta or {}))
        conts[name] = cont
        return cont, True

    def delete_container(self, account: str, name: str) -> None:
        cont = self.container(account, name)
        if cont.objects:
            raise ApiError(409, "There was a conflict when trying to complete your request.")
        del self.accounts[account][name]
        shutil.rmtree(cont.path, ignore_errors=True)

    # -- objects -----------------------------------------------------------------
    def store(
        self,
        account: str,
        container: str,
        name: str,
        data: bytes,
        *,
        content_type: str = "application/octet-stream",
        meta: dict[str, str] | None = None,
    ) -> StoredObject:
        cont = self.container(account, container)
        _check_name(name, "object")
        path = cont.path / _hashed(name)
        tmp = path.with_suffix(".tmp")
        tmp.write_bytes(data)
        tmp.replace(path)
        stored = StoredObject(
            name,
            len(data),
            hashlib.md5(data).hexdigest(),
            content_type,
            self.site.clock.now(),
            path,
            dict(meta or {}),
        )
        cont.objects[name] = stored
        return stored

    def read(self, account: str, container: str, name: str) -> tuple[StoredObject, bytes]:
        stored = self.obj(account, container, name)
        return stored, stored.path.read_bytes()

    def remove(self, account: str, container: str, name: str) -> None:
        stored = self.obj(account, container, name)
        del self.accounts[account][container].objects[name]
        with contextlib.suppress(FileNotFoundError):
            stored.path.unlink()

    # -- the Python API other services use (docs/sim-internals.md) ---------------
    def put_object(
        self, container: str, name: str, data: bytes, *, project_id: str | None = None
    ) -> StoredObject:
        """Store an object, creating the container if needed (as Cinder's backup driver)."""
        account = self.account_of(project_id)
        self.create_container(account, container)
        return self.store(account, container, name, data)

    def get_object(self, container: str, name: str, *, project_id: str | None = None) -> bytes:
        return self.read(self.account_of(project_id), container, name)[1]

    def delete_object(self, container: str, name: str, *, project_id: str | None = None) -> None:
        self.remove(self.account_of(project_id), container, name)

    def list_objects(
        self, container: str, prefix: str = "", *, project_id: str | None = None
    ) -> list[str]:
        account = self.account_of(project_id)
        conts = self.containers(account)
        if container not in conts:
            return []
        return sorted(n for n in conts[container].objects if n.startswith(prefix))


def _check_name(name: str, what: str) -> None:
    if not name or len(name.encode()) > 1024 or (what == "container" and "/" in name):
        raise ApiError(400, f"Invalid {what} name {name!r}.")
