from __future__ import annotations

from pathlib import Path

import pytest

from liferaft.errors import ConfigError
from liferaft.store import Store, sqlite_url
from tests.unit.store.contract import StoreContract


class TestStoreSqlite(StoreContract):
    @pytest.fixture
    def store_url(self, tmp_path: Path) -> str:
        return sqlite_url(tmp_path / "state")


def test_sqlite_store_is_in_wal_mode(tmp_path: Path) -> None:
    with Store(sqlite_url(tmp_path)) as store, store._reader.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
    assert (tmp_path / "liferaft.db").exists()


@pytest.mark.parametrize(
    ("url", "match"),
    [
        ("sqlite://", "in-memory"),
        ("mysql://x/y", "only sqlite"),
        ("postgresql+psycopg2://x/y", "psycopg"),
        ("not a url", "not a database URL"),
    ],
)
def test_bad_store_urls_are_config_errors(url: str, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        Store(url)
