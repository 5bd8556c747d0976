"""The pages: the landing page, a home page per role, My team and My access.

Every page but the landing page needs a signed-in user (:func:`current_principal`, from the
session) and asks :func:`pasa.web.security.authorize` before showing anything.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Annotated, Any

import sqlalchemy as sa
from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy.engine import Engine

from pasa.clock import local_date
from pasa.config import Settings, get_settings
from pasa.domain.access import Action, Principal, Resource, Role
from pasa.service import access
from pasa.store import schema as s
from pasa.web.pages import data
from pasa.web.pages.rendering import PageRoute, render
from pasa.web.security import AccessDenied, authorize, clock_of, current_principal, engine_of
from pasa.web.signin import NEXT_PATH_KEY, dev_signin_enabled, oidc_configured, safe_next

router = APIRouter(include_in_schema=False, route_class=PageRoute)

PersonId = Annotated[int, Path(ge=1, le=2**31 - 1)]


def _today(request: Request) -> dt.date:
    return local_date(clock_of(request).now(), get_settings().timezone)


def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.page_settings
    return settings


# --- landing -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Persona:
    label: str
    description: str
    subject: str | None


def _first(engine: Engine, query: sa.Select[Any]) -> str | None:
    with engine.connect() as conn:
        found = conn.execute(query.limit(1)).scalar()
    return str(found).lower() if found else None


def personas(engine: Engine, at: dt.date) -> list[Persona]:
    """One sign-in name for each persona of the demo (None: nobody holds it here)."""
    bindings = access.list_bindings(engine)

    def bound(*roles: Role) -> str | None:
        return next((b.subject for b in bindings if b.role in roles), None)

    p, a, r = s.person, s.assignment, s.assignment.alias("report")
    current = sa.and_(a.c.start_date <= at, sa.or_(a.c.end_date.is_(None), a.c.end_date >= at))
    manages = sa.exists().where(
        r.c.organisation_id == a.c.organisation_id,
        r.c.supervisor_assignment_number == a.c.assignment_number,
        r.c.person_id != a.c.person_id,
        sa.or_(r.c.end_date.is_(None), r.c.end_date >= at),
    )
    # The manager with the most reports (including starters to come): the fullest team.
    manager = _first(
        engine,
        sa.select(p.c.email)
        .select_from(
            p.join(a, a.c.person_id == p.c.id).join(
                r,
                sa.and_(
                    r.c.organisation_id == a.c.organisation_id,
                    r.c.supervisor_assignment_number == a.c.assignment_number,
                    r.c.person_id != a.c.person_id,
                    sa.or_(r.c.end_date.is_(None), r.c.end_date >= at),
                ),
            )
        )
        .where(p.c.email.is_not(None), current)
        .group_by(p.c.id, p.c.email)
        .order_by(sa.func.count(sa.distinct(r.c.person_id)).desc(), p.c.id),
    )
    staff = _first(
        engine,
        sa.select(p.c.email)
        .select_from(p.join(a, a.c.person_id == p.c.id))
        .where(
            p.c.email.is_not(None),
            current,
            sa.not_(manages),
            sa.exists().where(s.account.c.person_id == p.c.id),
        )
        .order_by(p.c.id),
    )
    return [
        Persona("Line manager", "My team: current reports, starters, movers and leavers", manager),
        Persona("Staff member", "My access: every account and group, and why it is held", staff),
        Persona(
            "Identity team",
            "Exceptions: failed operations, manual tasks, held imports",
            bound(Role.ORG_ADMIN, Role.PLATFORM_ADMIN),
        ),
        Persona("System owner", "Access to the system they own", bound(Role.SYSTEM_OWNER)),
        Persona(
            "Auditor", "Reads everything in the organisation, changes nothing", bound(Role.AUDITOR)
        ),
    ]


@router.get("/")
def landing(
    request: Request, then: Annotated[str | None, Query(alias="next", max_length=500)] = None
) -> Response:
    session = request.scope.get("session") or {}
    if session.get("subject"):
        return RedirectResponse(safe_next(then) if then else "/home", status_code=303)
    settings = _settings(request)
    dev = dev_signin_enabled(settings)
    if then and "session" in request.scope:
        # Where to go back to once signed in (both sign-in routes read it).
        request.session[NEXT_PATH_KEY] = safe_next(then)
    return render(
        request,
        "landing.html",
        title="Sign in",
        dev=dev,
        oidc=oidc_configured(settings),
        provider=settings.oidc_provider_name,
        personas=personas(engine_of(request), _today(request)) if dev else [],
        next_path=safe_next(then),
        asked_for=then is not None,
    )


# --- home ----------------------------------------------------------------------------------


def _count(engine: Engine, query: sa.Select[Any]) -> int:
    with engine.connect() as conn:
        return int(conn.scalar(query) or 0)


def _in_orgs(person_id: sa.ColumnElement[Any], orgs: frozenset[str] | None) -> Any:
    if orgs is None:
        return sa.true()
    a, o = s.assignment, s.organisation
    return person_id.in_(
        sa.select(a.c.person_id)
        .join(o, o.c.id == a.c.organisation_id)
        .where(o.c.ods_code.in_(sorted(orgs)))
    )


def _identity_team(engine: Engine, principal: Principal) -> dict[str, int] | None:
    admin = [b for b in principal.bindings if b.role in (Role.ORG_ADMIN, Role.PLATFORM_ADMIN)]
    if not admin:
        return None
    authorize(principal, Action.READ_OPERATIONS, Resource.of(admin[0].organisation))
    orgs = principal.organisations()
    op, task = s.operation, s.manual_task
    return {
        "parked": _count(
            engine,
            sa.select(sa.func.count())
            .select_from(op)
            .where(op.c.status == "parked", _in_orgs(op.c.person_id, orgs)),
        ),
        "manual": _count(
            engine,
            sa.select(sa.func.count())
            .select_from(task.join(op, op.c.id == task.c.operation_id))
            .where(task.c.status == "open", _in_orgs(op.c.person_id, orgs)),
        ),
        "held_imports": _count(
            engine,
            sa.select(sa.func.count())
            .select_from(s.hr_import)
            .where(s.hr_import.c.status == "held"),
        ),
    }


def _owned_targets(engine: Engine, principal: Principal) -> list[dict[str, Any]]:
    out = []
    op, t = s.operation, s.target
    for binding in sorted(principal.bindings, key=lambda b: b.target or ""):
        if binding.role is not Role.SYSTEM_OWNER or binding.target is None:
            continue
        authorize(
            principal,
            Action.READ_OPERATIONS,
            Resource.of(binding.organisation, target=binding.target),
        )
        with engine.connect() as conn:
            counts: dict[str, int] = {
                status: n
                for status, n in conn.execute(
                    sa.select(op.c.status, sa.func.count())
                    .select_from(op.join(t, t.c.id == op.c.target_id))
                    .where(t.c.key == binding.target)
                    .group_by(op.c.status)
                )
            }
            name = conn.scalar(sa.select(t.c.name).where(t.c.key == binding.target))
        out.append({"key": binding.target, "name": name or binding.target, "counts": counts})
    return out


def _audit(engine: Engine, principal: Principal) -> int | None:
    audit = [b for b in principal.bindings if b.role is Role.AUDITOR]
    if not audit:
        return None
    authorize(principal, Action.READ_AUDIT, Resource.of(audit[0].organisation))
    return _count(engine, sa.select(sa.func.count()).select_from(s.audit_log))


@router.get("/home")
def home(request: Request) -> Response:
    principal = current_principal(request)
    engine = engine_of(request)
    today = _today(request)
    team = None
    if principal.reports and principal.person_id is not None:
        team = data.team(engine, principal.person_id, principal.reports, today)
    return render(
        request,
        "home.html",
        title="Home",
        principal=principal,
        today=today,
        team=team,
        identity=_identity_team(engine, principal),
        owned=_owned_targets(engine, principal),
        audit_entries=_audit(engine, principal),
    )


# --- My team -------------------------------------------------------------------------------


@router.get("/team")
def my_team(request: Request) -> Response:
    principal = current_principal(request)
    if not principal.reports or principal.person_id is None:
        raise AccessDenied(
            403, "My team is for line managers: the HR record shows nobody reporting to you."
        )
    authorize(principal, Action.READ_PEOPLE)
    for person_id, orgs in principal.reports.items():
        authorize(principal, Action.READ_PEOPLE, Resource.of(orgs, person_id=person_id))
    today = _today(request)
    team = data.team(engine_of(request), principal.person_id, principal.reports, today)
    return render(request, "team.html", title="My team", principal=principal, team=team)


# --- access ----------------------------------------------------------------------------------


def _access_page(request: Request, principal: Principal, person_id: int, mine: bool) -> Response:
    engine = engine_of(request)
    orgs = principal.reports.get(person_id, principal.person_organisations if mine else frozenset())
    authorize(principal, Action.READ_ACCESS, Resource.of(orgs, person_id=person_id))
    found = data.access_of(engine, person_id, _today(request))
    if found is None:
        raise AccessDenied(404, "not found")
    title = "My access" if mine else f"Access of {found.person.display_name}"
    return render(request, "access.html", title=title, principal=principal, access=found, mine=mine)


@router.get("/my-access")
def my_access(request: Request) -> Response:
    principal = current_principal(request)
    if principal.person_id is None:
        raise AccessDenied(
            403,
            "Your sign-in is not linked to an HR record, so there is no access of yours to "
            "show. Ask the identity team to link it.",
        )
    return _access_page(request, principal, principal.person_id, mine=True)


@router.get("/people/{person_id}/access")
def person_access(request: Request, person_id: PersonId) -> Response:
    principal = current_principal(request)
    if person_id == principal.person_id:
        return RedirectResponse("/my-access", status_code=303)
    return _access_page(request, principal, person_id, mine=False)
