"""Helpers for reconciliation tests: people PASA knows, recorded accounts and grants."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from pasa.store import schema as s

T0 = dt.datetime(2026, 8, 5, 7, 0, tzinfo=dt.UTC)


def add_target(engine: Engine, key: str, connector: str = "memory", **settings: Any) -> int:
    with engine.begin() as conn:
        return int(
            conn.execute(
                s.target.insert()
                .values(
                    key=key,
                    name=key.upper(),
                    connector=connector,
                    settings=settings,
                    username_template="{first_initial}{last_name}",
                )
                .returning(s.target.c.id)
            ).scalar_one()
        )


def add_person(engine: Engine, person_id: int, employee_number: str) -> int:
    """A person with an ESR employee number in the identifier cross-reference."""
    with engine.begin() as conn:
        conn.execute(
            s.person.insert().values(
                id=person_id,
                uid=f"00000000-0000-0000-0000-{person_id:012d}",
                first_name=f"First{person_id}",
                last_name=f"Last{person_id}",
                created_at=T0,
                updated_at=T0,
            )
        )
        conn.execute(
            s.person_identifier.insert().values(
                person_id=person_id,
                scheme="esr_employee_number",
                value=employee_number,
                issuer="RXX",
                created_at=T0,
            )
        )
    return person_id


def add_assignment(
    engine: Engine, person_id: int, employee_number: str, *, end_date: dt.date | None
) -> None:
    """One assignment (with its organisation, department, site and position)."""
    with engine.begin() as conn:
        org = conn.execute(sa.select(s.organisation.c.id)).scalar()
        if org is None:
            org = conn.execute(
                s.organisation.insert()
                .values(ods_code="RXX", name="Test Trust", created_at=T0)
                .returning(s.organisation.c.id)
            ).scalar_one()
            dept = conn.execute(
                s.department.insert()
                .values(organisation_id=org, code="D1", name="Radiology", cost_centre="C1")
                .returning(s.department.c.id)
            ).scalar_one()
            site = conn.execute(
                s.site.insert()
                .values(organisation_id=org, code="S1", name="Main")
                .returning(s.site.c.id)
            ).scalar_one()
            conn.execute(
                s.position.insert().values(
                    organisation_id=org,
                    position_number="P1",
                    title="Radiographer",
                    staff_group="AH",
                    job_role_code="R1",
                    area_of_work="Radiology",
                    occupation_code="S10",
                    grade_code="Band 5",
                    department_id=dept,
                    site_id=site,
                )
            )
        position = conn.execute(sa.select(s.position.c.id)).scalar_one()
        conn.execute(
            s.assignment.insert().values(
                organisation_id=org,
                assignment_number=f"{employee_number}-1",
                person_id=person_id,
                employee_number=employee_number,
                position_id=position,
                category="Permanent",
                status="Active Assignment",
                is_primary=True,
                start_date=dt.date(2020, 1, 1),
                end_date=end_date,
                wte=1,
                row_hash="0" * 64,
                updated_at=T0,
            )
        )


def record_account(
    engine: Engine,
    target_id: int,
    person_id: int,
    username: str,
    attributes: dict[str, Any],
    *,
    status: str = "enabled",
    memberships: Iterable[tuple[str, str]] = (),
) -> int:
    """PASA's recorded account and grants (what the ledger writes when it plans a create)."""
    with engine.begin() as conn:
        account_id = int(
            conn.execute(
                s.account.insert()
                .values(
                    target_id=target_id,
                    person_id=person_id,
                    username=username,
                    status=status,
                    attributes=attributes,
                    created_at=T0,
                    updated_at=T0,
                )
                .returning(s.account.c.id)
            ).scalar_one()
        )
        for kind, value in memberships:
            conn.execute(
                s.account_grant.insert().values(
                    account_id=account_id, kind=kind, value=value, reasons=[], granted_at=T0
                )
            )
    return account_id
