"""`pasa wallet` against a real PASA issuer over HTTP: receive, list, status, present.

The issuer is PASA itself served by uvicorn (conftest ``live_issuer``); the offer comes from
`pasa passport offer`, as an operator would print it. The presentation goes to a small local
verifier endpoint that records what arrives, and is checked against the agreed OpenID4VP
conventions with the real verifier core (``verify_credential``).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, urlencode

import httpx
import pytest
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from typer.testing import CliRunner, Result
from wallet_support import LiveIssuer, Serve

from pasa.cli.main import app
from pasa.passport.keys import jwks_resolver
from pasa.passport.sdjwt import SdJwt
from pasa.passport.vc import EmploymentCredential, verify_credential
from pasa.service import passport_issuer as pi
from pasa.store import schema as s

PASS = "wallet passphrase 1"
runner = CliRunner()


def _env(live: LiveIssuer, wallet: Path) -> dict[str, str]:
    return {
        "PASA_WALLET_DIR": str(wallet),
        "PASA_WALLET_PASSPHRASE": PASS,
        "PASA_PUBLIC_URL": live.url,
        "PASA_DATABASE_URL": live.engine.url.render_as_string(hide_password=False),
    }


def _run(env: dict[str, str], *args: str, ok: bool = True) -> Result:
    result = runner.invoke(app, list(args), env=env)
    if ok:
        assert result.exit_code == 0, result.output
    return result


def _offer(env: dict[str, str], live: LiveIssuer) -> tuple[str, str]:
    printed = _run(env, "passport", "offer", live.employee_number).output
    uri = re.search(r"^(openid-credential-offer://\S+)$", printed, re.M)
    code = re.search(r"transaction code: (\d{6})", printed)
    assert uri and code, printed
    return uri.group(1), code.group(1)


def _listed(env: dict[str, str]) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = json.loads(_run(env, "wallet", "list", "--json").stdout)
    return rows


@pytest.fixture
def wallet_env(live_issuer: LiveIssuer, tmp_path: Path) -> dict[str, str]:
    env = _env(live_issuer, tmp_path / "wallet")
    assert "Wallet created" in _run(env, "wallet", "init").output
    return env


def test_receive_list_and_revocation_seen_by_status(
    live_issuer: LiveIssuer, wallet_env: dict[str, str]
) -> None:
    env = wallet_env
    uri, code = _offer(env, live_issuer)
    received = _run(env, "wallet", "receive", uri, "--tx-code", code)
    assert "Transaction code accepted" in received.output
    # Employment and identity always; professional registration too when ESR holds a
    # registration number for the person (the synthetic workforce gives some people one).
    offered = re.search(r"Offer from \S+: ([^.]+)\.", " ".join(received.output.split()))
    assert offered, received.output
    configurations = sorted(c.strip() for c in offered.group(1).split(","))
    assert (
        {"employment", "identity"}
        <= set(configurations)
        <= {
            "employment",
            "identity",
            "professional_registration",
        }
    )
    assert f"Received {len(configurations)} credential(s)" in received.output
    rows = _listed(env)
    assert sorted(r["vct"] for r in rows) == [
        f"urn:nhs:pasa:passport:{c}:1" for c in configurations
    ]
    assert {r["status"] for r in rows} == {"valid"}
    assert {r["issuer"] for r in rows} == {live_issuer.url}
    table = _run(env, "wallet", "list").output
    assert "employment" in table and "valid" in table

    employment = next(r for r in rows if r["vct"].endswith("employment:1"))
    shown = _run(env, "wallet", "show", employment["id"][:8]).output
    assert "selectively disclosable" in shown and "given_name" in shown
    assert "organisation_code" in shown and "always shown" in shown

    with live_issuer.engine.connect() as conn:
        uid = (
            conn.execute(
                s.passport_credential.select().where(
                    s.passport_credential.c.vct == EmploymentCredential.vct
                )
            )
            .one()
            .uid
        )
    pi.revoke(
        live_issuer.engine,
        uid,
        actor="test",
        reason="leaver",
        issuer=live_issuer.url,
        now=pi.dt.datetime.now(pi.dt.UTC),
        kek=live_issuer.kek,
    )
    checked = _run(env, "wallet", "status").output
    assert "revoked" in checked
    states = {r["vct"].rsplit(":", 2)[-2]: r["status"] for r in _listed(env)}
    assert states == {"employment": "revoked", "identity": "valid"}


def test_wrong_tx_code_and_a_used_offer_are_specific_errors(
    live_issuer: LiveIssuer, wallet_env: dict[str, str]
) -> None:
    env = wallet_env
    uri, code = _offer(env, live_issuer)
    wrong = "000000" if code != "000000" else "111111"
    refused = _run(env, "wallet", "receive", uri, "--tx-code", wrong, ok=False)
    assert refused.exit_code == 1
    assert "tx_code_wrong" in refused.output and "transaction code is wrong" in refused.output
    assert _listed(env) == []
    _run(env, "wallet", "receive", uri, "--tx-code", code)
    again = _run(env, "wallet", "receive", uri, "--tx-code", code, ok=False)
    assert again.exit_code == 1
    assert "offer_unavailable" in again.output and "ask for a new one" in again.output
    bad_pass = runner.invoke(app, ["wallet", "list"], env=env | {"PASA_WALLET_PASSPHRASE": "nope"})
    assert bad_pass.exit_code == 1 and "wrong_passphrase" in bad_pass.output


# --- presentation --------------------------------------------------------------------------


def _recording_verifier(serve: Serve) -> tuple[str, list[dict[str, list[str]]]]:
    """A verifier's response endpoint that records each form posted and answers {}."""
    arrived: list[dict[str, list[str]]] = []
    verifier = FastAPI()

    @verifier.post("/passport/verifier/response")
    async def response(request: Request) -> JSONResponse:
        assert request.headers["content-type"] == "application/x-www-form-urlencoded"
        arrived.append(parse_qs((await request.body()).decode()))
        return JSONResponse({})

    return serve(verifier) + "/passport/verifier/response", arrived


def _holding_a_credential(
    env: dict[str, str], live_issuer: LiveIssuer, serve: Serve
) -> tuple[str, list[dict[str, list[str]]]]:
    """The wallet has received a credential from ``live_issuer``; a verifier is listening."""
    uri, code = _offer(env, live_issuer)
    _run(env, "wallet", "receive", uri, "--tx-code", code)
    return _recording_verifier(serve)


def _request_uri(response_uri: str, *, client_id: str | None = None, vct: str | None = None) -> str:
    dcql = {
        "credentials": [
            {
                "id": "employment",
                "format": "dc+sd-jwt",
                "meta": {"vct_values": [vct or EmploymentCredential.vct]},
                "claims": [
                    {"path": ["given_name"]},
                    {"path": ["family_name"]},
                    {"path": ["organisation_code"]},
                ],
            }
        ]
    }
    metadata = {
        "vp_formats_supported": {
            "dc+sd-jwt": {"sd-jwt_alg_values": ["ES256"], "kb-jwt_alg_values": ["ES256"]}
        },
        "client_name": "Trust B",
    }
    params = {
        "client_id": client_id or f"redirect_uri:{response_uri}",
        "response_type": "vp_token",
        "response_mode": "direct_post",
        "response_uri": response_uri,
        "nonce": "n-0S6_WzA2Mj",
        "state": "session-42",
        "dcql_query": json.dumps(dcql),
        "client_metadata": json.dumps(metadata),
    }
    return "openid4vp://?" + urlencode(params, quote_via=quote)


def test_present_discloses_only_what_the_verifier_asks(
    live_issuer: LiveIssuer, wallet_env: dict[str, str], serve: Serve
) -> None:
    env = wallet_env
    response_uri, arrived = _holding_a_credential(env, live_issuer, serve)
    request = _request_uri(response_uri)

    declined = runner.invoke(app, ["wallet", "present", request], env=env, input="n\n")
    assert declined.exit_code == 1 and "Nothing was shared" in declined.output
    assert arrived == []

    shown = _run(env, "wallet", "present", request, "--yes").output
    assert "Trust B (127.0.0.1" in shown
    assert "given_name" in shown and "assignment_number" not in shown
    assert "accepted" in shown
    (form,) = arrived
    assert set(form) == {"vp_token", "state"} and form["state"] == ["session-42"]
    vp_token = json.loads(form["vp_token"][0])
    assert list(vp_token) == ["employment"] and len(vp_token["employment"]) == 1
    presentation = vp_token["employment"][0]
    jwks = httpx.get(f"{live_issuer.url}/.well-known/jwt-vc-issuer").json()["jwks"]
    nonces = {"n-0S6_WzA2Mj"}
    verified = verify_credential(
        presentation,
        issuer_keys=jwks_resolver({live_issuer.url: jwks}),
        now=pi.dt.datetime.now(pi.dt.UTC),
        audience=f"redirect_uri:{response_uri}",  # the full client id, prefix included
        nonce_check=lambda n: n in nonces and not nonces.remove(n),  # type: ignore[func-returns-value]
        expected_vct=[EmploymentCredential.vct],
    )
    assert verified.claims["given_name"] and verified.claims["family_name"]
    assert verified.claims["organisation_code"] == "RXL"
    # Data minimisation: the selectively disclosable claims not asked for stay hidden.
    assert "assignment_number" not in verified.claims
    assert len(SdJwt.parse(presentation).disclosures) == 2  # the two names, nothing else


def test_untrusted_or_unmatched_requests_are_refused(
    live_issuer: LiveIssuer, wallet_env: dict[str, str], serve: Serve
) -> None:
    env = wallet_env
    response_uri, arrived = _holding_a_credential(env, live_issuer, serve)
    elsewhere = _request_uri(response_uri, client_id="redirect_uri:https://verifier.example/cb")
    untrusted = _run(env, "wallet", "present", elsewhere, "--yes", ok=False)
    assert untrusted.exit_code == 1 and "request_untrusted" in untrusted.output
    other_type = _request_uri(response_uri, vct="urn:nhs:pasa:passport:dbs:1")
    unmatched = _run(env, "wallet", "present", other_type, "--yes", ok=False)
    assert unmatched.exit_code == 1 and "no_matching_credential" in unmatched.output
    signed = "openid4vp://?client_id=x509_san_dns:v.example&request_uri=https://v.example/r"
    unsupported = _run(env, "wallet", "present", signed, "--yes", ok=False)
    assert unsupported.exit_code == 1 and "request_unsupported" in unsupported.output
    assert arrived == []
