"""OpenID Connect sign-in end to end, against a real OIDC provider served on a local port.

The provider below is small but real: discovery, JWKS, an authorize endpoint that redirects
back with a code, and a token endpoint that authenticates the client, checks the PKCE
verifier against the S256 challenge and the redirect URI, and returns an RS256-signed ID
token (joserfc). PASA talks to it over HTTP exactly as it would to NHS CIS2 or Entra ID.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import secrets
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pytest
import sqlalchemy as sa
import structlog
import uvicorn
from fastapi import FastAPI
from fastapi.testclient import TestClient
from joserfc import jwt
from joserfc.jwk import KeySet, RSAKey
from sqlalchemy.engine import Engine
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from pasa import logs
from pasa.config import Settings
from pasa.store import schema as s
from pasa.web import sessions, signin
from pasa.web.app import create_app
from pasa.web.security import CurrentPrincipal

CLIENT_ID = "pasa-test"
CLIENT_SECRET = "s3cret-client-value-0123456789"


@dataclass
class Provider:
    """A minimal OpenID provider; tests set ``claims`` and the tampering switches."""

    issuer: str = ""
    key: RSAKey = field(default_factory=lambda: RSAKey.generate_key(2048, parameters={"kid": "k1"}))
    claims: dict[str, Any] = field(default_factory=dict)
    wrong_nonce: bool = False
    foreign_key: bool = False
    codes: dict[str, dict[str, Any]] = field(default_factory=dict)
    authorize_requests: list[dict[str, str]] = field(default_factory=list)
    token_requests: list[dict[str, str]] = field(default_factory=list)
    issued: list[str] = field(default_factory=list)

    def app(self) -> Starlette:
        async def discovery(request: Request) -> Response:
            return JSONResponse(
                {
                    "issuer": self.issuer,
                    "authorization_endpoint": f"{self.issuer}/authorize",
                    "token_endpoint": f"{self.issuer}/token",
                    "jwks_uri": f"{self.issuer}/jwks",
                    "response_types_supported": ["code"],
                    "subject_types_supported": ["public"],
                    "id_token_signing_alg_values_supported": ["RS256"],
                    "code_challenge_methods_supported": ["S256"],
                    "token_endpoint_auth_methods_supported": ["client_secret_basic"],
                }
            )

        async def jwks(request: Request) -> Response:
            return JSONResponse(KeySet([self.key]).as_dict(private=False))

        async def authorize(request: Request) -> Response:
            q = dict(request.query_params)
            self.authorize_requests.append(q)
            if q.get("client_id") != CLIENT_ID or q.get("response_type") != "code":
                return JSONResponse({"error": "invalid_request"}, status_code=400)
            code = secrets.token_urlsafe(16)
            self.codes[code] = {**q, "claims": dict(self.claims)}
            back = urlencode({"code": code, "state": q["state"]})
            return RedirectResponse(f"{q['redirect_uri']}?{back}", status_code=302)

        async def token(request: Request) -> Response:
            form = {k: v[0] for k, v in parse_qs((await request.body()).decode()).items()}
            self.token_requests.append(form)
            basic = request.headers.get("authorization", "")
            expected = base64.b64encode(f"{CLIENT_ID}:{CLIENT_SECRET}".encode()).decode()
            if basic != f"Basic {expected}":
                return JSONResponse({"error": "invalid_client"}, status_code=401)
            grant = self.codes.pop(form.get("code", ""), None)
            if grant is None or form.get("grant_type") != "authorization_code":
                return JSONResponse({"error": "invalid_grant"}, status_code=400)
            verifier = form.get("code_verifier", "")
            challenge = (
                base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
                .rstrip(b"=")
                .decode()
            )
            if (
                grant.get("code_challenge_method") != "S256"
                or challenge != grant.get("code_challenge")
                or form.get("redirect_uri") != grant["redirect_uri"]
            ):
                return JSONResponse({"error": "invalid_grant"}, status_code=400)
            now = int(time.time())
            claims = {
                "iss": self.issuer,
                "aud": CLIENT_ID,
                "sub": "provider-subject-1",
                "iat": now,
                "exp": now + 300,
                "nonce": "not-the-nonce" if self.wrong_nonce else grant["nonce"],
                **grant["claims"],
            }
            key = (
                RSAKey.generate_key(2048, parameters={"kid": "k1"})
                if self.foreign_key
                else self.key
            )
            id_token = jwt.encode({"alg": "RS256", "kid": "k1"}, claims, key)
            access_token = secrets.token_urlsafe(24)
            self.issued += [id_token, access_token]
            return JSONResponse(
                {
                    "access_token": access_token,
                    "token_type": "Bearer",
                    "expires_in": 300,
                    "id_token": id_token,
                }
            )

        return Starlette(
            routes=[
                Route("/.well-known/openid-configuration", discovery),
                Route("/jwks", jwks),
                Route("/authorize", authorize),
                Route("/token", token, methods=["POST"]),
            ]
        )


@pytest.fixture(scope="module")
def provider() -> Iterator[Provider]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    found = Provider(issuer=f"http://127.0.0.1:{port}")
    server = uvicorn.Server(
        uvicorn.Config(found.app(), host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "the test OIDC provider did not start"
        time.sleep(0.02)
    yield found
    server.should_exit = True
    thread.join(5)


@pytest.fixture(autouse=True)
def _fresh_provider(provider: Provider) -> None:
    provider.claims = {}
    provider.wrong_nonce = provider.foreign_key = False
    provider.authorize_requests.clear()
    provider.token_requests.clear()


def _settings(provider: Provider, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "oidc_issuer": provider.issuer,
        "oidc_client_id": CLIENT_ID,
        "oidc_client_secret": CLIENT_SECRET,
        "session_secret": "x" * 40,
        **overrides,
    }
    return Settings(**values)


def _client(engine: Engine, settings: Settings) -> TestClient:
    app: FastAPI = create_app(engine, settings=settings)

    @app.get("/whoami")
    def whoami(principal: CurrentPrincipal) -> dict[str, Any]:
        return {"subject": principal.subject, "person_id": principal.person_id}

    return TestClient(app, base_url="https://testserver")


def _person(engine: Engine, email: str) -> int:
    now = dt.datetime.now(dt.UTC)
    with engine.begin() as conn:
        return int(
            conn.execute(
                s.person.insert()
                .values(
                    uid=str(uuid.uuid4()),
                    first_name="Jane",
                    last_name="Smith",
                    email=email,
                    created_at=now,
                    updated_at=now,
                )
                .returning(s.person.c.id)
            ).scalar_one()
        )


def _start(client: TestClient, then: str = "/whoami") -> str:
    """Begin signing in; the provider's authorize URL PASA redirected to."""
    response = client.get("/auth/login", params={"next": then}, follow_redirects=False)
    assert response.status_code == 302, response.text
    return response.headers["location"]


def _authorize(url: str) -> str:
    """The user agrees at the provider; the callback URL it sends the browser back to."""
    response = httpx.get(url, follow_redirects=False)
    assert response.status_code == 302, response.text
    return response.headers["location"]


def test_sign_in_with_oidc_makes_a_session_for_the_person(
    engine: Engine, provider: Provider
) -> None:
    person_id = _person(engine, "Jane.Smith@nhs.net")
    provider.claims = {"email": "Jane.Smith@nhs.net", "name": "Jane Smith"}
    client = _client(engine, _settings(provider))
    assert client.get("/whoami").status_code == 401

    authorize_url = _start(client)
    assert authorize_url.startswith(f"{provider.issuer}/authorize?")
    query = {k: v[0] for k, v in parse_qs(urlsplit(authorize_url).query).items()}
    assert query["code_challenge_method"] == "S256" and query["code_challenge"]
    assert query["state"] and query["nonce"]
    assert query["scope"] == "openid profile email"
    assert query["redirect_uri"] == "https://testserver/auth/callback"

    callback = client.get(_authorize(authorize_url), follow_redirects=False)
    assert callback.status_code == 303, callback.text
    assert callback.headers["location"] == "/whoami"
    cookie = callback.headers["set-cookie"].lower()
    for flag in ("httponly", "secure", "samesite=lax", "max-age=43200"):
        assert flag in cookie
    # PKCE really ran: the token request carried the verifier the challenge was made from.
    assert provider.token_requests[-1]["code_verifier"]

    me = client.get("/whoami")
    assert me.status_code == 200
    assert me.json() == {"subject": "jane.smith@nhs.net", "person_id": person_id}
    session = client.get("/auth/session").json()
    assert session["signed_in"] and session["name"] == "Jane Smith"
    with engine.connect() as conn:
        actions = conn.execute(
            sa.select(s.audit_log.c.action, s.audit_log.c.actor).order_by(s.audit_log.c.seq)
        ).all()
    assert [tuple(a) for a in actions] == [("user.signed_in", "jane.smith@nhs.net")]

    # The code is single use: replaying the callback does not sign anyone in again.
    client.cookies.clear()
    replay = client.get(callback.request.url, follow_redirects=False)
    assert replay.status_code == 400
    assert client.get("/whoami").status_code == 401


def test_the_sign_in_name_claim_is_configurable(engine: Engine, provider: Provider) -> None:
    provider.claims = {"preferred_username": "JSMITH@example.nhs.uk", "email": "j@nhs.net"}
    client = _client(engine, _settings(provider))
    assert client.get(_authorize(_start(client)), follow_redirects=False).status_code == 303
    assert client.get("/whoami").json()["subject"] == "jsmith@example.nhs.uk"

    client = _client(engine, _settings(provider, oidc_name_claims="upn"))
    refused = client.get(_authorize(_start(client)), follow_redirects=False)
    assert refused.status_code == 403 and "upn" in refused.text
    assert client.get("/whoami").status_code == 401


def test_a_tampered_or_foreign_state_is_refused(engine: Engine, provider: Provider) -> None:
    provider.claims = {"email": "jane@nhs.net"}
    client = _client(engine, _settings(provider))
    callback = _authorize(_start(client))
    tampered = callback.replace("state=", "state=x")
    response = client.get(tampered, follow_redirects=False)
    assert response.status_code == 400 and "could not be checked" in response.text
    assert client.get("/whoami").status_code == 401

    # A callback begun in another browser (login CSRF): this browser has no such state.
    other = _client(engine, _settings(provider))
    assert other.get(_authorize(_start(client)), follow_redirects=False).status_code == 400
    assert other.get("/whoami").status_code == 401


def test_a_wrong_nonce_or_signature_is_refused(
    engine: Engine, provider: Provider, monkeypatch: pytest.MonkeyPatch
) -> None:
    events = structlog.testing.LogCapture()
    monkeypatch.setattr(signin, "log", structlog.wrap_logger(None, processors=[events]))
    provider.claims = {"email": "jane@nhs.net"}
    client = _client(engine, _settings(provider))
    provider.wrong_nonce = True
    assert client.get(_authorize(_start(client)), follow_redirects=False).status_code == 400
    assert client.get("/whoami").status_code == 401
    provider.wrong_nonce = False
    provider.foreign_key = True
    assert client.get(_authorize(_start(client)), follow_redirects=False).status_code == 400
    assert client.get("/whoami").status_code == 401
    refusals = [e["error"] for e in events.entries if e["event"] == "signin.callback_refused"]
    assert refusals == ["InvalidClaimError", "BadSignatureError"]


def test_the_provider_refusing_is_shown_not_trusted(engine: Engine, provider: Provider) -> None:
    client = _client(engine, _settings(provider))
    _start(client)
    response = client.get("/auth/callback?error=access_denied&state=abc")
    assert response.status_code == 400 and "access_denied" in response.text
    assert client.get("/whoami").status_code == 401


def test_only_local_paths_are_followed_after_sign_in(engine: Engine, provider: Provider) -> None:
    provider.claims = {"email": "jane@nhs.net"}
    client = _client(engine, _settings(provider))
    done = client.get(_authorize(_start(client, "https://evil.example/")), follow_redirects=False)
    assert done.headers["location"] == "/"


def test_logout_clears_the_session(engine: Engine, provider: Provider) -> None:
    provider.claims = {"email": "jane@nhs.net"}
    client = _client(engine, _settings(provider))
    client.get(_authorize(_start(client)), follow_redirects=False)
    token = client.get("/auth/session").json()["csrf_token"]
    assert client.post("/auth/logout").status_code == 403  # no CSRF token
    assert client.get("/whoami").status_code == 200
    out = client.post("/auth/logout", headers={"X-CSRF-Token": token}, follow_redirects=False)
    assert out.status_code == 303
    assert client.get("/whoami").status_code == 401
    assert client.get("/auth/session").json() == {"signed_in": False, "login": "/auth/login"}


def test_dev_sign_in_is_refused_when_oidc_is_configured(engine: Engine, provider: Provider) -> None:
    client = _client(engine, _settings(provider, dev_signin=True))
    assert client.get("/auth/dev").status_code == 404
    assert client.post("/auth/dev", data={"subject": "admin@nhs.net"}).status_code in (403, 404)
    assert client.get("/whoami").status_code == 401
    assert signin.dev_signin_enabled(_settings(provider, dev_signin=True)) is False


def test_no_secret_reaches_the_logs(
    engine: Engine, provider: Provider, monkeypatch: pytest.MonkeyPatch
) -> None:
    lines: list[str] = []

    class Sink:
        def msg(self, message: str) -> None:
            lines.append(message)

        info = warning = error = debug = msg

    for module in (signin, sessions):
        logger = structlog.wrap_logger(Sink(), processors=logs.processors(json=True))
        monkeypatch.setattr(module, "log", logger)
    provider.claims = {"email": "jane@nhs.net"}
    client = _client(engine, _settings(provider))
    callback = _authorize(_start(client))
    client.get(callback, follow_redirects=False)
    client.get(callback.replace("state=", "state=x"), follow_redirects=False)
    query = parse_qs(urlsplit(callback).query)
    secrets_seen = [
        CLIENT_SECRET,
        "x" * 40,
        query["code"][0],
        query["state"][0],
        *provider.issued,
        provider.token_requests[-1]["code_verifier"],
    ]
    assert any("signin.ok" in line for line in lines)
    text = "\n".join(lines)
    for secret in secrets_seen:
        assert secret not in text
    json.loads(lines[0])  # JSON lines


def test_misconfigured_oidc_fails_at_start_up(engine: Engine) -> None:
    with pytest.raises(signin.SignInConfigError, match="CLIENT_ID"):
        create_app(engine, settings=Settings(oidc_issuer="https://login.example"))
    with pytest.raises(signin.SignInConfigError, match="openid"):
        create_app(
            engine,
            settings=Settings(
                oidc_issuer="https://login.example", oidc_client_id="x", oidc_scopes="email"
            ),
        )


def test_an_unreachable_provider_is_a_clear_503(engine: Engine) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    settings = Settings(
        oidc_issuer=f"http://127.0.0.1:{port}", oidc_client_id=CLIENT_ID, session_secret="x" * 40
    )
    client = _client(engine, settings)
    response = client.get("/auth/login", follow_redirects=False)
    assert response.status_code == 503 and "could not be reached" in response.text
