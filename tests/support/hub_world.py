"""Rows of a small identity hub written straight into the tables: organisation, position (with
its site and department), person, assignment. Each returns the new row's id; ``at`` stamps
created/updated times so a test can pin them to its own clock."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy.engine import Connection

from pasa.store import schema as s

ACTIVE = "Active Assignment"


def add_organisation(
    conn: Connection, ods: str, *, at: dt.datetime, name: str | None = None
) -> int:
    return int(
        conn.execute(
            s.organisation.insert()
            .values(ods_code=ods, name=name or f"Trust {ods}", created_at=at)
            .returning(s.organisation.c.id)
        ).scalar_one()
    )


def add_position(
    conn: Connection,
    organisation_id: int,
    *,
    number: str = "P1",
    title: str = "Staff Nurse",
    site: tuple[str, str] = ("S1", "Main site"),
    department: tuple[str, str, str] = ("W12", "Ward 12", "CC1"),
    **columns: Any,
) -> int:
    """A position with a new site ``(code, name)`` and department ``(code, name, cost
    centre)``; ``columns`` override the national coding (staff group, grade, ...)."""
    site_id = conn.execute(
        s.site.insert()
        .values(organisation_id=organisation_id, code=site[0], name=site[1])
        .returning(s.site.c.id)
    ).scalar_one()
    code, name, cost_centre = department
    department_id = conn.execute(
        s.department.insert()
        .values(organisation_id=organisation_id, code=code, name=name, cost_centre=cost_centre)
        .returning(s.department.c.id)
    ).scalar_one()
    values: dict[str, Any] = {
        "staff_group": "03",
        "job_role_code": "03001",
        "area_of_work": "Medicine",
        "occupation_code": "N1A",
        "grade_code": "Band 5",
        **columns,
    }
    return int(
        conn.execute(
            s.position.insert()
            .values(
                organisation_id=organisation_id,
                position_number=number,
                title=title,
                department_id=department_id,
                site_id=site_id,
                **values,
            )
            .returning(s.position.c.id)
        ).scalar_one()
    )


def add_person(
    conn: Connection, *, uid: str, first: str, last: str, at: dt.datetime, **columns: Any
) -> int:
    """A person; ``columns`` are other person columns (email, date_of_birth, ...)."""
    return int(
        conn.execute(
            s.person.insert()
            .values(
                uid=uid, first_name=first, last_name=last, created_at=at, updated_at=at, **columns
            )
            .returning(s.person.c.id)
        ).scalar_one()
    )


def add_assignment(
    conn: Connection,
    *,
    organisation_id: int,
    position_id: int,
    person_id: int,
    number: str,
    employee_number: str,
    start: dt.date,
    at: dt.datetime,
    status: str = ACTIVE,
    **columns: Any,
) -> int:
    """A primary, permanent, full-time assignment; ``columns`` add or override the others
    (end_date, supervisor_assignment_number, is_primary, ...)."""
    values: dict[str, Any] = {
        "category": "Permanent",
        "is_primary": True,
        "wte": 1,
        "row_hash": "x" * 64,
        **columns,
    }
    return int(
        conn.execute(
            s.assignment.insert()
            .values(
                organisation_id=organisation_id,
                assignment_number=number,
                person_id=person_id,
                employee_number=employee_number,
                position_id=position_id,
                status=status,
                start_date=start,
                updated_at=at,
                **values,
            )
            .returning(s.assignment.c.id)
        ).scalar_one()
    )


def add_staff(
    conn: Connection,
    organisation_id: int,
    position_id: int,
    first: str,
    last: str,
    number: str,
    *,
    start: dt.date,
    at: dt.datetime,
    email: str | None = None,
    supervisor: str | None = None,
) -> int:
    """A person (uid ``uid-<number>``) with one active assignment ``number`` (employee
    ``E<number>``), optionally reporting to the ``supervisor`` assignment; the person's id."""
    person_id = add_person(conn, uid=f"uid-{number}", first=first, last=last, at=at, email=email)
    add_assignment(
        conn,
        organisation_id=organisation_id,
        position_id=position_id,
        person_id=person_id,
        number=number,
        employee_number=f"E{number}",
        start=start,
        at=at,
        supervisor_assignment_number=supervisor,
    )
    return person_id


def add_passport_holder(
    conn: Connection,
    *,
    at: dt.datetime,
    uid: str = "ada",
    number: str = "E1001-1",
    employee_number: str = "E1001",
    status: str = ACTIVE,
    site: tuple[str, str] = ("S1", "Main site"),
) -> int:
    """Ada Lovelace, born 10 December 1990, a staff nurse at RXL (Blackpool Teaching
    Hospitals) since 6 January 2025: the person the passport tests issue credentials to."""
    org = add_organisation(conn, "RXL", name="Blackpool Teaching Hospitals", at=at)
    position = add_position(conn, org, site=site)
    person = add_person(
        conn, uid=uid, first="Ada", last="Lovelace", at=at, date_of_birth=dt.date(1990, 12, 10)
    )
    add_assignment(
        conn,
        organisation_id=org,
        position_id=position,
        person_id=person,
        number=number,
        employee_number=employee_number,
        start=dt.date(2025, 1, 6),
        at=at,
        status=status,
    )
    return person
