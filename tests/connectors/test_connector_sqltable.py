"""The SQL-table connector passes the conformance kit on SQLite and on PostgreSQL.

The ``db_url`` fixture gives an empty database per backend; the connector creates its own
tables there (uniquely named, dropped afterwards, because the PostgreSQL database is shared
by the session).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from pasa.connectors import build_connector
from pasa.connectors.base import Connector, TransientError
from pasa.connectors.kit import ConnectorContract, sample_attributes
from pasa.connectors.sqltable import SqlTableConnector, SqlTableSettings
from pasa.domain.errors import ConfigurationError


def _connector(db_url: str, **options: object) -> Iterator[SqlTableConnector]:
    suffix = uuid.uuid4().hex[:8]
    settings = SqlTableSettings(
        url=db_url,
        table=f"users_{suffix}",
        membership_table=f"user_memberships_{suffix}",
        **options,  # type: ignore[arg-type]
    )
    connector = SqlTableConnector(settings, name="app")
    yield connector
    connector.memberships.drop(connector.engine, checkfirst=True)
    connector.users.drop(connector.engine, checkfirst=True)
    connector.close()


class TestSqlTableConnector(ConnectorContract):
    @pytest.fixture
    def connector(self, db_url: str) -> Iterator[Connector]:
        yield from _connector(db_url)


class TestSqlTableConnectorJsonAttributes(ConnectorContract):
    @pytest.fixture
    def connector(self, db_url: str) -> Iterator[Connector]:
        yield from _connector(db_url, attributes_column="attributes")


class TestSqlTableConnectorMappedColumns(ConnectorContract):
    @pytest.fixture
    def connector(self, db_url: str) -> Iterator[Connector]:
        yield from _connector(
            db_url, columns={"username": "login", "enabled": "active", "email": "mail"}
        )


def test_rows_land_in_the_applications_own_columns(db_url: str) -> None:
    for connector in _connector(db_url, columns={"username": "login", "email": "mail"}):
        connector.create("jsmith", sample_attributes())
        connector.add_member("jsmith", "group", "radiology")
        with connector.engine.connect() as conn:
            row = conn.execute(sa.select(connector.users)).one()._mapping
            members = conn.execute(sa.select(connector.memberships)).all()
        assert row["login"] == "jsmith"
        assert row["mail"] == "jane.smith@nhs.net"
        assert row["enabled"] in (True, 1)
        assert [tuple(m) for m in members] == [("jsmith", "group", "radiology")]


def test_unreachable_database_is_a_transient_error(tmp_path: Path) -> None:
    missing_dir = tmp_path / "no-such-dir" / "app.db"
    connector = SqlTableConnector(
        SqlTableSettings(url=f"sqlite:///{missing_dir}", create_tables=False), name="app"
    )
    missing_dir.parent.rmdir()  # make_engine created it; take it away again
    with pytest.raises(TransientError, match="app database unavailable"):
        connector.create("jsmith", sample_attributes())


def test_registry_builds_sql_table_from_settings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"sqlite:///{tmp_path / 'app.db'}"
    monkeypatch.setenv("APP_DB_URL", url)
    connector = build_connector("pacs", "sql_table", {"url_env": "APP_DB_URL", "table": "staff"})
    assert isinstance(connector, SqlTableConnector)
    connector.create("jsmith", sample_attributes())
    assert connector.read("jsmith") is not None
    with pytest.raises(ConfigurationError, match="APP_DB_MISSING"):
        build_connector("pacs", "sql_table", {"url_env": "APP_DB_MISSING"})
    with pytest.raises(ConfigurationError, match="unknown setting"):
        build_connector("pacs", "sql_table", {"url": url, "tabel": "x"})


def test_workers_starting_at_once_all_create_their_accounts(db_url: str) -> None:
    """Several workers' first operations at the same moment race to create the tables; none
    of their creates may fail for it (PostgreSQL reports the race as a duplicate type)."""
    import threading

    suffix = uuid.uuid4().hex[:8]
    settings = SqlTableSettings(
        url=db_url, table=f"users_{suffix}", membership_table=f"user_memberships_{suffix}"
    )
    connectors = [SqlTableConnector(settings, name="app") for _ in range(6)]
    barrier = threading.Barrier(len(connectors))
    errors: list[BaseException] = []

    def first_operation(n: int) -> None:
        barrier.wait()
        try:
            connectors[n].create(f"user{n}", sample_attributes(f"1000000{n}"))
        except BaseException as exc:  # recorded for the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=first_operation, args=(n,)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    try:
        assert errors == []
        assert sorted(a.username for a in connectors[0].list()) == [f"user{n}" for n in range(6)]
    finally:
        connectors[0].memberships.drop(connectors[0].engine, checkfirst=True)
        connectors[0].users.drop(connectors[0].engine, checkfirst=True)
        for connector in connectors:
            connector.close()
