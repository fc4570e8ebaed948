"""Database URLs and engines: SQLite (WAL) by default, PostgreSQL by URL.

SQLite connections are put in WAL mode (readers never block the writer)
with a busy timeout, and every *write* transaction starts with ``BEGIN
IMMEDIATE`` so two processes never deadlock upgrading a read lock; reads use
a plain deferred ``BEGIN``.  PostgreSQL goes through psycopg 3; a plain
``postgresql://`` URL is taken to mean that driver.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url

from liferaft.errors import ConfigError

#: The state file's name under the state directory.
SQLITE_FILE = "liferaft.db"
#: How long a SQLite writer waits for another process's transaction (seconds).
SQLITE_BUSY_TIMEOUT = 30.0


def sqlite_url(state_dir: Path | str) -> str:
    """The default store: a SQLite file in ``state_dir`` (created if missing)."""
    path = Path(state_dir).expanduser().resolve()
    path.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{path / SQLITE_FILE}"


def normalize_url(url: str) -> str:
    """Check ``url`` names a supported database; pick psycopg 3 for PostgreSQL."""
    try:
        parsed = make_url(url)
    except Exception as exc:
        raise ConfigError(f"store URL {url!r} is not a database URL: {exc}") from exc
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        if parsed.database in (None, "", ":memory:"):
            raise ConfigError(
                f"store URL {url!r}: an in-memory SQLite database is not durable; give a file path"
            )
        return url
    if backend == "postgresql":
        if parsed.drivername == "postgresql":
            parsed = parsed.set(drivername="postgresql+psycopg")
        elif parsed.drivername != "postgresql+psycopg":
            raise ConfigError(
                f"store URL {url!r}: use the psycopg (3) driver, 'postgresql+psycopg://...'"
            )
        return parsed.render_as_string(hide_password=False)
    raise ConfigError(f"store URL {url!r}: only sqlite:/// and postgresql:// are supported")


def is_sqlite(engine: Engine) -> bool:
    return engine.dialect.name == "sqlite"


def make_engines(url: str) -> tuple[Engine, Engine]:
    """``(writer, reader)`` engines for ``url`` (the same engine on PostgreSQL)."""
    url = normalize_url(url)
    if make_url(url).get_backend_name() != "sqlite":
        engine = create_engine(url, pool_pre_ping=True, future=True)
        return engine, engine
    return _sqlite_engine(url, immediate=True), _sqlite_engine(url, immediate=False)


def _sqlite_engine(url: str, *, immediate: bool) -> Engine:
    engine = create_engine(url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT})

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Take transaction control away from the sqlite3 module so that the
        # "begin" hook below decides how each transaction starts.
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute(f"PRAGMA busy_timeout={int(SQLITE_BUSY_TIMEOUT * 1000)}")
        cur.execute("PRAGMA foreign_keys=ON")
        # FULL: a committed transition survives a power loss, not only a kill.
        cur.execute("PRAGMA synchronous=FULL")
        cur.close()

    begin = "BEGIN IMMEDIATE" if immediate else "BEGIN"

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        # Straight to the driver: this runs for every transaction, and going
        # through SQLAlchemy's statement machinery cost more than the BEGIN.
        conn.connection.dbapi_connection.execute(begin)

    return engine
