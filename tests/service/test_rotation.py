"""Rotation batches: import, preview, approve, amend, cancel, execute on the date, report.

Checked in the target systems themselves (SQLite files written by the sql_table connector).
"""

from __future__ import annotations

import datetime as dt
import sqlite3
import sys
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from pasa.domain.errors import NotFoundError, PasaError
from pasa.hr.importer import import_extract
from pasa.policy.document import load_policy_file
from pasa.service import provisioning, rotation
from pasa.store import schema as s
from pasa.store.policy_repo import save_policy

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "hr"))

from esr_builder import valid_row, write_extract

REPO = Path(__file__).resolve().parents[2]
DAY0 = dt.date(2026, 7, 20)
ROTATION = dt.date(2026, 8, 5)
ED = {"Area_Of_Work": "Emergency Medicine", "Department_Code": "D200",
      "Department_Name": "Emergency Department", "Cost_Centre": "CC200"}  # fmt: skip
THEATRES = {"Area_Of_Work": "Theatres", "Department_Code": "D300",
            "Department_Name": "Main Theatres", "Cost_Centre": "CC300"}  # fmt: skip


def doctor(n: int, **overrides: str) -> dict[str, str]:
    values = {
        "Staff_Group": "01",
        "Job_Role_Code": "01016",
        "Grade_Code": "ST3",
        "Position_Number": f"D{n:04d}",
        "Position_Title": "Specialty Registrar",
        "Occupation_Code": "M0A",
        "Registration_Body": "GMC",
        "Registration_Number": f"{7_000_000 + n}",
        "Assignment_End_Date": "04/08/2026",
        **ED,
    }
    values.update(overrides)
    return valid_row(n, **values)


def hub_rows() -> list[dict[str, str]]:
    return [doctor(1), doctor(2), doctor(3), *(valid_row(n) for n in range(10, 16))]


def rotation_rows() -> list[dict[str, str]]:
    """The full extract as at the rotation: doctors 1 and 2 move to theatres as ST4, doctor 3
    stays, a new doctor (50) starts; the nurses are unchanged."""
    moved = {**THEATRES, "Grade_Code": "ST4", "Assignment_End_Date": "03/08/2027"}
    rows = hub_rows()
    rows[0] = doctor(1, Position_Number="D9001", **moved)
    rows[1] = doctor(2, Position_Number="D9002", **moved)
    rows.append(doctor(50, Assignment_Start_Date="05/08/2026", **moved))
    return rows


@pytest.fixture
def trust(engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Engine:
    monkeypatch.chdir(tmp_path)
    with engine.begin() as conn:
        save_policy(
            conn, load_policy_file(REPO / "examples" / "policy.yaml"), source="t", actor="t"
        )
    import_extract(engine, write_extract(tmp_path / "day0.csv", hub_rows()), actor="hr", as_of=DAY0)
    provisioning.apply(engine, DAY0, actor="t")
    provisioning.execute(engine)
    return engine


def _memberships(tmp_path: Path, target: str, table: str, username: str) -> set[str]:
    db = sqlite3.connect(tmp_path / "var" / "targets" / f"{target}.db")
    try:
        rows = db.execute(f"SELECT value FROM {table} WHERE username = ?", (username,))
        return {r[0] for r in rows}
    finally:
        db.close()


def _zones(tmp_path: Path, n: int) -> set[str]:
    return _memberships(tmp_path, "doors", "cardholder_zones", f"{10_000_000 + n:08d}")


def _counts(engine: Engine) -> dict[str, int]:
    with engine.connect() as conn:
        return {
            t.name: int(conn.scalar(sa.select(sa.func.count()).select_from(t)) or 0)
            for t in s.metadata.sorted_tables
        }


def _import(trust: Engine, tmp_path: Path, rows: list[dict[str, str]] | None = None) -> Any:
    path = write_extract(tmp_path / "rotation.csv", rows or rotation_rows())
    return rotation.import_batch(
        trust, path, name="August 2026", effective_date=ROTATION, actor="hr", today=DAY0
    )


def _audit(engine: Engine) -> list[str]:
    with engine.connect() as conn:
        return list(
            conn.scalars(
                sa.select(s.audit_log.c.action)
                .where(s.audit_log.c.action.like("rotation.%"))
                .order_by(s.audit_log.c.seq)
            )
        )


def test_import_keeps_only_the_rows_that_change(trust: Engine, tmp_path: Path) -> None:
    batch = _import(trust, tmp_path)
    assert batch.status == "imported" and batch.version == 1
    assert batch.rows == 3  # two movers and one starter; 7 unchanged rows dropped
    assert batch.movers == 3 and batch.new_people == 1
    with trust.connect() as conn:
        csv_text = conn.scalar(sa.select(s.rotation_batch.c.rows_csv))
    lines = csv_text.splitlines()
    assert lines[0].startswith("Org_Code,Employee_Number")
    assert [line.split(",")[2] for line in lines[1:]] == ["10000001", "10000002", "10000050"]
    # The kept rows hash as in the original file (so the partial import matches them).
    assert rotation._changed(rotation._rows_of(csv_text, ROTATION), {}) != []
    assert _audit(trust) == ["rotation.import"]

    with pytest.raises(PasaError, match="already called 'August 2026'"):
        _import(trust, tmp_path)
    with pytest.raises(PasaError, match="has passed"):
        rotation.import_batch(
            trust, tmp_path / "rotation.csv", name="late", effective_date=DAY0, actor="hr",
            today=ROTATION,
        )  # fmt: skip


def test_a_file_with_a_bad_row_is_refused_whole(trust: Engine, tmp_path: Path) -> None:
    rows = rotation_rows()
    rows[1]["Grade_Code"] = "Band 99"
    with pytest.raises(rotation.BatchRefused, match="all or nothing") as refused:
        _import(trust, tmp_path, rows)
    (problem,) = refused.value.problems
    assert (problem.row_number, problem.field) == (3, "Grade_Code")
    assert "row 3, Grade_Code" in str(refused.value)
    assert rotation.list_batches(trust) == []


def test_preview_lists_adds_and_removes_and_writes_nothing(trust: Engine, tmp_path: Path) -> None:
    batch = _import(trust, tmp_path)
    before = _counts(trust)
    preview = rotation.preview(trust, batch.id)
    assert _counts(trust) == before
    assert preview.new_people == 1 and preview.movers == 3
    movers = {p.person_id: p for p in preview.people}
    assert len(movers) == 2
    for person in movers.values():
        assert "doors: door zone theatres" in person.adds
        assert "epr: app role Theatre-Management" in person.adds
        assert "doors: door zone emergency-department" in person.removes
        # The EPR keeps what the old post alone justified for its handover window (7 days).
        assert not [r for r in person.removes if r.startswith("epr:")]
        assert not [a for a in person.adds if "account" in a]  # nobody loses an account
    assert preview.by_target["doors"].grants_added == 2
    assert preview.by_target["doors"].grants_removed == 2
    assert preview.operations == sum(c.total for c in preview.by_target.values())
    text = preview.render_text(limit=1)
    assert "1 new people" in text and "and 1 more people" in text
    with trust.connect() as conn:
        stored = conn.scalar(sa.select(s.rotation_batch.c.preview))
    assert stored["operations"] == preview.operations and stored["new_people"] == 1
    # Nothing has moved in the target itself.
    assert "emergency-department" in _zones(tmp_path, 1)


def test_approval_rules_and_amend_and_cancel(trust: Engine, tmp_path: Path) -> None:
    batch = _import(trust, tmp_path)
    with pytest.raises(PasaError, match="separation of duties"):
        rotation.approve(trust, batch.id, actor="hr")
    approved = rotation.approve(trust, batch.id, actor="rota-coordinator")
    assert (approved.status, approved.approved_by) == ("approved", "rota-coordinator")
    assert approved.approved_at is not None
    with pytest.raises(PasaError, match="already approved"):
        rotation.approve(trust, batch.id, actor="someone-else")

    rows = rotation_rows()[:-1]  # the starter is withdrawn
    amended = rotation.amend(
        trust, batch.id, write_extract(tmp_path / "v2.csv", rows), actor="hr2", today=DAY0
    )
    assert (amended.status, amended.version, amended.movers) == ("imported", 2, 2)
    assert amended.approved_by is None
    with pytest.raises(PasaError, match="separation of duties"):
        rotation.approve(trust, batch.id, actor="hr2")  # the amender imported this version
    with pytest.raises(PasaError, match="only be amended before"):
        rotation.amend(trust, batch.id, tmp_path / "v2.csv", actor="hr", today=ROTATION)

    cancelled = rotation.cancel(trust, batch.id, actor="rota-coordinator", reason="rota changed")
    assert cancelled.status == "cancelled" and cancelled.cancel_reason == "rota changed"
    with pytest.raises(PasaError, match="is cancelled"):
        rotation.approve(trust, batch.id, actor="rota-coordinator")
    with pytest.raises(PasaError, match="is cancelled"):
        rotation.cancel(trust, batch.id, actor="x", reason="again")
    with pytest.raises(NotFoundError, match="does not exist"):
        rotation.preview(trust, 999)
    assert _audit(trust) == [
        "rotation.import",
        "rotation.approve",
        "rotation.amend",
        "rotation.cancel",
    ]
    # A cancelled batch's name is free again.
    assert _import(trust, tmp_path).status == "imported"


def test_execute_on_the_date_moves_the_people_and_reports(trust: Engine, tmp_path: Path) -> None:
    batch = _import(trust, tmp_path)
    assert rotation.execute_due(trust, ROTATION) is None  # not approved: nothing happens
    rotation.approve(trust, batch.id, actor="rota-coordinator")
    before = _counts(trust)
    assert rotation.execute_due(trust, ROTATION - dt.timedelta(days=1)) is None
    assert _counts(trust) == before
    with pytest.raises(PasaError, match="is approved"):
        rotation.report(trust, batch.id)

    summary = rotation.execute_due(trust, ROTATION, actor="scheduler")
    assert summary is not None and f"batch {batch.id} 'August 2026' executed: 3 people" in summary
    done = rotation.get_batch(trust, batch.id)
    assert done.status == "executed" and done.import_id and done.plan_id
    assert done.executed_at is not None
    assert rotation.execute_due(trust, ROTATION) is None  # once only
    with pytest.raises(PasaError, match="is executed"):
        rotation.cancel(trust, batch.id, actor="x", reason="too late")

    with trust.connect() as conn:
        imported = conn.execute(
            sa.select(s.hr_import).where(s.hr_import.c.id == done.import_id)
        ).one()
        assert (imported.source, imported.status, imported.events_ended) == (
            "rotation-batch", "applied", 0,
        )  # fmt: skip
        # The unchanged staff are not ended by absence from the (partial) batch file.
        assert conn.scalar(
            sa.select(sa.func.count()).select_from(s.assignment).where(
                s.assignment.c.in_extract.is_(False)
            )
        ) == 0  # fmt: skip

    provisioning.execute(trust)
    for n in (1, 2):
        zones = _zones(tmp_path, n)
        assert "theatres" in zones and "emergency-department" not in zones
    assert "emergency-department" in _zones(tmp_path, 3)  # doctor 3 did not move
    assert "theatres" in _zones(tmp_path, 50)  # the starter, created on the date

    result = rotation.report(trust, batch.id)
    with trust.connect() as conn:
        ops = conn.execute(
            sa.select(s.operation.c.status).where(s.operation.c.plan_id == done.plan_id)
        ).all()
    assert result.operations == len(ops) > 0
    assert sum(sum(c.values()) for c in result.by_target.values()) == result.operations
    assert result.by_target["doors"].get("succeeded", 0) >= 5
    assert result.people == 3
    assert {st for c in result.by_target.values() for st in c} == {"succeeded"}
    assert result.people_done == 3
    assert result.failures == ()
    assert "executed" in result.render_text()
    assert _audit(trust)[-1] == "rotation.execute"


def test_the_scheduler_tick_executes_a_due_batch(trust: Engine, tmp_path: Path) -> None:
    from pasa.clock import FixedClock
    from pasa.service import scheduler

    assert rotation.rotation_batches in scheduler.PRE_STEPS
    batch = _import(trust, tmp_path)
    rotation.approve(trust, batch.id, actor="rota-coordinator")
    early = scheduler.tick(trust, FixedClock.at_local(ROTATION - dt.timedelta(days=1)))
    assert rotation.get_batch(trust, batch.id).status == "approved"
    assert "rotation_batches" not in str(early)
    report = scheduler.tick(trust, FixedClock.at_local(ROTATION))
    assert f"rotation: batch {batch.id}" in str(report) and not report.failed_steps
    assert rotation.get_batch(trust, batch.id).status == "executed"
    assert "theatres" in _zones(tmp_path, 1) and "emergency-department" not in _zones(tmp_path, 1)


def test_report_names_the_failures(trust: Engine, tmp_path: Path) -> None:
    batch = _import(trust, tmp_path)
    rotation.approve(trust, batch.id, actor="rota-coordinator")
    rotation.execute_due(trust, ROTATION)
    # The door system is pointed at an empty database: changes to its cardholders fail and
    # are parked after one attempt.
    with trust.begin() as conn:
        settings = dict(
            conn.scalar(sa.select(s.target.c.settings).where(s.target.c.key == "doors"))
        )
        settings["url"] = f"sqlite:///{tmp_path}/missing/dir/doors.db"
        conn.execute(s.target.update().where(s.target.c.key == "doors").values(settings=settings))
    provisioning.execute(trust, max_attempts=1)
    result = rotation.report(trust, batch.id)
    assert result.by_target["doors"].get("parked", 0) > 0
    assert result.by_target["ad"] == {"succeeded": result.by_target["ad"]["succeeded"]}
    assert result.failures and {f.target for f in result.failures} == {"doors"}
    assert all(f.last_error for f in result.failures)
    assert result.people_done < result.people == 3
    assert "FAILED person" in result.render_text()
    with trust.connect() as conn:
        stored = conn.scalar(sa.select(s.rotation_batch.c.report))
    assert stored["failures"] == len(result.failures)
