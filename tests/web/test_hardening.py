"""Sessions (timeouts, CSRF), dev sign-in, rate limits, body limit, headers, log redaction."""

from __future__ import annotations

import datetime as dt
import logging
import re
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine

from pasa import logs
from pasa.clock import FixedClock
from pasa.config import Settings
from pasa.service import access
from pasa.store import schema as s
from pasa.web.app import create_app
from pasa.web.hardening import SlidingWindow
from pasa.web.security import CurrentPrincipal

START = dt.datetime(2025, 3, 3, 9, 0, tzinfo=dt.UTC)


def _app(engine: Engine, clock: FixedClock | None = None, **overrides: Any) -> FastAPI:
    values: dict[str, Any] = {"dev_signin": True, "session_secret": "k" * 40, **overrides}
    app = create_app(engine, clock=clock or FixedClock(START), settings=Settings(**values))

    @app.get("/whoami")
    def whoami(principal: CurrentPrincipal) -> dict[str, str]:
        return {"subject": principal.subject}

    @app.post("/change")
    def change(principal: CurrentPrincipal) -> dict[str, str]:
        return {"changed_by": principal.subject}

    return app


def _client(app: FastAPI) -> TestClient:
    return TestClient(app, base_url="https://testserver")


def _csrf(page: str) -> str:
    found = re.search(r"name='csrf_token' value='([^']+)'", page)
    assert found, page
    return found.group(1)


def _dev_sign_in(client: TestClient, subject: str = "jane@nhs.net") -> None:
    token = _csrf(client.get("/auth/dev").text)
    done = client.post(
        "/auth/dev", data={"subject": subject, "csrf_token": token}, follow_redirects=False
    )
    assert done.status_code == 303, done.text


def _org(engine: Engine) -> None:
    with engine.begin() as conn:
        conn.execute(
            s.organisation.insert().values(
                ods_code="RXL", name="RXL", created_at=dt.datetime.now(dt.UTC)
            )
        )


# --- dev sign-in and sessions ------------------------------------------------------------


def test_dev_sign_in_offers_personas_and_needs_its_csrf_token(engine: Engine) -> None:
    _org(engine)
    access.grant_role(engine, "admin@nhs.net", "org_admin", organisation="RXL", actor="test")
    client = _client(_app(engine))
    page = client.get("/auth/dev")
    assert page.status_code == 200 and "Demo only" in page.text
    assert "admin@nhs.net" in page.text and "org_admin (RXL)" in page.text
    # Login CSRF: a form posted from elsewhere (no token from this session) is refused.
    refused = client.post("/auth/dev", data={"subject": "admin@nhs.net"})
    assert refused.status_code == 403
    assert refused.headers["content-type"] == "application/problem+json"
    assert client.get("/whoami").status_code == 401
    _dev_sign_in(client, "Admin@NHS.net")
    assert client.get("/whoami").json() == {"subject": "admin@nhs.net"}


def test_dev_sign_in_is_off_unless_asked_for(engine: Engine) -> None:
    client = _client(_app(engine, dev_signin=False))
    assert client.get("/auth/dev").status_code == 404
    assert client.get("/auth/login").status_code == 404


def test_sessions_end_after_the_idle_timeout(engine: Engine) -> None:
    clock = FixedClock(START)
    client = _client(_app(engine, clock))
    _dev_sign_in(client)
    for _ in range(3):  # activity keeps it alive
        clock.advance(dt.timedelta(minutes=29))
        assert client.get("/whoami").status_code == 200
    clock.advance(dt.timedelta(minutes=30))
    assert client.get("/whoami").status_code == 401
    assert client.get("/auth/session").json()["signed_in"] is False


def test_sessions_end_after_the_absolute_timeout(engine: Engine) -> None:
    clock = FixedClock(START)
    client = _client(_app(engine, clock, session_idle_minutes=60))
    _dev_sign_in(client)
    for _ in range(23):
        clock.advance(dt.timedelta(minutes=30))
        assert client.get("/whoami").status_code == 200
    clock.advance(dt.timedelta(minutes=30))  # 12 hours after signing in
    assert client.get("/whoami").status_code == 401


def test_a_forged_or_old_cookie_is_not_a_session(engine: Engine) -> None:
    client = _client(_app(engine))
    _dev_sign_in(client)
    other = _client(_app(engine, session_secret="z" * 40))
    other.cookies.update(client.cookies)
    assert other.get("/whoami").status_code == 401


def test_csrf_is_checked_on_cookie_authenticated_changes(engine: Engine) -> None:
    _org(engine)
    client = _client(_app(engine))
    _dev_sign_in(client)
    missing = client.post("/change")
    assert missing.status_code == 403 and "CSRF" in missing.json()["detail"]
    assert client.post("/change", headers={"X-CSRF-Token": "wrong"}).status_code == 403
    token = client.get("/auth/session").json()["csrf_token"]
    ok = client.post("/change", headers={"X-CSRF-Token": token})
    assert ok.json() == {"changed_by": "jane@nhs.net"}
    form = client.post("/change", data={"csrf_token": token, "x": "1"})
    assert form.status_code == 200
    for method in ("put", "patch", "delete"):
        assert client.request(method.upper(), "/change").status_code in (403,)
    # A bearer-token call is not cookie-authenticated: no CSRF token needed.
    secret = access.create_token(
        engine, organisation="RXL", scopes=["api:read"], name="t", actor="test"
    ).secret
    bearer = client.post("/change", headers={"Authorization": f"Bearer {secret}"})
    assert bearer.status_code == 200 and bearer.json()["changed_by"].startswith("token:")


def test_activation_page_still_posts_without_a_session_token(engine: Engine) -> None:
    client = _client(_app(engine))
    _dev_sign_in(client)
    response = client.post("/activate", data={"code": "", "password": ""})
    assert response.status_code == 400 and "activation code" in response.text


# --- rate limits, body size, headers -----------------------------------------------------


def test_sign_in_is_rate_limited_per_client(engine: Engine) -> None:
    client = _client(_app(engine, signin_rate_limit=3))
    for _ in range(3):
        assert client.get("/auth/dev").status_code == 200
    limited = client.get("/auth/dev")
    assert limited.status_code == 429
    assert 1 <= int(limited.headers["retry-after"]) <= 60
    assert limited.json()["status"] == 429
    assert limited.headers["content-security-policy"]
    assert client.get("/healthz").status_code == 200  # other pages are not limited


def test_public_wallet_endpoints_are_rate_limited_per_client(engine: Engine) -> None:
    client = _client(_app(engine, signin_rate_limit=2))
    for _ in range(2):
        answer = client.post("/passport/verifier/response", data={"state": "x", "vp_token": "{}"})
        assert answer.status_code == 400  # refused on its merits, not limited
    limited = client.post("/passport/verifier/response", data={"state": "x", "vp_token": "{}"})
    assert limited.status_code == 429 and int(limited.headers["retry-after"]) >= 1
    assert "wallet requests from this address" in limited.json()["detail"]
    # Guessing transaction codes at the token endpoint counts against the same address.
    assert client.post("/passport/token", data={}).status_code == 429
    assert client.get("/auth/dev").status_code == 200  # sign-in has its own allowance


def test_bearer_tokens_are_rate_limited_per_token(engine: Engine) -> None:
    _org(engine)
    client = _client(_app(engine, token_rate_limit=2))
    one, two = (
        access.create_token(
            engine, organisation="RXL", scopes=["api:read"], name=n, actor="test"
        ).secret
        for n in ("one", "two")
    )
    for _ in range(2):
        assert client.get("/whoami", headers={"Authorization": f"Bearer {one}"}).status_code == 200
    limited = client.get("/whoami", headers={"Authorization": f"Bearer {one}"})
    assert limited.status_code == 429 and int(limited.headers["retry-after"]) >= 1
    assert one not in limited.text
    assert client.get("/whoami", headers={"Authorization": f"Bearer {two}"}).status_code == 200
    scim = client.get("/scim/v2/Users", headers={"Authorization": f"Bearer {one}"})
    assert scim.status_code == 429
    assert scim.json()["schemas"] == ["urn:ietf:params:scim:api:messages:2.0:Error"]


def test_the_sliding_window_frees_up_as_time_passes() -> None:
    now = [0.0]
    window = SlidingWindow(2, 60, now=lambda: now[0])
    assert window.hit("a") == 0 and window.hit("a") == 0
    assert window.hit("a") == pytest.approx(60)
    now[0] = 30
    assert window.hit("a") == pytest.approx(30)
    now[0] = 60.5
    assert window.hit("a") == 0
    assert window.hit("b") == 0


def test_oversized_bodies_are_refused_with_413(engine: Engine) -> None:
    client = _client(_app(engine, max_body_bytes=1000))
    big = client.post("/activate", content=b"x" * 2000)
    assert big.status_code == 413
    assert big.headers["content-type"] == "application/problem+json"
    assert big.json()["title"] == "Content Too Large"

    def chunks() -> Any:
        for _ in range(4):
            yield b"y" * 400

    chunked = client.post("/activate", content=chunks())
    assert chunked.status_code == 413
    small = client.post("/activate", content=b"code=&password=")
    assert small.status_code == 400  # reached the page
    scim = client.post("/scim/v2/Users", content=b"{" * 2000)
    assert scim.status_code == 413 and scim.json()["status"] == "413"


def test_security_headers_are_on_every_response(engine: Engine) -> None:
    client = _client(_app(engine))
    for path in ("/", "/healthz", "/auth/dev", "/no-such-page", "/api/v1/openapi.json"):
        response = client.get(path)
        h = response.headers
        assert "frame-ancestors 'none'" in h["content-security-policy"], path
        assert "script-src 'self'" in h["content-security-policy"]
        assert h["x-content-type-options"] == "nosniff"
        assert h["x-frame-options"] == "DENY"
        assert h["referrer-policy"]
        assert h["strict-transport-security"].startswith("max-age=")
    assert client.get("/auth/dev").headers["cache-control"] == "no-store"
    plain = TestClient(_app(engine, session_cookie_secure=False))
    assert "strict-transport-security" not in plain.get("/").headers
    _dev_sign_in(plain)  # works over http when Secure is switched off
    assert plain.get("/whoami").status_code == 200


# --- logs --------------------------------------------------------------------------------


def test_log_redaction_of_keys_and_strings() -> None:
    event = logs.redact(
        None,
        "info",
        {
            "event": "GET /auth/callback?code=abc123&state=xyz",
            "authorization": "Bearer pasa_0123456789abcdefghij",
            "client_secret": "s",
            "password": "p",
            "headers": {"Authorization": "Basic dXNlcjpwYXNz", "Accept": "*/*"},
            "detail": "sent pasa_0123456789abcdefghijklmn and eyJhbGciOi.eyJzdWIiOiJ4In0.c2ln",
            "ods_code": "RXL",
            "target": "ad",
        },
    )
    text = repr(event)
    for secret in ("abc123", "xyz", "pasa_0123456789", "dXNlcjpwYXNz", "eyJhbGciOi"):
        assert secret not in text
    assert event["ods_code"] == "RXL" and event["target"] == "ad"
    assert event["headers"]["Accept"] == "*/*"
    assert event["client_secret"] == event["password"] == logs.REDACTED


def test_stdlib_access_log_lines_are_scrubbed() -> None:
    logs.install_stdlib_filter()
    logger = logging.getLogger("uvicorn.access")
    record = logger.makeRecord(
        "uvicorn.access",
        logging.INFO,
        __file__,
        1,
        '%s - "%s %s HTTP/%s" %d',
        ("127.0.0.1:5000", "GET", "/auth/callback?code=SECRETCODE&state=S1", "1.1", 303),
        None,
    )
    for f in logger.filters:
        f.filter(record)
    assert "SECRETCODE" not in record.getMessage() and "S1" not in record.getMessage()
    assert "/auth/callback?code=" in record.getMessage()
