"""OpenID4VCI issuer end to end over HTTP: offer, token, nonce, credential, status."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from joserfc.jwk import ECKey
from sqlalchemy.engine import Engine

from pasa.clock import FixedClock
from pasa.passport._jose import b64url_encode, public_jwk, public_key_from_jwk, sign_jws
from pasa.passport.keys import KEK_ENV, KeyEncryptionKey, jwks_resolver
from pasa.passport.sdjwt import present
from pasa.passport.status_list import Status, verify_status_list
from pasa.passport.vc import verify_credential
from pasa.service import passport_issuer as pi
from pasa.store import schema as s
from pasa.web.app import create_app
from support.hub_world import add_passport_holder

ISSUER = "https://pasa.test"
START = dt.datetime(2026, 11, 24, 9, 0, tzinfo=dt.UTC)
EMPLOYEE = "E1001"


def seed_person(engine: Engine, *, status: str = "Active Assignment") -> int:
    with engine.begin() as conn:
        return add_passport_holder(
            conn,
            at=START,
            uid="ada-lovelace",
            number="A1001-1",
            employee_number=EMPLOYEE,
            status=status,
            site=("VIC", "Victoria"),
        )


def end_assignment(engine: Engine, end: dt.date) -> None:
    with engine.begin() as conn:
        conn.execute(s.assignment.update().values(end_date=end))


@dataclass
class Issuer:
    engine: Engine
    clock: FixedClock
    client: TestClient
    kek: KeyEncryptionKey
    person_id: int

    def offer(self) -> pi.NewOffer:
        return pi.create_offer(
            self.engine,
            self.person_id,
            issuer=ISSUER,
            actor="test",
            now=self.clock.now(),
            kek=self.kek,
        )

    def token(self, code: str, tx_code: str) -> Any:
        return self.client.post(
            "/passport/token",
            data={
                "grant_type": pi.PRE_AUTHORIZED_GRANT,
                "pre-authorized_code": code,
                "tx_code": tx_code,
            },
        )

    def access_token(self) -> str:
        new = self.offer()
        response = self.token(new.pre_authorized_code, new.tx_code)
        assert response.status_code == 200, response.text
        return str(response.json()["access_token"])

    def nonce(self) -> str:
        response = self.client.post("/passport/nonce")
        assert response.status_code == 200
        assert response.headers["cache-control"] == "no-store"
        return str(response.json()["c_nonce"])

    def credential(self, token: str, proof: str, config: str = "employment") -> Any:
        return self.client.post(
            "/passport/credential",
            headers={"Authorization": f"Bearer {token}"},
            json={"credential_configuration_id": config, "proofs": {"jwt": [proof]}},
        )


@pytest.fixture
def issuer(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> Issuer:
    value = KeyEncryptionKey.generate()
    monkeypatch.setenv(KEK_ENV, value)
    monkeypatch.delenv("PASA_PUBLIC_URL", raising=False)
    clock = FixedClock(START)
    client = TestClient(create_app(engine, clock=clock), base_url=ISSUER)
    return Issuer(engine, clock, client, KeyEncryptionKey.from_env(), seed_person(engine))


@dataclass
class Holder:
    key: ECKey

    @classmethod
    def new(cls) -> Holder:
        return cls(ECKey.generate_key("P-256", private=True))

    def proof(
        self,
        nonce: str,
        *,
        iat: dt.datetime,
        aud: str = ISSUER,
        typ: str = pi.PROOF_TYP,
        header: dict[str, Any] | None = None,
    ) -> str:
        head = header or {"alg": "ES256", "typ": typ, "jwk": public_jwk(self.key)}
        payload = {"aud": aud, "iat": int(iat.timestamp()), "nonce": nonce}
        return sign_jws(head, payload, self.key)


def unsigned(header: dict[str, Any], payload: dict[str, Any], signature: bytes = b"") -> str:
    """A compact JWS with any header (``alg: none``, ``HS256``) and the given signature."""

    def part(value: dict[str, Any]) -> str:
        return b64url_encode(json.dumps(value).encode())

    return f"{part(header)}.{part(payload)}.{b64url_encode(signature)}"


def credential_rows(engine: Engine) -> list[Any]:
    with engine.connect() as conn:
        return list(conn.execute(sa.select(s.passport_credential)).all())


# --- the flow -------------------------------------------------------------------------------


def _verify(issuer: Issuer, credential: str, holder: Holder) -> dict[str, Any]:
    jwks = issuer.client.get("/.well-known/jwt-vc-issuer").json()
    assert jwks["issuer"] == ISSUER
    presentation = present(
        credential,
        holder_key=holder.key,
        audience="x509_san_dns:verifier.example",
        nonce="n-1",
        iat=issuer.clock.now(),
        select=lambda _: True,
    )
    result = verify_credential(
        presentation,
        issuer_keys=jwks_resolver({ISSUER: jwks["jwks"]}),
        now=issuer.clock.now(),
        audience="x509_san_dns:verifier.example",
        nonce_check=lambda n: n == "n-1",
    )
    return {"vct": result.vct, "claims": result.claims, "status": result.status}


def test_metadata_at_the_well_known_paths(issuer: Issuer) -> None:
    meta = issuer.client.get("/.well-known/openid-credential-issuer").json()
    assert meta["credential_issuer"] == ISSUER
    assert meta["credential_endpoint"] == f"{ISSUER}/passport/credential"
    assert meta["nonce_endpoint"] == f"{ISSUER}/passport/nonce"
    employment = meta["credential_configurations_supported"]["employment"]
    assert employment["format"] == "dc+sd-jwt"
    assert employment["proof_types_supported"]["jwt"]["proof_signing_alg_values_supported"] == [
        "ES256"
    ]
    server = issuer.client.get("/.well-known/oauth-authorization-server").json()
    assert server["token_endpoint"] == f"{ISSUER}/passport/token"
    assert pi.PRE_AUTHORIZED_GRANT in server["grant_types_supported"]


def test_offer_token_nonce_credential_verify_revoke(issuer: Issuer) -> None:
    new = issuer.offer()
    assert new.uri.startswith("openid-credential-offer://?credential_offer_uri=")
    offer_url = unquote(new.uri.split("credential_offer_uri=", 1)[1])
    assert offer_url == f"{ISSUER}/passport/offers/{new.uid}"
    offer = issuer.client.get(offer_url.removeprefix(ISSUER))
    assert offer.status_code == 200
    body = offer.json()
    grant = body["grants"][pi.PRE_AUTHORIZED_GRANT]
    assert body["credential_issuer"] == ISSUER
    assert body["credential_configuration_ids"] == ["employment", "identity"]
    assert grant["pre-authorized_code"] == new.pre_authorized_code
    assert grant["tx_code"] == {
        "input_mode": "numeric",
        "length": 6,
        "description": grant["tx_code"]["description"],
    }
    assert new.tx_code.isdigit() and len(new.tx_code) == 6

    wrong = "000000" if new.tx_code != "000000" else "111111"
    refused = issuer.token(new.pre_authorized_code, wrong)
    assert refused.status_code == 400
    assert refused.json()["error"] == "invalid_grant"
    assert refused.json()["reason"] == "tx_code_wrong"

    response = issuer.token(new.pre_authorized_code, new.tx_code)
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    token = response.json()
    assert token["token_type"] == "Bearer"
    again = issuer.token(new.pre_authorized_code, new.tx_code)
    assert again.json()["reason"] == "code_used"  # single use
    assert issuer.client.get(offer_url.removeprefix(ISSUER)).status_code == 404

    holder = Holder.new()
    nonce = issuer.nonce()
    issued = issuer.credential(token["access_token"], holder.proof(nonce, iat=issuer.clock.now()))
    assert issued.status_code == 200, issued.text
    credentials = issued.json()["credentials"]
    assert len(credentials) == 1
    verified = _verify(issuer, credentials[0]["credential"], holder)
    assert verified["vct"] == "urn:nhs:pasa:passport:employment:1"
    claims = verified["claims"]
    assert claims["iss"] == ISSUER
    assert claims["given_name"] == "Ada" and claims["family_name"] == "Lovelace"
    assert claims["organisation_code"] == "RXL"
    assert claims["assignment_number"] == "A1001-1"
    assert claims["cnf"]["jwk"] == public_jwk(holder.key)
    status = verified["status"]
    assert status.uri.startswith(f"{ISSUER}/passport/status/")

    identity = issuer.credential(
        token["access_token"], holder.proof(issuer.nonce(), iat=issuer.clock.now()), "identity"
    )
    assert identity.status_code == 200, identity.text
    ident = _verify(issuer, identity.json()["credentials"][0]["credential"], holder)
    assert ident["claims"]["birthdate"] == "1990-12-10"

    def status_now() -> int:
        path = status.uri.removeprefix(ISSUER)
        response = issuer.client.get(path)
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("application/statuslist+jwt")
        assert response.headers["cache-control"] == "public, max-age=3600"
        jwk = issuer.client.get("/.well-known/jwt-vc-issuer").json()["jwks"]["keys"][0]
        key = public_key_from_jwk({k: jwk[k] for k in ("kty", "crv", "x", "y")})
        verified = verify_status_list(
            response.text, key=key, expected_uri=status.uri, now=issuer.clock.now()
        )
        return verified.status(status.idx)

    assert status_now() == Status.VALID
    (row,) = [r for r in credential_rows(issuer.engine) if r.vct.endswith("employment:1")]
    assert row.status_idx == status.idx and row.state == "valid"
    pi.set_state(
        issuer.engine,
        row.uid,
        pi.SUSPENDED,
        actor="test",
        reason="investigation",
        issuer=ISSUER,
        now=issuer.clock.now(),
        kek=issuer.kek,
    )
    assert status_now() == Status.SUSPENDED
    pi.revoke(
        issuer.engine,
        row.uid,
        actor="test",
        reason="test",
        issuer=ISSUER,
        now=issuer.clock.now(),
        kek=issuer.kek,
    )
    assert status_now() == Status.INVALID


def test_five_wrong_transaction_codes_lock_the_offer(issuer: Issuer) -> None:
    new = issuer.offer()
    wrong = "000000" if new.tx_code != "000000" else "111111"
    reasons = [issuer.token(new.pre_authorized_code, wrong).json()["reason"] for _ in range(5)]
    assert reasons == ["tx_code_wrong"] * 4 + ["offer_locked"]
    locked = issuer.token(new.pre_authorized_code, new.tx_code)
    assert locked.status_code == 400
    assert locked.json() | {"error_description": ""} == {
        "error": "invalid_grant",
        "reason": "offer_locked",
        "error_description": "",
    }
    assert issuer.client.get(f"/passport/offers/{new.uid}").status_code == 404


def test_expired_offer_and_missing_tx_code_are_refused(issuer: Issuer) -> None:
    new = issuer.offer()
    missing = issuer.client.post(
        "/passport/token",
        data={
            "grant_type": pi.PRE_AUTHORIZED_GRANT,
            "pre-authorized_code": new.pre_authorized_code,
        },
    )
    assert missing.json()["error"] == "invalid_request"
    other = issuer.client.post("/passport/token", data={"grant_type": "authorization_code"})
    assert other.json()["error"] == "unsupported_grant_type"
    issuer.clock.advance(pi.OFFER_LIFETIME + dt.timedelta(seconds=1))
    assert issuer.token(new.pre_authorized_code, new.tx_code).json()["reason"] == "code_expired"


def test_replayed_nonce_is_refused(issuer: Issuer) -> None:
    token = issuer.access_token()
    holder = Holder.new()
    nonce = issuer.nonce()
    first = issuer.credential(token, holder.proof(nonce, iat=issuer.clock.now()))
    assert first.status_code == 200
    replay = issuer.credential(token, holder.proof(nonce, iat=issuer.clock.now()))
    assert replay.status_code == 400
    assert replay.json()["error"] == "invalid_nonce"
    unknown = issuer.credential(token, holder.proof("made-up", iat=issuer.clock.now()))
    assert unknown.json()["error"] == "invalid_nonce"


@pytest.mark.parametrize(
    ("case", "reason"),
    [
        ("alg_none", "proof_alg"),
        ("hs256", "proof_alg"),
        ("wrong_aud", "proof_aud"),
        ("stale_iat", "proof_iat"),
        ("future_iat", "proof_iat"),
        ("wrong_typ", "proof_typ"),
        ("kid_not_jwk", "proof_key"),
        ("other_key", "proof_signature"),
        ("no_proof", "proofs_missing"),
    ],
)
def test_bad_proofs_are_refused_with_a_specific_reason(
    issuer: Issuer, case: str, reason: str
) -> None:
    token = issuer.access_token()
    holder, other = Holder.new(), Holder.new()
    nonce = issuer.nonce()
    now = issuer.clock.now()
    jwk = public_jwk(holder.key)
    payload = {"aud": ISSUER, "iat": int(now.timestamp()), "nonce": nonce}
    proof: str | None = {
        "alg_none": lambda: unsigned({"alg": "none", "typ": pi.PROOF_TYP, "jwk": jwk}, payload),
        "hs256": lambda: unsigned(
            {"alg": "HS256", "typ": pi.PROOF_TYP, "jwk": jwk}, payload, b"x" * 32
        ),
        "wrong_aud": lambda: holder.proof(nonce, iat=now, aud="https://evil.example"),
        "stale_iat": lambda: holder.proof(nonce, iat=now - dt.timedelta(minutes=10)),
        "future_iat": lambda: holder.proof(nonce, iat=now + dt.timedelta(minutes=10)),
        "wrong_typ": lambda: holder.proof(nonce, iat=now, typ="JWT"),
        "kid_not_jwk": lambda: holder.proof(
            nonce, iat=now, header={"alg": "ES256", "typ": pi.PROOF_TYP, "kid": "k1"}
        ),
        "other_key": lambda: sign_jws(
            {"alg": "ES256", "typ": pi.PROOF_TYP, "jwk": jwk}, payload, other.key
        ),
        "no_proof": lambda: None,
    }[case]()
    if proof is None:
        response = issuer.client.post(
            "/passport/credential",
            headers={"Authorization": f"Bearer {token}"},
            json={"credential_configuration_id": "employment"},
        )
    else:
        response = issuer.credential(token, proof)
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_proof"
    assert response.json()["reason"] == reason
    assert credential_rows(issuer.engine) == []
    # A refused proof never burns the nonce.
    good = issuer.credential(token, holder.proof(nonce, iat=now))
    assert good.status_code == 200, good.text


def test_credential_endpoint_needs_a_valid_access_token(issuer: Issuer) -> None:
    holder = Holder.new()
    proof = holder.proof(issuer.nonce(), iat=issuer.clock.now())
    none = issuer.client.post("/passport/credential", json={"proofs": {"jwt": [proof]}})
    assert none.status_code == 401
    assert none.json()["error"] == "invalid_token"
    assert "Bearer" in none.headers["www-authenticate"]
    bad = issuer.credential("not-a-token", proof)
    assert bad.status_code == 401
    token = issuer.access_token()
    unknown = issuer.credential(token, proof, config="blood_group")
    assert unknown.json()["error"] == "unknown_credential_configuration"
    issuer.clock.advance(pi.TOKEN_LIFETIME + dt.timedelta(seconds=1))
    expired = issuer.credential(token, holder.proof(issuer.nonce(), iat=issuer.clock.now()))
    assert expired.json()["reason"] == "token_expired"


def test_lifecycle_revokes_leavers_and_suspends_suspensions(issuer: Issuer) -> None:
    holder = Holder.new()
    token = issuer.access_token()
    assert issuer.credential(token, holder.proof(issuer.nonce(), iat=issuer.clock.now())).is_success
    now = issuer.clock.now()
    today = now.date()
    assert pi.run_lifecycle(issuer.engine, today, actor="tick", now=now, issuer=ISSUER) == {}
    with issuer.engine.begin() as conn:
        conn.execute(s.assignment.update().values(status="Suspend Assignment"))
    counts = pi.run_lifecycle(issuer.engine, today, actor="tick", now=now, issuer=ISSUER)
    assert counts == {pi.SUSPENDED: 1}
    with issuer.engine.begin() as conn:
        conn.execute(s.assignment.update().values(status="Active Assignment"))
    counts = pi.run_lifecycle(issuer.engine, today, actor="tick", now=now, issuer=ISSUER)
    assert counts == {pi.VALID: 1}
    end_assignment(issuer.engine, today + dt.timedelta(days=3))
    # The credential said "no end date": keying one supersedes it at once ...
    counts = pi.run_lifecycle(issuer.engine, today, actor="tick", now=now, issuer=ISSUER)
    assert counts == {pi.REVOKED: 1}
    assert [r.state_reason for r in credential_rows(issuer.engine)] == ["superseded"]
    # ... the one collected then attests the leaving date, and is revoked on that date.
    token = issuer.access_token()
    assert issuer.credential(token, holder.proof(issuer.nonce(), iat=now)).is_success
    assert pi.run_lifecycle(issuer.engine, today, actor="tick", now=now, issuer=ISSUER) == {}
    leaving = today + dt.timedelta(days=3)
    counts = pi.run_lifecycle(issuer.engine, leaving, actor="tick", now=now, issuer=ISSUER)
    assert counts == {pi.REVOKED: 1}
    assert [(r.state, r.state_reason) for r in credential_rows(issuer.engine)] == [
        ("revoked", "superseded"),
        ("revoked", "leaver"),
    ]


def test_a_changed_record_supersedes_its_credentials_and_tells_the_holder(issuer: Issuer) -> None:
    holder = Holder.new()
    for config in ("employment", "identity"):
        token = issuer.access_token()
        proof = holder.proof(issuer.nonce(), iat=issuer.clock.now())
        assert issuer.credential(token, proof, config=config).is_success
    now = issuer.clock.now()
    today = now.date()
    run = lambda: pi.run_lifecycle(issuer.engine, today, actor="tick", now=now, issuer=ISSUER)  # noqa: E731
    with issuer.engine.begin() as conn:
        conn.execute(s.person.update().values(email="ada.lovelace@nhs.net"))
        # Not attested: a new manager or hours change nothing in the credential.
        conn.execute(s.assignment.update().values(supervisor_assignment_number="E9999-1"))
    assert run() == {}
    with issuer.engine.begin() as conn:
        conn.execute(s.position.update().values(title="Ward Sister"))  # a new post title
    assert run() == {pi.REVOKED: 1}
    states = {
        r.vct.rsplit(":", 2)[-2]: (r.state, r.state_reason) for r in credential_rows(issuer.engine)
    }
    assert states == {"employment": ("revoked", "superseded"), "identity": ("valid", None)}
    with issuer.engine.begin() as conn:
        conn.execute(s.person.update().values(last_name="King"))  # married: a new name
    assert run() == {pi.REVOKED: 1}  # identity now; employment was already revoked
    with issuer.engine.connect() as conn:
        mails = conn.execute(
            sa.select(s.notification.c.recipient, s.notification.c.body).where(
                s.notification.c.kind == "passport_replaced"
            )
        ).all()
    assert [m.recipient for m in mails] == ["ada.lovelace@nhs.net"] * 2
    assert "employment credential" in mails[0].body and "identity credential" in mails[1].body
    # The credential collected afterwards attests the new record and stays valid.
    token = issuer.access_token()
    proof = holder.proof(issuer.nonce(), iat=issuer.clock.now())
    fresh = issuer.credential(token, proof, config="employment")
    assert fresh.is_success
    assert run() == {}


def test_rotated_key_stays_published_and_old_credentials_verify(issuer: Issuer) -> None:
    holder = Holder.new()
    token = issuer.access_token()
    first = issuer.credential(token, holder.proof(issuer.nonce(), iat=issuer.clock.now()))
    old_kid = issuer.client.get("/.well-known/jwt-vc-issuer").json()["jwks"]["keys"][0]["kid"]
    new_kid = pi.rotate_key(issuer.engine, actor="test", now=issuer.clock.now(), kek=issuer.kek)
    kids = [
        k["kid"] for k in issuer.client.get("/.well-known/jwt-vc-issuer").json()["jwks"]["keys"]
    ]
    assert kids == [new_kid, old_kid]
    _verify(issuer, first.json()["credentials"][0]["credential"], holder)
    with issuer.engine.connect() as conn:
        for jwk, blob in conn.execute(
            sa.select(
                s.passport_issuer_key.c.public_jwk, s.passport_issuer_key.c.private_key_encrypted
            )
        ):
            assert "d" not in jwk and blob.startswith("v1.")
