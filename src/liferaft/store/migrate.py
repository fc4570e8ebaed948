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


#: The newest revision in ``migrations/versions`` (a test checks they agree), so a
#: start-up against an up-to-date database need not load Alembic at all.
HEAD = "0001"


def alembic_config() -> Config:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    return cfg


def head_revision() -> str:
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None
    return head


def upgrade(url: str, revision: str = "head") -> None:
    """Migrate the database at ``url`` to ``revision`` (default: the newest)."""
    writer, reader = make_engines(url)
    try:
        upgrade_engine(writer, revision)
    finally:
        writer.dispose()
        if reader is not writer:
            reader.dispose()


def upgrade_engine(engine: Engine, revision: str = "head") -> None:
    if revision == "head" and current_revision(engine) == HEAD:
        return
    from alembic import command

    cfg = alembic_config()
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_LOCK_KEY})
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)


def current_revision(engine: Engine) -> str | None:
    """The database's revision (None for an empty database)."""
    with engine.connect() as conn:
        if not inspect(conn).has_table("alembic_version"):
            return None
        rows = conn.execute(text("SELECT version_num FROM alembic_version")).scalars().all()
    return rows[0] if len(rows) == 1 else None
