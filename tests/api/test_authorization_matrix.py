"""The authorization matrix: every /api/v1 route x every role x own / other organisation.

Routes are enumerated from the application's OpenAPI document, so a new endpoint without a
row in EXPECTED fails here. Each cell is (status in our organisation, status in the other):
allowed (2xx), forbidden (403: visible but beyond the role) or not found (404: another
organisation's, or a person who is not one's own, must not even be acknowledged). List
routes have no "other" object: their cell is the listing's status, and every listing must
leave the other organisation's objects out (checked below).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import pytest
from api_world import NOW, OTHER, OWN, ROLES, World
from esr_builder import valid_row
from fastapi.testclient import TestClient
from requests_world import new_request, with_catalogue

from pasa.hr.push import BULK_REQUEST, ENTERPRISE_EXTENSION, ESR_EXTENSION, USER_SCHEMA
from pasa.service import passport_verifier

# Columns: platform_admin, org_admin, system_owner (of target "ad"), line_manager (of the
# RXL person), staff (the RXL person), auditor, api:read token, api:write token.
Cell = tuple[int, int]
A = (200, 200)

EXPECTED: dict[str, tuple[Cell, ...]] = {
    # lists (the second number repeats the first)
    "GET /api/v1/people": (A, A, (403, 403), A, A, A, A, (403, 403)),
    "GET /api/v1/positions": (A, A, (403, 403), A, A, A, A, (403, 403)),
    "GET /api/v1/organisations": (A, A, (403, 403), A, A, A, A, (403, 403)),
    "GET /api/v1/targets": (A, A, A, (403, 403), (403, 403), A, A, (403, 403)),
    "GET /api/v1/accounts": (A, A, A, A, A, A, A, (403, 403)),
    "GET /api/v1/grants": (A, A, A, A, A, A, A, (403, 403)),
    "GET /api/v1/operations": (A, A, A, (403, 403), (403, 403), A, A, (403, 403)),
    "GET /api/v1/manual-tasks": (A, A, A, (403, 403), (403, 403), A, A, (403, 403)),
    "GET /api/v1/imports": (A, A, A, (403, 403), (403, 403), A, A, (403, 403)),
    "GET /api/v1/audit": (A, A, (403, 403), (403, 403), (403, 403), A, (403, 403), (403, 403)),
    # people-level reference data
    "GET /api/v1/people/{person_id}": (
        A,
        (200, 404),
        (403, 404),
        (200, 404),
        (200, 404),
        (200, 404),
        (200, 404),
        (403, 404),
    ),
    "GET /api/v1/positions/{position_id}": (
        A,
        (200, 404),
        (403, 404),
        (403, 404),
        (403, 404),
        (200, 404),
        (200, 404),
        (403, 404),
    ),
    "GET /api/v1/organisations/{ods_code}": (
        A,
        (200, 404),
        (403, 404),
        (403, 404),
        (403, 404),
        (200, 404),
        (200, 404),
        (403, 404),
    ),
    # targets: "own" is the system owner's target, "other" another target
    "GET /api/v1/targets/{key}": (A, A, (200, 403), (403, 403), (403, 403), A, A, (403, 403)),
    "POST /api/v1/targets/{key}/pause": (
        A,
        A,
        (403, 403),
        (403, 403),
        (403, 403),
        (403, 403),
        (403, 403),
        A,
    ),
    "POST /api/v1/targets/{key}/resume": (
        A,
        A,
        (403, 403),
        (403, 403),
        (403, 403),
        (403, 403),
        (403, 403),
        A,
    ),
    # a person's access
    "GET /api/v1/accounts/{account_id}": (
        A,
        (200, 404),
        (200, 404),
        (200, 404),
        (200, 404),
        (200, 404),
        (200, 404),
        (403, 404),
    ),
    "GET /api/v1/grants/{grant_id}": (
        A,
        (200, 404),
        (200, 404),
        (200, 404),
        (200, 404),
        (200, 404),
        (200, 404),
        (403, 404),
    ),
    "POST /api/v1/grants": (
        (201, 201),
        (201, 404),
        (201, 404),
        (201, 404),
        (403, 404),
        (403, 404),
        (403, 404),
        (403, 404),
    ),
    "POST /api/v1/grants/{grant_id}/revoke": (
        A,
        (200, 404),
        (200, 404),
        (200, 404),
        (403, 404),
        (403, 404),
        (403, 404),
        (403, 404),
    ),
    # access requests (a fresh request for the organisation's person, by someone else,
    # waiting for the line manager: the system owner's turn has not come)
    "GET /api/v1/requests": (A, A, A, A, A, A, A, (403, 403)),
    "GET /api/v1/requests/{request_id}": (
        A,
        (200, 404),
        (200, 404),
        (200, 404),
        (200, 404),
        (200, 404),
        (200, 404),
        (403, 404),
    ),
    "POST /api/v1/requests": (
        (201, 201),
        (201, 404),
        (403, 404),
        (201, 404),
        (201, 404),
        (403, 404),
        (403, 404),
        (201, 404),
    ),
    "POST /api/v1/requests/{request_id}/decision": (
        A,
        (200, 404),
        (403, 404),
        (200, 404),
        (403, 404),
        (403, 404),
        (403, 404),
        (403, 404),
    ),
    "POST /api/v1/requests/{request_id}/withdraw": (
        A,
        (200, 404),
        (403, 404),
        (200, 404),
        (200, 404),
        (403, 404),
        (403, 404),
        (200, 404),
    ),
    # operations and manual tasks
    "GET /api/v1/operations/{operation_id}": (
        A,
        (200, 404),
        (200, 404),
        (403, 404),
        (403, 404),
        (200, 404),
        (200, 404),
        (403, 404),
    ),
    "POST /api/v1/operations/{operation_id}/retry": (
        A,
        (200, 404),
        (200, 404),
        (403, 404),
        (403, 404),
        (403, 404),
        (403, 404),
        (200, 404),
    ),
    "POST /api/v1/operations/{operation_id}/cancel": (
        A,
        (200, 404),
        (200, 404),
        (403, 404),
        (403, 404),
        (403, 404),
        (403, 404),
        (200, 404),
    ),
    "GET /api/v1/manual-tasks/{task_id}": (
        A,
        (200, 404),
        (200, 404),
        (403, 404),
        (403, 404),
        (200, 404),
        (200, 404),
        (403, 404),
    ),
    "POST /api/v1/manual-tasks/{task_id}/complete": (
        A,
        (200, 404),
        (200, 404),
        (403, 404),
        (403, 404),
        (403, 404),
        (403, 404),
        (200, 404),
    ),
    # HR push into an organisation (the path names it)
    "POST /api/v1/organisations/{ods_code}/hr-records": (
        A,
        (200, 404),
        (403, 404),
        (403, 404),
        (403, 404),
        (403, 404),
        (403, 404),
        (403, 404),
    ),
    "POST /api/v1/organisations/{ods_code}/hr-scim-bulk": (
        A,
        (200, 404),
        (403, 404),
        (403, 404),
        (403, 404),
        (403, 404),
        (403, 404),
        (403, 404),
    ),
    # the benefits dashboard's figures (operations.read or audit.read in the organisation)
    "GET /api/v1/organisations/{ods_code}/benefits": (
        A,
        (200, 404),
        (403, 404),
        (403, 404),
        (403, 404),
        (200, 404),
        (200, 404),
        (403, 404),
    ),
    # passport verification: the receiving organisation asks for a starter's credentials
    # (hr.import there) and reads the outcome (people.read there)
    "POST /api/v1/passport/verifications": (
        (201, 201),
        (201, 404),
        (403, 404),
        (403, 404),
        (403, 404),
        (403, 404),
        (403, 404),
        (403, 404),
    ),
    "GET /api/v1/passport/verifications/{state}": (
        A,
        (200, 404),
        (403, 404),
        (403, 404),
        (403, 404),
        (200, 404),
        (200, 404),
        (403, 404),
    ),
    # HR imports
    "GET /api/v1/imports/{import_id}": (
        A,
        (200, 404),
        (403, 404),
        (403, 404),
        (403, 404),
        (200, 404),
        (200, 404),
        (403, 404),
    ),
    "GET /api/v1/imports/{import_id}/quarantine": (
        A,
        (200, 404),
        (403, 404),
        (403, 404),
        (403, 404),
        (200, 404),
        (200, 404),
        (403, 404),
    ),
    "POST /api/v1/imports/{import_id}/approve": (
        A,
        (200, 404),
        (403, 404),
        (403, 404),
        (403, 404),
        (403, 404),
        (403, 404),
        (403, 404),
    ),
    "POST /api/v1/imports/{import_id}/reject": (
        A,
        (200, 404),
        (403, 404),
        (403, 404),
        (403, 404),
        (403, 404),
        (403, 404),
        (403, 404),
    ),
}

Request = tuple[str, dict[str, Any] | None]


def new_verification(world: World, org: str) -> str:
    """A passport verification session of ``org``, waiting for the starter's wallet."""
    made = passport_verifier.create_request(
        world.engine,
        organisation=org,
        given_name="Ada",
        family_name="Okafor",
        start_date=dt.date(2099, 8, 5),
        position_number=f"{org}-P1",
        actor="t",
        public_url="https://pasa.example.nhs.uk",
        now=NOW,
    )
    return made.state


def _request(world: World, route: str, org: str) -> Request:
    """A concrete request for one cell, on a fresh object where the route changes state."""
    method, template = route.split(" ", 1)
    own = org == OWN
    values: dict[str, Callable[[], Any]] = {
        "person_id": lambda: world.people[org],
        "position_id": lambda: world.positions[org],
        "ods_code": lambda: org,
        "key": lambda: "ad" if own else "door",
        "account_id": lambda: world.accounts[org],
        "grant_id": lambda: world.grant(org),
        "operation_id": lambda: world.operation(
            org, status="parked" if template.endswith("/retry") else "pending"
        ),
        "task_id": lambda: world.task(org),
        "import_id": lambda: world.held_import(org),
        "request_id": lambda: new_request(world, org),
        "state": lambda: new_verification(world, org),
    }
    path = template
    for name, make in values.items():
        if "{" + name + "}" in path:
            path = path.replace("{" + name + "}", str(make()))
    body: dict[str, Any] | None = None
    if route == "POST /api/v1/grants":
        body = {
            "person_id": world.people[org],
            "target": "ad",
            "kind": "group",
            "value": "research",
            "valid_from": "2026-01-01",
            "justification": "research project",
            "requested_by": "requester@nhs.net",
        }
    elif route == "POST /api/v1/requests":
        with_catalogue(world)
        body = {"person_id": world.people[org], "item": "research", "justification": "study"}
    elif route == "POST /api/v1/passport/verifications":
        body = {
            "organisation": org,
            "given_name": "Ada",
            "family_name": "Okafor",
            "start_date": "2099-08-05",
            "position_number": f"{org}-P1",
        }
    elif template.endswith("/decision"):
        body = {"approve": True, "reason": "agreed"}
    elif template.endswith("/hr-records"):
        body = {"records": [valid_row(90, org=org)]}
    elif template.endswith("/hr-scim-bulk"):
        body = {
            "schemas": [BULK_REQUEST],
            "Operations": [
                {
                    "method": "POST",
                    "path": "/Users",
                    "bulkId": "b1",
                    "data": {
                        "schemas": [USER_SCHEMA],
                        ENTERPRISE_EXTENSION: {"organization": org},
                        ESR_EXTENSION: valid_row(91, org=org),
                    },
                }
            ],
        }
    elif template.endswith("/reject"):
        body = {"reason": "the file was cut short"}
    assert method in ("GET", "POST")
    return path, body


def _routes(client: TestClient) -> set[str]:
    document = client.get("/api/v1/openapi.json").json()
    return {
        f"{method.upper()} {path}"
        for path, item in document["paths"].items()
        if path.startswith("/api/v1")
        for method in item
        if method in {"get", "post", "put", "patch", "delete"}
    }


def test_every_route_has_an_expected_row(client: TestClient) -> None:
    routes = _routes(client)
    assert routes - EXPECTED.keys() == set(), "routes without a row in the matrix"
    assert EXPECTED.keys() - routes == set(), "rows for routes that no longer exist"
    assert all(len(row) == len(ROLES) for row in EXPECTED.values())


def test_authorization_matrix(client: TestClient, world: World) -> None:
    failures = []
    for route in sorted(_routes(client)):
        method = route.split(" ", 1)[0]
        for role, expected in zip(ROLES, EXPECTED[route], strict=True):
            for org, want in zip((OWN, OTHER), expected, strict=True):
                path, body = _request(world, route, org)
                response = client.request(method, path, json=body, headers=world.headers(role))
                if response.status_code != want:
                    failures.append(
                        f"{route} as {role} ({org}): {response.status_code}, expected {want}: "
                        f"{response.text[:160]}"
                    )
                elif want >= 400:
                    assert response.headers["content-type"] == "application/problem+json"
                    if want == 404:
                        assert response.json()["detail"] == "not found"
    assert not failures, "\n".join(failures)


LISTS_WITH_PEOPLE = {
    "/api/v1/people": "id",
    "/api/v1/accounts": "person_id",
    "/api/v1/grants": "person_id",
    "/api/v1/operations": "person_id",
    "/api/v1/manual-tasks": "person_id",
    "/api/v1/requests": "person_id",
}


@pytest.mark.parametrize("role", [r for r in ROLES if r != "platform_admin"])
def test_lists_leave_the_other_organisation_out(
    client: TestClient, world: World, role: str
) -> None:
    for org in (OWN, OTHER):
        world.grant(org)
        world.task(org)
        world.held_import(org)
        new_request(world, org)
    other_person = world.people[OTHER]
    for path, key in LISTS_WITH_PEOPLE.items():
        response = client.get(path, headers=world.headers(role))
        if response.status_code == 200:
            assert other_person not in {item[key] for item in response.json()["items"]}, path
    imports = client.get("/api/v1/imports", headers=world.headers(role))
    if imports.status_code == 200:
        assert all(OTHER not in i["organisations"] for i in imports.json()["items"])
    for path in ("/api/v1/organisations", "/api/v1/positions"):
        response = client.get(path, headers=world.headers(role))
        if response.status_code == 200:
            assert OTHER not in response.text


def test_the_platform_admin_lists_both_organisations(client: TestClient, world: World) -> None:
    response = client.get("/api/v1/people", headers=world.headers("platform_admin"))
    assert {p["id"] for p in response.json()["items"]} >= set(world.people.values())


def test_line_managers_list_their_reports_and_staff_themselves(
    client: TestClient, world: World
) -> None:
    def ids(role: str) -> set[int]:
        response = client.get("/api/v1/people", headers=world.headers(role))
        return {p["id"] for p in response.json()["items"]}

    assert ids("line_manager") == {world.people[OWN], world.manager}
    assert ids("staff") == {world.people[OWN]}
