"""The demo's Digital Staff Passport step (issue 7): one instance plays both organisations.

A doctor in training at RXL collects their passport credentials into a reference wallet
(:mod:`pasa.wallet`, a directory under the var dir), RYJ — which trusts this instance's issuer
for employment and identity — asks for them, the wallet presents with selective disclosure,
and RYJ gets a pre-hire person with pre-provisioning planned.

Everything runs in-process: the wallet talks to the ASGI app through Starlette's test
transport (no network port), and RYJ's verifier fetches the issuer's keys and status list
through the same transport. The demo's clock is fixed at 09:00 UTC on ``today``.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
from typing import Any, cast
from urllib.parse import urlencode, urlsplit

import httpx
import sqlalchemy as sa
from fastapi.testclient import TestClient
from rich.console import Console
from sqlalchemy.engine import Engine

from pasa.clock import FixedClock
from pasa.config import get_settings
from pasa.passport.keys import KEK_ENV, KeyEncryptionKey
from pasa.service import passport_issuer as pi
from pasa.service import passport_verifier as pv
from pasa.store import schema as s
from pasa.wallet import issuance, presentation
from pasa.wallet.store import WalletStore

ISSUER_ORG, RECEIVER = "RXL", "RYJ"
RECEIVER_NAME = "Imperial College Healthcare NHS Trust"
POST = ("RYJ-ST3-GIM", "Specialty Registrar (ST3), General Internal Medicine")
MEDICAL_STAFF_GROUP = "01"  # ESR's Medical and Dental staff group
TRAINING_ROLES = ("01014", "01015", "01016", "01017")  # foundation, core, specialty registrar
WALLET_PASSPHRASE = "demo wallet passphrase"  # noqa: S105 (a demo wallet, nothing to protect)
START_IN_DAYS = 5  # inside the directory's pre-hire window, so accounts are planned today


def _kek(console: Console) -> KeyEncryptionKey:
    """The passport key-encryption key; a demo without one gets one kept in the var dir."""
    if os.environ.get(KEK_ENV):
        return KeyEncryptionKey.from_env()
    path = get_settings().var_dir / "passport-kek"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(KeyEncryptionKey.generate())
    os.environ[KEK_ENV] = path.read_text().strip()
    console.print(f"  passport key-encryption key: {path} (export it as {KEK_ENV} to serve)")
    return KeyEncryptionKey.from_env()


def _doctor(engine: Engine, today: dt.date) -> Any:
    """A current RXL member of staff with a birth date: a doctor in training if there is one."""
    p, a, o, pos = s.person, s.assignment, s.organisation, s.position
    query = (
        sa.select(p.c.id, p.c.first_name, p.c.last_name, pos.c.title)
        .join(a, a.c.person_id == p.c.id)
        .join(o, o.c.id == a.c.organisation_id)
        .join(pos, pos.c.id == a.c.position_id)
        .where(o.c.ods_code == ISSUER_ORG, p.c.date_of_birth.is_not(None))
        .where(a.c.status == "Active Assignment", a.c.start_date <= today)
        .where(sa.or_(a.c.end_date.is_(None), a.c.end_date >= today))
        .order_by(
            pos.c.job_role_code.in_(TRAINING_ROLES).desc(),
            (pos.c.staff_group == MEDICAL_STAFF_GROUP).desc(),
            p.c.id,
        )
        .limit(1)
    )
    with engine.connect() as conn:
        row = conn.execute(query).first()
    if row is None:
        raise LookupError(f"no current member of staff at {ISSUER_ORG} to give a passport to")
    return row


def _receiver(engine: Engine, now: dt.datetime) -> None:
    """RYJ and the post the doctor will start in (once per hub)."""
    o, pos = s.organisation, s.position
    with engine.begin() as conn:
        org = conn.scalar(sa.select(o.c.id).where(o.c.ods_code == RECEIVER))
        if org is None:
            org = conn.execute(
                o.insert()
                .values(ods_code=RECEIVER, name=RECEIVER_NAME, created_at=now)
                .returning(o.c.id)
            ).scalar_one()
        if conn.scalar(sa.select(pos.c.id).where(pos.c.organisation_id == org)) is None:
            site = conn.execute(
                s.site.insert()
                .values(organisation_id=org, code="SMH", name="St Mary's Hospital")
                .returning(s.site.c.id)
            ).scalar_one()
            dept = conn.execute(
                s.department.insert()
                .values(
                    organisation_id=org, code="GIM", name="General Medicine", cost_centre="RYJ100"
                )
                .returning(s.department.c.id)
            ).scalar_one()
            conn.execute(
                pos.insert().values(
                    organisation_id=org,
                    position_number=POST[0],
                    title=POST[1],
                    staff_group=MEDICAL_STAFF_GROUP,
                    job_role_code="01016",
                    area_of_work="General Medicine",
                    occupation_code="C1A",
                    grade_code="ST3",
                    department_id=dept,
                    site_id=site,
                )
            )


def passport_demo(engine: Engine, console: Console, today: dt.date, actor: str) -> None:
    """Show the passport end to end in this instance (see the module docstring)."""
    from pasa.web.app import create_app  # the web layer only for its in-process transport

    now = dt.datetime.combine(today, dt.time(9, 0), tzinfo=dt.UTC)
    console.rule(f"Digital Staff Passport: {ISSUER_ORG} to {RECEIVER}")
    kek = _kek(console)
    issuer = pi.issuer_identifier()
    host = urlsplit(issuer).hostname or ""
    if issuer.startswith("http://") and host in {"localhost", "127.0.0.1", "::1"}:
        # The single-machine demo serves plain http on this machine (PASA_PUBLIC_URL unset):
        # the verifier may then trust and fetch from loopback http, and only from there.
        os.environ.setdefault("PASA_PASSPORT_VERIFIER_ALLOW_LOOPBACK_HTTP", "true")
        console.print(f"  issuer {issuer}: plain http on this machine, allowed for the demo only")
    doctor = _doctor(engine, today)
    _receiver(engine, now)
    pv.add_trusted_issuer(
        engine,
        issuer,
        organisation_code=ISSUER_ORG,
        types=["employment", "identity"],
        actor=actor,
        now=now,
    )
    console.print(f"  {RECEIVER} trusts {issuer} ({ISSUER_ORG}) for employment and identity")

    app = create_app(engine, clock=FixedClock(now))
    wallet_dir = get_settings().var_dir / "demo" / "wallet"
    shutil.rmtree(wallet_dir, ignore_errors=True)
    wallet_dir.parent.mkdir(parents=True, exist_ok=True)
    store = WalletStore.create(wallet_dir, WALLET_PASSPHRASE)
    # Starlette's in-process transport: the ASGI app answers, whatever host the URL names.
    # Not entered as a context manager: that would start the app's schedulers (lifespan).
    http = cast(httpx.Client, TestClient(app, base_url=issuer))
    try:
        offer = pi.create_offer(engine, doctor.id, issuer=issuer, actor=actor, now=now, kek=kek)
        held = issuance.receive(store, offer.uri, tx_code=offer.tx_code, now=lambda: now, http=http)
        console.print(
            f"  {doctor.first_name} {doctor.last_name} ({doctor.title}, {ISSUER_ORG}) collected "
            f"{len(held)} credentials ({', '.join(h.vct.rsplit(':', 2)[-2] for h in held)}) "
            f"into the wallet {wallet_dir}"
        )

        start = today + dt.timedelta(days=START_IN_DAYS)
        asked = pv.create_request(
            engine,
            organisation=RECEIVER,
            given_name=str(doctor.first_name),
            family_name=str(doctor.last_name),
            start_date=start,
            position_number=POST[0],
            actor=actor,
            public_url=issuer,
            now=now,
        )
        request = presentation.parse_request(asked.uri)
        matches = presentation.match(request, store.credentials(), now)
        shown = sum(len(m.disclose) for m in matches)
        console.print(
            f"  {RECEIVER} asked for {', '.join(q.id for q in request.queries)}; the wallet "
            f"discloses {shown} claims (never the NHS number or home details)"
        )
        body = urlencode(
            {
                "vp_token": json.dumps(presentation.vp_token(store, request, matches, now)),
                "state": request.state,
            }
        ).encode()
        # The verifier fetches the issuer's keys and status list through the same transport;
        # the demo issuer may be plain http on this machine.
        fetcher = pv.Fetcher(
            settings=pv.VerifierSettings(allow_loopback_http=True),
            transport=_Through(http),
        )
        outcome = pv.receive_response(engine, body, public_url=issuer, now=now, fetcher=fetcher)
    finally:
        http.close()
    if not outcome.accepted:
        console.print(f"  [red]{RECEIVER} refused the passport: {outcome.reason}[/red]")
        return
    with engine.connect() as conn:
        operations = conn.scalar(
            sa.select(sa.func.count())
            .select_from(s.operation)
            .where(s.operation.c.person_id == outcome.person_id)
        )
    console.print(
        f"  {RECEIVER} verified it: pre-hire person {outcome.person_id} in {POST[1]} from "
        f"{start:%-d %B}, {operations} provisioning operations planned "
        f"(/people/{outcome.person_id}/readiness); ESR's record will link to them on import"
    )


class _Through(httpx.BaseTransport):
    """An httpx transport answering through ``client`` (the in-process ASGI app)."""

    def __init__(self, client: httpx.Client) -> None:
        self.client = client

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        answer = self.client.request(
            request.method, str(request.url), headers=request.headers, content=request.read()
        )
        # The body is already decoded: drop what described its encoding on the wire.
        headers = [
            (k, v)
            for k, v in answer.headers.items()
            if k.lower() not in {"content-encoding", "content-length", "transfer-encoding"}
        ]
        return httpx.Response(answer.status_code, headers=headers, content=answer.content)
