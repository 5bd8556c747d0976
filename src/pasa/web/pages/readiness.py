"""Readiness per starter (every system and door zone: ready / pending / manual task / failed,
live) and the day-one credential handover (issue 6).

* ``GET /people/{id}/readiness`` — the page; works without JavaScript.
* ``GET /people/{id}/readiness/status`` — the live part alone, which htmx polls every 10 s
  while anything is still to happen (the fragment drops its trigger once all is ready).
* ``GET|POST /people/{id}/handover/{hid}/reveal`` — the line manager confirms, then sees the
  one-time activation code exactly once (``Cache-Control: no-store``; never logged).

Who may look: the person's line manager, the person themself, and the identity team (or
anyone else the access policy lets read the person's access in their organisation).
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from fastapi import APIRouter, Path, Request
from fastapi.responses import Response

from pasa.clock import local_date
from pasa.config import get_settings
from pasa.domain.access import Action, Principal, Resource
from pasa.domain.errors import NotFoundError
from pasa.service import handover
from pasa.web.pages import readiness_data
from pasa.web.pages.readiness_data import Handover, Readiness
from pasa.web.pages.rendering import PageRoute, render
from pasa.web.security import AccessDenied, authorize, clock_of, current_principal, engine_of

router = APIRouter(include_in_schema=False, route_class=PageRoute)

PersonId = Annotated[int, Path(ge=1, le=2**31 - 1)]
HandoverId = Annotated[int, Path(ge=1, le=2**31 - 1)]
POLL = "every 10s"


def _today(request: Request) -> dt.date:
    return local_date(clock_of(request).now(), get_settings().timezone)


def _readiness(request: Request, principal: Principal, person_id: int) -> Readiness:
    """The person's readiness, once the principal may read their access (else 403/404)."""
    found = readiness_data.readiness_of(engine_of(request), person_id, _today(request))
    if found is None:
        # Same answer as a person one may not see: existence is not disclosed.
        authorize(principal, Action.READ_ACCESS, Resource.of(None, person_id=person_id))
        raise AccessDenied(404, "not found")
    orgs = {a.organisation for a in found.person.assignments}
    if person_id == principal.person_id:
        # Their own record (a starter before day one works nowhere yet), as My access does.
        orgs = set(principal.person_organisations)
    authorize(principal, Action.READ_ACCESS, Resource.of(orgs, person_id=person_id))
    return found


def _may_reveal(principal: Principal, person_id: int) -> bool:
    """Only the line manager reveals a starter's day-one details (not the identity team)."""
    return person_id in principal.reports and person_id != principal.person_id


def _handovers(request: Request, principal: Principal, person_id: int) -> list[Handover]:
    if not _may_reveal(principal, person_id):
        return []
    authorize(
        principal,
        Action.REVEAL_HANDOVER,
        Resource.of(principal.reports[person_id], person_id=person_id),
    )
    return readiness_data.handovers_of(engine_of(request), person_id)


@router.get("/people/{person_id}/readiness")
def readiness_page(request: Request, person_id: PersonId) -> Response:
    principal = current_principal(request)
    found = _readiness(request, principal, person_id)
    mine = person_id == principal.person_id
    title = "Your readiness" if mine else f"Readiness of {found.person.display_name}"
    return render(
        request,
        "readiness.html",
        title=title,
        principal=principal,
        r=found,
        mine=mine,
        poll=POLL,
        handovers=_handovers(request, principal, person_id),
    )


@router.get("/people/{person_id}/readiness/status")
def readiness_status(request: Request, person_id: PersonId) -> Response:
    principal = current_principal(request)
    found = _readiness(request, principal, person_id)
    return render(
        request,
        "readiness_status.html",
        title="Readiness",
        principal=principal,
        r=found,
        poll=POLL,
    )


def _handover(
    request: Request, principal: Principal, person_id: int, hid: int
) -> tuple[Readiness, Handover]:
    found = _readiness(request, principal, person_id)
    if not _may_reveal(principal, person_id):
        raise AccessDenied(
            403,
            "Only the line manager of "
            f"{found.person.display_name} can reveal their day-one sign-in details.",
        )
    for h in _handovers(request, principal, person_id):
        if h.id == hid:
            return found, h
    raise AccessDenied(404, "not found")


@router.get("/people/{person_id}/handover/{handover_id}/reveal")
def reveal_confirm(request: Request, person_id: PersonId, handover_id: HandoverId) -> Response:
    principal = current_principal(request)
    person, found = _handover(request, principal, person_id, handover_id)
    return render(
        request,
        "readiness_reveal.html",
        title="Reveal day-one sign-in details",
        principal=principal,
        person=person.person,
        handover=found,
        code=None,
    )


@router.post("/people/{person_id}/handover/{handover_id}/reveal")
def reveal(request: Request, person_id: PersonId, handover_id: HandoverId) -> Response:
    principal = current_principal(request)
    person, found = _handover(request, principal, person_id, handover_id)
    context: dict[str, Any] = {"principal": principal, "person": person.person, "handover": found}
    if found.status != "waiting":
        return render(
            request,
            "readiness_reveal.html",
            title="Day-one sign-in details already revealed",
            status=409,
            code=None,
            **context,
        )
    try:
        code = handover.reveal(
            engine_of(request), handover_id, actor=principal.subject, clock=clock_of(request)
        )
    except (handover.HandoverError, NotFoundError):
        # Someone revealed it between the page and the button: show who and when.
        latest = {h.id: h for h in readiness_data.handovers_of(engine_of(request), person_id)}
        context["handover"] = latest.get(handover_id, found)
        return render(
            request,
            "readiness_reveal.html",
            title="Day-one sign-in details already revealed",
            status=409,
            code=None,
            **context,
        )
    # render() sets Cache-Control: no-store; the code is in this response and nowhere else.
    return render(
        request,
        "readiness_reveal.html",
        title="Day-one sign-in details",
        code=code,
        activation_url=str(request.base_url).rstrip("/") + code.activation_path,
        **context,
    )
