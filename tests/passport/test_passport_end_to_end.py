"""Two PASA deployments over real HTTP: trust A issues a passport, trust B verifies it.

A and B are each ``create_app`` served by uvicorn on a free port with its own hub (both on
SQLite, or both on PostgreSQL). The staff member's wallet is played by this test with
``sdjwt.present``: offer → token (pre-authorized code + transaction code) → nonce →
credential (proof JWT from the holder key) at A; B's verification request → a selectively
disclosed presentation posted to B's response_uri → B checks it (A's keys from
``/.well-known/jwt-vc-issuer``, A's status list over HTTP) → a pre-hire person at B with a
provisional assignment and pre-provisioning operations planned for B's targets.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import shutil
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
import sqlalchemy as sa
from joserfc.jwk import ECKey
from sqlalchemy.engine import Engine

from pasa.clock import local_date
from pasa.hr.esr_columns import COLUMNS
from pasa.hr.importer import import_extract
from pasa.passport._jose import public_jwk, sign_jws
from pasa.passport.keys import KEK_ENV, KeyEncryptionKey
from pasa.passport.sdjwt import present
from pasa.policy.document import load_policy_file
from pasa.service import access
from pasa.service import passport_issuer as pi
from pasa.service import passport_verifier as pv
from pasa.store import schema as s
from pasa.store.db import make_engine, migrate, normalise_url
from pasa.store.policy_repo import save_policy
from pasa.web.app import create_app
from support.hub_world import add_organisation, add_passport_holder, add_position
from support.served import served

REPO = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Served:
    url: str
    engine: Engine


@pytest.fixture
def hub_b(db_url: str, tmp_path: Path) -> Iterator[Engine]:
    """A second, empty, migrated hub on the same backend as ``engine``."""
    if db_url.startswith("sqlite"):
        source = Path(db_url.removeprefix("sqlite:///"))
        path = tmp_path / "trust-b.db"
        shutil.copyfile(source, path)
        eng = make_engine(f"sqlite:///{path}")
        yield eng
        eng.dispose()
        return
    admin = make_engine(db_url, isolation_level="AUTOCOMMIT")
    name = f"pasa_test_b_{uuid.uuid4().hex[:10]}"
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    url = sa.engine.make_url(normalise_url(db_url)).set(database=name)
    eng = make_engine(url.render_as_string(hide_password=False))
    migrate(eng)
    yield eng
    eng.dispose()
    with admin.connect() as conn:
        conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    admin.dispose()


def seed_trust_a(engine: Engine, now: dt.datetime) -> int:
    with engine.begin() as conn:
        return add_passport_holder(conn, at=now)


def seed_trust_b(engine: Engine, now: dt.datetime) -> None:
    with engine.begin() as conn:
        org = add_organisation(conn, "RXN", name="Lancashire Teaching Hospitals", at=now)
        add_position(conn, org, number="N-5-12", title="Staff Nurse, Ward 12")
        save_policy(
            conn, load_policy_file(REPO / "examples" / "policy.yaml"), source="tests", actor="tests"
        )


@dataclass
class Wallet:
    """The holder's side, by hand: a P-256 key, proofs, presentations."""

    key: ECKey
    http: httpx.Client

    def credential(self, issuer: str, token: str, config: str) -> str:
        nonce = self.http.post(f"{issuer}/passport/nonce").json()["c_nonce"]
        proof = sign_jws(
            {"alg": "ES256", "typ": "openid4vci-proof+jwt", "jwk": public_jwk(self.key)},
            {"aud": issuer, "iat": int(time.time()), "nonce": nonce},
            self.key,
        )
        response = self.http.post(
            f"{issuer}/passport/credential",
            headers={"Authorization": f"Bearer {token}"},
            json={"credential_configuration_id": config, "proofs": {"jwt": [proof]}},
        )
        assert response.status_code == 200, response.text
        return str(response.json()["credentials"][0]["credential"])

    def answer(self, request_uri: str, held: dict[str, str]) -> tuple[str, dict[str, str]]:
        params = {k: v[0] for k, v in parse_qs(urlsplit(request_uri).query).items()}
        client_id, response_uri = params["client_id"], params["response_uri"]
        assert client_id == "redirect_uri:" + response_uri  # the wallet's own check
        vp_token: dict[str, list[str]] = {}
        for query in json.loads(params["dcql_query"])["credentials"]:
            paths = [tuple(claim["path"]) for claim in query["claims"]]
            vp_token[query["id"]] = [
                present(
                    held[query["id"]],
                    holder_key=self.key,
                    audience=client_id,
                    nonce=params["nonce"],
                    paths=paths,
                )
            ]
        return response_uri, {"vp_token": json.dumps(vp_token), "state": params["state"]}


def test_a_passport_from_trust_a_pre_provisions_the_starter_at_trust_b(
    engine: Engine, hub_b: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # B's example targets are SQLite files under ./var
    monkeypatch.setenv(KEK_ENV, KeyEncryptionKey.generate())
    monkeypatch.delenv("PASA_PUBLIC_URL", raising=False)
    monkeypatch.setenv("PASA_PASSPORT_VERIFIER_ALLOW_LOOPBACK_HTTP", "true")
    now = dt.datetime.now(dt.UTC)
    person_a = seed_trust_a(engine, now)
    seed_trust_b(hub_b, now)
    with served(create_app(engine)) as url_a, served(create_app(hub_b)) as url_b:
        _flow(Served(url_a, engine), Served(url_b, hub_b), person_a, now)


def _esr_extract(path: Path, start: dt.date) -> Path:
    """B's ESR extract once HR has entered the starter (one row)."""
    row = {
        "Org_Code": "RXN",
        "Employee_Number": "20020002",
        "Assignment_Number": "20020002",
        "Title": "Ms",
        "First_Name": "Ada",
        "Last_Name": "Lovelace",
        "Date_Of_Birth": "10/12/1990",
        "Primary_Assignment": "Y",
        "Assignment_Category": "Permanent",
        "Assignment_Status": "Active Assignment",
        "Assignment_Start_Date": start.strftime("%d/%m/%Y"),
        "Position_Number": "N-5-12",
        "Position_Title": "Staff Nurse, Ward 12",
        "Staff_Group": "03",
        "Job_Role_Code": "03001",
        "Area_Of_Work": "General Medicine",
        "Occupation_Code": "N1A",
        "Grade_Code": "Band 5",
        "Department_Code": "W12",
        "Department_Name": "Ward 12",
        "Cost_Centre": "CC1",
        "Location_Code": "S1",
        "Location_Name": "Main site",
        "WTE": "1.00",
    }
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\r\n")
        writer.writerow(COLUMNS)
        writer.writerow([row.get(c, "") for c in COLUMNS])
    return path


def _flow(a: Served, b: Served, person_a: int, now: dt.datetime) -> None:
    http = httpx.Client(timeout=30)
    wallet = Wallet(ECKey.generate_key("P-256", private=True), http)

    # --- A issues: offer -> token (pre-authorized code + tx code) -> nonce -> credential.
    offer = pi.create_offer(
        a.engine, person_a, issuer=a.url, actor="hr-a", now=now, kek=KeyEncryptionKey.from_env()
    )
    offered = http.get(f"{a.url}/passport/offers/{offer.uid}").json()
    code = offered["grants"][pi.PRE_AUTHORIZED_GRANT]["pre-authorized_code"]
    token = http.post(
        f"{a.url}/passport/token",
        data={
            "grant_type": pi.PRE_AUTHORIZED_GRANT,
            "pre-authorized_code": code,
            "tx_code": offer.tx_code,
        },
    )
    assert token.status_code == 200, token.text
    access_token = token.json()["access_token"]
    held = {cfg: wallet.credential(a.url, access_token, cfg) for cfg in ("employment", "identity")}

    # --- B trusts A for employment and identity; its identity team asks for the starter.
    pv.add_trusted_issuer(
        b.engine,
        a.url,
        organisation_code="RXL",
        types=["employment", "identity"],
        actor="idteam-b",
        now=now,
    )
    team = access.create_token(
        b.engine,
        organisation="RXN",
        scopes=["hr:push", "api:read"],
        name="identity team",
        actor="tests",
    )
    auth = {"Authorization": f"Bearer {team.secret}"}
    start = local_date(now) + dt.timedelta(days=3)  # inside the directory's 7-day pre-hire window
    asked = http.post(
        f"{b.url}/api/v1/passport/verifications",
        headers=auth,
        json={
            "organisation": "RXN",
            "given_name": "Ada",
            "family_name": "Lovelace",
            "start_date": start.isoformat(),
            "position_number": "N-5-12",
        },
    )
    assert asked.status_code == 201, asked.text
    request_uri = asked.json()["request_uri"]
    assert request_uri.startswith("openid4vp://?client_id=redirect_uri%3A")
    state = asked.json()["state"]

    # Nobody unauthenticated can ask.
    assert http.post(f"{b.url}/api/v1/passport/verifications", json={}).status_code == 401

    # --- The wallet answers; first an altered presentation (refused, recorded), then the real one.
    response_uri, body = wallet.answer(request_uri, held)
    assert response_uri == f"{b.url}/passport/verifier/response"
    tampered = dict(body)
    token_json = json.loads(body["vp_token"])
    jwt, *rest = token_json["employment"][0].split("~")
    tampered["vp_token"] = json.dumps({**token_json, "employment": ["~".join([jwt, *rest[1:]])]})
    refused = http.post(response_uri, data=tampered)
    assert refused.status_code == 400
    assert refused.json()["reason"] == "kb_sd_hash"

    accepted = http.post(response_uri, data=body)
    assert accepted.status_code == 200, accepted.text
    assert accepted.json() == {}
    replayed = http.post(response_uri, data=body)
    assert replayed.status_code == 400 and replayed.json()["reason"] == "kb_nonce"

    outcome = http.get(f"{b.url}/api/v1/passport/verifications/{state}", headers=auth).json()
    assert outcome["status"] == "accepted" and outcome["person"]
    assert [c["outcome"] for c in outcome["checks"]] == ["rejected", "accepted", "rejected"]
    relied = outcome["checks"][1]["relied_on"]
    assert relied["employment"]["issuer"] == a.url
    assert relied["employment"]["issuer_organisation"] == "RXL"
    assert "organisation_code" in relied["employment"]["claims"]
    assert "birthdate" in relied["identity"]["claims"]

    # --- B's hub: a pre-hire person, cross-referenced, with a provisional assignment.
    with b.engine.connect() as conn:
        person = conn.execute(sa.select(s.person).where(s.person.c.uid == outcome["person"])).one()
        assert (person.first_name, person.last_name) == ("Ada", "Lovelace")
        assert person.date_of_birth == dt.date(1990, 12, 10)
        ids = {
            (r.scheme, r.issuer, r.value)
            for r in conn.execute(
                sa.select(s.person_identifier).where(s.person_identifier.c.person_id == person.id)
            )
        }
        assert ("esr_assignment_number", "RXL", "E1001-1") in ids
        assignment = conn.execute(
            sa.select(s.assignment).where(s.assignment.c.person_id == person.id)
        ).one()
        assert assignment.start_date == start
        states = dict(
            conn.execute(
                sa.select(s.lifecycle_state.c.scope, s.lifecycle_state.c.state).where(
                    s.lifecycle_state.c.person_id == person.id
                )
            ).all()
        )
        assert states[""] == "pre_hire"
        ops = conn.execute(
            sa.select(s.operation.c.kind, s.target.c.key)
            .join(s.target, s.target.c.id == s.operation.c.target_id)
            .where(s.operation.c.person_id == person.id)
        ).all()
        assert ("create_account", "ad") in {(op.kind, op.key) for op in ops}, ops
        audit = conn.execute(
            sa.select(s.audit_log.c.action, s.audit_log.c.details).where(
                s.audit_log.c.action == "passport.verification.accepted"
            )
        ).one()
        details = audit.details if isinstance(audit.details, dict) else json.loads(audit.details)
        assert details["relied_on"]["employment"]["vct"] == "urn:nhs:pasa:passport:employment:1"
        cached = conn.execute(sa.select(s.passport_status_cache)).all()
        assert [row.uri.startswith(a.url) for row in cached] == [True]

    # --- B's ESR extract arrives with no explicit link step: the importer matches the new
    # record to the pre-hire person (family name, birth date, start date) and links it.
    extract = _esr_extract(Path.cwd() / "rxn.csv", start)
    imported = import_extract(b.engine, extract, actor="hr-b", as_of=local_date(now))
    assert imported.status == "applied", imported
    with b.engine.connect() as conn:
        people = (
            conn.execute(sa.select(s.person.c.id).where(s.person.c.last_name == "Lovelace"))
            .scalars()
            .all()
        )
        assert people == [person.id]  # linked, not duplicated
        numbers = (
            conn.execute(
                sa.select(s.assignment.c.assignment_number).where(
                    s.assignment.c.person_id == person.id
                )
            )
            .scalars()
            .all()
        )
        assert numbers == ["20020002"]
        linked = conn.execute(
            sa.select(s.audit_log.c.details).where(
                s.audit_log.c.action == "passport.verification.linked"
            )
        ).scalar_one()
        linked = linked if isinstance(linked, dict) else json.loads(linked)
        assert linked["matched_on"] == "family_name_birth_date_start_date"
        assert linked["state"] == state
    http.close()
