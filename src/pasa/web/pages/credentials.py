"""My credentials: the Digital Staff Passport credentials held, their status, and an offer QR
code to collect them into a wallet (issue 7).

* ``GET /my-credentials`` — the signed-in person's issued credentials (type, issued, expires,
  valid / suspended / revoked / expired) and a "Get my passport credentials" button.
* ``POST /my-credentials/offer`` — creates a Credential Offer for them
  (:func:`pasa.service.passport_issuer.create_offer`) and shows it as a QR code and a link.
* The offer's transaction code is its second factor, so it is never on the page with the QR
  code: it is emailed to the person's work address (sealed in the outbox, see
  :mod:`pasa.service.notify`) and the page says where it went.
* ``POST /my-credentials/offer/code`` — only when there is no address (or no SMTP server):
  reveals the code, once, on a separate step. Between the two requests it waits in the
  session encrypted with the passport KEK (the session cookie is signed, not encrypted).

Only the person themself: there is no page for anyone else's credentials. Pages carrying an
offer or code are ``Cache-Control: no-store`` (set by :func:`render`).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import segno
import sqlalchemy as sa
from fastapi import APIRouter, Request
from fastapi.responses import Response
from markupsafe import Markup, escape
from sqlalchemy.engine import Engine

from pasa.domain.access import Action, Principal, Resource
from pasa.domain.errors import PasaError
from pasa.passport.keys import KeyEncryptionKey
from pasa.service import notify
from pasa.service import passport_issuer as pi
from pasa.store import schema as s
from pasa.web.pages.rendering import PageRoute, render
from pasa.web.passport import issuer_of
from pasa.web.security import AccessDenied, authorize, clock_of, current_principal, engine_of

router = APIRouter(include_in_schema=False, route_class=PageRoute)

TITLE = "My credentials"
PENDING_KEY = "passport_offer"  # session: the offer waiting for its code to be revealed


@dataclass(frozen=True, slots=True)
class CredentialRow:
    kind: str
    detail: str | None
    issued: dt.datetime
    expires: dt.datetime
    status: str  # valid / suspended / revoked / replaced / expired


def _self(request: Request) -> tuple[Principal, int]:
    principal = current_principal(request)
    if principal.person_id is None:
        raise AccessDenied(
            403,
            "Your sign-in is not linked to an HR record, so PASA has no passport credentials "
            "for you. Ask the identity team to link it.",
        )
    authorize(principal, Action.READ_ACCESS, Resource.of(person_id=principal.person_id))
    return principal, principal.person_id


def _aware(value: dt.datetime) -> dt.datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=dt.UTC)


def _kinds(issuer: str) -> dict[str, str]:
    """vct -> the name the issuer's metadata gives it."""
    configs = pi.issuer_metadata(issuer)["credential_configurations_supported"]
    return {c["vct"]: c["credential_metadata"]["display"][0]["name"] for c in configs.values()}


def credentials_of(
    engine: Engine, person_id: int, now: dt.datetime, issuer: str
) -> list[CredentialRow]:
    c, a, p = s.passport_credential, s.assignment, s.position
    query = (
        sa.select(c.c.vct, c.c.issued_at, c.c.expires_at, c.c.state, c.c.state_reason, p.c.title)
        .select_from(
            c.outerjoin(a, a.c.id == c.c.assignment_id).outerjoin(p, p.c.id == a.c.position_id)
        )
        .where(c.c.person_id == person_id)
        .order_by(c.c.issued_at.desc(), c.c.id.desc())
    )
    kinds = _kinds(issuer)
    with engine.connect() as conn:
        rows = conn.execute(query).all()
    out = []
    for row in rows:
        expires = _aware(row.expires_at)
        status = row.state if row.state != pi.VALID or expires > now else "expired"
        if row.state == pi.REVOKED and row.state_reason == pi.SUPERSEDED:
            status = "replaced"  # the record changed: collect the up-to-date one
        out.append(
            CredentialRow(
                kinds.get(row.vct, row.vct), row.title, _aware(row.issued_at), expires, status
            )
        )
    return out


def _page(request: Request, principal: Principal, person_id: int, **context: Any) -> Response:
    now = clock_of(request).now()
    rows = credentials_of(engine_of(request), person_id, now, issuer_of(request))
    return render(
        request, "credentials.html", title=TITLE, principal=principal, credentials=rows, **context
    )


@router.get("/my-credentials")
def my_credentials(request: Request) -> Response:
    principal, person_id = _self(request)
    return _page(request, principal, person_id)


def _kek() -> KeyEncryptionKey:
    try:
        return KeyEncryptionKey.from_env()
    except PasaError as exc:
        raise AccessDenied(503, "Passport credentials cannot be issued here yet.") from exc


def qr_svg(text: str, label: str = "QR code of your offer") -> Markup:
    """``text`` as an inline SVG QR code (server-rendered; no script, no image request)."""
    svg = segno.make(text, error="m").svg_inline(dark="#000", light="#fff", border=4, omitsize=True)
    # Only a viewBox: the image takes its column's width (a third on a desktop, all of a
    # phone). The link is also printed as text; the label names the image for screen readers.
    labelled = svg.replace("<svg ", f'<svg role="img" aria-label="{escape(label)}" ', 1)
    return Markup(labelled)  # noqa: S704 (segno's SVG: path data only, no text from anyone)


def breakable(text: str, every: int = 16) -> Markup:
    """``text`` escaped, with line-break opportunities so a long link wraps on a phone."""
    return Markup("<wbr>").join(escape(text[i : i + every]) for i in range(0, len(text), every))


@router.post("/my-credentials/offer")
def create_offer(request: Request) -> Response:
    principal, person_id = _self(request)
    kek = _kek()
    now = clock_of(request).now()
    offer = pi.create_offer(
        engine_of(request),
        person_id,
        issuer=issuer_of(request),
        actor=principal.subject,
        now=now,
        kek=kek,
    )
    engine = engine_of(request)
    email = _work_email(request, engine, person_id)
    if email is not None:
        # The second channel: the code goes to the work address, sealed in the outbox.
        with engine.begin() as conn:
            notify.queue_sealed(conn, notify.tx_code(email, offer.tx_code, offer.expires_at), kek)
    else:
        request.session[PENDING_KEY] = {
            "uid": offer.uid,
            "code": kek.encrypt(
                offer.tx_code.encode(), context=f"tx_code:{offer.uid}:{principal.subject}"
            ),
            "expires_at": offer.expires_at.isoformat(),
        }
    return _page(
        request,
        principal,
        person_id,
        offer={
            "uri": offer.uri,
            "text": breakable(offer.uri),
            "qr": qr_svg(offer.uri),
            "expires_at": offer.expires_at,
            "emailed_to": email,
        },
    )


def _work_email(request: Request, engine: Engine, person_id: int) -> str | None:
    """Where the code can be emailed: the HR record's address, when PASA can send email."""
    settings = getattr(request.app.state, "page_settings", None)
    if settings is None or not settings.smtp_host:
        return None  # no SMTP server: an outbox message would never arrive
    with engine.connect() as conn:
        email = conn.scalar(sa.select(s.person.c.email).where(s.person.c.id == person_id))
    return str(email) if email else None


@router.post("/my-credentials/offer/code")
def reveal_code(request: Request) -> Response:
    principal, person_id = _self(request)
    pending = request.session.pop(PENDING_KEY, None)
    now = clock_of(request).now()
    if not isinstance(pending, dict) or dt.datetime.fromisoformat(pending["expires_at"]) <= now:
        return _page(request, principal, person_id, code_gone=True, status=409)
    code = _kek().decrypt(pending["code"], context=f"tx_code:{pending['uid']}:{principal.subject}")
    return _page(
        request,
        principal,
        person_id,
        tx_code=code.decode(),
        code_expires_at=dt.datetime.fromisoformat(pending["expires_at"]),
    )
