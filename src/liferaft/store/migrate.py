"""Schema migrations, run programmatically at start-up.

``upgrade(url)`` brings a database to the newest revision; it is safe to call
from several controllers at once (PostgreSQL: an advisory lock; SQLite: the
write lock ``BEGIN IMMEDIATE`` takes).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Engine, inspect, text

from liferaft.store.db import make_engines

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS = Path(__file__).parent / "migrations"
#: pg_advisory_xact_lock key serializing concurrent upgrades ("lfrf").
_PG_LOCK_KEY = 0x6C667266


#: The newest revision of every branch in ``migrations/versions`` (a test checks
#: they agree), so a start-up against an up-to-date database need not load
#: Alembic at all.  Each service area (protection, ha, ...) keeps its tables in
#: its own Alembic branch (``branch_labels``) rooted at ``0001``, so areas can add
#: migrations independently; the upgrade target is every head.
HEADS: frozenset[str] = frozenset({"0100", "0200"})


def alembic_config() -> Config:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    return cfg


def head_revisions() -> frozenset[str]:
    from alembic.script import ScriptDirectory

    return frozenset(ScriptDirectory.from_config(alembic_config()).get_heads())


def upgrade(url: str, revision: str = "heads") -> None:
    """Migrate the database at ``url`` to ``revision`` (default: the newest)."""
    writer, reader = make_engines(url)
    try:
        upgrade_engine(writer, revision)
    finally:
        writer.dispose()
        if reader is not writer:
            reader.dispose()


def upgrade_engine(engine: Engine, revision: str = "heads") -> None:
    if revision == "heads" and current_revisions(engine) == HEADS:
        return
    from alembic import command

    cfg = alembic_config()
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_LOCK_KEY})
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)


def current_revisions(engine: Engine) -> frozenset[str]:
    """The database's revisions, one per branch (empty for an empty database)."""
    with engine.connect() as conn:
        if not inspect(conn).has_table("alembic_version"):
            return frozenset()
        rows = conn.execute(text("SELECT version_num FROM alembic_version")).scalars().all()
    return frozenset(rows)
