"""``set_password`` (day-one credential handover) on the memory, SQL-table and LDAP connectors.

LDAP runs against a real slapd: after ``set_password`` the user binds with the new password.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from ldap3 import Connection, Server
from slapd_server import SlapdServer, start_slapd

from pasa.connectors.base import (
    Capability,
    Connector,
    NotFoundError,
    PermanentError,
)
from pasa.connectors.csvfile import CsvFileConnector
from pasa.connectors.kit import sample_attributes
from pasa.connectors.ldap import LdapConnector, LdapSettings
from pasa.connectors.memory import MemoryConnector
from pasa.connectors.sqltable import SqlTableConnector, SqlTableSettings, pbkdf2_verify

SECRET = "correct horse battery staple"
PASSWORD_ENV = "PASA_TEST_LDAP_BIND_PASSWORD"


def test_capability_exists_and_the_default_refuses_clearly() -> None:
    assert Capability.SET_PASSWORD.value == "set_password"

    class Bare(MemoryConnector):
        pass

    # The base class default (a connector that does not override set_password).
    with pytest.raises(PermanentError, match="cannot set passwords") as info:
        Connector.set_password(Bare(), "jsmith", SECRET)
    assert SECRET not in str(info.value)
    assert CsvFileConnector.set_password is Connector.set_password


def test_memory_stores_only_a_hash_and_checks_it() -> None:
    connector = MemoryConnector()
    connector.create("jsmith", sample_attributes())
    connector.set_password("jsmith", SECRET)
    assert connector.check_password("jsmith", SECRET)
    assert not connector.check_password("jsmith", SECRET + "!")
    stored = connector._accounts["jsmith"].password_hash
    assert stored is not None and SECRET not in stored and stored.startswith("scrypt$")
    with pytest.raises(NotFoundError):
        connector.set_password("nobody", SECRET)


def _sql_connector(db_url: str, suffix: str) -> Iterator[SqlTableConnector]:
    settings = SqlTableSettings(
        url=db_url, table=f"users_{suffix}", membership_table=f"user_memberships_{suffix}"
    )
    connector = SqlTableConnector(settings, name="app")
    yield connector
    connector.memberships.drop(connector.engine, checkfirst=True)
    connector.users.drop(connector.engine, checkfirst=True)
    connector.close()


def test_sql_table_without_a_password_column_says_which_column_to_add(db_url: str) -> None:
    for connector in _sql_connector(db_url, uuid.uuid4().hex[:8]):
        connector.create("jsmith", sample_attributes())
        with pytest.raises(PermanentError, match="password_hash") as info:
            connector.set_password("jsmith", SECRET)
        assert "ADD COLUMN" in str(info.value) and SECRET not in str(info.value)


def test_sql_table_sets_a_pbkdf2_hash_in_the_password_column(db_url: str) -> None:
    suffix = uuid.uuid4().hex[:8]
    for connector in _sql_connector(db_url, suffix):
        connector.create("jsmith", sample_attributes())
        with connector.engine.begin() as conn:
            conn.execute(
                sa.text(f"ALTER TABLE users_{suffix} ADD COLUMN password_hash VARCHAR(255)")
            )
        connector.set_password("jsmith", SECRET)
        with connector.engine.connect() as conn:
            stored = conn.execute(
                sa.text(f"SELECT password_hash FROM users_{suffix} WHERE username = 'jsmith'")
            ).scalar_one()
        assert SECRET not in stored and stored.startswith("pbkdf2_sha256$")
        assert pbkdf2_verify(SECRET, stored)
        assert not pbkdf2_verify("wrong password!", stored)
        with pytest.raises(NotFoundError):
            connector.set_password("nobody", SECRET)


@pytest.fixture(scope="module")
def slapd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SlapdServer]:
    server = start_slapd(tmp_path_factory.mktemp("slapd-password"))
    yield server
    server.stop()


@pytest.fixture
def ldap_connector(slapd: SlapdServer, monkeypatch: pytest.MonkeyPatch) -> Iterator[LdapConnector]:
    monkeypatch.setenv(PASSWORD_ENV, slapd.root_password)
    subtree = slapd.new_subtree(f"t{uuid.uuid4().hex[:10]}")
    settings = LdapSettings(
        url=slapd.url,
        bind_dn=slapd.root_dn,
        bind_password_env=PASSWORD_ENV,
        base_dn=subtree,
        timeout=3.0,
    )
    connector = LdapConnector(settings, name="directory")
    yield connector
    connector.close()


def _binds(slapd: SlapdServer, dn: str, password: str) -> bool:
    conn = Connection(Server(slapd.url, connect_timeout=2), dn, password, receive_timeout=5)
    try:
        return bool(conn.bind())
    finally:
        conn.unbind()


def test_ldap_user_binds_with_the_new_password(
    slapd: SlapdServer, ldap_connector: LdapConnector
) -> None:
    ldap_connector.create("jsmith", sample_attributes())
    dn = f"uid=jsmith,{ldap_connector.settings.users_dn}"
    assert not _binds(slapd, dn, SECRET)
    ldap_connector.set_password("jsmith", SECRET)
    assert _binds(slapd, dn, SECRET)
    assert not _binds(slapd, dn, SECRET + "x")
    conn = slapd.connect()
    try:
        conn.search(dn, "(objectClass=*)", search_scope="BASE", attributes=["userPassword"])
        stored = conn.response[0]["raw_attributes"]["userPassword"][0].decode()
    finally:
        conn.unbind()
    assert stored.lower().startswith("{ssha}") and SECRET not in stored
    with pytest.raises(NotFoundError):
        ldap_connector.set_password("nobody", SECRET)


def test_ad_password_needs_tls(slapd: SlapdServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(PASSWORD_ENV, slapd.root_password)
    settings = LdapSettings(
        url=slapd.url,
        bind_dn=slapd.root_dn,
        bind_password_env=PASSWORD_ENV,
        base_dn=slapd.suffix,
        flavour="ad",
        upn_suffix="nhs.test",
    )
    with pytest.raises(PermanentError, match="TLS") as info:
        LdapConnector(settings).set_password("jsmith", SECRET)
    assert SECRET not in str(info.value)
