"""Behaviour of the REST resources: pages and cursors, filters, ETags, problem details."""

from __future__ import annotations

import sqlalchemy as sa
from api_world import OTHER, OWN, World, add_person
from fastapi.testclient import TestClient


def _add_people(world: World, n: int) -> None:
    with world.engine.begin() as conn:
        for i in range(n):
            add_person(conn, world, OWN, f"P{i}", "Bulk", f"{OWN}-B{i}")


def test_people_pages_follow_the_next_link_to_the_end(client: TestClient, world: World) -> None:
    _add_people(world, 7)
    headers = world.headers("org_admin")
    url: str | None = "/api/v1/people?limit=3&organisation=rxl"
    seen: list[int] = []
    pages = 0
    while url:
        response = client.get(url, headers=headers)
        assert response.status_code == 200, response.text
        body = response.json()
        assert len(body["items"]) <= 3
        seen += [p["id"] for p in body["items"]]
        url = body["next"]
        pages += 1
        if url:
            assert "limit=3" in url and "organisation=rxl" in url and "cursor=" in url
    assert pages == 3  # 9 people in RXL: 3 + 3 + 3; the third page has no next link
    assert seen == sorted(seen) and len(seen) == len(set(seen)) == 9


def test_search_and_filters(client: TestClient, world: World) -> None:
    headers = world.headers("platform_admin")
    found = client.get("/api/v1/people", params={"q": "Sam Staff"}, headers=headers).json()
    assert [p["id"] for p in found["items"]] == [world.people[OWN]]
    by_number = client.get("/api/v1/people", params={"q": f"{OTHER}-1"}, headers=headers).json()
    assert [p["id"] for p in by_number["items"]] == [world.people[OTHER]]
    other = client.get("/api/v1/people", params={"organisation": OTHER}, headers=headers).json()
    assert [p["id"] for p in other["items"]] == [world.people[OTHER]]

    world.operation(OWN, status="parked")
    pending = world.operation(OWN, status="pending")
    ops = client.get("/api/v1/operations", params={"status": "pending"}, headers=headers).json()
    assert [o["id"] for o in ops["items"]] == [pending]
    accounts = client.get(
        "/api/v1/accounts", params={"person_id": world.people[OTHER]}, headers=headers
    ).json()
    assert [a["id"] for a in accounts["items"]] == [world.accounts[OTHER]]


def test_bad_input_is_a_specific_problem(client: TestClient, world: World) -> None:
    headers = world.headers("org_admin")
    response = client.get("/api/v1/people?limit=1000", headers=headers)
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["status"] == 422 and "query.limit" in body["detail"]
    assert body["errors"][0]["location"] == "query.limit"

    bad_cursor = client.get("/api/v1/people?cursor=nonsense", headers=headers)
    assert bad_cursor.status_code == 400 and "cursor" in bad_cursor.json()["detail"]

    status = client.get("/api/v1/operations?status=exploded", headers=headers)
    assert status.status_code == 422 and "query.status" in status.json()["detail"]

    grant = client.post(
        "/api/v1/grants",
        json={"person_id": world.people[OWN], "target": "ad", "valid_from": "yesterday"},
        headers=headers,
    )
    assert grant.status_code == 422
    detail = grant.json()["detail"]
    assert "body.valid_from" in detail and "body.justification: is required" in detail

    unknown = client.get("/api/v1/nothing-here", headers=headers)
    assert unknown.status_code == 404
    assert unknown.headers["content-type"] == "application/problem+json"


def test_service_refusals_are_problems(client: TestClient, world: World) -> None:
    headers = world.headers("org_admin")
    pending = world.operation(OWN, status="pending")
    response = client.post(f"/api/v1/operations/{pending}/retry", headers=headers)
    assert response.status_code == 409
    assert "only parked operations can be retried" in response.json()["detail"]

    same_person = client.post(
        "/api/v1/grants",
        json={
            "person_id": world.people[OWN],
            "target": "nowhere",
            "valid_from": "2026-01-01",
            "justification": "x",
            "requested_by": "someone@nhs.net",
        },
        headers=headers,
    )
    assert same_person.status_code == 422
    assert "no target 'nowhere'" in same_person.json()["detail"]


def test_etags_and_if_match(client: TestClient, world: World) -> None:
    headers = world.headers("org_admin")
    op = world.operation(OWN, status="parked")
    first = client.get(f"/api/v1/operations/{op}", headers=headers)
    etag = first.headers["etag"]
    assert (
        etag.startswith('"')
        and client.get(f"/api/v1/operations/{op}", headers=headers).headers["etag"] == etag
    )

    stale = client.post(
        f"/api/v1/operations/{op}/retry", headers={**headers, "If-Match": '"stale"'}
    )
    assert stale.status_code == 412
    assert stale.headers["content-type"] == "application/problem+json"
    assert "has changed" in stale.json()["detail"]

    retried = client.post(f"/api/v1/operations/{op}/retry", headers={**headers, "If-Match": etag})
    assert retried.status_code == 200 and retried.json()["status"] == "pending"
    assert retried.headers["etag"] != etag
    # The old ETag no longer matches: a second change based on it is refused.
    again = client.post(f"/api/v1/operations/{op}/cancel", headers={**headers, "If-Match": etag})
    assert again.status_code == 412


def test_targets_pause_and_resume(client: TestClient, world: World) -> None:
    headers = world.headers("api:write")
    paused = client.post("/api/v1/targets/ad/pause", headers=headers)
    assert paused.status_code == 200 and paused.json()["paused"] is True
    reader = world.headers("api:read")
    listed = client.get("/api/v1/targets", headers=reader).json()
    assert {t["key"]: t["paused"] for t in listed["items"]} == {"ad": True, "door": False}
    resumed = client.post("/api/v1/targets/ad/resume", headers=headers)
    assert resumed.json()["paused"] is False
    with world.engine.connect() as conn:
        actions = list(
            conn.scalars(sa.text("SELECT action FROM audit_log WHERE subject_type = 'target'"))
        )
    assert actions == ["target.paused", "target.resumed"]


def test_grants_create_and_revoke(client: TestClient, world: World) -> None:
    headers = world.headers("line_manager")
    created = client.post(
        "/api/v1/grants",
        json={
            "person_id": world.people[OWN],
            "target": "ad",
            "kind": "group",
            "value": "research",
            "valid_from": "2026-01-01",
            "valid_to": "2026-06-30",
            "justification": "research project",
            "requested_by": "staff@nhs.net",
        },
        headers=headers,
    )
    assert created.status_code == 201, created.text
    grant = created.json()
    assert grant["approved_by"] == "lm@nhs.net" and created.headers["location"].endswith(
        str(grant["id"])
    )
    revoked = client.post(
        f"/api/v1/grants/{grant['id']}/revoke",
        json={"reason": "project ended"},
        headers={**headers, "If-Match": created.headers["etag"]},
    )
    assert revoked.status_code == 200 and revoked.json()["status"] == "revoked"
    twice = client.post(f"/api/v1/grants/{grant['id']}/revoke", headers=headers)
    assert twice.status_code == 409 and "already revoked" in twice.json()["detail"]


def test_manual_tasks_and_imports(client: TestClient, world: World) -> None:
    headers = world.headers("org_admin")
    task = world.task(OWN)
    done = client.post(
        f"/api/v1/manual-tasks/{task}/complete", json={"username": "sstaff"}, headers=headers
    )
    assert done.status_code == 200 and done.json()["status"] == "done"
    open_tasks = client.get("/api/v1/manual-tasks?status=open", headers=headers).json()
    assert task not in {t["id"] for t in open_tasks["items"]}

    held = world.held_import(OWN)
    quarantine = client.get(f"/api/v1/imports/{held}/quarantine?limit=2", headers=headers).json()
    assert [q["row_number"] for q in quarantine["items"]] == [2, 3]
    rest = client.get(quarantine["next"], headers=headers).json()
    assert [q["row_number"] for q in rest["items"]] == [4] and rest["next"] is None

    rejected = client.post(
        f"/api/v1/imports/{held}/reject", json={"reason": "truncated file"}, headers=headers
    )
    assert rejected.status_code == 200 and rejected.json()["status"] == "rejected"
    again = client.post(f"/api/v1/imports/{held}/approve", headers=headers)
    assert again.status_code == 409 and "not held" in again.json()["detail"]


def test_audit_is_filtered_to_the_organisation(client: TestClient, world: World) -> None:
    for org in (OWN, OTHER):
        world.grant(org)
    auditor = client.get("/api/v1/audit?action=grant.add", headers=world.headers("auditor"))
    assert [e["subject_id"] for e in auditor.json()["items"]] == [str(world.people[OWN])]
    admin = client.get("/api/v1/audit?action=grant.add", headers=world.headers("platform_admin"))
    assert len(admin.json()["items"]) == 2
