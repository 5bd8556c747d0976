"""Access requests and approvals: a line manager asks for extra access for a report from the
catalogue, approvers decide, everyone follows the request to ready (issue 6).

Pages: ``/requests`` (mine, my reports', waiting for me), ``/people/{id}/request-access``
(the form), ``/requests/{id}`` (the timeline, the decision form, progress to ready). Forms
post url-encoded bodies carrying the session's CSRF token (checked by the session
middleware); every handler authorizes before it reads or changes anything.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any
from urllib.parse import parse_qs

from fastapi import APIRouter, Path, Request
from fastapi.responses import RedirectResponse, Response

from pasa.clock import local_date
from pasa.config import get_settings
from pasa.domain.access import Action, Principal, Resource, decide
from pasa.domain.errors import NotFoundError
from pasa.domain.requests import TERMINAL, RequestError
from pasa.service import access_requests
from pasa.service.access_requests import RequestRefused, RequestView
from pasa.store import hub
from pasa.web.pages.rendering import PageRoute, render, templates
from pasa.web.security import AccessDenied, authorize, clock_of, current_principal, engine_of

router = APIRouter(include_in_schema=False, route_class=PageRoute)

Id = Annotated[int, Path(ge=1, le=2**31 - 1)]
MAX_FORM = 16 * 1024


def _now_today(request: Request) -> tuple[dt.datetime, dt.date]:
    now = clock_of(request).now()
    return now, local_date(now, get_settings().timezone)


async def _form(request: Request) -> dict[str, str]:
    """The url-encoded form (first value of each field)."""
    body = await request.body()
    if len(body) > MAX_FORM:
        raise AccessDenied(413, "the form is too large")
    fields = parse_qs(body.decode("utf-8", errors="replace"), keep_blank_values=True)
    return {k: v[0] for k, v in fields.items()}


def _view(request: Request, principal: Principal, request_id: int) -> RequestView:
    try:
        view = access_requests.get_request(engine_of(request), request_id)
    except NotFoundError:
        raise AccessDenied(404, "not found") from None
    if view.requested_by != principal.subject:
        authorize(principal, Action.READ_ACCESS, access_requests.resource_of(view))
    return view


def may_request_for(principal: Principal, person_id: int, organisations: frozenset[str]) -> bool:
    """Shown as the "Request access" link on a person's access page."""
    return bool(
        decide(principal, Action.REQUEST_ACCESS, Resource.of(organisations, person_id=person_id))
    )


def _link_allowed(principal: Principal | None, person_id: int) -> bool:
    """For a person's access page (``access.html``): may this user ask for access for them?
    The page itself has authorized reading that person."""
    if principal is None:
        return False
    orgs = principal.reports.get(person_id) or (
        principal.person_organisations if person_id == principal.person_id else frozenset()
    )
    return bool(decide(principal, Action.REQUEST_ACCESS, Resource.of(orgs, person_id=person_id)))


templates.env.globals["may_request_access_for"] = _link_allowed


# --- the list --------------------------------------------------------------------------------


@router.get("/requests")
def requests_page(request: Request) -> Response:
    principal = current_principal(request)
    if principal.person_id is None and not principal.reports and not principal.bindings:
        raise AccessDenied(403, "Requests are for staff, line managers and approvers.")
    now, _today = _now_today(request)
    found = access_requests.inbox(engine_of(request), principal)
    # Each row shown has passed decide() for reading (the inbox filters by visibility).
    for view in (*found.for_reports, *found.waiting):
        authorize(principal, Action.READ_ACCESS, access_requests.resource_of(view))
    return render(
        request,
        "requests.html",
        title="Requests",
        principal=principal,
        inbox=found,
        now=now,
        reports=sorted(principal.reports),
    )


# --- the form --------------------------------------------------------------------------------


def _person_for_request(request: Request, principal: Principal, person_id: int) -> Any:
    engine = engine_of(request)
    with engine.connect() as conn:
        orgs = access_requests.person_organisations(conn, person_id)
        people = hub.load_people(conn, [person_id])
    if not people:
        raise AccessDenied(404, "not found")
    authorize(principal, Action.REQUEST_ACCESS, Resource.of(orgs, person_id=person_id))
    return people[0]


def _form_page(
    request: Request,
    principal: Principal,
    person: Any,
    *,
    values: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
) -> Response:
    items = access_requests.catalogue(engine_of(request))
    return render(
        request,
        "requests_new.html",
        title=f"Request access for {person.display_name}",
        principal=principal,
        person=person,
        items=items,
        values=values or {},
        errors=errors or {},
        status=422 if errors else 200,
    )


@router.get("/people/{person_id}/request-access")
def request_form(request: Request, person_id: Id) -> Response:
    principal = current_principal(request)
    person = _person_for_request(request, principal, person_id)
    return _form_page(request, principal, person)


def _date(fields: dict[str, str], prefix: str) -> tuple[dt.date | None, str | None]:
    # The NHS.UK date input names its fields ``prefix[day]`` and so on.
    parts = [fields.get(f"{prefix}[{p}]", "").strip() for p in ("day", "month", "year")]
    if not any(parts):
        return None, None
    if not all(parts):
        return None, "Enter the end date as a day, month and year, for example 31 3 2027"
    try:
        day, month, year = (int(p) for p in parts)
        return dt.date(year, month, day), None
    except ValueError:
        return None, "The end date must be a real date, for example 31 3 2027"


@router.post("/people/{person_id}/request-access")
async def submit_request(request: Request, person_id: Id) -> Response:
    principal = current_principal(request)
    person = _person_for_request(request, principal, person_id)
    fields = await _form(request)
    errors: dict[str, str] = {}
    item = fields.get("item", "")
    if not item:
        errors["item"] = "Select the access to request"
    justification = fields.get("justification", "").strip()
    if not justification:
        errors["justification"] = "Enter why they need this access"
    elif len(justification) > 2000:
        errors["justification"] = "The reason must be 2,000 characters or fewer"
    ends, problem = _date(fields, "valid_to")
    if problem:
        errors["valid_to"] = problem
    if not errors:
        now, today = _now_today(request)
        try:
            view = access_requests.submit(
                engine_of(request),
                principal,
                person_id=person_id,
                item_key=item,
                justification=justification,
                valid_from=None,
                valid_to=ends,
                now=now,
                today=today,
            )
        except RequestError as exc:
            text = str(exc)
            field = "valid_to" if "date" in text else "item"
            errors[field] = text[0].upper() + text[1:]
        else:
            return RedirectResponse(f"/requests/{view.id}", status_code=303)
    return _form_page(request, principal, person, values=fields, errors=errors)


# --- one request ------------------------------------------------------------------------------


def _detail(
    request: Request, principal: Principal, view: RequestView, error: str | None = None
) -> Response:
    engine = engine_of(request)
    now, today = _now_today(request)
    may, why = access_requests.can_decide(view, principal)
    may_withdraw = view.state not in TERMINAL and (
        view.requested_by == principal.subject
        or view.person_id == principal.person_id
        or may_request_for(principal, view.person_id, frozenset(view.organisations))
    )
    return render(
        request,
        "requests_detail.html",
        title=f"Request #{view.id}",
        principal=principal,
        r=view,
        now=now,
        progress=access_requests.progress(engine, view, today),
        may_decide=may,
        why_not=why,
        may_withdraw=may_withdraw,
        error=error,
        status=422 if error else 200,
    )


@router.get("/requests/{request_id}")
def request_detail(request: Request, request_id: Id) -> Response:
    principal = current_principal(request)
    return _detail(request, principal, _view(request, principal, request_id))


@router.post("/requests/{request_id}/decision")
async def decide_request(request: Request, request_id: Id) -> Response:
    principal = current_principal(request)
    view = _view(request, principal, request_id)
    authorize(principal, Action.APPROVE_ACCESS, access_requests.resource_of(view))
    fields = await _form(request)
    decision = fields.get("decision", "")
    if decision not in ("approve", "reject"):
        return _detail(request, principal, view, "Select approve or reject")
    now, today = _now_today(request)
    try:
        access_requests.decide_request(
            engine_of(request),
            principal,
            request_id,
            approve=decision == "approve",
            reason=fields.get("reason", "")[:2000],
            now=now,
            today=today,
        )
    except RequestRefused as exc:
        raise AccessDenied(403, str(exc)) from None
    except RequestError as exc:
        text = str(exc)
        return _detail(request, principal, view, text[0].upper() + text[1:])
    return RedirectResponse(f"/requests/{request_id}", status_code=303)


@router.post("/requests/{request_id}/withdraw")
async def withdraw_request(request: Request, request_id: Id) -> Response:
    principal = current_principal(request)
    view = _view(request, principal, request_id)
    on_behalf = view.requested_by != principal.subject and view.person_id != principal.person_id
    if on_behalf:
        authorize(principal, Action.REQUEST_ACCESS, access_requests.resource_of(view))
    await _form(request)
    try:
        access_requests.withdraw(
            engine_of(request),
            principal,
            request_id,
            now=clock_of(request).now(),
            may_request_for=on_behalf,
        )
    except RequestRefused as exc:
        raise AccessDenied(403, str(exc)) from None
    except RequestError as exc:
        return _detail(request, principal, view, str(exc))
    return RedirectResponse(f"/requests/{request_id}", status_code=303)
