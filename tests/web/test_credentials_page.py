"""My credentials: a staff member sees their own passport credentials with their status, gets
an offer as a QR code, reveals its transaction code once on a separate step, and collects the
credentials with the reference wallet. Nobody else's credentials are reachable."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine

from pasa.config import Settings
from pasa.hr.importer import import_extract
from pasa.hr.synthetic import generate_workforce
from pasa.passport.keys import KEK_ENV, KeyEncryptionKey
from pasa.service import access
from pasa.service import passport_issuer as pi
from pasa.store import schema as s
from pasa.wallet import issuance
from pasa.wallet.store import WalletStore
from pasa.web.app import create_app
from support.web_session import sign_in

ISSUER = "https://testserver"


def _staff(engine: Engine, tmp_path: Path) -> list[tuple[int, str]]:
    """(person id, e-mail) of people working today, from a synthetic ESR extract."""
    today = dt.date.today()
    generate_workforce(tmp_path / "esr.csv", staff=100, org="RXL", seed=11, as_of=today)
    import_extract(engine, tmp_path / "esr.csv", actor="tests", as_of=today)
    p, a = s.person, s.assignment
    with engine.connect() as conn:
        found = conn.execute(
            sa.select(p.c.id, p.c.email)
            .join(a, a.c.person_id == p.c.id)
            .where(p.c.email.is_not(None), a.c.start_date <= today, a.c.end_date.is_(None))
            .where(a.c.status == "Active Assignment", p.c.date_of_birth.is_not(None))
            .group_by(p.c.id, p.c.email)
            .order_by(p.c.id)
            .limit(2)
        ).all()
    return [(int(r.id), str(r.email).lower()) for r in found]


def _post(client: TestClient, path: str, page: str | None = None) -> str:
    """Press the page's button for ``path``: its form must carry the CSRF field itself."""
    page = page if page is not None else client.get("/my-credentials").text
    form = re.search(
        rf'<form method="post" action="{re.escape(path)}"[^>]*>\s*'
        r"<input type='hidden' name='csrf_token' value='([^']+)'>",
        page,
    )
    assert form, page
    response = client.post(path, data={"csrf_token": form.group(1)})
    return f"{response.status_code}\n{response.headers.get('cache-control')}\n{response.text}"


def _table(page: str) -> list[list[str]]:
    body = page.split("<tbody", 1)[1].split("</tbody>", 1)[0] if "<tbody" in page else ""
    rows = re.findall(r"<tr class=\"nhsuk-table__row\">(.*?)</tr>", body, re.S)
    return [
        [
            re.sub(r"<[^>]+>|\s+", " ", cell).strip()
            for cell in re.findall(r"<td[^>]*>(.*?)</td>", r, re.S)
        ]
        for r in rows
    ]


@pytest.fixture
def setup(
    engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> tuple[TestClient, TestClient, list[tuple[int, str]]]:
    monkeypatch.setenv(KEK_ENV, KeyEncryptionKey.generate())
    monkeypatch.delenv("PASA_PUBLIC_URL", raising=False)
    people = _staff(engine, tmp_path)
    settings = Settings(dev_signin=True, session_secret="k" * 40, signin_rate_limit=0)
    app = create_app(engine, settings=settings)
    # The browser (a session) and the wallet (no session, as a phone would be) apart.
    return TestClient(app, base_url=ISSUER), TestClient(app, base_url=ISSUER), people


def _collect(wallet_http: TestClient, tmp_path: Path, name: str, uri: str, code: str) -> int:
    store = WalletStore.create(tmp_path / name, "wallet passphrase")
    return len(issuance.receive(store, uri, tx_code=code, http=wallet_http))


def test_own_credentials_with_status_and_an_offer_collected_by_the_wallet(
    setup: tuple[TestClient, TestClient, list[tuple[int, str]]], engine: Engine, tmp_path: Path
) -> None:
    browser, wallet_http, people = setup
    (me, my_email), (other, _) = people
    kek = KeyEncryptionKey.from_env()
    # Someone else's credentials, which must never show on my page.
    theirs = pi.create_offer(
        engine, other, issuer=ISSUER, actor="t", now=pi.dt.datetime.now(pi.dt.UTC), kek=kek
    )
    # Employment, identity and, when ESR holds a registration number, professional
    # registration: the wallet collects every credential offered.
    assert {"employment", "identity"} <= set(theirs.configuration_ids)
    collected = _collect(wallet_http, tmp_path, "theirs", theirs.uri, theirs.tx_code)
    # At least one per configuration: employment is one credential per current assignment.
    assert collected >= len(theirs.configuration_ids)

    sign_in(browser, my_email, follow_redirects=True)
    empty = browser.get("/my-credentials")
    assert empty.status_code == 200
    assert "No passport credentials have been issued to you yet" in empty.text
    assert _table(empty.text) == []

    offered = _post(browser, "/my-credentials/offer")
    status, cache, page = offered.split("\n", 2)
    assert (status, cache) == ("200", "no-store")
    assert '<svg role="img" aria-label="QR code of your offer"' in page and "<path" in page
    link = re.search(r'href="(openid-credential-offer://[^"]+)"', page)
    assert link, page
    uri = link.group(1).replace("&amp;", "&")
    assert "transaction code" in page and 'id="tx-code"' not in page

    revealed = _post(browser, "/my-credentials/offer/code", page)
    status, cache, page = revealed.split("\n", 2)
    assert (status, cache) == ("200", "no-store")
    code = re.search(r'id="tx-code">(\d{6})<', page)
    assert code, page
    assert code.group(1) not in offered  # never on the page with the QR code
    again = _post(browser, "/my-credentials/offer/code", offered)
    assert again.startswith("409") and "already been shown" in again and code.group(1) not in again

    with engine.connect() as conn:
        mine_offered = conn.scalar(
            sa.select(s.passport_offer.c.configuration_ids)
            .where(s.passport_offer.c.person_id == me)
            .order_by(s.passport_offer.c.id.desc())
            .limit(1)
        )
    assert _collect(wallet_http, tmp_path, "mine", uri, code.group(1)) >= len(mine_offered)
    with engine.connect() as conn:
        identity_uid = conn.scalar(
            sa.select(s.passport_credential.c.uid).where(
                s.passport_credential.c.person_id == me,
                s.passport_credential.c.vct.like("%identity%"),
            )
        )
    pi.set_state(
        engine,
        str(identity_uid),
        pi.SUSPENDED,
        actor="t",
        reason="check",
        issuer=ISSUER,
        now=pi.dt.datetime.now(pi.dt.UTC),
        kek=kek,
    )
    rows = _table(browser.get("/my-credentials").text)
    registered = [("Professional", "Valid")] if "professional_registration" in mine_offered else []
    assert sorted(set((r[0].split(" ")[0], r[3]) for r in rows)) == [
        ("Identity", "Suspended"),
        ("NHS", "Valid"),
        *registered,
    ]
    with engine.connect() as conn:
        mine_issued = conn.scalar(
            sa.select(sa.func.count())
            .select_from(s.passport_credential)
            .where(s.passport_credential.c.person_id == me)
        )
    assert len(rows) == mine_issued  # only mine, though the other's exist too

    # The HR record changed: the lifecycle revoked it as superseded; the page says to collect.
    pi.set_state(
        engine,
        str(identity_uid),
        pi.REVOKED,
        actor="t",
        reason=pi.SUPERSEDED,
        issuer=ISSUER,
        now=pi.dt.datetime.now(pi.dt.UTC),
        kek=kek,
    )
    rows = _table(browser.get("/my-credentials").text)
    assert ("Identity", "Replaced: collect the new one") in {
        (r[0].split(" ")[0], r[3]) for r in rows
    }


def test_only_the_person_themself(
    setup: tuple[TestClient, TestClient, list[tuple[int, str]]], engine: Engine
) -> None:
    browser, _, people = setup
    access.grant_role(engine, "admin@nhs.net", "org_admin", organisation="RXL", actor="t")
    # Identity team, no HR record of their own.
    sign_in(browser, "admin@nhs.net", follow_redirects=True)
    refused = browser.get("/my-credentials")
    assert refused.status_code == 403 and "not linked to an HR record" in refused.text
    assert browser.get(f"/people/{people[1][0]}/credentials").status_code == 404
    no_csrf = browser.post("/my-credentials/offer")
    assert no_csrf.status_code == 403
    with engine.connect() as conn:
        assert conn.scalar(sa.select(sa.func.count()).select_from(s.passport_offer)) == 0
    anonymous = TestClient(browser.app, base_url=ISSUER)
    assert anonymous.get("/my-credentials", follow_redirects=False).status_code == 303
