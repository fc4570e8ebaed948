"""The state store and leadership contract on a real PostgreSQL 15."""

from __future__ import annotations

import pytest

from liferaft.store import Store
from tests.unit.store.contract import StoreContract

pytestmark = pytest.mark.postgres


class TestStorePostgres(StoreContract):
    @pytest.fixture
    def store_url(self, pg_url: str) -> str:
        return pg_url


def test_plain_postgresql_url_uses_psycopg3(pg_url: str) -> None:
    plain = pg_url.replace("postgresql+psycopg://", "postgresql://")
    with Store(plain) as store:
        assert store.dialect == "postgresql"
        assert store._writer.dialect.driver == "psycopg"
