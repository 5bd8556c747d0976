"""Rotation batches (preview, approve) and the policy editor with what-if before saving
(issue 6).

* ``/rotations``: the batches, and the upload of a rotation file (the same service and
  validation as ``pasa rotation import``). ``/rotations/{id}``: the preview diff (counts per
  target, people x targets paged and filtered by target), approve once, amend, cancel with a
  reason, and the report once executed.
* ``/policy``: the active version as YAML, "Preview changes" (a what-if through
  :mod:`pasa.service.policy_edit`, nothing written), "Save as new version" only for the text
  previewed and only if the active version has not changed since; the version history with
  a diff against the previous version.

Viewing needs ``operations.read`` (rotations) or ``policy.read``; changing needs
``rotations.manage`` or ``policy.manage``. A batch belongs to the organisations its rows name:
another organisation's identity team is told it does not exist (404), as the API does.

Uploads are ``multipart/form-data`` parsed with the standard library's e-mail parser (no
extra dependency). The session's CSRF check reads the token from the ``X-CSRF-Token`` header
for such bodies, which htmx sends from the form's ``hx-headers``.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
import tempfile
from pathlib import Path as FilePath
from typing import Annotated, Any
from urllib.parse import parse_qs, urlencode

import sqlalchemy as sa
from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy.engine import Engine
from starlette.concurrency import run_in_threadpool

from pasa.clock import local_date
from pasa.config import get_settings
from pasa.domain.access import Action, Principal, Resource
from pasa.domain.errors import PasaError
from pasa.hr.esr import RowProblem
from pasa.hr.esr_columns import COLUMNS
from pasa.service import policy_edit, rotation
from pasa.store import schema as s
from pasa.web.forms import MultipartError, parse_multipart
from pasa.web.pages.rendering import PageRoute, render
from pasa.web.security import (
    AccessDenied,
    CurrentPrincipal,
    authorize,
    clock_of,
    engine_of,
)
from pasa.web.sessions import csrf_token

router = APIRouter(include_in_schema=False, route_class=PageRoute)

BatchId = Annotated[int, Path(ge=1, le=2**31 - 1)]
VersionId = Annotated[int, Path(ge=1, le=2**31 - 1)]
PageNo = Annotated[int, Query(ge=1, le=100_000)]
PAGE_SIZE = 50
# A full extract of a large trust as at the rotation date fits well within this.
MAX_UPLOAD_BYTES = 10 * 1024 * 1024
MAX_FORM_BYTES = 1024 * 1024
_ORG = COLUMNS.index("Org_Code")


def _today(request: Request) -> dt.date:
    return local_date(clock_of(request).now(), get_settings().timezone)


def _is_htmx(request: Request) -> bool:
    return request.headers.get("hx-request") == "true"


def _csrf_value(request: Request) -> str:
    return csrf_token(request) if "session" in request.scope else ""


async def _form(request: Request) -> dict[str, str]:
    body = await request.body()
    if len(body) > MAX_FORM_BYTES:
        raise AccessDenied(413, "the form is too large")
    form = parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True)
    return {k: v[0] for k, v in form.items()}


class UploadError(ValueError):
    pass


async def _multipart(request: Request) -> tuple[dict[str, str], tuple[str, bytes] | None]:
    """The fields and the one file of a ``multipart/form-data`` body (size-limited)."""
    content_type = request.headers.get("content-type", "")
    if not content_type.lower().startswith("multipart/form-data"):
        raise UploadError("send the form as multipart/form-data (with the file)")
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_UPLOAD_BYTES:
        raise UploadError(f"the file is larger than {MAX_UPLOAD_BYTES // (1024 * 1024)} MB")
    body = await request.body()
    if len(body) > MAX_UPLOAD_BYTES:
        raise UploadError(f"the file is larger than {MAX_UPLOAD_BYTES // (1024 * 1024)} MB")
    try:
        form = parse_multipart(content_type, body)
    except MultipartError:
        raise UploadError("the form could not be read: send it again") from None
    upload = next(iter(form.files.values()), None)
    if upload is not None:
        upload = (upload[0] or "rotation.csv", upload[1])
    return form.fields, upload


# --- rotations: authorization -------------------------------------------------------------


def _batch_orgs(engine: Engine, batch_id: int) -> frozenset[str] | None:
    """The organisations a batch's rows belong to (None: no such batch)."""
    rb = s.rotation_batch
    with engine.connect() as conn:
        text = conn.scalar(sa.select(rb.c.rows_csv).where(rb.c.id == batch_id))
    if text is None:
        return None
    return _orgs_in(text.encode("utf-8"))


def _orgs_in(data: bytes) -> frozenset[str]:
    reader = csv.reader(io.StringIO(data.decode("utf-8-sig", "replace")))
    next(reader, None)
    return frozenset(row[_ORG].strip().upper() for row in reader if len(row) > _ORG and row[_ORG])


def _authorize_batch(
    request: Request, principal: Principal, batch_id: int, action: Action
) -> Engine:
    engine = engine_of(request)
    authorize(principal, action)
    orgs = _batch_orgs(engine, batch_id)
    if orgs is None:
        raise AccessDenied(404, "not found")
    authorize(principal, action, Resource.of(orgs))
    return engine


def _visible(principal: Principal, orgs: frozenset[str]) -> bool:
    seen = principal.organisations()
    return seen is None or not orgs or bool(orgs & seen)


# --- rotations: pages ---------------------------------------------------------------------


def _rotations_page(
    request: Request,
    principal: Principal,
    *,
    errors: list[dict[str, str]] | None = None,
    problems: list[RowProblem] | None = None,
    values: dict[str, str] | None = None,
    status: int = 200,
) -> Response:
    engine = engine_of(request)
    batches = [
        b
        for b in rotation.list_batches(engine)
        if _visible(principal, _batch_orgs(engine, b.id) or frozenset())
    ]
    batches.reverse()  # newest first
    return render(
        request,
        "rotations.html",
        title="Rotation batches",
        principal=principal,
        batches=batches,
        errors=errors or [],
        problems=(problems or [])[:100],
        problem_count=len(problems or []),
        values=values or {},
        today=_today(request),
        csrf_value=_csrf_value(request),
        status=status,
    )


@router.get("/rotations")
def rotations(request: Request, principal: CurrentPrincipal) -> Response:
    authorize(principal, Action.READ_OPERATIONS)
    return _rotations_page(request, principal)


def _parse_date(text: str) -> dt.date | None:
    try:
        return dt.date.fromisoformat(text.strip())
    except ValueError:
        return None


def _import(
    engine: Engine, name: str, when: dt.date, upload: tuple[str, bytes], actor: str, today: dt.date
) -> rotation.Batch:
    with tempfile.TemporaryDirectory(prefix="pasa-upload-") as tmp:
        path = FilePath(tmp) / upload[0]
        path.write_bytes(upload[1])
        return rotation.import_batch(
            engine, path, name=name, effective_date=when, actor=actor, today=today
        )


def _amend(
    engine: Engine, batch_id: int, upload: tuple[str, bytes], actor: str, today: dt.date
) -> rotation.Batch:
    with tempfile.TemporaryDirectory(prefix="pasa-upload-") as tmp:
        path = FilePath(tmp) / upload[0]
        path.write_bytes(upload[1])
        return rotation.amend(engine, batch_id, path, actor=actor, today=today)


def _done(request: Request, url: str) -> Response:
    """After a change: a redirect (htmx follows ``HX-Redirect`` with a full page load)."""
    if _is_htmx(request):
        return Response(status_code=200, headers={"HX-Redirect": url})
    return RedirectResponse(url, status_code=303)


def _error_status(request: Request) -> int:
    # htmx swaps only successful responses; a browser without it gets the honest 422.
    return 200 if _is_htmx(request) else 422


@router.post("/rotations")
async def upload_rotation(request: Request, principal: CurrentPrincipal) -> Response:
    authorize(principal, Action.MANAGE_ROTATIONS)
    errors: list[dict[str, str]] = []
    try:
        fields, upload = await _multipart(request)
    except UploadError as exc:
        errors.append({"text": str(exc), "href": "#rotation-file"})
        return _rotations_page(request, principal, errors=errors, status=_error_status(request))
    name = fields.get("name", "").strip()
    when = _parse_date(fields.get("effective_date", ""))
    values = {"name": name, "effective_date": fields.get("effective_date", "")}
    today = _today(request)
    if not name:
        errors.append({"text": "Enter a name for the batch, e.g. August 2027", "href": "#name"})
    elif len(name) > 200:
        errors.append({"text": "The name must be 200 characters or fewer", "href": "#name"})
    if when is None:
        errors.append({"text": "Enter the rotation date as YYYY-MM-DD", "href": "#effective_date"})
    elif when < today:
        errors.append(
            {
                "text": f"The rotation date must be today ({today.isoformat()}) or later",
                "href": "#effective_date",
            }
        )
    if upload is None:
        errors.append(
            {"text": "Choose the rotation file (an ESR extract, CSV)", "href": "#rotation-file"}
        )
    if errors or upload is None or when is None:
        return _rotations_page(
            request, principal, errors=errors, values=values, status=_error_status(request)
        )
    # The file's organisations must all be this identity team's (others' are not theirs to move).
    orgs = _orgs_in(upload[1])
    mine = principal.organisations()
    if mine is not None and not orgs <= mine:
        outside = ", ".join(sorted(orgs - mine))
        errors.append(
            {
                "text": f"The file has rows of organisations outside your identity team "
                f"({outside}): only your own organisation's staff can be moved here",
                "href": "#rotation-file",
            }
        )
        return _rotations_page(request, principal, errors=errors, values=values, status=403)
    authorize(principal, Action.MANAGE_ROTATIONS, Resource.of(orgs))
    engine = engine_of(request)
    try:
        batch = await run_in_threadpool(
            _import, engine, name, when, upload, principal.subject, today
        )
    except rotation.BatchRefused as exc:
        errors.append({"text": str(exc), "href": "#rotation-file"})
        return _rotations_page(
            request,
            principal,
            errors=errors,
            problems=exc.problems,
            values=values,
            status=_error_status(request),
        )
    except PasaError as exc:
        errors.append({"text": str(exc), "href": "#rotation-file"})
        return _rotations_page(
            request, principal, errors=errors, values=values, status=_error_status(request)
        )
    query = {"done": "imported"}
    if batch.warnings:
        query["warnings"] = str(len(batch.warnings))
    return _done(request, f"/rotations/{batch.id}?{urlencode(query)}")


_DONE = {
    "imported": "The rotation file was imported as a batch. Check the preview; someone else "
    "approves it.",
    "approved": "The batch is approved. It runs on its date.",
    "amended": "The batch was amended. It must be approved again.",
    "cancelled": "The batch was cancelled.",
}


def _batch_page(
    request: Request,
    principal: Principal,
    batch_id: int,
    *,
    target: str | None = None,
    page: int = 1,
    errors: list[dict[str, str]] | None = None,
    status: int = 200,
) -> Response:
    engine = engine_of(request)
    batch = rotation.get_batch(engine, batch_id)
    preview = report = None
    if batch.status in rotation.OPEN:
        preview = rotation.preview(engine, batch_id)
    elif batch.status == "executed":
        report = rotation.report(engine, batch_id)
    people: list[Any] = []
    pages = 1
    if preview is not None:
        rows = list(preview.people)
        if target:
            prefix = f"{target}: "
            rows = [p for p in rows if any(x.startswith(prefix) for x in (*p.adds, *p.removes))]
        pages = max(1, -(-len(rows) // PAGE_SIZE))
        page = min(page, pages)
        people = [
            {
                "person_id": p.person_id,
                "name": p.name,
                "adds": [x for x in p.adds if not target or x.startswith(f"{target}: ")],
                "removes": [x for x in p.removes if not target or x.startswith(f"{target}: ")],
            }
            for p in rows[(page - 1) * PAGE_SIZE : page * PAGE_SIZE]
        ]
        matched = len(rows)
    else:
        matched = 0
    done = request.query_params.get("done")
    can_manage = _may(principal, Action.MANAGE_ROTATIONS, _batch_orgs(engine, batch_id))
    return render(
        request,
        "rotations_batch.html",
        title=f"Rotation batch: {batch.name}",
        principal=principal,
        batch=batch,
        preview=preview,
        report=report,
        people=people,
        matched=matched,
        target=target or "",
        page=page,
        pages=pages,
        page_url=lambda n: (
            f"/rotations/{batch_id}?"
            + urlencode({k: v for k, v in (("target", target), ("page", n)) if v})
        ),
        done=_DONE.get(done or ""),
        warnings=request.query_params.get("warnings"),
        can_manage=can_manage,
        today=_today(request),
        errors=errors or [],
        csrf_value=_csrf_value(request),
        status=status,
    )


def _may_change_policy(engine: Engine, principal: Principal) -> bool:
    """The policy is one document for the whole deployment: changing it needs the right in
    every organisation it governs (a platform admin; or the identity team of the only
    organisation), so one trust's admin cannot change another trust's access."""
    with engine.connect() as conn:
        codes = list(conn.scalars(sa.select(s.organisation.c.ods_code)))
    return all(_may(principal, Action.MANAGE_POLICY, frozenset({c})) for c in codes) and _may(
        principal, Action.MANAGE_POLICY, None
    )


def _may(principal: Principal, action: Action, orgs: frozenset[str] | None) -> bool:
    try:
        authorize(principal, action, Resource.of(orgs or frozenset()))
    except AccessDenied:
        return False
    return True


_TARGET_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,59}$")


@router.get("/rotations/{batch_id}")
def rotation_batch(
    request: Request,
    principal: CurrentPrincipal,
    batch_id: BatchId,
    target: Annotated[str | None, Query(max_length=60)] = None,
    page: PageNo = 1,
) -> Response:
    _authorize_batch(request, principal, batch_id, Action.READ_OPERATIONS)
    if target and not _TARGET_RE.match(target):
        target = None
    return _batch_page(request, principal, batch_id, target=target, page=page)


@router.get("/rotations/{batch_id}/{step}")
def confirm_step(
    request: Request,
    principal: CurrentPrincipal,
    batch_id: BatchId,
    step: Annotated[str, Path(pattern="^(approve|cancel)$")],
) -> Response:
    engine = _authorize_batch(request, principal, batch_id, Action.MANAGE_ROTATIONS)
    batch = rotation.get_batch(engine, batch_id)
    return render(
        request,
        "rotations_confirm.html",
        title=f"{'Approve' if step == 'approve' else 'Cancel'} rotation batch {batch.name}",
        principal=principal,
        batch=batch,
        step=step,
        errors=[],
        reason="",
    )


@router.post("/rotations/{batch_id}/approve")
def approve_batch(request: Request, principal: CurrentPrincipal, batch_id: BatchId) -> Response:
    engine = _authorize_batch(request, principal, batch_id, Action.MANAGE_ROTATIONS)
    try:
        rotation.approve(engine, batch_id, actor=principal.subject)
    except PasaError as exc:
        return _batch_page(
            request, principal, batch_id, errors=[{"text": str(exc), "href": "#actions"}],
            status=409,
        )  # fmt: skip
    return RedirectResponse(f"/rotations/{batch_id}?done=approved", status_code=303)


@router.post("/rotations/{batch_id}/cancel")
async def cancel_batch(
    request: Request, principal: CurrentPrincipal, batch_id: BatchId
) -> Response:
    engine = _authorize_batch(request, principal, batch_id, Action.MANAGE_ROTATIONS)
    form = await _form(request)
    reason = form.get("reason", "").strip()
    problem = None
    if not reason:
        problem = "Enter why the batch is cancelled"
    elif len(reason) > 2000:
        problem = "The reason must be 2,000 characters or fewer"
    else:
        try:
            await run_in_threadpool(
                rotation.cancel, engine, batch_id, actor=principal.subject, reason=reason
            )
        except PasaError as exc:
            problem = str(exc)
    if problem is not None:
        batch = rotation.get_batch(engine, batch_id)
        return render(
            request,
            "rotations_confirm.html",
            title=f"Cancel rotation batch {batch.name}",
            principal=principal,
            batch=batch,
            step="cancel",
            errors=[{"text": problem, "href": "#reason"}],
            reason=reason,
            status=422,
        )
    return RedirectResponse(f"/rotations/{batch_id}?done=cancelled", status_code=303)


@router.post("/rotations/{batch_id}/amend")
async def amend_batch(request: Request, principal: CurrentPrincipal, batch_id: BatchId) -> Response:
    engine = _authorize_batch(request, principal, batch_id, Action.MANAGE_ROTATIONS)
    problem: str | None = None
    try:
        _fields, upload = await _multipart(request)
    except UploadError as exc:
        upload, problem = None, str(exc)
    if upload is None and problem is None:
        problem = "Choose the new rotation file"
    if upload is not None:
        orgs = _orgs_in(upload[1])
        authorize(principal, Action.MANAGE_ROTATIONS, Resource.of(orgs))
        try:
            await run_in_threadpool(
                _amend, engine, batch_id, upload, principal.subject, _today(request)
            )
        except PasaError as exc:
            problem = str(exc)
    if problem is not None:
        return _batch_page(
            request, principal, batch_id, errors=[{"text": problem, "href": "#amend-file"}],
            status=_error_status(request),
        )  # fmt: skip
    return _done(request, f"/rotations/{batch_id}?done=amended")


# --- the policy editor ----------------------------------------------------------------------


def _policy_page(
    request: Request,
    principal: Principal,
    *,
    text: str | None = None,
    errors: list[dict[str, str]] | None = None,
    saved: int | None = None,
    status: int = 200,
) -> Response:
    engine = engine_of(request)
    current = policy_edit.active(engine)
    return render(
        request,
        "policy.html",
        title="Access policy",
        principal=principal,
        current=current,
        text=text if text is not None else (current.text if current else ""),
        versions=policy_edit.versions(engine)[:50],
        can_manage=_may(principal, Action.MANAGE_POLICY, None),
        can_save=_may_change_policy(engine, principal),
        errors=errors or [],
        saved=saved,
        status=status,
    )


@router.get("/policy")
def policy(
    request: Request,
    principal: CurrentPrincipal,
    saved: Annotated[int | None, Query(ge=1, le=2**31 - 1)] = None,
) -> Response:
    authorize(principal, Action.READ_POLICY)
    return _policy_page(request, principal, saved=saved)


def _visible_changes(
    principal: Principal, engine: Engine, changes: tuple[policy_edit.Change, ...]
) -> tuple[list[policy_edit.Change], int]:
    """The people of the what-if this principal may see; the count of the others."""
    orgs = principal.organisations()
    if orgs is None or not changes:
        return list(changes), 0
    a, o = s.assignment, s.organisation
    ids = [c.person_id for c in changes]
    seen: set[int] = set()
    with engine.connect() as conn:
        for start in range(0, len(ids), 1000):
            seen.update(
                conn.scalars(
                    sa.select(a.c.person_id)
                    .join(o, o.c.id == a.c.organisation_id)
                    .where(
                        a.c.person_id.in_(ids[start : start + 1000]),
                        o.c.ods_code.in_(sorted(orgs)),
                    )
                )
            )
    shown = [c for c in changes if c.person_id in seen]
    return shown, len(changes) - len(shown)


@router.post("/policy/preview")
async def policy_preview(request: Request, principal: CurrentPrincipal) -> Response:
    # Previewing is part of changing the policy: the auditor reads it, the identity team edits.
    authorize(principal, Action.MANAGE_POLICY)
    form = await _form(request)
    text = form.get("policy", "")
    base = form.get("base_version", "")
    page = int(form["page"]) if form.get("page", "").isdigit() else 1
    engine = engine_of(request)
    if not text.strip():
        return _policy_page(
            request,
            principal,
            text=text,
            errors=[{"text": "Enter the policy (YAML)", "href": "#policy"}],
            status=422,
        )
    result = await run_in_threadpool(policy_edit.preview, engine, text, _today(request))
    current = policy_edit.active(engine)
    shown, hidden = _visible_changes(principal, engine, result.changes)
    pages = max(1, -(-len(shown) // PAGE_SIZE))
    page = max(1, min(page, pages))
    return render(
        request,
        "policy_preview.html",
        title="Preview of policy changes" if result.valid else "The policy has problems",
        principal=principal,
        result=result,
        current=current,
        base_version=base if base.isdigit() else str(current.version.id if current else 0),
        changes=shown[(page - 1) * PAGE_SIZE : page * PAGE_SIZE],
        shown=len(shown),
        hidden=hidden,
        can_save=_may_change_policy(engine, principal),
        page=page,
        pages=pages,
        errors=[{"text": e, "href": "#policy"} for e in result.errors],
        status=200 if result.valid else 422,
    )


@router.post("/policy/save")
async def policy_save(request: Request, principal: CurrentPrincipal) -> Response:
    authorize(principal, Action.MANAGE_POLICY)
    engine = engine_of(request)
    if not _may_change_policy(engine, principal):
        raise AccessDenied(
            403,
            "The access policy covers every organisation in this PASA: only a platform "
            "administrator (or the identity team of every organisation) may change it.",
        )
    form = await _form(request)
    text = form.get("policy", "")
    previewed = form.get("previewed_sha256", "")
    base = form.get("base_version", "")
    if not base.isdigit():
        problem = "Preview the changes before saving"
    else:
        try:
            version_id = await run_in_threadpool(
                lambda: policy_edit.save(
                    engine, text, previewed=previewed, based_on=int(base), actor=principal.subject
                )
            )
        except PasaError as exc:
            problem = str(exc)
        else:
            return RedirectResponse(f"/policy?saved={version_id}", status_code=303)
    return _policy_page(
        request,
        principal,
        text=policy_edit.normalise(text),
        errors=[{"text": problem, "href": "#policy"}],
        status=409,
    )


@router.get("/policy/versions/{version_id}")
def policy_version(
    request: Request, principal: CurrentPrincipal, version_id: VersionId
) -> Response:
    authorize(principal, Action.READ_POLICY)
    found = policy_edit.version_diff(engine_of(request), version_id)
    if found is None:
        raise AccessDenied(404, "not found")
    rows = []
    for line in found.lines:
        if line.startswith(("+++", "---")):
            kind = "file"
        elif line.startswith("@@"):
            kind = "hunk"
        elif line.startswith("+"):
            kind = "added"
        elif line.startswith("-"):
            kind = "removed"
        else:
            kind = "same"
        # The +/- marker is shown beside the line and spoken as a word (see the template).
        text = line[1:] if kind in ("added", "removed", "same") else line
        rows.append({"kind": kind, "text": text})
    return render(
        request,
        "policy_version.html",
        title=f"Policy version {version_id}",
        principal=principal,
        diff=found,
        rows=rows,
    )
