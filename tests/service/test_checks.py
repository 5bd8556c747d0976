"""Pre-employment checks: validation, supersede, CSV import (good rows kept, bad rows named)."""

from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy.engine import Engine

from pasa.service import checks
from pasa.store import schema as s
from support.hub_world import add_passport_holder

NOW = dt.datetime(2026, 11, 24, 9, 0, tzinfo=dt.UTC)
TODAY = NOW.date()
DBS = {
    "level": "enhanced_with_barred_lists",
    "workforce": "adult_and_child",
    "certificate_number": "001234567890",
    "issued_on": "2025-01-02",
    "update_service": True,
}


@pytest.fixture
def person(engine: Engine) -> int:
    with engine.begin() as conn:
        return add_passport_holder(conn, at=NOW)


def test_bad_attributes_are_refused_naming_the_field(engine: Engine, person: int) -> None:
    with pytest.raises(checks.CheckError) as bad:
        checks.record(
            engine, "E1001", "dbs", {**DBS, "certificate_number": "12"}, actor="t", now=NOW
        )
    assert bad.value.field == "certificate_number"
    with pytest.raises(checks.CheckError) as rtw:
        checks.record(
            engine,
            "E1001",
            "right_to_work",
            {
                "right_to_work": "time_limited",
                "check_method": "idsp_digital",
                "checked_on": "2025-01-01",
            },
            actor="t",
            now=NOW,
        )
    assert rtw.value.field == "expires_on" and "expiry" in rtw.value.reason
    with pytest.raises(checks.CheckError) as names:
        checks.record(engine, "E1001", "dbs", {**DBS, "given_name": "Eve"}, actor="t", now=NOW)
    assert names.value.field == "given_name"
    with pytest.raises(checks.CheckError) as kind:
        checks.record(engine, "E1001", "blood_group", {}, actor="t", now=NOW)
    assert kind.value.field == "kind"
    with pytest.raises(checks.CheckError) as future:
        checks.record(
            engine, "E1001", "dbs", {**DBS, "issued_on": "2099-01-02"}, actor="t", now=NOW
        )
    assert future.value.field == "issued_on" and "in the future" in future.value.reason
    with engine.connect() as conn:
        assert checks.current_checks(conn, person) == []


def test_a_newer_check_supersedes_and_is_audited(engine: Engine, person: int) -> None:
    first = checks.record(engine, "E1001", "dbs", DBS, actor="hr", now=NOW)
    newer = {**DBS, "certificate_number": "009999999999", "issued_on": "2026-06-01"}
    second = checks.record(engine, "E1001", "dbs", newer, actor="hr", now=NOW)
    older = {**DBS, "certificate_number": "001111111111", "issued_on": "2020-06-01"}
    checks.record(engine, "E1001", "dbs", older, actor="hr", now=NOW)  # history only
    with engine.connect() as conn:
        (current,) = checks.current_checks(conn, person)
        audit = conn.execute(
            sa.select(s.audit_log.c.action).where(s.audit_log.c.action == "check.recorded")
        ).all()
        superseded = conn.scalar(
            sa.select(s.pre_employment_check.c.superseded_at).where(
                s.pre_employment_check.c.id == first
            )
        )
    assert current.id == second and current.attributes["certificate_number"] == "009999999999"
    assert superseded is not None and len(audit) == 3


def test_core_skills_training_merges_subject_by_subject(engine: Engine, person: int) -> None:
    def cstf(subject: str, done: str, expires: str) -> dict[str, object]:
        return {"training": [{"subject": subject, "completed_on": done, "expires_on": expires}]}

    checks.record(
        engine,
        "E1001",
        "core_skills_training",
        cstf("fire_safety", "2025-01-01", "2027-01-01"),
        actor="t",
        now=NOW,
    )
    checks.record(
        engine,
        "E1001",
        "core_skills_training",
        cstf("resuscitation", "2025-05-01", "2026-05-01"),
        actor="t",
        now=NOW,
    )
    checks.record(
        engine,
        "E1001",
        "core_skills_training",
        cstf("fire_safety", "2026-02-01", "2028-02-01"),
        actor="t",
        now=NOW,
    )
    with engine.connect() as conn:
        (current,) = checks.current_checks(conn, person)
        person_row = conn.execute(sa.select(s.person).where(s.person.c.id == person)).one()
        claims = checks.credential_claims(conn, person_row, TODAY)
    subjects = {r["subject"]: r["completed_on"] for r in current.attributes["training"]}
    assert subjects == {"fire_safety": "2026-02-01", "resuscitation": "2025-05-01"}
    # Resuscitation lapsed in May 2026: only fire safety is attested today.
    (training,) = claims["core_skills_training"]
    assert [r.subject.value for r in training.training] == ["fire_safety"]  # type: ignore[attr-defined]


CSV = (
    "Employee_Number,Check_Type,Right_To_Work,Check_Method,Checked_On,Expires_On,Level,"
    "Workforce,Certificate_Number,Issued_On,Update_Service,Subject,Completed_On\r\n"
    "E1001,right_to_work,unlimited,idsp_digital,02/01/2025,,,,,,,,\r\n"
    "E1001,dbs,,,,,enhanced,adult,12345,2025-01-02,yes,,\r\n"
    "E9999,dbs,,,,,enhanced,adult,001234567890,2025-01-02,yes,,\r\n"
    "E1001,passport_photo,,,,,,,,,,,\r\n"
    "E1001,core_skills_training,,,,2027-03-01,,,,,,fire_safety,01/03/2025\r\n"
    "E1001,core_skills_training,,,,2026-03-01,1,,,,,infection_prevention_control,2025-03-01\r\n"
)


def test_csv_import_keeps_good_rows_and_names_each_bad_one(engine: Engine, person: int) -> None:
    report = checks.import_checks(engine, CSV, actor="hr", now=NOW)
    assert report.recorded == 3
    assert [(p.row, p.field) for p in report.problems] == [
        (3, "Certificate_Number"),
        (4, "Employee_Number"),
        (5, "Check_Type"),
    ]
    with engine.connect() as conn:
        found = {c.kind: c for c in checks.current_checks(conn, person)}
    assert found["right_to_work"].checked_on == dt.date(2025, 1, 2)
    assert len(found["core_skills_training"].attributes["training"]) == 2


@pytest.mark.parametrize(
    "text",
    ["", "Employee_Number\r\n", "Employee_Number,Check_Type,Shoe_Size\r\nE1,dbs,9\r\n"],
)
def test_an_unusable_file_is_refused_whole(engine: Engine, person: int, text: str) -> None:
    with pytest.raises(checks.CheckFileError):
        checks.import_checks(engine, text, actor="hr", now=NOW)


_HEADER = "Employee_Number,Check_Type,Level,Issued_On,Certificate_Number,Workforce,Update_Service\n"


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    body=st.text(
        alphabet=st.sampled_from(list('E1001,dbs\n\r"\x00é ;enhancedadult2025-01-0212')),
        max_size=200,
    ),
    header=st.booleans(),
)
def test_arbitrary_csv_only_ever_raises_the_file_error(
    engine: Engine, person: int, body: str, header: bool
) -> None:
    try:
        report = checks.import_checks(
            engine, (_HEADER if header else "") + body, actor="h", now=NOW
        )
    except checks.CheckFileError:
        return
    assert all(p.row >= 2 and p.field and p.reason for p in report.problems)


def test_synthetic_checks_cover_every_kind_a_person_can_hold(engine: Engine, person: int) -> None:
    count = checks.synthetic_checks(engine, "RXL", TODAY, seed=7)
    with engine.connect() as conn:
        found = {c.kind: c for c in checks.current_checks(conn, person)}
    assert count == 4 and set(found) == {
        "right_to_work",
        "dbs",
        "occupational_health",
        "core_skills_training",
    }
    assert len(found["core_skills_training"].attributes["training"]) == 11
