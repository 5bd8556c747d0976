"""The receiving organisation's passport page: the identity team asks an expected starter for
their passport, shows the request as a QR code and a link, and sees the outcome — a pre-hire
person and what was relied on, or the specific reason it was refused.

The app is served on a loopback port (it is the issuer the starter's wallet collects from, and
the verifier fetches that issuer's keys and status list over HTTP); the pages are read with a
TestClient on the same app and database; the wallet is the reference holder (pasa.wallet).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from dataclasses import dataclass
from html import unescape
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine

from pasa.config import Settings
from pasa.passport.keys import KEK_ENV, KeyEncryptionKey
from pasa.policy.document import load_policy_file
from pasa.service import access
from pasa.service import passport_issuer as pi
from pasa.service import passport_verifier as pv
from pasa.store import schema as s
from pasa.store.policy_repo import save_policy
from pasa.wallet import issuance, presentation
from pasa.wallet.errors import WalletError
from pasa.wallet.store import WalletStore
from pasa.web.app import create_app
from support.hub_world import add_assignment, add_organisation, add_person, add_position
from support.served import served
from support.web_session import csrf, sign_in

TEAM, OTHER_TEAM, STAFF = "team@ryj.nhs.uk", "team@rxl.nhs.uk", "ada@nhs.net"
NOW = dt.datetime.now(dt.UTC)
REPO = Path(__file__).resolve().parents[2]


@dataclass
class World:
    url: str
    engine: Engine
    app: object
    wallet: WalletStore
    ryj_position: int
    rxl_position: int


@pytest.fixture
def world(engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    monkeypatch.setenv(KEK_ENV, KeyEncryptionKey.generate())
    monkeypatch.setenv("PASA_PASSPORT_VERIFIER_ALLOW_LOOPBACK_HTTP", "true")
    monkeypatch.delenv("PASA_PUBLIC_URL", raising=False)
    monkeypatch.chdir(tmp_path)  # the example policy's targets are SQLite files under ./var
    with engine.begin() as conn:
        save_policy(
            conn, load_policy_file(REPO / "examples" / "policy.yaml"), source="t", actor="t"
        )
        rxl = add_organisation(conn, "RXL", at=NOW, name="Blackpool Teaching Hospitals")
        ryj = add_organisation(conn, "RYJ", at=NOW, name="Imperial College Healthcare")
        rxl_pos = add_position(conn, rxl, number="RXL-1", title="Foundation Doctor")
        ryj_pos = add_position(conn, ryj, number="RYJ-7", title="Specialty Registrar")
        ada = add_person(
            conn,
            uid="ada",
            first="Ada",
            last="Lovelace",
            at=NOW,
            email=STAFF,
            date_of_birth=dt.date(1990, 12, 10),
        )
        add_assignment(
            conn,
            organisation_id=rxl,
            position_id=rxl_pos,
            person_id=ada,
            number="E1001-1",
            employee_number="E1001",
            start=dt.date(2024, 8, 7),
            at=NOW,
        )
    access.grant_role(engine, TEAM, "org_admin", organisation="RYJ", actor="t")
    access.grant_role(engine, OTHER_TEAM, "org_admin", organisation="RXL", actor="t")
    settings = Settings(
        dev_signin=True,
        session_secret="k" * 40,
        signin_rate_limit=0,
        session_cookie_secure=False,
    )
    app = create_app(engine, settings=settings)
    with served(app) as url:
        kek = KeyEncryptionKey.from_env()
        offer = pi.create_offer(engine, ada, issuer=url, actor="t", now=NOW, kek=kek)
        wallet = WalletStore.create(tmp_path / "wallet", "wallet passphrase")
        with httpx.Client(timeout=30) as http:
            assert len(issuance.receive(wallet, offer.uri, tx_code=offer.tx_code, http=http)) == 2
        pv.add_trusted_issuer(
            engine,
            url,
            organisation_code="RXL",
            types=["employment", "identity"],
            actor="t",
            now=NOW,
        )
        yield World(url, engine, app, wallet, ryj_pos, rxl_pos)


def _client(world: World, who: str) -> TestClient:
    client = TestClient(world.app, base_url=world.url)  # type: ignore[arg-type]
    sign_in(client, who, follow_redirects=True)
    return client


def _ask(client: TestClient, position: int, **fields: str) -> httpx.Response:
    token = csrf(client.get("/passport/verify").text)
    start = (NOW.date() + dt.timedelta(days=5)).isoformat()
    data = {"given_name": "Ada", "family_name": "Lovelace", "start_date": start}
    return client.post(
        "/passport/verify",
        data={"csrf_token": token, **data, "position": str(position), **fields},
        follow_redirects=False,
    )


def _present(world: World, page: str) -> None:
    found = re.search(r'href="(openid4vp://[^"]+)"', page)
    assert found, page
    request = presentation.parse_request(found.group(1).replace("&amp;", "&"))
    matches = presentation.match(request, world.wallet.credentials(), NOW)
    with httpx.Client(timeout=30) as http:
        presentation.respond(world.wallet, request, matches, now=dt.datetime.now(dt.UTC), http=http)


def _text(html: str) -> str:
    return re.sub(r"\s+", " ", unescape(re.sub(r"<[^>]+>", " ", html)))


def test_team_asks_shows_qr_and_sees_the_pre_hire_and_what_was_relied_on(world: World) -> None:
    team = _client(world, TEAM)
    form = team.get("/passport/verify")
    assert form.status_code == 200
    assert 'href="/passport/verify"' in form.text  # the header's "Passport" link
    assert "Specialty Registrar (RYJ-7)" in form.text
    assert "Foundation Doctor" not in form.text  # another organisation's post
    assert "No passport requests yet" in form.text

    asked = _ask(team, world.ryj_position)
    assert asked.status_code == 303
    location = asked.headers["location"]
    state = location.rsplit("/", 1)[1]
    page = team.get(location)
    assert page.status_code == 200
    assert '<svg role="img" aria-label="QR code of the passport request"' in page.text
    assert "Waiting for the starter" in page.text
    assert f'hx-get="/passport/verify/{state}/outcome"' in page.text  # polls while pending

    _present(world, page.text)
    outcome = team.get(f"/passport/verify/{state}/outcome")
    assert outcome.status_code == 200
    text = _text(outcome.text)
    assert "Verified" in text and "hx-get" not in outcome.text  # done: stops polling
    with world.engine.connect() as conn:
        person = conn.scalar(
            sa.select(s.passport_verifier_session.c.person_id).where(
                s.passport_verifier_session.c.state == state
            )
        )
    assert f'href="/people/{person}/readiness"' in outcome.text
    assert f"Issued by {world.url} (RXL)" in text
    assert "birthdate" in text and "organisation_code" in text
    # The QR code is gone once answered; the list shows the outcome.
    assert "QR code of the passport request" not in team.get(location).text
    listed = _text(team.get("/passport/verify").text)
    assert "Ada Lovelace" in listed and "Verified" in listed


def test_a_refused_presentation_shows_its_specific_reason(world: World) -> None:
    pv.remove_trusted_issuer(world.engine, world.url, types=["identity"], actor="t", now=NOW)
    team = _client(world, TEAM)
    location = _ask(team, world.ryj_position).headers["location"]
    page = team.get(location)
    with pytest.raises(WalletError, match="refused"):
        _present(world, page.text)
    outcome = team.get(location + "/outcome")
    text = _text(outcome.text)
    assert "Refused" in text and "issuer_not_trusted_for_type" in text
    assert "Nothing was created" in text
    assert "hx-get" in outcome.text  # the starter may still try again


def test_form_errors_are_specific(world: World) -> None:
    team = _client(world, TEAM)
    token = csrf(team.get("/passport/verify").text)
    bad = team.post(
        "/passport/verify",
        data={
            "csrf_token": token,
            "given_name": " ",
            "family_name": "L",
            "start_date": "2020-01-01",
        },
    )
    assert bad.status_code == 422
    text = _text(bad.text)
    assert "Enter the starter's first name" in text
    assert "The start date must be today or in the future" in text
    assert "Select the post they will start in" in text
    other_post = _ask(team, world.rxl_position)  # not a post of RYJ
    assert other_post.status_code == 422
    assert "Select one of the posts listed" in other_post.text


def test_only_the_identity_team_of_that_organisation(world: World) -> None:
    location = _ask(_client(world, TEAM), world.ryj_position).headers["location"]
    staff = _client(world, STAFF)
    assert staff.get("/passport/verify").status_code == 403
    assert staff.get(location).status_code == 403
    other = _client(world, OTHER_TEAM)
    assert other.get(location).status_code == 404
    assert other.get(location + "/outcome").status_code == 404
    assert "Ada Lovelace" not in other.get("/passport/verify").text
    assert _ask(other, world.ryj_position).status_code == 422  # RYJ's post is not offered
    anonymous = TestClient(world.app, base_url=world.url)  # type: ignore[arg-type]
    assert anonymous.get("/passport/verify", follow_redirects=False).status_code in {302, 303, 401}
