"""Schema migrations, run programmatically at start-up.

``upgrade(url)`` brings a database to the newest revision; it is safe to call
from several controllers at once (PostgreSQL: an advisory lock; SQLite: the
write lock ``BEGIN IMMEDIATE`` takes).
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, text

from liferaft.store.db import make_engines

MIGRATIONS = Path(__file__).parent / "migrations"
#: pg_advisory_xact_lock key serializing concurrent upgrades ("lfrf").
_PG_LOCK_KEY = 0x6C667266


def alembic_config() -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    return cfg


def head_revision() -> str:
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
    cfg = alembic_config()
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_LOCK_KEY})
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()
