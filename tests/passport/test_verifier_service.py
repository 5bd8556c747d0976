"""Verifier service and API boundaries: requests, sessions, fetch limits, who may ask."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine

from pasa.clock import FixedClock
from pasa.domain.errors import NotFoundError
from pasa.passport.errors import VerificationError
from pasa.service import access
from pasa.service import passport_verifier as pv
from pasa.store import schema as s
from pasa.web.app import create_app
from support.hub_world import add_organisation, add_position

NOW = dt.datetime(2026, 11, 24, 9, 0, tzinfo=dt.UTC)
PUBLIC = "https://trust-b.nhs.uk"


def _seed(engine: Engine) -> None:
    with engine.begin() as conn:
        for ods in ("RXN", "RXL"):
            org = add_organisation(conn, ods, at=NOW)
            add_position(
                conn,
                org,
                title="Nurse",
                site=("S", "S"),
                department=("D", "D", "C"),
                area_of_work="M",
            )


def _request(engine: Engine, **kwargs: object) -> pv.NewRequest:
    args: dict[str, object] = {
        "organisation": "RXN",
        "given_name": "Ada",
        "family_name": "Lovelace",
        "start_date": dt.date(2026, 12, 1),
        "position_number": "P1",
        "actor": "t",
        "public_url": PUBLIC,
        "now": NOW,
    }
    args.update(kwargs)
    return pv.create_request(engine, **args)  # type: ignore[arg-type]


def _verifications(engine: Engine) -> list[tuple[str, str | None]]:
    v = s.passport_verification
    with engine.connect() as conn:
        return [(r.outcome, r.reason) for r in conn.execute(sa.select(v).order_by(v.c.id))]


def test_request_input_is_checked_at_the_boundary(engine: Engine) -> None:
    _seed(engine)
    with pytest.raises(pv.VerifierError, match="in the past"):
        _request(engine, start_date=dt.date(2026, 11, 1))
    with pytest.raises(pv.VerifierError, match="no position P9"):
        _request(engine, position_number="P9")
    with pytest.raises(pv.VerifierError, match="unknown credential queries"):
        _request(engine, query_ids=["everything"])
    with pytest.raises(NotFoundError):
        _request(engine, organisation="ZZZ")
    new = _request(engine)
    assert new.client_id == f"redirect_uri:{PUBLIC}/passport/verifier/response"
    assert pv.session_outcome(engine, new.state)["status"] == "pending"


def test_unknown_and_expired_sessions_are_refused_and_recorded(engine: Engine) -> None:
    _seed(engine)
    new = _request(engine)
    body = f"state={new.state}&vp_token=%7B%22employment%22%3A%5B%22x~%22%5D%7D".encode()
    unknown = pv.receive_response(
        engine, body.replace(new.state.encode(), b"nope"), public_url=PUBLIC, now=NOW
    )
    assert (unknown.accepted, unknown.reason) == (False, "state_unknown")
    late = pv.receive_response(
        engine, body, public_url=PUBLIC, now=NOW + pv.SESSION_LIFETIME + dt.timedelta(seconds=1)
    )
    assert late.reason == "session_expired" and late.body()["error"] == "invalid_request"
    # Within time, but the identity credential asked for is not there: refused before any fetch.
    garbage = pv.receive_response(engine, body, public_url=PUBLIC, now=NOW)
    assert garbage.reason == "credential_missing"  # identity was asked for and not sent
    assert _verifications(engine) == [
        ("rejected", "state_unknown"),
        ("rejected", "session_expired"),
        ("rejected", "credential_missing"),
    ]


def test_a_request_closes_after_repeated_refused_answers(engine: Engine) -> None:
    _seed(engine)
    new = _request(engine)
    body = f"state={new.state}&vp_token=%7B%22employment%22%3A%5B%22x~%22%5D%7D".encode()
    for _ in range(pv.MAX_REFUSED_ANSWERS):
        refused = pv.receive_response(engine, body, public_url=PUBLIC, now=NOW)
        assert refused.reason == "credential_missing"  # each refused on its own merits
    assert pv.session_outcome(engine, new.state)["status"] == pv.CLOSED
    # Closed: even a well-formed answer is no longer looked at.
    after = pv.receive_response(engine, body, public_url=PUBLIC, now=NOW)
    assert (after.accepted, after.reason) == (False, "too_many_attempts")
    assert after.body()["error"] == "invalid_request"
    a = s.audit_log
    with engine.connect() as conn:
        closed = conn.execute(
            sa.select(a.c.details).where(a.c.action == "passport.verification.closed")
        ).all()
    assert len(closed) == 1 and closed[0].details["refused_answers"] == pv.MAX_REFUSED_ANSWERS


def test_fetching_is_https_only_size_capped_and_never_redirected() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/big":
            return httpx.Response(200, content=b"x" * 2048)
        if request.url.path == "/moved":
            return httpx.Response(302, headers={"Location": "https://elsewhere.example/"})
        return httpx.Response(200, text="ok")

    settings = pv.VerifierSettings(max_fetch_bytes=1024)
    fetch = pv.Fetcher(settings, transport=httpx.MockTransport(handler))
    assert fetch.get("https://trust-a.nhs.uk/small", "text/plain") == "ok"
    cases = {
        "https://trust-a.nhs.uk/big": "fetch_too_large",
        "https://trust-a.nhs.uk/moved": "fetch_failed",
        "http://trust-a.nhs.uk/small": "fetch_refused",
        "http://127.0.0.1:9/small": "fetch_refused",  # loopback http needs the setting
        "file:///etc/passwd": "fetch_refused",
    }
    for url, code in cases.items():
        with pytest.raises(VerificationError) as info:
            fetch.get(url, "text/plain")
        assert info.value.code == code, url
    loopback = pv.Fetcher(
        pv.VerifierSettings(allow_loopback_http=True), transport=httpx.MockTransport(handler)
    )
    assert loopback.get("http://127.0.0.1:9/small", "text/plain") == "ok"
    assert pv.jwt_vc_issuer_url("https://x.nhs.uk/tenant/") == (
        "https://x.nhs.uk/.well-known/jwt-vc-issuer/tenant"
    )


def test_only_the_organisations_identity_team_asks_and_reads(engine: Engine) -> None:
    _seed(engine)
    client = TestClient(create_app(engine, clock=FixedClock(NOW)), base_url=PUBLIC)
    body = {
        "organisation": "RXN",
        "given_name": "Ada",
        "family_name": "Lovelace",
        "start_date": "2026-12-01",
        "position_number": "P1",
    }
    mine = access.create_token(
        engine, organisation="RXN", scopes=["hr:push", "api:read"], name="b", actor="t"
    ).secret
    reader = access.create_token(
        engine, organisation="RXN", scopes=["api:read"], name="r", actor="t"
    ).secret
    other = access.create_token(
        engine, organisation="RXL", scopes=["hr:push", "api:read"], name="o", actor="t"
    ).secret

    def post(token: str | None, json: Mapping[str, object]) -> Any:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return client.post("/api/v1/passport/verifications", json=json, headers=headers)

    assert post(None, body).status_code == 401
    assert post(reader, body).status_code == 403
    assert post(other, body).status_code == 404
    assert post(mine, {**body, "organisation": "rxn"}).status_code == 422
    created = post(mine, body)
    assert created.status_code == 201, created.text
    state = created.json()["state"]
    path = f"/api/v1/passport/verifications/{state}"
    assert client.get(path, headers={"Authorization": f"Bearer {reader}"}).status_code == 200
    assert client.get(path, headers={"Authorization": f"Bearer {other}"}).status_code == 404
    assert (
        client.get(
            "/api/v1/passport/verifications/nope", headers={"Authorization": f"Bearer {mine}"}
        ).status_code
        == 404
    )
    wrong_type = client.post("/passport/verifier/response", json={"vp_token": {}})
    assert wrong_type.status_code == 400 and wrong_type.json()["reason"] == "content_type"


def test_trust_registry_changes_are_audited(engine: Engine) -> None:
    pv.add_trusted_issuer(
        engine,
        "https://trust-a.nhs.uk/",
        organisation_code="rxl",
        types=["employment"],
        actor="idteam",
        now=NOW,
    )
    with pytest.raises(pv.VerifierError, match="unknown credential type"):
        pv.add_trusted_issuer(
            engine,
            "https://trust-a.nhs.uk",
            organisation_code="RXL",
            types=["selfie"],
            actor="idteam",
            now=NOW,
        )
    with engine.connect() as conn:
        assert [(e.issuer, e.organisation_code) for e in pv.trusted_issuers(conn)] == [
            ("https://trust-a.nhs.uk", "RXL")
        ]
    assert pv.remove_trusted_issuer(engine, "https://trust-a.nhs.uk", actor="idteam", now=NOW) == 1
    with pytest.raises(NotFoundError):
        pv.remove_trusted_issuer(engine, "https://trust-a.nhs.uk", actor="idteam", now=NOW)
    with engine.connect() as conn:
        actions = conn.execute(sa.select(s.audit_log.c.action)).scalars().all()
    assert actions == ["passport.trust.add", "passport.trust.remove"]
