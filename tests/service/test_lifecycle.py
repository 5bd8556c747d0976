"""Lifecycle states recorded per person and assignment, with transitions and audit."""

from __future__ import annotations

import datetime as dt
import time

import sqlalchemy as sa
from hub_helpers import A, add_assignments, add_person, load_policy, set_end
from sqlalchemy.engine import Engine
from typer.testing import CliRunner

from pasa.audit.log import verify
from pasa.cli.main import app
from pasa.domain.model import AssignmentStatus
from pasa.service.lifecycle import leaver_days_of, lifecycle_states, record_states, show
from pasa.store import schema as s

D = dt.date


def _states(engine: Engine) -> dict[tuple[int, str], str]:
    with engine.connect() as conn:
        return {(r.person_id, r.scope): r.state for r in conn.execute(sa.select(s.lifecycle_state))}


def test_first_run_records_everyone_then_only_changes(engine: Engine) -> None:
    with engine.begin() as conn:
        load_policy(
            conn,
            [
                {
                    "key": "ad",
                    "name": "AD",
                    "connector": "memory",
                    "lifecycle": {"retention_days": 10},
                },
                {
                    "key": "app",
                    "name": "App",
                    "connector": "memory",
                    "lifecycle": {"retention_days": 20},
                },
            ],
        )
        starter = add_person(conn, "Ann", "Starter", A("1001", D(2026, 12, 1)))
        nurse = add_person(conn, "Bob", "Nurse", A("1002", D(2020, 1, 1)))
        away = add_person(
            conn, "Cat", "Away", A("1003", D(2020, 1, 1), status=AssignmentStatus.SUSPENDED)
        )
        leaver = add_person(conn, "Dan", "Leaver", A("1004", D(2020, 1, 1), D(2026, 11, 20)))
    assert leaver_days_of(None) == 30

    summary = record_states(engine, D(2026, 11, 24), actor="t")
    assert summary is not None and summary.startswith("lifecycle: 4 transitions (")
    assert "1 new->active" in summary
    assert _states(engine) == {
        (starter, ""): "pre_hire",
        (starter, "RXL/1001"): "pre_hire",
        (nurse, ""): "active",
        (nurse, "RXL/1002"): "active",
        (away, ""): "suspended",
        (away, "RXL/1003"): "suspended",
        (leaver, ""): "leaver",
        (leaver, "RXL/1004"): "leaver",
    }
    # Nothing changed: nothing written.
    assert record_states(engine, D(2026, 11, 24)) is None

    # 1 December: the starter starts; the nurse is ending; the leaver (20 days, the longest
    # retention) becomes former on the 21st day after the end date.
    with engine.begin() as conn:
        set_end(conn, "1002", D(2026, 11, 30))
    assert record_states(engine, D(2026, 12, 1), actor="t") == (
        "lifecycle: 2 transitions (1 active->leaver, 1 pre_hire->active); "
        "2 assignment state changes"
    )
    assert lifecycle_states(engine, D(2026, 12, 11), "scheduler") == (
        "lifecycle: 1 transitions (1 leaver->former); 1 assignment state changes"
    )

    with engine.connect() as conn:
        transitions = conn.execute(
            sa.select(s.lifecycle_transition).where(s.lifecycle_transition.c.person_id == starter)
        ).all()
        audit = conn.execute(
            sa.select(s.audit_log).where(s.audit_log.c.action == "lifecycle.transition")
        ).all()
        assert verify(conn).ok
    assert [(t.scope, t.from_state, t.to_state) for t in transitions] == [
        ("", None, "pre_hire"),
        ("RXL/1001", None, "pre_hire"),
        ("", "pre_hire", "active"),
        ("RXL/1001", "pre_hire", "active"),
    ]
    assert len(audit) == 4 + 2 + 1  # person-level transitions only
    assert {a.subject_id for a in audit if a.details["to"] == "former"} == {str(leaver)}

    reports = show(engine, "Ann Starter")
    assert [(h.scope, h.state) for h in reports[0].scopes] == [
        ("", "active"),
        ("RXL/1001", "active"),
    ]


def test_rehired_former_employee_returns_through_pre_hire(engine: Engine) -> None:
    with engine.begin() as conn:
        person = add_person(conn, "Eve", "Back", A("2001", D(2018, 1, 1), D(2022, 3, 31)))
    record_states(engine, D(2026, 11, 24))
    assert _states(engine)[(person, "")] == "former"
    with engine.begin() as conn:
        add_assignments(conn, person, A("2002", D(2027, 1, 4)))
    assert record_states(engine, D(2026, 11, 25)) == (
        "lifecycle: 1 transitions (1 former->pre_hire); 1 assignment state changes"
    )


def test_a_7000_person_first_run_takes_seconds(engine: Engine) -> None:
    with engine.begin() as conn:
        add_person(conn, "Seed", "Person", A("9", D(2020, 1, 1)))
        org_id, position_id = conn.execute(
            sa.select(s.assignment.c.organisation_id, s.assignment.c.position_id)
        ).one()
        now = dt.datetime.now(dt.UTC)
        people = [
            {
                "uid": f"bulk-{i}",
                "first_name": "P",
                "last_name": str(i),
                "created_at": now,
                "updated_at": now,
            }
            for i in range(7000)
        ]
        conn.execute(s.person.insert(), people)
        ids = (
            conn.execute(sa.select(s.person.c.id).where(s.person.c.uid.like("bulk-%")))
            .scalars()
            .all()
        )
        conn.execute(
            s.assignment.insert(),
            [
                {
                    "organisation_id": org_id,
                    "position_id": position_id,
                    "assignment_number": f"B{pid}",
                    "person_id": pid,
                    "employee_number": f"B{pid}",
                    "category": "Permanent",
                    "status": "Active Assignment",
                    "is_primary": True,
                    "start_date": D(2020, 1, 1) if pid % 3 else D(2027, 1, 1),
                    "end_date": None,
                    "wte": 1,
                    "row_hash": "x",
                    "updated_at": now,
                }
                for pid in ids
            ],
        )
    started = time.perf_counter()
    summary = record_states(engine, D(2026, 11, 24))
    elapsed = time.perf_counter() - started
    assert summary is not None and summary.startswith("lifecycle: 7001 transitions")
    assert elapsed < 10, f"first run took {elapsed:.1f}s"
    with engine.connect() as conn:
        assert verify(conn).ok
        assert conn.scalar(sa.select(sa.func.count()).select_from(s.lifecycle_transition)) == 14002


def test_cli_lifecycle_show(engine: Engine, monkeypatch: object) -> None:
    import pytest

    assert isinstance(monkeypatch, pytest.MonkeyPatch)
    with engine.begin() as conn:
        add_person(conn, "Fay", "Show", A("3001", D(2020, 1, 1)))
    record_states(engine, D(2026, 11, 24))
    monkeypatch.setattr("pasa.cli.main.open_engine", lambda **_: engine)
    result = CliRunner().invoke(app, ["lifecycle", "show", "3001"])
    assert result.exit_code == 0, result.output
    assert "person: active since 2026-11-24" in result.output
    assert "assignment RXL/3001: active" in result.output
    assert "(first seen) -> active" in result.output
