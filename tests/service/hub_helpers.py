"""Write people and assignments straight into the identity hub (for service tests)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from pasa.domain.model import AssignmentStatus
from pasa.policy.document import PolicyDocument
from pasa.store import schema as s
from pasa.store.policy_repo import save_policy
from support.hub_world import add_assignment, add_organisation, add_position

NOW = dt.datetime(2026, 11, 24, 9, 0, tzinfo=dt.UTC)


@dataclass(frozen=True)
class A:
    number: str
    start: dt.date
    end: dt.date | None = None
    status: AssignmentStatus = AssignmentStatus.ACTIVE
    supervisor: str | None = None
    primary: bool = True


def org(conn: Connection, ods: str = "RXL") -> dict[str, int]:
    org_id = conn.scalar(sa.select(s.organisation.c.id).where(s.organisation.c.ods_code == ods))
    if org_id is None:
        org_id = add_organisation(conn, ods, at=NOW)
    site = conn.scalar(sa.select(s.site.c.id).where(s.site.c.organisation_id == org_id))
    if site is None:
        add_position(conn, org_id, site=("VIC", "Victoria"))
    position = conn.scalar(sa.select(s.position.c.id).where(s.position.c.organisation_id == org_id))
    return {"organisation_id": org_id, "position_id": position}


def add_person(
    conn: Connection,
    first: str,
    last: str,
    *assignments: A,
    ods: str = "RXL",
    known_as: str | None = None,
) -> int:
    org(conn, ods)
    person_id = conn.execute(
        s.person.insert()
        .values(
            uid=f"{first}-{last}-{assignments[0].number if assignments else 'x'}".lower(),
            first_name=first,
            last_name=last,
            known_as=known_as,
            created_at=NOW,
            updated_at=NOW,
        )
        .returning(s.person.c.id)
    ).scalar_one()
    add_assignments(conn, int(person_id), *assignments, ods=ods)
    return int(person_id)


def add_assignments(conn: Connection, person_id: int, *assignments: A, ods: str = "RXL") -> None:
    ids = org(conn, ods)
    for a in assignments:
        add_assignment(
            conn,
            **ids,
            person_id=person_id,
            number=a.number,
            employee_number=a.number,
            start=a.start,
            at=NOW,
            status=a.status.value,
            is_primary=a.primary,
            end_date=a.end,
            supervisor_assignment_number=a.supervisor,
        )


def set_end(conn: Connection, number: str, end: dt.date | None) -> None:
    conn.execute(
        s.assignment.update().where(s.assignment.c.assignment_number == number).values(end_date=end)
    )


def load_policy(conn: Connection, targets: list[dict[str, Any]]) -> None:
    doc = PolicyDocument.model_validate({"version": 1, "targets": targets})
    save_policy(conn, doc, source="test", actor="test")
