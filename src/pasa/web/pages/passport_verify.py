"""The receiving organisation's passport page (issue 7 item 5): the identity team asks an
expected starter for their Digital Staff Passport and watches the outcome.

* ``GET /passport/verify`` — the form (names, start date, intended post: a select of the
  organisation's positions) and the recent verification sessions with their outcomes.
* ``POST /passport/verify`` — creates the request (:func:`pasa.service.passport_verifier.
  create_request`, which audits it) and redirects to its page.
* ``GET /passport/verify/{state}`` — the request as a QR code and a link, and its outcome.
* ``GET /passport/verify/{state}/outcome`` — the outcome alone: htmx polls it while the
  request is pending; without JavaScript the page says to reload.

Authorized as the API is: ``hr.import`` in the organisation to ask, ``people.read`` there to
read. Only SHA-256 of a request's nonce is stored, so its link exists only in the asking
user's session (signed cookie), for the page that follows the form.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Annotated, Any
from urllib.parse import parse_qs

import sqlalchemy as sa
from fastapi import APIRouter, Path, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy.engine import Engine

from pasa.domain.access import Action, Principal, Resource, decide
from pasa.domain.errors import NotFoundError
from pasa.service import passport_verifier as svc
from pasa.store import schema as s
from pasa.web.api.common import Visibility, visibility
from pasa.web.pages.credentials import breakable, qr_svg
from pasa.web.pages.rendering import PageRoute, render
from pasa.web.passport import issuer_of
from pasa.web.security import AccessDenied, authorize, clock_of, current_principal, engine_of

router = APIRouter(include_in_schema=False, route_class=PageRoute)

TITLE = "Verify a starter's passport"
REQUEST_KEY = "passport_verify_request"  # session: the latest request's link, for its page
RECENT = 20
POLL = "every 3s"
State = Annotated[str, Path(min_length=16, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")]

# What each query proves, in the page's words.
QUERY_NAMES = {
    "employment": "Employment",
    "identity": "Identity",
    "professional_registration": "Professional registration",
}


@dataclass(frozen=True, slots=True)
class PositionChoice:
    id: int
    organisation: str
    label: str


@dataclass(frozen=True, slots=True)
class SessionRow:
    state: str
    organisation: str
    name: str
    start_date: dt.date
    position: str
    status: str  # pending | accepted | expired | closed | rejected (pending, last answer refused)
    created_at: dt.datetime
    expires_at: dt.datetime
    person_id: int | None
    reason: str | None
    detail: str | None
    relied_on: dict[str, Any] | None
    status_checked_at: dt.datetime | None


def _aware(value: dt.datetime | None) -> dt.datetime | None:
    if value is None:
        return None
    return value if value.tzinfo is not None else value.replace(tzinfo=dt.UTC)


def _scope(principal: Principal) -> Visibility:
    seen = visibility(principal, Action.READ_PEOPLE)
    if not seen.org_wide:
        authorize(principal, Action.READ_PEOPLE, Resource())
        raise AccessDenied(
            403, "Verifying a starter's passport is for the identity team of an organisation."
        )
    return seen


def _org_filter(seen: Visibility) -> Any:
    return sa.true() if seen.everything else s.organisation.c.ods_code.in_(seen.organisations)


def positions_for(engine: Engine, principal: Principal, seen: Visibility) -> list[PositionChoice]:
    """Positions of the organisations where the principal may ask (``hr.import``)."""
    p, o = s.position, s.organisation
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(p.c.id, p.c.position_number, p.c.title, o.c.ods_code)
            .join(o, o.c.id == p.c.organisation_id)
            .where(_org_filter(seen))
            .order_by(o.c.ods_code, p.c.title, p.c.position_number)
            .limit(2000)
        ).all()
    allowed = {
        r.ods_code
        for r in rows
        if decide(principal, Action.IMPORT_HR, Resource.of(r.ods_code)).allowed
    }
    many = len(allowed) > 1
    return [
        PositionChoice(
            r.id,
            r.ods_code,
            (f"{r.ods_code}: " if many else "") + f"{r.title} ({r.position_number})",
        )
        for r in rows
        if r.ods_code in allowed
    ]


def sessions(
    engine: Engine, seen: Visibility, *, state: str | None = None, limit: int = RECENT
) -> list[SessionRow]:
    """The newest sessions the principal may read (or the one with ``state``)."""
    vs, v, o, p = (
        s.passport_verifier_session,
        s.passport_verification,
        s.organisation,
        s.position,
    )
    query = (
        sa.select(vs, o.c.ods_code, p.c.title, p.c.position_number)
        .join(o, o.c.id == vs.c.organisation_id)
        .join(p, p.c.id == vs.c.position_id)
        .where(_org_filter(seen))
        .order_by(vs.c.id.desc())
        .limit(limit)
    )
    if state is not None:
        query = query.where(vs.c.state == state)
    out: list[SessionRow] = []
    with engine.connect() as conn:
        for row in conn.execute(query).all():
            last = conn.execute(
                sa.select(v).where(v.c.session_id == row.id).order_by(v.c.id.desc()).limit(1)
            ).first()
            status = row.status
            if status == svc.PENDING and last is not None and last.outcome == "rejected":
                status = "rejected"  # the latest answer was refused; a new one may follow
            out.append(
                SessionRow(
                    state=row.state,
                    organisation=row.ods_code,
                    name=f"{row.given_name} {row.family_name}",
                    start_date=row.start_date,
                    position=f"{row.title} ({row.position_number})",
                    status=status,
                    created_at=_aware(row.created_at) or row.created_at,
                    expires_at=_aware(row.expires_at) or row.expires_at,
                    person_id=row.person_id,
                    reason=None if last is None else last.reason,
                    detail=None if last is None else last.detail,
                    relied_on=None
                    if last is None or last.outcome != "accepted"
                    else last.relied_on,
                    status_checked_at=None if last is None else _aware(last.status_checked_at),
                )
            )
    return out


def _live(row: SessionRow, now: dt.datetime) -> bool:
    return row.status in {svc.PENDING, "rejected"} and row.expires_at > now


def _page(request: Request, principal: Principal, seen: Visibility, **ctx: Any) -> Response:
    engine = engine_of(request)
    return render(
        request,
        "passport_verify.html",
        title=TITLE,
        principal=principal,
        positions=positions_for(engine, principal, seen),
        recent=sessions(engine, seen),
        today=clock_of(request).now().date(),
        **ctx,
    )


@router.get("/passport/verify")
def verify_page(request: Request) -> Response:
    principal = current_principal(request)
    return _page(request, principal, _scope(principal), values={}, errors={})


def _validate(form: dict[str, str], today: dt.date) -> tuple[dict[str, str], dict[str, Any]]:
    errors: dict[str, str] = {}
    given = form.get("given_name", "").strip()
    family = form.get("family_name", "").strip()
    if not given:
        errors["given_name"] = "Enter the starter's first name"
    elif len(given) > 100:
        errors["given_name"] = "First name must be 100 characters or fewer"
    if not family:
        errors["family_name"] = "Enter the starter's last name"
    elif len(family) > 100:
        errors["family_name"] = "Last name must be 100 characters or fewer"
    start: dt.date | None = None
    try:
        start = dt.date.fromisoformat(form.get("start_date", "").strip())
    except ValueError:
        errors["start_date"] = "Enter the start date as a real date, for example 2026-08-05"
    if start is not None and start < today:
        errors["start_date"] = "The start date must be today or in the future"
    position = form.get("position", "").strip()
    if not position.isdigit() or len(position) > 10:
        errors["position"] = "Select the post they will start in"
    return errors, {"given": given, "family": family, "start": start, "position": position}


@router.post("/passport/verify")
async def create_verification(request: Request) -> Response:
    principal = current_principal(request)
    seen = _scope(principal)
    body = (await request.body()).decode("utf-8", "replace")
    form = {k: v[0] for k, v in parse_qs(body, keep_blank_values=True).items()}
    now = clock_of(request).now()
    errors, clean = _validate(form, now.date())
    engine = engine_of(request)
    choice = None
    if not errors:
        choices = {c.id: c for c in positions_for(engine, principal, seen)}
        choice = choices.get(int(clean["position"]))
        if choice is None:
            errors["position"] = "Select one of the posts listed"
    if errors or choice is None:
        return _page(request, principal, seen, values=form, errors=errors, status=422)
    authorize(principal, Action.IMPORT_HR, Resource.of(choice.organisation))
    with engine.connect() as conn:
        number = conn.scalar(
            sa.select(s.position.c.position_number).where(s.position.c.id == choice.id)
        )
    try:
        new = svc.create_request(
            engine,
            organisation=choice.organisation,
            given_name=clean["given"],
            family_name=clean["family"],
            start_date=clean["start"],
            position_number=str(number),
            actor=principal.subject,
            public_url=issuer_of(request),
            now=now,
        )
    except (svc.VerifierError, NotFoundError) as exc:
        return _page(
            request, principal, seen, values=form, errors={"position": str(exc)}, status=422
        )
    request.session[REQUEST_KEY] = {"state": new.state, "uri": new.uri}
    return RedirectResponse(f"/passport/verify/{new.state}", status_code=303)


def _one(request: Request, state: str) -> tuple[Principal, SessionRow]:
    principal = current_principal(request)
    seen = _scope(principal)
    found = sessions(engine_of(request), seen, state=state, limit=1)
    if not found:
        raise AccessDenied(404, "not found")  # unknown, or another organisation's
    authorize(principal, Action.READ_PEOPLE, Resource.of(found[0].organisation))
    return principal, found[0]


@router.get("/passport/verify/{state}")
def verification_page(request: Request, state: State) -> Response:
    principal, row = _one(request, state)
    now = clock_of(request).now()
    held = request.session.get(REQUEST_KEY) if "session" in request.scope else None
    link = None
    if isinstance(held, dict) and held.get("state") == state and _live(row, now):
        uri = str(held["uri"])
        link = {
            "uri": uri,
            "text": breakable(uri),
            "qr": qr_svg(uri, label="QR code of the passport request"),
        }
    return render(
        request,
        "passport_verify_session.html",
        title=f"Passport of {row.name}",
        principal=principal,
        v=row,
        link=link,
        live=_live(row, now),
        poll=POLL,
        names=QUERY_NAMES,
    )


@router.get("/passport/verify/{state}/outcome")
def verification_outcome(request: Request, state: State) -> Response:
    principal, row = _one(request, state)
    return render(
        request,
        "passport_verify_outcome.html",
        title="Outcome",
        principal=principal,
        v=row,
        live=_live(row, clock_of(request).now()),
        poll=POLL,
        names=QUERY_NAMES,
    )
