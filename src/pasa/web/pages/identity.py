"""The identity team's pages: the exceptions board and person search with a full timeline
(issue 6).

The board (``/exceptions``) counts what needs a person — parked operations, open manual
tasks, imports in quarantine or held by the guard, reconciliation findings, target health —
and links to one page per kind. Every action is a plain POST form (CSRF field, works without
JavaScript) that calls the same service function as the REST API and the CLI, after the same
:func:`authorize` check, then redirects back with a banner (post/redirect/get).

Everything is scoped to the principal's organisations with the REST API's
:func:`~pasa.web.api.common.visibility`; a person of another organisation is answered 404.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any
from urllib.parse import parse_qs

import sqlalchemy as sa
from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from pasa.connectors.manual import ManualTaskError, complete_manual_task
from pasa.domain.access import Action, Principal, Resource, decide
from pasa.domain.errors import NotFoundError, PasaError
from pasa.engine import ledger
from pasa.engine.tasks import set_paused
from pasa.hr import importer
from pasa.store import schema as s
from pasa.web.api.common import Visibility, person_resource, visibility
from pasa.web.pages import identity_data as data
from pasa.web.pages.rendering import PageRoute, render
from pasa.web.security import AccessDenied, authorize, clock_of, current_principal, engine_of

router = APIRouter(include_in_schema=False, route_class=PageRoute)

MAX_ID = 2**31 - 1
ObjectId = Annotated[int, Path(ge=1, le=MAX_ID)]
TargetKey = Annotated[str, Path(min_length=1, max_length=60, pattern=r"^[A-Za-z0-9_.-]+$")]
PageNumber = Annotated[int, Query(ge=1, le=100_000)]
FLASH = "identity_flash"
MAX_REASON = 2000
MAX_FIELD = 200


# --- helpers -------------------------------------------------------------------------------


def _now(request: Request) -> dt.datetime:
    now = clock_of(request).now()
    return now if now.tzinfo else now.replace(tzinfo=dt.UTC)


def _scope(principal: Principal, action: Action, what: str) -> Visibility:
    """Organisation-wide visibility for ``action``, or a 403: these pages are the identity
    team's (and, read only, the auditors') — staff and line managers have their own."""
    seen = visibility(principal, action)
    if not seen.org_wide:
        authorize(principal, action, Resource())  # raises with decide()'s reason when it can
        raise AccessDenied(
            403, f"{what} is for the identity team of an organisation (and auditors, to read)."
        )
    for org in sorted(seen.organisations):
        authorize(principal, action, Resource.of(org))
    return seen


def _can(principal: Principal, action: Action, seen: Visibility) -> bool:
    """May the principal do ``action`` anywhere the page shows (to offer the buttons)?"""
    if not seen.organisations:
        return decide(principal, action, Resource()).allowed
    return any(decide(principal, action, Resource.of(o)).allowed for o in seen.organisations)


async def _form(request: Request) -> dict[str, str]:
    # A url-encoded form (the CSRF field was checked by the session guard already).
    body = (await request.body()).decode("utf-8", "replace")
    return {k: v[0] for k, v in parse_qs(body, keep_blank_values=True).items()}


def _flash(request: Request, kind: str, text: str) -> None:
    if "session" in request.scope:
        request.session[FLASH] = {"kind": kind, "text": text}


def _take_flash(request: Request) -> dict[str, str] | None:
    if "session" not in request.scope:
        return None
    found = request.session.pop(FLASH, None)
    return found if isinstance(found, dict) else None


def _back(request: Request, default: str) -> RedirectResponse:
    """Back to the page the form was on (same-origin paths only), or ``default``."""
    referer = request.headers.get("referer", "")
    base = str(request.base_url).rstrip("/")
    path = referer[len(base) :] if referer.startswith(base + "/") else ""
    if not path.startswith(default.split("?")[0]):
        path = default
    return RedirectResponse(path, status_code=303)


def _page(
    request: Request, template: str, title: str, principal: Principal, **ctx: Any
) -> HTMLResponse:
    return render(
        request, template, title=title, principal=principal, flash=_take_flash(request), **ctx
    )


def _clean(value: str | None, label: str, *, limit: int = MAX_FIELD) -> str | None:
    """A trimmed optional field, or :class:`ValueError` with the specific problem."""
    text = (value or "").strip()
    if not text:
        return None
    if len(text) > limit:
        raise ValueError(f"{label} must be {limit} characters or fewer")
    if any(ord(c) < 32 for c in text):
        raise ValueError(f"{label} must not contain control characters")
    return text


# --- the board -----------------------------------------------------------------------------


@router.get("/exceptions")
def exceptions(request: Request) -> Response:
    principal = current_principal(request)
    seen = _scope(principal, Action.READ_OPERATIONS, "The exceptions board")
    counts = data.board(engine_of(request), seen, _now(request))
    return _page(request, "exceptions.html", "Exceptions", principal, counts=counts)


@router.get("/exceptions/parked")
def parked(request: Request, page: PageNumber = 1) -> Response:
    principal = current_principal(request)
    seen = _scope(principal, Action.READ_OPERATIONS, "The exceptions board")
    found = data.parked_operations(engine_of(request), seen, page)
    return _page(
        request,
        "exceptions_parked.html",
        "Failed operations",
        principal,
        result=found,
        can_operate=_can(principal, Action.OPERATE, seen),
    )


@router.get("/exceptions/tasks")
def tasks(request: Request, page: PageNumber = 1) -> Response:
    principal = current_principal(request)
    seen = _scope(principal, Action.READ_OPERATIONS, "The exceptions board")
    found = data.open_tasks(engine_of(request), seen, _now(request), page)
    return _page(
        request,
        "exceptions_tasks.html",
        "Manual tasks",
        principal,
        result=found,
        can_operate=_can(principal, Action.OPERATE, seen),
    )


@router.get("/exceptions/imports")
def imports(request: Request, page: PageNumber = 1) -> Response:
    principal = current_principal(request)
    seen = _scope(principal, Action.READ_OPERATIONS, "The exceptions board")
    found = data.import_issues(engine_of(request), seen, page)
    return _page(
        request,
        "exceptions_imports.html",
        "HR imports: quarantine and guard approvals",
        principal,
        result=found,
        can_approve=_can(principal, Action.APPROVE_HR, seen),
    )


@router.get("/exceptions/findings")
def findings(
    request: Request,
    page: PageNumber = 1,
    kind: Annotated[str | None, Query(max_length=20)] = None,
) -> Response:
    principal = current_principal(request)
    seen = _scope(principal, Action.READ_OPERATIONS, "The exceptions board")
    chosen = kind if kind in data.FINDING_KINDS else None
    found = data.findings(engine_of(request), seen, page, chosen)
    return _page(
        request,
        "exceptions_findings.html",
        "Reconciliation findings",
        principal,
        result=found,
        kinds=data.FINDING_KINDS,
        kind=chosen,
    )


@router.get("/exceptions/targets")
def targets(request: Request) -> Response:
    principal = current_principal(request)
    seen = _scope(principal, Action.READ_OPERATIONS, "The exceptions board")
    authorize(principal, Action.READ_TARGETS)
    health = data.target_health(engine_of(request), seen)
    return _page(
        request,
        "exceptions_targets.html",
        "Target health",
        principal,
        targets=health,
        now=_now(request),
        can_manage=decide(principal, Action.MANAGE_TARGETS, Resource()).allowed,
    )


# --- actions -------------------------------------------------------------------------------


def _operation_for(request: Request, principal: Principal, op_id: int) -> ledger.OperationRecord:
    engine = engine_of(request)
    with engine.connect() as conn:
        try:
            record = ledger.get_operation(conn, op_id)
        except NotFoundError:
            raise AccessDenied(404, "not found") from None
        authorize(principal, Action.OPERATE, person_resource(conn, record.person_id, record.target))
    return record


@router.post("/exceptions/operations/{op_id}/retry")
def retry_operation(request: Request, op_id: ObjectId) -> Response:
    principal = current_principal(request)
    record = _operation_for(request, principal, op_id)
    try:
        with engine_of(request).begin() as conn:
            ledger.retry_operation(conn, op_id, principal.subject)
    except ledger.OperationStateError as exc:
        _flash(request, "error", str(exc))
    else:
        _flash(
            request,
            "success",
            f"Operation {op_id} ({record.summary}) is queued again: the next worker run sends it.",
        )
    return _back(request, "/exceptions/parked")


@router.post("/exceptions/operations/{op_id}/cancel")
async def cancel_operation(request: Request, op_id: ObjectId) -> Response:
    principal = current_principal(request)
    record = _operation_for(request, principal, op_id)
    form = await _form(request)
    try:
        reason = _clean(form.get("reason"), "The reason", limit=MAX_REASON)
        if reason is None:
            raise ValueError(f"Enter the reason for cancelling operation {op_id}")
        with engine_of(request).begin() as conn:
            ledger.cancel_operation(conn, op_id, principal.subject, reason=reason)
    except (ValueError, ledger.OperationStateError) as exc:
        _flash(request, "error", str(exc))
    else:
        _flash(request, "success", f"Operation {op_id} ({record.summary}) is cancelled.")
    return _back(request, "/exceptions/parked")


def _task_for(request: Request, principal: Principal, task_id: int) -> Any:
    m, op, t = s.manual_task, s.operation, s.target
    with engine_of(request).connect() as conn:
        row = conn.execute(
            sa.select(m.c.id, m.c.instructions, op.c.person_id, t.c.key)
            .select_from(m.join(op, op.c.id == m.c.operation_id).join(t, t.c.id == m.c.target_id))
            .where(m.c.id == task_id)
        ).first()
        if row is None:
            raise AccessDenied(404, "not found")
        authorize(principal, Action.OPERATE, person_resource(conn, row.person_id, row.key))
    return row


@router.post("/exceptions/tasks/{task_id}/assign")
def assign_task(request: Request, task_id: ObjectId) -> Response:
    principal = current_principal(request)
    _task_for(request, principal, task_id)
    try:
        data.assign_task(
            engine_of(request), task_id, assignee=principal.subject, actor=principal.subject
        )
    except ManualTaskError as exc:
        _flash(request, "error", str(exc))
    else:
        _flash(request, "success", f"Manual task {task_id} is assigned to you.")
    return _back(request, "/exceptions/tasks")


@router.post("/exceptions/tasks/{task_id}/complete")
async def complete_task(request: Request, task_id: ObjectId) -> Response:
    principal = current_principal(request)
    _task_for(request, principal, task_id)
    form = await _form(request)
    try:
        done: dict[str, str] = {}
        for key, label, limit in (
            ("username", "The username created", MAX_FIELD),
            ("external_id", "The system's id", MAX_FIELD),
            ("note", "The note", MAX_REASON),
        ):
            value = _clean(form.get(key), label, limit=limit)
            if value is not None:
                done[key] = value
        complete_manual_task(engine_of(request), task_id, actor=principal.subject, completion=done)
    except (ValueError, ManualTaskError) as exc:
        _flash(request, "error", str(exc))
    else:
        what = f" with username '{done['username']}'" if "username" in done else ""
        _flash(request, "success", f"Manual task {task_id} is recorded as done{what}.")
    return _back(request, "/exceptions/tasks")


def _import_for(request: Request, principal: Principal, import_id: int) -> None:
    with engine_of(request).connect() as conn:
        if conn.scalar(sa.select(s.hr_import.c.id).where(s.hr_import.c.id == import_id)) is None:
            raise AccessDenied(404, "not found")
        orgs = data.import_organisations(conn, import_id)
    authorize(principal, Action.APPROVE_HR, Resource.of(orgs))


@router.post("/exceptions/imports/{import_id}/approve")
def approve_import(request: Request, import_id: ObjectId) -> Response:
    principal = current_principal(request)
    _import_for(request, principal, import_id)
    try:
        result = importer.approve_import(engine_of(request), import_id, actor=principal.subject)
    except PasaError as exc:
        _flash(request, "error", str(exc))
    else:
        _flash(
            request,
            "success",
            f"HR import {import_id} is approved: its {result.events_ended} ended assignments "
            "are applied.",
        )
    return _back(request, "/exceptions/imports")


@router.post("/exceptions/imports/{import_id}/reject")
async def reject_import(request: Request, import_id: ObjectId) -> Response:
    principal = current_principal(request)
    _import_for(request, principal, import_id)
    form = await _form(request)
    try:
        reason = _clean(form.get("reason"), "The reason", limit=MAX_REASON)
        if reason is None:
            raise ValueError(f"Enter the reason for rejecting HR import {import_id}")
        importer.reject_import(
            engine_of(request), import_id, actor=principal.subject, reason=reason
        )
    except (ValueError, PasaError) as exc:
        _flash(request, "error", str(exc))
    else:
        _flash(
            request,
            "success",
            f"HR import {import_id} is rejected: nobody is ended by it; new and changed "
            "records stay applied.",
        )
    return _back(request, "/exceptions/imports")


def _set_paused(request: Request, key: str, paused: bool) -> Response:
    principal = current_principal(request)
    authorize(principal, Action.MANAGE_TARGETS, Resource.of(target=key))
    try:
        changed = set_paused(engine_of(request), key, paused, actor=principal.subject)
    except NotFoundError:
        raise AccessDenied(404, "not found") from None
    word = "paused: its operations wait" if paused else "running again"
    _flash(
        request,
        "success",
        f"Target {key} is {word}." if changed else f"Target {key} was already {word}.",
    )
    return _back(request, "/exceptions/targets")


@router.post("/exceptions/targets/{key}/pause")
def pause_target(request: Request, key: TargetKey) -> Response:
    return _set_paused(request, key, True)


@router.post("/exceptions/targets/{key}/resume")
def resume_target(request: Request, key: TargetKey) -> Response:
    return _set_paused(request, key, False)


# --- people ----------------------------------------------------------------------------------


@router.get("/people")
def people(request: Request, q: Annotated[str, Query(max_length=200)] = "") -> Response:
    principal = current_principal(request)
    seen = _scope(principal, Action.READ_PEOPLE, "Person search")
    query = q.strip()
    hits, more = data.search_people(engine_of(request), seen, query) if query else ([], False)
    return _page(
        request,
        "people.html",
        "People",
        principal,
        q=query,
        hits=hits,
        more=more,
        searched=bool(data.search_terms(query)),
    )


@router.get("/people/{person_id}/timeline")
def timeline(request: Request, person_id: ObjectId, page: PageNumber = 1) -> Response:
    principal = current_principal(request)
    engine = engine_of(request)
    with engine.connect() as conn:
        resource = person_resource(conn, person_id)
    # 404 for a person of another organisation (or none), 403 for a role that may not read.
    for action in (Action.READ_PEOPLE, Action.READ_OPERATIONS, Action.READ_AUDIT):
        authorize(principal, action, resource)
    if not resource.organisations and not visibility(principal, Action.READ_PEOPLE).everything:
        # Nobody's person (no assignment anywhere): only a platform administrator sees them.
        raise AccessDenied(404, "not found")
    found = data.timeline(engine, person_id, resource.organisations, page)
    if found is None:
        raise AccessDenied(404, "not found")
    return _page(
        request,
        "timeline.html",
        f"Timeline of {found.name}",
        principal,
        timeline=found,
    )
