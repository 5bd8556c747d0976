"""The LDAP connector against a real OpenLDAP slapd started by these tests.

One slapd per module (``slapd_server.py``); each test gets a fresh subtree
``ou=tXXXX,dc=nhs,dc=test`` with its own ``ou=people`` and ``ou=groups``, so tests never
see each other's entries. The Active Directory mapping is tested as pure functions.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from slapd_server import SlapdServer, start_slapd

from pasa.connectors import build_connector
from pasa.connectors.base import Connector, NotFoundError, PermanentError, TransientError
from pasa.connectors.kit import ConnectorContract, sample_attributes
from pasa.connectors.ldap import (
    ACCOUNTDISABLE,
    NORMAL_ACCOUNT,
    LdapConnector,
    LdapSettings,
    LookupCache,
    directory_values,
    encode_unicode_pwd,
    group_name,
    membership_of_group,
    new_entry,
    pasa_attributes,
    password_values,
    uac_enabled,
    uac_set_disabled,
)
from pasa.domain.errors import ConfigurationError

PASSWORD_ENV = "PASA_TEST_LDAP_BIND_PASSWORD"

MakeConnector = Callable[..., LdapConnector]


@pytest.fixture(scope="module")
def slapd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SlapdServer]:
    server = start_slapd(tmp_path_factory.mktemp("slapd"))
    yield server
    server.stop()


@pytest.fixture
def subtree(slapd: SlapdServer, monkeypatch: pytest.MonkeyPatch) -> str:
    if not slapd.running:
        slapd.start()
    monkeypatch.setenv(PASSWORD_ENV, slapd.root_password)
    return slapd.new_subtree(f"t{uuid.uuid4().hex[:10]}")


@pytest.fixture
def make_connector(slapd: SlapdServer, subtree: str) -> Iterator[MakeConnector]:
    made: list[LdapConnector] = []

    def make(**options: Any) -> LdapConnector:
        settings = LdapSettings(
            url=slapd.url,
            bind_dn=slapd.root_dn,
            bind_password_env=PASSWORD_ENV,
            base_dn=subtree,
            timeout=3.0,
            **options,
        )
        connector = LdapConnector(settings, name="directory")
        made.append(connector)
        return connector

    yield make
    for connector in made:
        connector.close()


class TestLdapConnector(ConnectorContract):
    @pytest.fixture
    def connector(self, make_connector: MakeConnector) -> Iterator[Connector]:
        yield make_connector()


# --- what lands in the directory ----------------------------------------------------------


def _entry(slapd: SlapdServer, dn: str, attrs: list[str]) -> dict[str, list[str]]:
    conn = slapd.connect()
    try:
        assert conn.search(dn, "(objectClass=*)", search_scope="BASE", attributes=attrs)
        raw = conn.response[0]["raw_attributes"]
        return {k: [v.decode() for v in values] for k, values in raw.items() if values}
    finally:
        conn.unbind()


def test_account_is_an_inet_org_person_with_mapped_attributes(
    slapd: SlapdServer, subtree: str, make_connector: MakeConnector
) -> None:
    connector = make_connector()
    external_id = connector.create("jsmith", sample_attributes())
    entry = _entry(slapd, f"uid=jsmith,ou=people,{subtree}", ["*", "entryUUID"])
    assert entry["entryUUID"] == [external_id]
    assert "inetOrgPerson" in entry["objectClass"]
    assert entry["uid"] == ["jsmith"]
    assert entry["givenName"] == ["Jane"]
    assert entry["sn"] == ["Smith"]
    assert entry["cn"] == ["Jane Smith"]
    assert entry["displayName"] == ["Jane Smith"]
    assert entry["mail"] == ["jane.smith@nhs.net"]
    assert entry["employeeNumber"] == ["12345678"]
    assert entry["ou"] == ["Radiology"]
    assert entry["title"] == ["Radiographer"]
    assert entry["o"] == ["RXX"]
    assert "manager" not in entry


def test_manager_is_the_managers_dn_when_resolvable(
    slapd: SlapdServer, subtree: str, make_connector: MakeConnector
) -> None:
    connector = make_connector()
    connector.create("boss", sample_attributes("99999999", first_name="Bea"))
    connector.create("jsmith", sample_attributes(manager_employee_number="99999999"))
    connector.create("orphan", sample_attributes("55555555", manager_employee_number="00000000"))
    entry = _entry(slapd, f"uid=jsmith,ou=people,{subtree}", ["manager"])
    assert entry["manager"] == [f"uid=boss,ou=people,{subtree}"]
    jsmith = connector.read("jsmith")
    assert jsmith is not None and jsmith.attributes["manager_employee_number"] == "99999999"
    orphan = connector.read("orphan")  # manager has no entry: omitted
    assert orphan is not None and orphan.attributes["manager_employee_number"] is None
    listed = {a.username: a for a in connector.list()}
    assert listed["jsmith"].attributes["manager_employee_number"] == "99999999"
    connector.update("jsmith", {"manager_employee_number": None})
    assert "manager" not in _entry(slapd, f"uid=jsmith,ou=people,{subtree}", ["manager"])


def test_disabled_is_the_employee_type_marker(
    slapd: SlapdServer, subtree: str, make_connector: MakeConnector
) -> None:
    connector = make_connector()
    connector.create("jsmith", sample_attributes())
    connector.disable("jsmith")
    dn = f"uid=jsmith,ou=people,{subtree}"
    assert _entry(slapd, dn, ["employeeType"])["employeeType"] == ["pasa-disabled"]
    connector.enable("jsmith")
    assert "employeeType" not in _entry(slapd, dn, ["employeeType"])


def test_membership_kinds_map_to_named_groups_of_names(
    slapd: SlapdServer, subtree: str, make_connector: MakeConnector
) -> None:
    connector = make_connector()
    connector.create("jsmith", sample_attributes())
    connector.add_member("jsmith", "door_zone", "theatres")
    connector.add_member("jsmith", "app_role", "pacs-reporter")
    connector.add_member("jsmith", "group", "radiology")
    dn = f"uid=jsmith,ou=people,{subtree}"
    for cn in ("door-theatres", "app-pacs-reporter", "radiology"):
        group = _entry(slapd, f"cn={cn},ou=groups,{subtree}", ["objectClass", "member"])
        assert "groupOfNames" in group["objectClass"]
        assert group["member"] == [dn]
    account = connector.read("jsmith")
    assert account is not None
    assert account.memberships == {
        ("door_zone", "theatres"),
        ("app_role", "pacs-reporter"),
        ("group", "radiology"),
    }
    with pytest.raises(PermanentError, match="kind 'smartcard'"):
        connector.add_member("jsmith", "smartcard", "x")


def test_last_member_leaves_a_placeholder_and_the_group_stays(
    slapd: SlapdServer, subtree: str, make_connector: MakeConnector
) -> None:
    connector = make_connector()
    connector.create("jsmith", sample_attributes())
    connector.add_member("jsmith", "group", "radiology")
    connector.remove_member("jsmith", "group", "radiology")
    group_dn = f"cn=radiology,ou=groups,{subtree}"
    placeholder = f"cn=pasa-empty-group,{subtree}"
    assert _entry(slapd, group_dn, ["member"])["member"] == [placeholder]
    connector.add_member("jsmith", "group", "radiology")
    assert _entry(slapd, group_dn, ["member"])["member"] == [f"uid=jsmith,ou=people,{subtree}"]
    connector.delete("jsmith")
    assert _entry(slapd, group_dn, ["member"])["member"] == [placeholder]


def test_rename_moves_the_dn_and_group_members(
    slapd: SlapdServer, subtree: str, make_connector: MakeConnector
) -> None:
    connector = make_connector()
    connector.create("jsmith", sample_attributes())
    connector.add_member("jsmith", "door_zone", "ed")
    connector.rename("jsmith", "jjones")
    entry = _entry(slapd, f"uid=jjones,ou=people,{subtree}", ["uid"])
    assert entry["uid"] == ["jjones"]
    members = _entry(slapd, f"cn=door-ed,ou=groups,{subtree}", ["member"])["member"]
    assert members == [f"uid=jjones,ou=people,{subtree}"]
    connector.rename("jjones", "o'brien, j+1")  # characters escaped in the DN
    account = connector.read("o'brien, j+1")
    assert account is not None and account.memberships == {("door_zone", "ed")}


# --- round trips (the provisioning benchmark's common path) -------------------------------

STARTER = [("group", "dept-01"), ("app_role", "pacs-reporter"), ("door_zone", "theatres")]


def _count_requests(connector: LdapConnector) -> list[str]:
    """The requests the connector sends from now on; each is one round trip (SYNC)."""
    conn = connector._connection()
    sent: list[str] = []
    for name in ("search", "add", "modify", "delete", "modify_dn", "compare"):

        def spy(*args: Any, _original: Any = getattr(conn, name), _name: str = name, **kw: Any):
            sent.append(_name)
            return _original(*args, **kw)

        setattr(conn, name, spy)
    return sent


def _starter(connector: LdapConnector, username: str, number: str) -> str:
    external_id = connector.create(username, sample_attributes(number))
    for kind, value in STARTER:
        connector.add_member(username, kind, value)
    return external_id


def test_a_new_starter_is_five_round_trips(
    slapd: SlapdServer, subtree: str, make_connector: MakeConnector
) -> None:
    connector = make_connector()
    _starter(connector, "first", "11111111")  # creates the three groups
    sent = _count_requests(connector)
    external_id = _starter(connector, "jsmith", "12345678")
    # ldapadd needs 4 (add + 3 modifies); the search checks the username is free.
    assert sent == ["search", "add", "modify", "modify", "modify"]
    entry = _entry(slapd, f"uid=jsmith,ou=people,{subtree}", ["entryUUID"])
    assert entry["entryUUID"] == [external_id]  # from the post-read control
    account = connector.read("jsmith")
    assert account is not None and account.external_id == external_id
    assert account.memberships == {
        ("group", "dept-01"),
        ("app_role", "pacs-reporter"),
        ("door_zone", "theatres"),
    }


def test_a_fresh_connector_learns_each_existing_group_once(make_connector: MakeConnector) -> None:
    _starter(make_connector(), "first", "11111111")
    connector = make_connector()  # groups exist, but this process has not seen them
    sent = _count_requests(connector)
    _starter(connector, "jsmith", "12345678")
    # per group: add + delete placeholder (noSuchAttribute, nothing changed), then the add
    assert sent == ["search", "add", *["modify", "modify"] * 3]
    sent.clear()
    _starter(connector, "jjones", "22222222")
    assert sent == ["search", "add", "modify", "modify", "modify"]


def test_repeats_succeed_without_changes(
    slapd: SlapdServer, subtree: str, make_connector: MakeConnector
) -> None:
    connector = make_connector()
    external_id = _starter(connector, "jsmith", "12345678")
    sent = _count_requests(connector)
    for kind, value in STARTER:
        connector.add_member("jsmith", kind, value)  # attributeOrValueExists: success
    assert sent == ["modify"] * 3
    assert connector.create("jsmith", sample_attributes("12345678")) == external_id
    again = make_connector()  # nothing remembered: the same outcome, found by searching
    assert again.create("jsmith", sample_attributes("12345678")) == external_id
    for kind, value in STARTER:
        again.add_member("jsmith", kind, value)
    dn = f"uid=jsmith,ou=people,{subtree}"
    for cn in ("dept-01", "app-pacs-reporter", "door-theatres"):
        assert _entry(slapd, f"cn={cn},ou=groups,{subtree}", ["member"])["member"] == [dn]


def test_remembered_dns_are_forgotten_on_delete_and_rename(
    slapd: SlapdServer, subtree: str, make_connector: MakeConnector
) -> None:
    connector = make_connector()
    connector.create("jsmith", sample_attributes())
    connector.delete("jsmith")
    with pytest.raises(NotFoundError):
        connector.add_member("jsmith", "group", "radiology")
    connector.create("jsmith", sample_attributes())
    connector.add_member("jsmith", "group", "radiology")
    connector.rename("jsmith", "jjones")
    with pytest.raises(NotFoundError):
        connector.add_member("jsmith", "group", "theatres")
    connector.add_member("jjones", "group", "theatres")
    members = _entry(slapd, f"cn=theatres,ou=groups,{subtree}", ["member"])["member"]
    assert members == [f"uid=jjones,ou=people,{subtree}"]


def test_a_change_behind_the_connectors_back_is_seen_when_the_cache_expires(
    make_connector: MakeConnector,
) -> None:
    connector = make_connector(cache_seconds=0)  # remember nothing
    other = make_connector()
    connector.create("jsmith", sample_attributes())
    other.delete("jsmith")  # e.g. by hand, or by another worker
    with pytest.raises(NotFoundError):
        connector.add_member("jsmith", "group", "radiology")
    connector.remove_member("jsmith", "group", "radiology")  # absent: success


def test_a_group_emptied_by_this_process_loses_its_placeholder_again(
    slapd: SlapdServer, subtree: str, make_connector: MakeConnector
) -> None:
    connector = make_connector()
    connector.create("jsmith", sample_attributes("11111111"))
    connector.create("jjones", sample_attributes("22222222"))
    connector.add_member("jsmith", "group", "radiology")
    connector.remove_member("jsmith", "group", "radiology")  # placeholder in
    connector.add_member("jjones", "group", "radiology")  # known to hold it: out again
    members = _entry(slapd, f"cn=radiology,ou=groups,{subtree}", ["member"])["member"]
    assert members == [f"uid=jjones,ou=people,{subtree}"]
    connector.add_member("jsmith", "group", "radiology")
    members = _entry(slapd, f"cn=radiology,ou=groups,{subtree}", ["member"])["member"]
    assert sorted(members) == sorted(f"uid={u},ou=people,{subtree}" for u in ("jjones", "jsmith"))


def test_lookup_cache_is_bounded_in_size_and_time() -> None:
    now = [0.0]
    cache: LookupCache[str] = LookupCache(2, 10.0, clock=lambda: now[0])
    cache.put("A", "1")
    cache.put("b", "2")
    assert cache.get("a") == "1"  # names are case-insensitive; "a" is now the most recent
    cache.put("c", "3")  # evicts the least recently used, "b"
    assert (cache.get("b"), cache.get("c"), len(cache)) == (None, "3", 2)
    now[0] = 10.0
    assert cache.get("a") is None  # expired
    cache.drop("c")
    assert len(cache) == 0
    off: LookupCache[str] = LookupCache(0, 10.0)
    off.put("a", "1")
    assert off.get("a") is None


# --- failures -----------------------------------------------------------------------------


def test_stopped_slapd_is_a_transient_error_and_the_connector_rebinds(
    slapd: SlapdServer, make_connector: MakeConnector
) -> None:
    connector = make_connector()
    connector.create("jsmith", sample_attributes())  # connection open and bound
    slapd.stop()
    try:
        with pytest.raises(TransientError, match="unavailable"):
            connector.read("jsmith")
        with pytest.raises(TransientError):
            connector.create("jjones", sample_attributes("22222222"))
    finally:
        slapd.start()
    account = connector.read("jsmith")  # re-binds by itself
    assert account is not None and account.username == "jsmith"


def test_wrong_password_is_permanent_and_never_echoes_the_password(
    make_connector: MakeConnector, monkeypatch: pytest.MonkeyPatch
) -> None:
    wrong = "Wr0ng-Pa55word-xyz"
    monkeypatch.setenv(PASSWORD_ENV, wrong)
    connector = make_connector()
    with pytest.raises(PermanentError) as caught:
        connector.read("jsmith")
    assert not isinstance(caught.value, TransientError)
    message = str(caught.value)
    assert "invalid credentials" in message
    assert PASSWORD_ENV in message
    assert wrong not in message


def test_unset_password_variable_is_a_clear_error(
    make_connector: MakeConnector, monkeypatch: pytest.MonkeyPatch
) -> None:
    connector = make_connector()
    monkeypatch.delenv(PASSWORD_ENV)
    with pytest.raises(PermanentError, match=f"{PASSWORD_ENV}, which is not set"):
        connector.read("jsmith")


def test_unknown_attribute_is_refused_not_dropped(make_connector: MakeConnector) -> None:
    connector = make_connector()
    with pytest.raises(PermanentError, match="shoe_size"):
        connector.create("jsmith", sample_attributes(shoe_size="9"))
    with pytest.raises(PermanentError, match="only on Active Directory"):
        connector.create("jsmith", sample_attributes(password="Secret-1"))
    assert connector.read("jsmith") is None


# --- paging -------------------------------------------------------------------------------


def test_list_pages_through_more_accounts_than_a_page(make_connector: MakeConnector) -> None:
    connector = make_connector(page_size=4)
    for i in range(11):
        connector.create(f"user{i:02d}", sample_attributes(f"100000{i:02d}"))
    connector.add_member("user07", "group", "theatres")
    conn = connector._connection()
    searches: list[int | None] = []
    original = conn.search

    def spy(*args: Any, **kwargs: Any) -> Any:
        searches.append(kwargs.get("paged_size"))
        return original(*args, **kwargs)

    conn.search = spy
    accounts = {a.username: a for a in connector.list()}
    assert set(accounts) == {f"user{i:02d}" for i in range(11)}
    assert accounts["user07"].memberships == {("group", "theatres")}
    assert accounts["user10"].attributes["employee_number"] == "10000010"
    # groups: 1 page; people: 11 entries in pages of 4 -> 3 pages
    assert searches.count(4) == 4


# --- registry -----------------------------------------------------------------------------


def test_registry_builds_ldap_from_settings(
    slapd: SlapdServer, subtree: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = {
        "url": slapd.url,
        "bind_dn": slapd.root_dn,
        "bind_password_env": PASSWORD_ENV,
        "base_dn": subtree,
    }
    connector = build_connector("directory", "ldap", settings)
    assert isinstance(connector, LdapConnector)
    connector.create("jsmith", sample_attributes())
    assert connector.read("jsmith") is not None
    connector.close()
    with pytest.raises(ConfigurationError, match="unknown setting"):
        build_connector("directory", "ldap", {**settings, "bind_password": "x"})
    with pytest.raises(ConfigurationError, match="flavour"):
        build_connector("directory", "ldap", {**settings, "flavour": "novell"})
    monkeypatch.delenv(PASSWORD_ENV)
    with pytest.raises(ConfigurationError, match=PASSWORD_ENV):
        build_connector("directory", "ldap", settings)


# --- Active Directory mapping (pure; no AD server here) -----------------------------------


def test_ad_entry_mapping() -> None:
    classes, entry = new_entry(
        "jsmith",
        sample_attributes(),
        "ad",
        manager_dn="CN=boss,OU=Staff,DC=trust,DC=nhs,DC=uk",
        upn_suffix="trust.nhs.uk",
    )
    assert classes[-1] == "user"
    assert entry["cn"] == "jsmith"
    assert entry["sAMAccountName"] == "jsmith"
    assert entry["userPrincipalName"] == "jsmith@trust.nhs.uk"
    assert entry["userAccountControl"] == str(NORMAL_ACCOUNT)
    assert entry["company"] == "RXX"
    assert entry["department"] == "Radiology"
    assert entry["title"] == "Radiographer"
    assert entry["employeeNumber"] == "12345678"
    assert entry["manager"] == "CN=boss,OU=Staff,DC=trust,DC=nhs,DC=uk"
    assert "unicodePwd" not in entry
    back = pasa_attributes(
        {k: [v] for k, v in entry.items()}, "ad", manager_employee_number="99999999"
    )
    assert back == sample_attributes(manager_employee_number="99999999")


def test_openldap_mapping_and_clearing() -> None:
    values = directory_values(
        {"department": "ED", "email": None, "organisation": "RXX"}, "openldap"
    )
    assert values == {"ou": "ED", "mail": None, "o": "RXX"}
    assert directory_values({"manager_employee_number": "1"}, "openldap") == {"manager": None}
    settings = LdapSettings(
        url="ldap://dc1.trust.nhs.uk",
        bind_dn="x",
        bind_password_env="X",
        base_dn="dc=trust,dc=nhs,dc=uk",
    )
    assert settings.principal_suffix == "trust.nhs.uk"
    assert settings.tls is False
    assert LdapSettings(url="ldaps://dc1", bind_dn="x", bind_password_env="X", base_dn="dc=a").tls


def test_user_account_control_disable_bit() -> None:
    assert ACCOUNTDISABLE == 0x2
    assert uac_set_disabled(512, True) == 514
    assert uac_set_disabled(514, True) == 514  # idempotent
    assert uac_set_disabled(514, False) == 512
    assert uac_set_disabled(512, False) == 512
    # other bits (DONT_EXPIRE_PASSWORD 0x10000, PASSWORD_EXPIRED 0x800000) are kept
    assert uac_set_disabled(0x10200, True) == 0x10202
    assert uac_set_disabled(0x810202, False) == 0x810200
    assert uac_enabled(512) and not uac_enabled(514)


def test_ad_password_is_quoted_utf16le_and_needs_tls() -> None:
    assert encode_unicode_pwd("Secret-1") == '"Secret-1"'.encode("utf-16-le")
    assert encode_unicode_pwd("é") == b'"\x00\xe9\x00"\x00'
    assert password_values("Secret-1", "ad", tls=True) == {
        "unicodePwd": '"Secret-1"'.encode("utf-16-le")
    }
    with pytest.raises(PermanentError, match="only over TLS") as caught:
        password_values("Secret-1", "ad", tls=False)
    assert "Secret-1" not in str(caught.value)
    with pytest.raises(PermanentError, match="only over TLS"):
        new_entry("jsmith", sample_attributes(password="Secret-1"), "ad", tls=False)
    _, entry = new_entry("jsmith", sample_attributes(password="Secret-1"), "ad", tls=True)
    assert entry["unicodePwd"] == '"Secret-1"'.encode("utf-16-le")


def test_membership_group_names_round_trip() -> None:
    for kind, value, cn in [
        ("group", "radiology", "radiology"),
        ("door_zone", "theatres", "door-theatres"),
        ("app_role", "pacs-reporter", "app-pacs-reporter"),
    ]:
        assert group_name(kind, value) == cn
        assert membership_of_group(cn) == (kind, value)
    with pytest.raises(PermanentError):
        group_name("smartcard", "x")


def test_slapd_helper_writes_its_own_configuration(slapd: SlapdServer) -> None:
    config = slapd.config.read_text()
    assert "moduleload back_mdb" in config
    assert 'suffix "dc=nhs,dc=test"' in config
    assert slapd.url.startswith("ldap://127.0.0.1:")
