"""Reconciliation against a real OpenLDAP slapd, changed by hand as an administrator would."""

from __future__ import annotations

import datetime as dt
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from ldap3 import MODIFY_DELETE, MODIFY_REPLACE
from reconcile_helpers import add_person, add_target, record_account
from sqlalchemy.engine import Engine

from pasa.connectors.kit import sample_attributes
from pasa.connectors.ldap import LdapConnector, LdapSettings
from pasa.engine.reconcile import FindingKind, reconcile

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "connectors"))
from slapd_server import SlapdServer, start_slapd

PASSWORD_ENV = "PASA_TEST_RECONCILE_LDAP_PASSWORD"
AT = dt.date(2026, 8, 5)


@pytest.fixture(scope="module")
def slapd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SlapdServer]:
    server = start_slapd(tmp_path_factory.mktemp("slapd-reconcile"))
    yield server
    server.stop()


@pytest.fixture
def directory(slapd: SlapdServer, monkeypatch: pytest.MonkeyPatch) -> Iterator[LdapConnector]:
    monkeypatch.setenv(PASSWORD_ENV, slapd.root_password)
    base = slapd.new_subtree(f"r{uuid.uuid4().hex[:10]}")
    connector = LdapConnector(
        LdapSettings(
            url=slapd.url,
            bind_dn=slapd.root_dn,
            bind_password_env=PASSWORD_ENV,
            base_dn=base,
            timeout=3.0,
        ),
        name="directory",
    )
    yield connector
    connector.close()


def test_hand_made_changes_are_found_exactly(
    engine: Engine, slapd: SlapdServer, directory: LdapConnector
) -> None:
    base = directory.settings.base_dn
    tid = add_target(
        engine,
        "directory",
        "ldap",
        url=slapd.url,
        bind_dn=slapd.root_dn,
        bind_password_env=PASSWORD_ENV,
        base_dn=base,
    )
    people = {"asmith": "20000001", "bjones": "20000002", "cpatel": "20000003"}
    for person_id, (username, number) in enumerate(people.items(), start=1):
        add_person(engine, person_id, number)
        attributes = sample_attributes(number, first_name=username[1:].title())
        directory.create(username, attributes)
        grants = [("group", "staff"), ("app_role", "pacs")]
        for kind, value in grants:
            directory.add_member(username, kind, value)
        record_account(engine, tid, person_id, username, attributes, memberships=grants)

    before = reconcile(engine, "directory", actor="test", connector=directory, at=AT)
    assert before.counts["linked"] == 3
    assert before.findings == []

    admin = slapd.connect()
    try:
        people_dn, groups_dn = f"ou=people,{base}", f"ou=groups,{base}"
        slapd.add(
            admin,
            f"uid=handmade,{people_dn}",
            ["top", "person", "organizationalPerson", "inetOrgPerson"],
            {"uid": "handmade", "cn": "Hand Made", "sn": "Made", "employeeNumber": "99999999"},
        )
        assert admin.modify(
            f"uid=bjones,{people_dn}", {"title": [(MODIFY_REPLACE, ["Superintendent"])]}
        )
        assert admin.modify(
            f"cn=staff,{groups_dn}", {"member": [(MODIFY_DELETE, [f"uid=cpatel,{people_dn}"])]}
        )
    finally:
        admin.unbind()

    report = reconcile(engine, "directory", actor="test", connector=directory, at=AT)
    assert report.counts == {
        "linked": 1,
        "drifted": 2,
        "unlinked": 0,
        "unmatched": 1,
        "orphan": 0,
        "missing": 0,
    }
    found = {f.username: f for f in report.findings}
    assert set(found) == {"handmade", "bjones", "cpatel"}
    assert found["handmade"].kind is FindingKind.UNMATCHED
    assert found["handmade"].details["employee_number"] == "99999999"
    assert found["bjones"].kind is FindingKind.DRIFTED
    assert found["bjones"].details == {
        "attributes": {"job_title": ["Radiographer", "Superintendent"]}
    }
    assert found["cpatel"].kind is FindingKind.DRIFTED
    assert found["cpatel"].details == {
        "memberships": {"missing": [["group", "staff"]], "extra": []}
    }

    fixed = reconcile(engine, "directory", actor="test", connector=directory, correct=True, at=AT)
    assert fixed.correction_errors == 0
    assert fixed.corrections == 2
    after = reconcile(engine, "directory", actor="test", connector=directory, at=AT)
    assert after.counts["drifted"] == 0
    assert after.counts["linked"] == 3
    assert [(f.username, f.kind) for f in after.findings] == [("handmade", FindingKind.UNMATCHED)]
