"""The offer's transaction code on a second channel: emailed to the work address through the
outbox and a real SMTP server (aiosmtpd), sealed while it waits, never logged, and not kept
once sent. The page says where it went; the wallet collects with the emailed code."""

from __future__ import annotations

import datetime as dt
import re
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine
from structlog.testing import capture_logs

from pasa.config import Settings
from pasa.passport.keys import KEK_ENV, KeyEncryptionKey
from pasa.service import notify
from pasa.service import passport_issuer as pi
from pasa.store import schema as s
from pasa.wallet import issuance
from pasa.wallet.store import WalletStore
from pasa.web.app import create_app
from support.hub_world import add_assignment, add_organisation, add_person, add_position
from support.smtp import Inbox, smtp_server
from support.web_session import csrf, sign_in

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "cli"))
from cli_helpers import run

ISSUER = "https://testserver"
EMAIL = "ada.lovelace@nhs.net"
NOW = dt.datetime.now(dt.UTC)


def _code_for(inbox: Inbox, address: str) -> str:
    [mail] = inbox.to(address)
    found = re.search(r"transaction code is (\d{6})", str(mail.get_payload(decode=True), "utf-8"))
    assert found, mail
    return found.group(1)


@pytest.fixture
def smtp() -> Iterator[tuple[Inbox, int]]:
    with smtp_server() as inbox:
        yield inbox, inbox.port


def _seed(engine: Engine, *, email: str | None = EMAIL) -> int:
    with engine.begin() as conn:
        org = add_organisation(conn, "RXL", at=NOW)
        position = add_position(conn, org)
        person = add_person(
            conn, uid="ada", first="Ada", last="Lovelace", at=NOW, email=email,
            date_of_birth=dt.date(1990, 12, 10),
        )  # fmt: skip
        add_assignment(
            conn,
            organisation_id=org,
            position_id=position,
            person_id=person,
            number="E1001-1",
            employee_number="E1001",
            start=dt.date(2024, 8, 7),
            at=NOW,
        )
    return person


def _outbox(engine: Engine) -> list[sa.Row[tuple[object, ...]]]:
    with engine.connect() as conn:
        return list(conn.execute(sa.select(s.notification).order_by(s.notification.c.id)).all())


def test_the_code_is_emailed_sealed_and_not_kept(
    engine: Engine, smtp: tuple[Inbox, int], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    inbox, port = smtp
    monkeypatch.setenv(KEK_ENV, KeyEncryptionKey.generate())
    monkeypatch.delenv("PASA_PUBLIC_URL", raising=False)
    _seed(engine)
    smtp_settings = Settings(smtp_host="127.0.0.1", smtp_port=port, smtp_from="pasa@nhs.net")
    settings = Settings(
        dev_signin=True,
        session_secret="k" * 40,
        signin_rate_limit=0,
        smtp_host="127.0.0.1",
        smtp_port=port,
    )
    app = create_app(engine, settings=settings)
    browser, wallet_http = TestClient(app, base_url=ISSUER), TestClient(app, base_url=ISSUER)
    sign_in(browser, EMAIL, follow_redirects=True)
    token = csrf(browser.get("/my-credentials").text)
    offered = browser.post("/my-credentials/offer", data={"csrf_token": token})
    assert offered.status_code == 200
    text = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", offered.text))
    assert f"We have emailed it to {EMAIL}" in text
    assert "Show my transaction code" not in text  # no reveal step: the email is the channel
    uri = re.search(r'href="(openid-credential-offer://[^"]+)"', offered.text)
    assert uri

    [queued] = _outbox(engine)
    assert (queued.kind, queued.recipient, queued.status) == ("passport_tx_code", EMAIL, "pending")
    with capture_logs() as logs:
        report = notify.send_pending(engine, smtp_settings)
    assert report.sent == 1
    code = _code_for(inbox, EMAIL)
    assert code not in str(queued.body)  # sealed while it waited
    [sent] = _outbox(engine)
    assert (sent.status, sent.body) == ("sent", notify.REDACTED)  # not kept once sent
    assert code not in repr(logs) and code not in offered.text

    store = WalletStore.create(tmp_path / "wallet", "wallet passphrase")
    held = issuance.receive(
        store, uri.group(1).replace("&amp;", "&"), tx_code=code, http=wallet_http
    )
    assert len(held) == 2


def test_without_smtp_the_sealed_code_is_never_logged(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(KEK_ENV, KeyEncryptionKey.generate())
    kek = KeyEncryptionKey.from_env()
    person = _seed(engine)
    offer = pi.create_offer(engine, person, issuer=ISSUER, actor="t", now=NOW, kek=kek)
    with engine.begin() as conn:
        notify.queue_sealed(conn, notify.tx_code(EMAIL, offer.tx_code, offer.expires_at), kek)
    with capture_logs() as logs:
        assert notify.send_pending(engine, Settings(smtp_host=None)).logged == 1
    assert offer.tx_code not in repr(logs)
    [row] = _outbox(engine)
    assert (row.status, row.body) == ("logged", notify.REDACTED)


def test_cli_offer_with_email_queues_the_code_and_prints_only_the_uri(
    engine: Engine,
    db_url: str,
    smtp: tuple[Inbox, int],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    inbox, port = smtp
    monkeypatch.setenv(KEK_ENV, KeyEncryptionKey.generate())
    monkeypatch.setenv("PASA_PUBLIC_URL", ISSUER)
    _seed(engine)
    monkeypatch.delenv("PASA_SMTP_HOST", raising=False)
    refused = run(tmp_path, db_url, "passport", "offer", "E1001", "--email", ok=False)
    assert refused.returncode == 1 and "PASA_SMTP_HOST" in refused.stderr

    monkeypatch.setenv("PASA_SMTP_HOST", "127.0.0.1")
    monkeypatch.setenv("PASA_SMTP_PORT", str(port))
    done = run(tmp_path, db_url, "passport", "offer", "E1001", "--email")
    assert done.stdout.startswith("openid-credential-offer://")
    assert "transaction code" not in done.stdout
    assert f"queued for email to {EMAIL}" in done.stderr
    notify.send_pending(
        engine, Settings(smtp_host="127.0.0.1", smtp_port=port, smtp_from="pasa@nhs.net")
    )
    assert re.fullmatch(r"\d{6}", _code_for(inbox, EMAIL))
    # Scripts keep the default: the code on stdout.
    plain = run(tmp_path, db_url, "passport", "offer", "E1001")
    assert re.search(r"^transaction code: \d{6}$", plain.stdout, re.M)
