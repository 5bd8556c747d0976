"""Fixtures for the SCIM service provider: two organisations, HR staff, tokens, a client."""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine

from pasa.service import access
from pasa.store import schema as s
from pasa.web.app import create_app
from support.hub_world import add_assignment, add_organisation, add_person

NOW = dt.datetime(2026, 1, 5, 9, 0, tzinfo=dt.UTC)


@dataclass
class Org:
    ods: str
    token: str
    client: TestClient
    headers: dict[str, str]


def add_hr_person(
    engine: Engine,
    ods: str,
    *,
    first: str,
    last: str,
    email: str | None,
    employee_number: str,
    assignment_number: str,
    supervisor: str | None = None,
    end: dt.date | None = None,
) -> str:
    """An HR-sourced person with one assignment in ``ods``; returns the person's uid."""
    uid = str(uuid.uuid4())
    with engine.begin() as conn:
        org_id = (
            conn.execute(s.organisation.select().where(s.organisation.c.ods_code == ods)).first().id
        )
        dept = conn.execute(
            s.department.select().where(s.department.c.organisation_id == org_id)
        ).first()
        site = conn.execute(s.site.select().where(s.site.c.organisation_id == org_id)).first()
        position_id = conn.execute(
            s.position.insert()
            .values(
                organisation_id=org_id,
                position_number=f"P{assignment_number}",
                title="Staff Nurse",
                staff_group="NM",
                job_role_code="R0001",
                area_of_work="Nursing",
                occupation_code="N01",
                grade_code="Band 5",
                department_id=dept.id,
                site_id=site.id,
            )
            .returning(s.position.c.id)
        ).scalar_one()
        person_id = add_person(conn, uid=uid, first=first, last=last, at=NOW, email=email)
        add_assignment(
            conn,
            organisation_id=org_id,
            position_id=position_id,
            person_id=person_id,
            number=assignment_number,
            employee_number=employee_number,
            start=dt.date(2020, 1, 1),
            at=NOW,
            end_date=end,
            supervisor_assignment_number=supervisor,
        )
    return uid


def setup_orgs(engine: Engine) -> None:
    with engine.begin() as conn:
        for code, name in (("RXL", "Blackpool Teaching Hospitals"), ("RYJ", "Imperial College")):
            org_id = add_organisation(conn, code, name=name, at=NOW)
            conn.execute(
                s.department.insert().values(
                    organisation_id=org_id, code="ICU", name="Intensive Care", cost_centre="C1"
                )
            )
            conn.execute(
                s.site.insert().values(organisation_id=org_id, code="S1", name="Main site")
            )


def token(engine: Engine, ods: str, scopes: list[str] | None = None) -> str:
    return access.create_token(
        engine, organisation=ods, scopes=scopes or ["scim"], name="scim test", actor="test"
    ).secret


@pytest.fixture
def app_client(engine: Engine) -> TestClient:
    setup_orgs(engine)
    return TestClient(create_app(engine))


@pytest.fixture
def rxl(engine: Engine, app_client: TestClient) -> Org:
    secret = token(engine, "RXL")
    return Org("RXL", secret, app_client, {"Authorization": f"Bearer {secret}"})


@pytest.fixture
def ryj(engine: Engine, app_client: TestClient) -> Org:
    secret = token(engine, "RYJ")
    return Org("RYJ", secret, app_client, {"Authorization": f"Bearer {secret}"})
