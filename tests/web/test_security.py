"""Authentication and refusals at the HTTP boundary: 401/403/404 in the caller's protocol."""

from __future__ import annotations

import datetime as dt

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine

from pasa.domain.access import Action, Resource
from pasa.service import access
from pasa.store import schema as s
from pasa.web.app import create_app
from pasa.web.security import CurrentPrincipal, authorize


def _app(engine: Engine) -> FastAPI:
    app = create_app(engine)

    # Two probe routes, one per protocol, guarded exactly as real endpoints are.
    @app.get("/api/v1/_probe/{org}")
    def api_probe(org: str, principal: CurrentPrincipal) -> dict[str, str]:
        authorize(principal, Action.READ_OPERATIONS, Resource.of(org))
        return {"caller": principal.subject}

    @app.get("/scim/v2/_probe/{org}")
    def scim_probe(org: str, principal: CurrentPrincipal) -> dict[str, str]:
        authorize(principal, Action.SCIM_READ, Resource.of(org))
        return {"caller": principal.subject}

    return app


@pytest.fixture
def client(engine: Engine) -> TestClient:
    with engine.begin() as conn:
        for code in ("RXL", "RYJ"):
            conn.execute(
                s.organisation.insert().values(
                    ods_code=code, name=code, created_at=dt.datetime.now(dt.UTC)
                )
            )
    return TestClient(_app(engine))


def _token(engine: Engine, scope: str) -> str:
    return access.create_token(
        engine, organisation="RXL", scopes=[scope], name=scope, actor="test"
    ).secret


def test_no_credentials_is_401_problem_json_with_a_challenge(client: TestClient) -> None:
    response = client.get("/api/v1/_probe/RXL")
    assert response.status_code == 401
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["www-authenticate"].startswith("Bearer")
    body = response.json()
    assert body["status"] == 401 and "API token" in body["detail"]


def test_a_bad_or_malformed_token_is_401_and_never_echoed(client: TestClient) -> None:
    for header in ("Bearer pasa_not-a-real-token", "Basic dXNlcjpwYXNz", "Bearer "):
        response = client.get("/api/v1/_probe/RXL", headers={"Authorization": header})
        assert response.status_code == 401, header
        assert "not-a-real-token" not in response.text


def test_scopes_and_organisations_decide_403_and_404(client: TestClient, engine: Engine) -> None:
    reader = {"Authorization": f"Bearer {_token(engine, 'api:read')}"}
    assert client.get("/api/v1/_probe/RXL", headers=reader).status_code == 200
    other = client.get("/api/v1/_probe/RYJ", headers=reader)
    assert other.status_code == 404 and other.json()["detail"] == "not found"
    scim = client.get("/scim/v2/_probe/RXL", headers=reader)
    assert scim.status_code == 403
    assert scim.headers["content-type"] == "application/scim+json"
    assert scim.json()["schemas"] == ["urn:ietf:params:scim:api:messages:2.0:Error"]
    assert scim.json()["status"] == "403" and "scim read" in scim.json()["detail"]

    scim_token = {"Authorization": f"Bearer {_token(engine, 'scim')}"}
    assert (
        client.get("/scim/v2/_probe/RXL", headers=scim_token).json()["caller"].startswith("token:")
    )


def test_no_such_route_answers_in_the_callers_protocol(client: TestClient) -> None:
    scim = client.get("/scim/v2/Users/x/y")
    assert scim.status_code == 404
    assert scim.headers["content-type"] == "application/scim+json"
    assert "no SCIM resource at /scim/v2/Users/x/y" in scim.json()["detail"]
    api = client.get("/api/v1/nothing/here")
    assert api.status_code == 404
    assert api.headers["content-type"] == "application/problem+json"
