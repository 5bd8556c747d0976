"""HR push over the API: an hr:push token sends records; every bad one comes back by name."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from api_world import OTHER, OWN, World
from esr_builder import valid_row
from fastapi.testclient import TestClient

from pasa.hr.push import BULK_REQUEST, ENTERPRISE_EXTENSION, ESR_EXTENSION, USER_SCHEMA
from pasa.service.access import create_token
from pasa.store import schema as s


def _pusher(world: World, org: str = OWN) -> dict[str, str]:
    secret = create_token(
        world.engine, organisation=org, scopes=["hr:push"], name="ESR push", actor="test"
    ).secret
    return {"Authorization": f"Bearer {secret}"}


def test_records_are_imported_and_a_bad_one_is_reported_by_its_number(
    client: TestClient, world: World
) -> None:
    records = [valid_row(201), valid_row(202, Date_Of_Birth="31/13/1990"), valid_row(203)]
    response = client.post(
        f"/api/v1/organisations/{OWN}/hr-records?as_of=2026-11-24",
        json={"records": records},
        headers=_pusher(world),
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["rows_accepted"], body["rows_rejected"], body["events_new"]) == (2, 1, 2)
    [problem] = body["problems"]
    assert problem["reference"] == "record 2" and problem["field"] == "Date_Of_Birth"
    with world.engine.connect() as conn:
        actor = conn.execute(
            sa.select(s.hr_import.c.actor).where(s.hr_import.c.id == body["import_id"])
        ).scalar()
    assert actor is not None and actor.startswith("token:")


def test_a_scim_bulk_push_names_problems_by_bulk_id(client: TestClient, world: World) -> None:
    def user(n: int, **esr: str) -> dict[str, Any]:
        return {
            "schemas": [USER_SCHEMA, ENTERPRISE_EXTENSION, ESR_EXTENSION],
            "name": {"givenName": "Ada", "familyName": "Lovelace"},
            ENTERPRISE_EXTENSION: {"organization": OWN, "employeeNumber": f"{10_000_000 + n}"},
            ESR_EXTENSION: {**valid_row(n), **esr},
        }

    bulk = {
        "schemas": [BULK_REQUEST],
        "Operations": [
            {"method": "POST", "path": "/Users", "bulkId": "ada", "data": user(301)},
            {
                "method": "POST",
                "path": "/Users",
                "bulkId": "bad-grade",
                "data": user(302, Grade_Code="Band 99"),
            },
        ],
    }
    response = client.post(
        f"/api/v1/organisations/{OWN}/hr-scim-bulk", json=bulk, headers=_pusher(world)
    )
    assert response.status_code == 200, response.text
    assert [p["reference"] for p in response.json()["problems"]] == ["bad-grade"]


def test_nothing_valid_is_422_with_every_record_named(client: TestClient, world: World) -> None:
    records = [valid_row(401, Staff_Group="99"), valid_row(402, Assignment_Start_Date="soon")]
    response = client.post(
        f"/api/v1/organisations/{OWN}/hr-records", json={"records": records}, headers=_pusher(world)
    )
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert "no valid record among 2" in body["detail"]
    assert [e["location"] for e in body["errors"]] == [
        "record 1.Staff_Group",
        "record 2.Assignment_Start_Date",
    ]


def test_another_organisations_record_or_path_is_refused(client: TestClient, world: World) -> None:
    pusher = _pusher(world)
    mixed = {"records": [valid_row(501), valid_row(502, org=OTHER)]}
    refused = client.post(f"/api/v1/organisations/{OWN}/hr-records", json=mixed, headers=pusher)
    assert refused.status_code == 422 and f"only push records of {OWN}" in refused.json()["detail"]
    elsewhere = client.post(
        f"/api/v1/organisations/{OTHER}/hr-records",
        json={"records": [valid_row(503, org=OTHER)]},
        headers=pusher,
    )
    assert elsewhere.status_code == 404
    shape = client.post(
        f"/api/v1/organisations/{OWN}/hr-records",
        json={"records": [{"Salary": 1}]},
        headers=pusher,
    )
    assert shape.status_code == 422 and "unknown field(s) Salary" in shape.json()["detail"]
    with world.engine.connect() as conn:
        sources = conn.execute(sa.select(s.hr_import.c.source)).scalars().all()
    assert "hr-push" not in sources
