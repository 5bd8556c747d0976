"""The receiving organisation's passport page in Chromium: the identity team asks for a
starter's passport, the starter's wallet (pasa.wallet, over HTTP to the live app, which
trusts its own issuer) presents it, and the page shows the outcome as it arrives (htmx)."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
from playwright.sync_api import Page, expect
from test_pages import assert_accessible, screenshot, sign_in_as

from conftest import LiveApp
from pasa.passport.keys import KEK_ENV, KeyEncryptionKey
from pasa.service import passport_issuer as pi
from pasa.service import passport_verifier as pv
from pasa.store import schema as s
from pasa.wallet import issuance, presentation
from pasa.wallet.store import WalletStore
from pasa.web.pages.views import personas


@pytest.fixture
def wallet(
    live_app: LiveApp, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[WalletStore]:
    monkeypatch.setenv(KEK_ENV, KeyEncryptionKey.generate())
    monkeypatch.setenv("PASA_PASSPORT_VERIFIER_ALLOW_LOOPBACK_HTTP", "true")
    now = dt.datetime.now(dt.UTC)
    a, p = s.assignment, s.person
    # Not a sign-in persona: other browser tests expect theirs to hold no credentials.
    taken = [x.subject for x in personas(live_app.engine, live_app.today) if x.subject]
    with live_app.engine.connect() as conn:
        holder = conn.scalar(
            sa.select(p.c.id)
            .join(a, a.c.person_id == p.c.id)
            .where(p.c.date_of_birth.is_not(None), a.c.end_date.is_(None))
            .where(a.c.status == "Active Assignment", a.c.start_date <= live_app.today)
            .where(sa.or_(p.c.email.is_(None), p.c.email.not_in(taken)))
            .order_by(p.c.id.desc())
            .limit(1)
        )
    offer = pi.create_offer(
        live_app.engine,
        int(holder),
        issuer=live_app.url,
        actor="tests",
        now=now,
        kek=KeyEncryptionKey.from_env(),
    )
    store = WalletStore.create(tmp_path / "wallet", "wallet passphrase")
    with httpx.Client(timeout=30) as http:
        issuance.receive(store, offer.uri, tx_code=offer.tx_code, http=http)
    pv.add_trusted_issuer(
        live_app.engine,
        live_app.url,
        organisation_code="RXL",
        types=["employment", "identity"],
        actor="tests",
        now=now,
    )
    yield store
    pv.remove_trusted_issuer(live_app.engine, live_app.url, actor="tests", now=now)


def test_identity_team_verifies_a_starters_passport(
    page: Page, live_app: LiveApp, wallet: WalletStore
) -> None:
    sign_in_as(page, "identity team")
    page.get_by_role("link", name="Passport").first.click()
    page.wait_for_url(re.compile(r"/passport/verify$"))
    assert_accessible(page)
    page.get_by_label("First name").fill("Ada")
    page.get_by_label("Last name").fill("Lovelace")
    page.get_by_label("Start date").fill((live_app.today + dt.timedelta(days=5)).isoformat())
    page.get_by_label("Post they will start in").select_option(index=1)
    page.get_by_role("button", name="Create passport request").click()
    page.wait_for_url(re.compile(r"/passport/verify/[A-Za-z0-9_-]+$"))
    assert_accessible(page)
    expect(page.get_by_role("img", name="QR code of the passport request")).to_be_visible()
    expect(page.get_by_text("Waiting for the starter", exact=True)).to_be_visible()

    link = page.locator("#request-link").get_attribute("href")
    assert link and link.startswith("openid4vp://")
    request = presentation.parse_request(link)
    matches = presentation.match(request, wallet.credentials(), dt.datetime.now(dt.UTC))
    with httpx.Client(timeout=30) as http:
        presentation.respond(wallet, request, matches, now=dt.datetime.now(dt.UTC), http=http)

    # htmx swaps the outcome in without a reload.
    expect(page.get_by_text("Verified", exact=True)).to_be_visible(timeout=15_000)
    expect(page.get_by_role("link", name=re.compile("readiness"))).to_be_visible()
    expect(page.get_by_text(f"Issued by {live_app.url} (RXL)").first).to_be_visible()
    assert_accessible(page)
    screenshot(page, "passport-verify")

    page.set_viewport_size({"width": 360, "height": 740})
    page.get_by_role("link", name=re.compile("readiness")).click()
    page.wait_for_url(re.compile(r"/people/\d+/readiness$"))
