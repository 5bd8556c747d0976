"""Reading the identity hub back, and storing the policy, on both engines."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from pasa.audit.log import verify
from pasa.domain.errors import ConfigurationError
from pasa.hr.importer import import_extract
from pasa.hr.synthetic import generate_workforce
from pasa.policy.document import load_policy_file
from pasa.store import hub
from pasa.store import schema as s
from pasa.store.policy_repo import load_active_policy, save_policy

REPO = Path(__file__).resolve().parents[2]
AS_OF = dt.date(2026, 11, 24)


@pytest.fixture
def imported(engine: Engine, tmp_path: Path) -> Engine:
    extract = tmp_path / "esr.csv"
    generate_workforce(extract, staff=120, org="RXL", seed=11, as_of=AS_OF)
    result = import_extract(engine, extract, actor="test", as_of=AS_OF)
    assert result.rows_rejected == 0
    return engine


def test_load_people_returns_every_assignment_with_its_position(imported: Engine) -> None:
    with imported.connect() as conn:
        people = hub.load_people(conn)
        assignments = conn.scalar(sa.select(sa.func.count()).select_from(s.assignment))
    assert len(people) == 120
    assert sum(len(p.assignments) for p in people) == assignments
    for person in people:
        assert [a.primary for a in person.assignments].count(True) == 1
        for a in person.assignments:
            assert a.organisation == "RXL"
            assert a.position.job_role_code.startswith(a.position.staff_group)
        assert ("esr_employee_number", person.assignments[0].employee_number) in person.identifiers


def test_people_with_a_bank_assignment_have_both(imported: Engine) -> None:
    with imported.connect() as conn:
        people = hub.load_people(conn)
    multi = [p for p in people if len(p.assignments) > 1]
    assert multi, "the synthetic trust has bank/honorary second assignments"
    for p in multi:
        numbers = sorted(a.assignment_number for a in p.assignments)
        assert numbers[0] == p.assignments[0].employee_number
        assert all(n.startswith(numbers[0]) for n in numbers)


def test_find_person_by_any_identifier(imported: Engine) -> None:
    with imported.connect() as conn:
        person = hub.load_people(conn)[5]
        employee = person.assignments[0].employee_number
        assert hub.find_person_ids(conn, employee) == [person.person_id]
        assert hub.find_person_ids(conn, person.uid) == [person.person_id]
        by_name = hub.find_person_ids(conn, f"{person.first_name} {person.last_name}")
        assert person.person_id in by_name
        assert hub.find_person_ids(conn, "no-such-person") == []


def test_policy_is_stored_once_per_content_and_audited(engine: Engine) -> None:
    doc = load_policy_file(REPO / "examples" / "policy.yaml")
    with engine.begin() as conn:
        first = save_policy(conn, doc, source="examples/policy.yaml", actor="alice")
        again = save_policy(conn, doc, source="examples/policy.yaml", actor="alice")
    assert first.changed and not again.changed
    assert first.version_id == again.version_id
    with engine.connect() as conn:
        assert load_active_policy(conn) == doc
        keys = set(conn.scalars(sa.select(s.target.c.key)))
        assert keys == {t.key for t in doc.targets}
        actions = list(conn.scalars(sa.select(s.audit_log.c.action)))
        assert actions == ["policy.load"]
        assert verify(conn).ok


def test_no_policy_loaded_is_a_clear_error(engine: Engine) -> None:
    with engine.connect() as conn, pytest.raises(ConfigurationError, match="pasa policy load"):
        load_active_policy(conn)
