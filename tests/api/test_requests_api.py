"""The access requests API: a line manager asks, the system owner approves, the grant exists
and operations are queued; errors are specific problems; lists page with a cursor."""

from __future__ import annotations

import sqlalchemy as sa
from api_world import OWN, World
from fastapi.testclient import TestClient
from requests_world import with_catalogue

from pasa.store import schema as s


def _ask(client: TestClient, world: World, **body: object) -> dict[str, object]:
    with_catalogue(world)
    payload = {"person_id": world.people[OWN], "item": "research", "justification": "audit"}
    response = client.post(
        "/api/v1/requests", json={**payload, **body}, headers=world.headers("line_manager")
    )
    assert response.status_code == 201, response.text
    assert response.headers["Location"] == f"/api/v1/requests/{response.json()['id']}"
    result: dict[str, object] = response.json()
    return result


def test_line_manager_asks_and_the_system_owner_approves(client: TestClient, world: World) -> None:
    asked = _ask(client, world)
    assert asked["state"] == "awaiting_system_owner"
    assert asked["waiting_for"] == "system_owner"
    assert [d["by_request"] for d in asked["decisions"]] == [True]  # type: ignore[attr-defined]
    url = f"/api/v1/requests/{asked['id']}/decision"
    # The requester may not decide their own request (even if they held the role).
    refused = client.post(url, json={"approve": True}, headers=world.headers("line_manager"))
    assert refused.status_code == 403
    assert refused.headers["content-type"] == "application/problem+json"
    assert "separation of duties" in refused.json()["detail"]
    approved = client.post(
        url, json={"approve": True, "reason": "ok"}, headers=world.headers("system_owner")
    )
    assert approved.status_code == 200, approved.text
    out = approved.json()
    assert out["state"] == "approved" and out["grant_id"] is not None
    grant = client.get(f"/api/v1/grants/{out['grant_id']}", headers=world.headers("org_admin"))
    assert grant.json()["approved_by"] == "so@nhs.net"
    assert grant.json()["requested_by"] == "lm@nhs.net"
    with world.engine.connect() as conn:
        queued = conn.scalars(
            sa.select(s.operation.c.kind).where(
                s.operation.c.person_id == world.people[OWN], s.operation.c.status == "pending"
            )
        ).all()
    assert "add_membership" in queued
    again = client.post(url, json={"approve": True}, headers=world.headers("org_admin"))
    assert again.status_code == 409 and "approved" in again.json()["detail"]


def test_specific_errors(client: TestClient, world: World) -> None:
    with_catalogue(world)
    headers = world.headers("line_manager")
    unknown = client.post(
        "/api/v1/requests",
        json={"person_id": world.people[OWN], "item": "root", "justification": "x"},
        headers=headers,
    )
    assert unknown.status_code == 422
    assert "'root' is not in the catalogue (requestable: research)" in unknown.json()["detail"]
    backwards = client.post(
        "/api/v1/requests",
        json={
            "person_id": world.people[OWN],
            "item": "research",
            "justification": "x",
            "valid_from": "2030-02-01",
            "valid_to": "2030-01-20",
        },
        headers=headers,
    )
    assert backwards.status_code == 422 and "before the start date" in backwards.json()["detail"]
    asked = _ask(client, world)
    no_reason = client.post(
        f"/api/v1/requests/{asked['id']}/decision",
        json={"approve": False},
        headers=world.headers("system_owner"),
    )
    assert no_reason.status_code == 422 and "say why" in no_reason.json()["detail"]


def test_list_pages_with_a_cursor_and_withdraw(client: TestClient, world: World) -> None:
    ids = [_ask(client, world)["id"] for _ in range(3)]
    headers = world.headers("line_manager")
    first = client.get("/api/v1/requests?limit=2", headers=headers).json()
    assert [r["id"] for r in first["items"]] == ids[:2]
    second = client.get(first["next"], headers=headers).json()
    assert [r["id"] for r in second["items"]] == ids[2:] and second["next"] is None
    withdrawn = client.post(f"/api/v1/requests/{ids[0]}/withdraw", headers=headers)
    assert withdrawn.json()["state"] == "withdrawn"
    waiting = client.get(
        "/api/v1/requests?state=awaiting_system_owner", headers=world.headers("system_owner")
    ).json()
    assert [r["id"] for r in waiting["items"]] == ids[1:]
