"""Operators rotate the passport signing key (`pasa passport keys rotate`): credentials signed
before still verify against the published keys, and the old key leaves
``/.well-known/jwt-vc-issuer`` only after the credentials it signed have expired."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import sqlalchemy as sa
from fastapi.testclient import TestClient
from typer.testing import CliRunner
from wallet_support import LiveIssuer

from pasa.cli.main import app
from pasa.clock import FixedClock
from pasa.passport.keys import jwks_resolver
from pasa.passport.sdjwt import present
from pasa.passport.vc import verify_credential
from pasa.service import passport_issuer as pi
from pasa.store import schema as s
from pasa.wallet import issuance, status
from pasa.wallet.store import WalletStore
from pasa.web.app import create_app

ISSUER = "https://testserver"
AUD = "redirect_uri:https://verifier.example/passport/verifier/response"


def _published(client: TestClient) -> list[str]:
    body = client.get("/.well-known/jwt-vc-issuer").json()
    assert body["issuer"] == ISSUER
    return [k["kid"] for k in body["jwks"]["keys"]]


def _verifies(client: TestClient, credential: str, store: WalletStore, now: dt.datetime) -> str:
    jwks = client.get("/.well-known/jwt-vc-issuer").json()["jwks"]
    shown = present(
        credential, holder_key=store.holder_key, audience=AUD, nonce="n1", iat=now, paths=[]
    )
    result = verify_credential(
        shown,
        issuer_keys=jwks_resolver({ISSUER: jwks}),
        now=now,
        audience=AUD,
        nonce_check=lambda n: n == "n1",
    )
    return result.vct


def test_rotation_keeps_old_credentials_verifiable_until_they_expire(
    live_issuer: LiveIssuer, tmp_path: Path
) -> None:
    engine = live_issuer.engine
    clock = FixedClock(dt.datetime.now(dt.UTC))
    client = TestClient(create_app(engine, clock=clock), base_url=ISSUER)
    store = WalletStore.create(tmp_path / "w", "wallet passphrase")
    offer = pi.create_offer(
        engine,
        live_issuer.person_id,
        issuer=ISSUER,
        actor="t",
        now=clock.now(),
        kek=live_issuer.kek,
    )
    held = issuance.receive(store, offer.uri, tx_code=offer.tx_code, http=client, now=clock.now)
    employment = next(h for h in held if h.configuration_id == "employment")
    (old_kid,) = _published(client)

    env = {
        "PASA_DATABASE_URL": engine.url.render_as_string(hide_password=False),
        "PASA_ACTOR": "ops",
    }
    rotated = CliRunner().invoke(app, ["passport", "keys", "rotate"], env=env)
    assert rotated.exit_code == 0, rotated.output
    new_kid = _published(client)[0]
    assert new_kid in rotated.output and new_kid != old_kid
    assert _published(client) == [new_kid, old_kid]
    with engine.connect() as conn:
        audited = conn.execute(
            sa.select(s.audit_log.c.actor).where(s.audit_log.c.action == "passport.key_rotated")
        ).all()
    assert [a.actor for a in audited] == ["ops"]

    # Signed before the rotation: still verifies, and its status is still readable.
    for h in held:
        assert _verifies(client, h.credential, store, clock.now()) == h.vct
    assert status.fetch_state(client, employment, clock.now()) == "valid"

    listed = CliRunner().invoke(app, ["passport", "keys", "list", "--json"], env=env)
    assert listed.exit_code == 0, listed.output
    keys = {k["kid"]: k for k in json.loads(listed.stdout)}
    latest_exp = max(dt.datetime.fromisoformat(h.expires_at) for h in held)
    assert keys[new_kid]["retired"] is None and keys[new_kid]["published_until"] == "current"
    until = dt.datetime.fromisoformat(keys[old_kid]["published_until"])
    assert until.replace(tzinfo=until.tzinfo or dt.UTC) == latest_exp + pi.KEY_GRACE
    assert keys[old_kid]["published_now"] is True

    clock.set(latest_exp + pi.KEY_GRACE - dt.timedelta(minutes=1))
    assert _published(client) == [new_kid, old_kid]
    clock.set(latest_exp + pi.KEY_GRACE + dt.timedelta(seconds=1))
    assert _published(client) == [new_kid]  # every credential it signed has expired
