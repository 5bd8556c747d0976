"""HR import into the hub: staging, delta, events, guard, quarantine (SQLite and PostgreSQL)."""

from __future__ import annotations

import datetime as dt
import sys
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from pasa.audit.log import verify
from pasa.domain.errors import InputFileError, PasaError
from pasa.hr.importer import (
    approve_import,
    events,
    import_extract,
    quarantine,
    reject_import,
)
from pasa.store import schema

sys.path.insert(0, str(Path(__file__).parent))
from esr_builder import bad_rows_file, valid_row, write_extract

AS_OF = dt.date(2026, 1, 10)
FIXTURE = Path(__file__).parent.parent / "fixtures" / "esr_bad_rows.csv"
HUB_TABLES = (
    "organisation",
    "site",
    "department",
    "position",
    "person",
    "person_identifier",
    "assignment",
    "assignment_history",
    "hr_event",
)


def workforce(count: int, org: str = "RXL") -> list[dict[str, str]]:
    rows = [valid_row(n, org=org) for n in range(1, count + 1)]
    for n, row in enumerate(rows[1:], start=2):
        row["Supervisor_Assignment_Number"] = f"{10_000_000 + max(1, n // 5):08d}"
    return rows


def snapshot(engine: Engine) -> dict[str, Any]:
    out: dict[str, Any] = {}
    with engine.connect() as conn:
        for table in HUB_TABLES:
            out[table] = conn.execute(sa.text(f"SELECT * FROM {table} ORDER BY id")).all()
    return out


def scalar(engine: Engine, sql: str, **params: Any) -> Any:
    with engine.connect() as conn:
        return conn.execute(sa.text(sql), params).scalar_one()


def assignment(engine: Engine, number: str) -> Any:
    with engine.connect() as conn:
        return conn.execute(
            sa.select(schema.assignment).where(schema.assignment.c.assignment_number == number)
        ).one()


def test_bad_rows_fixture_imports_good_rows_and_quarantines_bad(engine: Engine) -> None:
    _, good, bad = bad_rows_file()
    result = import_extract(engine, FIXTURE, actor="hr", as_of=AS_OF)
    assert result.status == "applied"
    assert result.rows_accepted == len(good)
    assert result.rows_rejected == len(bad)
    assert result.events_new == len(good)
    assert scalar(engine, "SELECT COUNT(*) FROM assignment") == len(good)
    entries = quarantine(engine, result.import_id)
    rejected = {e.row_number for e in entries if e.severity == "rejected"}
    assert rejected == set(bad)
    for row_number, expected in bad.items():
        for field, reason in expected:
            assert any(
                e.row_number == row_number and e.field == field and reason in e.reason
                for e in entries
            ), (row_number, field, reason)
    # The supervisor missing from the file is cleared, never the person lost.
    warned = [
        e for e in entries if e.severity == "warning" and e.field == "Supervisor_Assignment_Number"
    ]
    assert warned and warned[0].severity == "warning"
    assert assignment(engine, "10000950").supervisor_assignment_number is None
    # Unicode names survive.
    assert scalar(engine, "SELECT COUNT(*) FROM person WHERE first_name = 'Zoë'") > 0
    assert scalar(engine, "SELECT COUNT(*) FROM person WHERE last_name = 'O''Brien-Nuñez'") > 0


def test_first_import_builds_the_hub(engine: Engine, tmp_path: Path) -> None:
    rows = workforce(30)
    rows[0]["Registration_Body"] = "GMC"
    rows[0]["Registration_Number"] = "7654321"
    result = import_extract(
        engine, write_extract(tmp_path / "a.csv", rows), actor="hr", as_of=AS_OF
    )
    assert (result.events_new, result.events_changed, result.events_ended) == (30, 0, 0)
    assert scalar(engine, "SELECT COUNT(*) FROM person") == 30
    assert scalar(engine, "SELECT name FROM organisation") == "RXL"
    assert scalar(engine, "SELECT COUNT(*) FROM assignment_history") == 30
    assert (
        scalar(
            engine,
            "SELECT COUNT(*) FROM person_identifier WHERE scheme = 'esr_employee_number' "
            "AND issuer = 'RXL'",
        )
        == 30
    )
    assert scalar(engine, "SELECT value FROM person_identifier WHERE scheme = 'gmc'") == "7654321"
    a = assignment(engine, "10000007")
    assert a.supervisor_assignment_number == "10000001"
    assert a.in_extract and a.end_date is None
    with engine.connect() as conn:
        assert verify(conn).ok
        entry = conn.execute(sa.text("SELECT action, subject_id FROM audit_log")).one()
    assert tuple(entry) == ("hr.import", str(result.import_id))


def test_same_file_twice_gives_no_events_and_no_hub_writes(engine: Engine, tmp_path: Path) -> None:
    path = write_extract(tmp_path / "a.csv", workforce(40))
    import_extract(engine, path, actor="hr", as_of=AS_OF)
    before = snapshot(engine)
    again = import_extract(engine, path, actor="hr", as_of=AS_OF)
    assert (again.events_new, again.events_changed, again.events_ended) == (0, 0, 0)
    assert again.status == "applied"
    assert snapshot(engine) == before
    assert scalar(engine, "SELECT COUNT(*) FROM hr_staging") == 0


def test_changed_row_gives_one_changed_event_with_the_fields(
    engine: Engine, tmp_path: Path
) -> None:
    rows = workforce(20)
    import_extract(engine, write_extract(tmp_path / "a.csv", rows), actor="hr", as_of=AS_OF)
    rows[4]["Grade_Code"] = "Band 6"
    rows[4]["WTE"] = "0.80"
    later = AS_OF + dt.timedelta(days=7)
    result = import_extract(
        engine, write_extract(tmp_path / "b.csv", rows), actor="hr", as_of=later
    )
    assert (result.events_new, result.events_changed, result.events_ended) == (0, 1, 0)
    (event,) = events(engine, result.import_id)
    assert event["kind"] == "changed" and event["assignment_number"] == "10000005"
    assert event["effective_date"] == later
    assert set(event["changes"]) == {"Grade_Code", "WTE"}
    assert event["changes"]["Grade_Code"] == ["Band 5", "Band 6"]
    assert float(assignment(engine, "10000005").wte) == 0.8
    assert scalar(engine, "SELECT grade_code FROM position WHERE position_number = 'P00005'") == (
        "Band 6"
    )
    # History: the old version closed, the new one open.
    with engine.connect() as conn:
        versions = conn.execute(
            sa.text(
                "SELECT h.valid_from, h.valid_to FROM assignment_history h JOIN assignment a "
                "ON a.id = h.assignment_id WHERE a.assignment_number = '10000005' ORDER BY h.id"
            )
        ).all()
    assert len(versions) == 2 and versions[1][1] is None and versions[0][1] is not None


def test_end_date_set_is_an_ended_event_on_that_date(engine: Engine, tmp_path: Path) -> None:
    rows = workforce(20)
    import_extract(engine, write_extract(tmp_path / "a.csv", rows), actor="hr", as_of=AS_OF)
    rows[2]["Assignment_End_Date"] = "28/02/2026"
    result = import_extract(
        engine, write_extract(tmp_path / "b.csv", rows), actor="hr", as_of=AS_OF
    )
    (event,) = events(engine, result.import_id)
    assert (event["kind"], event["effective_date"]) == ("ended", dt.date(2026, 2, 28))
    assert assignment(engine, "10000003").end_date == dt.date(2026, 2, 28)


def test_end_date_moved_later_is_a_change(engine: Engine, tmp_path: Path) -> None:
    rows = workforce(10)
    rows[1]["Assignment_End_Date"] = "31/01/2026"
    import_extract(engine, write_extract(tmp_path / "a.csv", rows), actor="hr", as_of=AS_OF)
    rows[1]["Assignment_End_Date"] = "31/07/2026"
    result = import_extract(
        engine, write_extract(tmp_path / "b.csv", rows), actor="hr", as_of=AS_OF
    )
    (event,) = events(engine, result.import_id)
    assert event["kind"] == "changed"
    assert event["changes"] == {"Assignment_End_Date": ["2026-01-31", "2026-07-31"]}
    assert assignment(engine, "10000002").end_date == dt.date(2026, 7, 31)


def test_removed_row_is_ended_the_day_before_as_of(engine: Engine, tmp_path: Path) -> None:
    rows = workforce(50)
    import_extract(engine, write_extract(tmp_path / "a.csv", rows), actor="hr", as_of=AS_OF)
    gone = rows.pop(10)
    later = AS_OF + dt.timedelta(days=3)
    result = import_extract(
        engine, write_extract(tmp_path / "b.csv", rows), actor="hr", as_of=later
    )
    assert (result.status, result.events_ended) == ("applied", 1)
    (event,) = events(engine, result.import_id)
    assert event["kind"] == "ended" and event["state"] == "applied"
    assert event["assignment_number"] == gone["Assignment_Number"]
    assert event["effective_date"] == later - dt.timedelta(days=1)
    a = assignment(engine, gone["Assignment_Number"])
    assert a.end_date == later - dt.timedelta(days=1) and not a.in_extract
    # Back in the next extract: reinstated as a change.
    rows.append(gone)
    back = import_extract(engine, write_extract(tmp_path / "c.csv", rows), actor="hr", as_of=later)
    (event,) = events(engine, back.import_id)
    assert event["kind"] == "changed" and event["changes"]["reinstated"] is True
    a = assignment(engine, gone["Assignment_Number"])
    assert a.end_date is None and a.in_extract


def test_truncated_file_is_held_then_approved(engine: Engine, tmp_path: Path) -> None:
    rows = workforce(100)
    import_extract(engine, write_extract(tmp_path / "full.csv", rows), actor="hr", as_of=AS_OF)
    truncated = rows[:10]
    truncated[0]["Grade_Code"] = "Band 7"  # a real change in the truncated file still applies
    held = import_extract(
        engine, write_extract(tmp_path / "cut.csv", truncated), actor="hr", as_of=AS_OF
    )
    assert held.status == "held"
    assert held.events_ended == 90 and held.active_before == 100 and held.events_changed == 1
    assert held.guard_reason is not None
    assert "would end 90 of 100 active assignments (90.0%)" in held.guard_reason
    assert "above the 5.0% guard; nothing was ended" in held.guard_reason
    assert f"pasa hr approve {held.import_id}" in held.guard_reason
    assert scalar(engine, "SELECT COUNT(*) FROM assignment WHERE end_date IS NOT NULL") == 0
    assert scalar(engine, "SELECT COUNT(*) FROM assignment WHERE NOT in_extract") == 0
    assert scalar(engine, "SELECT grade_code FROM position WHERE position_number = 'P00001'") == (
        "Band 7"
    )
    states = {e["state"] for e in events(engine, held.import_id) if e["kind"] == "ended"}
    assert states == {"held"}

    approved = approve_import(engine, held.import_id, actor="hr-lead")
    assert approved.status == "approved"
    assert scalar(engine, "SELECT COUNT(*) FROM assignment WHERE NOT in_extract") == 90
    assert (
        scalar(
            engine,
            "SELECT COUNT(*) FROM assignment WHERE end_date = :d",
            d=AS_OF - dt.timedelta(days=1),
        )
        == 90
    )
    assert {e["state"] for e in events(engine, held.import_id)} == {"applied"}
    with pytest.raises(PasaError, match="not held"):
        approve_import(engine, held.import_id, actor="hr-lead")
    with engine.connect() as conn:
        assert verify(conn).ok
        actions = conn.execute(sa.text("SELECT action FROM audit_log ORDER BY seq")).scalars()
        assert list(actions) == ["hr.import", "hr.import", "hr.approve"]


def test_held_import_rejected_discards_the_ends(engine: Engine, tmp_path: Path) -> None:
    rows = workforce(40)
    import_extract(engine, write_extract(tmp_path / "full.csv", rows), actor="hr", as_of=AS_OF)
    held = import_extract(
        engine, write_extract(tmp_path / "cut.csv", rows[:4]), actor="hr", as_of=AS_OF
    )
    assert held.status == "held"
    rejected = reject_import(engine, held.import_id, actor="hr-lead", reason="truncated file")
    assert rejected.status == "rejected"
    assert {e["state"] for e in events(engine, held.import_id)} == {"discarded"}
    assert scalar(engine, "SELECT COUNT(*) FROM assignment WHERE NOT in_extract") == 0


def test_next_full_extract_supersedes_a_held_import(engine: Engine, tmp_path: Path) -> None:
    rows = workforce(40)
    path = write_extract(tmp_path / "full.csv", rows)
    import_extract(engine, path, actor="hr", as_of=AS_OF)
    held = import_extract(
        engine, write_extract(tmp_path / "cut.csv", rows[:4]), actor="hr", as_of=AS_OF
    )
    nxt = import_extract(engine, path, actor="hr", as_of=AS_OF + dt.timedelta(days=1))
    assert nxt.status == "applied" and nxt.events_ended == 0
    assert scalar(engine, "SELECT status FROM hr_import WHERE id = :i", i=held.import_id) == (
        "superseded"
    )


def test_same_human_in_two_organisations_is_one_person(engine: Engine, tmp_path: Path) -> None:
    a = valid_row(1, org="RXL")
    b = valid_row(500, org="RHW", NI_Number=a["NI_Number"], Date_Of_Birth=a["Date_Of_Birth"])
    import_extract(engine, write_extract(tmp_path / "one.csv", [a, b]), actor="hr", as_of=AS_OF)
    assert scalar(engine, "SELECT COUNT(*) FROM person") == 1
    assert scalar(engine, "SELECT COUNT(DISTINCT organisation_id) FROM assignment") == 2
    # And across files: a third organisation's extract links to the same person.
    c = valid_row(77, org="RBK", NI_Number=a["NI_Number"], Date_Of_Birth=a["Date_Of_Birth"])
    d = valid_row(78, org="RBK")
    import_extract(engine, write_extract(tmp_path / "two.csv", [c, d]), actor="hr", as_of=AS_OF)
    assert scalar(engine, "SELECT COUNT(*) FROM person") == 2
    assert scalar(engine, "SELECT COUNT(DISTINCT person_id) FROM assignment") == 2
    assert (
        scalar(
            engine,
            "SELECT COUNT(*) FROM person_identifier WHERE scheme = 'esr_employee_number'",
        )
        == 4
    )


def test_second_assignment_joins_the_existing_person(engine: Engine, tmp_path: Path) -> None:
    rows = workforce(5)
    import_extract(engine, write_extract(tmp_path / "a.csv", rows), actor="hr", as_of=AS_OF)
    bank = valid_row(
        3, Assignment_Number="10000003-2", Primary_Assignment="N", Assignment_Category="Bank"
    )
    result = import_extract(
        engine, write_extract(tmp_path / "b.csv", [*rows, bank]), actor="hr", as_of=AS_OF
    )
    assert result.events_new == 1
    assert scalar(engine, "SELECT COUNT(*) FROM person") == 5
    assert (
        scalar(
            engine,
            "SELECT COUNT(DISTINCT person_id) FROM assignment WHERE employee_number = '10000003'",
        )
        == 1
    )


def test_no_valid_rows_raises_after_recording_the_quarantine(
    engine: Engine, tmp_path: Path
) -> None:
    rows = [valid_row(n, Staff_Group="99") for n in range(1, 4)]
    with pytest.raises(InputFileError, match="no valid rows; nothing was imported"):
        import_extract(engine, write_extract(tmp_path / "bad.csv", rows), actor="hr", as_of=AS_OF)
    import_id = scalar(engine, "SELECT id FROM hr_import")
    assert scalar(engine, "SELECT status FROM hr_import") == "failed"
    assert len(quarantine(engine, import_id)) == 3
    assert scalar(engine, "SELECT COUNT(*) FROM assignment") == 0


def test_bad_header_is_one_clear_error(engine: Engine, tmp_path: Path) -> None:
    path = tmp_path / "h.csv"
    path.write_text("Org_Code,Employee_Number\nRXL,10000001\n")
    with pytest.raises(InputFileError, match="missing columns"):
        import_extract(engine, path, actor="hr", as_of=AS_OF)


def test_progress_is_reported(engine: Engine, tmp_path: Path) -> None:
    seen: list[int] = []
    path = write_extract(tmp_path / "a.csv", workforce(12))
    import_extract(engine, path, actor="hr", as_of=AS_OF, progress=seen.append)
    assert seen[-1] == 12


# --- partial (delta) files: add and change only ------------------------------------------------


def test_partial_file_ends_nothing_and_is_not_guarded(engine: Engine, tmp_path: Path) -> None:
    rows = workforce(40)
    import_extract(engine, write_extract(tmp_path / "full.csv", rows), actor="hr", as_of=AS_OF)
    moved = dict(rows[7], Grade_Code="Band 6")  # supervisor (row 1) is not in the delta file
    new = valid_row(77)
    later = AS_OF + dt.timedelta(days=5)
    result = import_extract(
        engine,
        write_extract(tmp_path / "delta.csv", [moved, new]),
        actor="hr",
        as_of=later,
        partial=True,
    )
    # 2 of 40 listed: a full extract would end 38 and be held; a partial one ends nothing.
    assert result.status == "applied" and result.guard_reason is None
    assert (result.events_new, result.events_changed, result.events_ended) == (1, 1, 0)
    assert scalar(engine, "SELECT COUNT(*) FROM assignment WHERE NOT in_extract") == 0
    assert scalar(engine, "SELECT COUNT(*) FROM assignment WHERE end_date IS NOT NULL") == 0
    # The supervisor is in the hub, so it is kept (no warning, not cleared).
    assert result.rows_warned == 0 and quarantine(engine, result.import_id) == []
    a = assignment(engine, moved["Assignment_Number"])
    assert a.supervisor_assignment_number == moved["Supervisor_Assignment_Number"]
    # The same rows in the next full extract are unchanged: the partial import's hash is
    # the full extract's.
    rows[7] = moved
    full = import_extract(
        engine, write_extract(tmp_path / "full2.csv", [*rows, new]), actor="hr", as_of=later
    )
    assert (full.events_new, full.events_changed, full.events_ended) == (0, 0, 0)


def test_partial_file_keeps_held_imports_and_warns_unknown_supervisors(
    engine: Engine, tmp_path: Path
) -> None:
    rows = workforce(40)
    import_extract(engine, write_extract(tmp_path / "full.csv", rows), actor="hr", as_of=AS_OF)
    held = import_extract(
        engine, write_extract(tmp_path / "cut.csv", rows[:4]), actor="hr", as_of=AS_OF
    )
    assert held.status == "held"
    orphan = valid_row(90, Supervisor_Assignment_Number="19999999")
    result = import_extract(
        engine,
        write_extract(tmp_path / "delta.csv", [orphan]),
        actor="hr",
        as_of=AS_OF,
        partial=True,
    )
    assert result.status == "applied" and result.events_new == 1
    assert scalar(engine, "SELECT status FROM hr_import WHERE id = :i", i=held.import_id) == "held"
    assert result.rows_warned == 1
    (problem,) = quarantine(engine, result.import_id)
    assert problem.field == "Supervisor_Assignment_Number" and problem.severity == "warning"
    assert assignment(engine, orphan["Assignment_Number"]).supervisor_assignment_number is None
