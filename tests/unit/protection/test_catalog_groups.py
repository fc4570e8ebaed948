"""Creating a protection group: a repeated create is idempotent, a real clash is a truthful 409."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import insert

from liferaft.errors import GiveUp
from liferaft.protection.catalog import Catalog
from liferaft.protection.model import DEFAULT_POLICY, Conflict, Policy
from liferaft.store import sqlite_url
from liferaft.store.protection import GroupRow


@pytest.fixture
def catalog(tmp_path: Path) -> Catalog:
    c = Catalog(sqlite_url(tmp_path))
    c.set_policy(
        Policy(
            name="gold",
            rpo_seconds=60,
            interval_seconds=30,
            retention_count=3,
            retention_age_seconds=3600,
            updated_at=0.0,
        )
    )
    return c


def create(c: Catalog, name: str = "vnf", policy: str = "gold") -> str:
    return c.create_group(name, site="east", recovery_site="west", policy=policy, now=1.0).id


def test_creating_the_same_group_again_returns_it(catalog: Catalog) -> None:
    """A retried POST whose first attempt succeeded finds its group; there is still one row."""
    first = create(catalog)
    assert create(catalog) == first
    assert [g.id for g in catalog.list_groups()] == [first]


def test_a_name_taken_with_other_settings_is_a_conflict_saying_so(catalog: Catalog) -> None:
    create(catalog)
    with pytest.raises(Conflict, match=r"a group named 'vnf' exists already .*policy 'gold'"):
        create(catalog, policy=DEFAULT_POLICY)


def test_a_name_taken_between_the_look_and_the_insert_is_still_idempotent(
    catalog: Catalog, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two creates racing: the loser's IntegrityError finds the winner's identical group."""
    real = catalog._same_group
    calls = []

    def racing(name: str, **kw: str) -> object:
        calls.append(name)
        if len(calls) == 1:  # the other request inserts right after our look
            with catalog._write() as conn:
                conn.execute(insert(GroupRow).values(id="other", name=name, created_at=0.0, **kw))
            return None
        return real(name, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(catalog, "_same_group", racing)
    assert create(catalog) == "other"


def test_another_integrity_failure_is_not_called_a_duplicate_name(
    catalog: Catalog, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(
        "liferaft.protection.catalog.uuid.uuid4", lambda: type("U", (), {"hex": "x"})
    )
    create(catalog, name="a")
    with pytest.raises(GiveUp, match="group 'b' could not be recorded: UNIQUE constraint failed"):
        create(catalog, name="b")
