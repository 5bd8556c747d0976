"""HR imports, their quarantine, and the decision on imports held by the safety guard.

Reading imports and their quarantined rows is ``operations.read`` (the ingest is an
operation of the identity team; a quarantined row carries HR data, so staff and line
managers do not see it); approving or rejecting a held import is ``hr.approve``. An import
belongs to the organisations its events are in (an import that found no event is seen by
every organisation-wide reader).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Annotated, Any, Literal

import sqlalchemy as sa
from fastapi import APIRouter, Query, Response
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.engine import Connection

from pasa.domain.access import Action, Principal, Resource
from pasa.hr import importer
from pasa.store import schema as s
from pasa.web.api.common import (
    EngineDep,
    Id,
    IfMatch,
    Instant,
    Page,
    Paging,
    Visibility,
    authorize_list,
    check_if_match,
    int_key,
    not_found,
    with_etag,
)
from pasa.web.api.problems import responses
from pasa.web.security import CurrentPrincipal, authorize

router = APIRouter(tags=["imports"])

ImportStatus = Literal["received", "applied", "held", "approved", "rejected", "superseded"]


class ImportOut(BaseModel):
    id: int
    source: str
    filename: str
    sha256: str
    as_of: dt.date
    status: str
    organisations: list[str] = Field(description="ODS codes of the events the import found")
    started_at: Instant
    finished_at: Instant | None
    rows_total: int
    rows_accepted: int
    rows_rejected: int
    rows_warned: int
    events_new: int
    events_changed: int
    events_ended: int
    active_before: int
    guard_threshold: float
    guard_reason: str | None
    decided_by: str | None
    decided_at: Instant | None
    actor: str


class QuarantineOut(BaseModel):
    row_number: int
    severity: str
    field: str | None
    reason: str
    value: str | None
    assignment_number: str | None


class RejectIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: Annotated[str, Field(min_length=1, max_length=2000)]


def _orgs(conn: Connection, import_ids: list[int]) -> dict[int, list[str]]:
    e, o = s.hr_event, s.organisation
    out: dict[int, list[str]] = {}
    if not import_ids:
        return out
    for import_id, code in conn.execute(
        sa.select(e.c.import_id, o.c.ods_code)
        .select_from(e.join(o, o.c.id == e.c.organisation_id))
        .where(e.c.import_id.in_(import_ids))
        .distinct()
        .order_by(e.c.import_id, o.c.ods_code)
    ):
        out.setdefault(import_id, []).append(code)
    return out


def _outs(conn: Connection, rows: Sequence[Any]) -> list[ImportOut]:
    orgs = _orgs(conn, [r.id for r in rows])
    return [
        ImportOut(
            id=r.id,
            source=r.source,
            filename=r.filename,
            sha256=r.sha256,
            as_of=r.as_of,
            status=r.status,
            organisations=orgs.get(r.id, []),
            started_at=r.started_at,
            finished_at=r.finished_at,
            rows_total=r.rows_total,
            rows_accepted=r.rows_accepted,
            rows_rejected=r.rows_rejected,
            rows_warned=r.rows_warned,
            events_new=r.events_new,
            events_changed=r.events_changed,
            events_ended=r.events_ended,
            active_before=r.active_before,
            guard_threshold=r.guard_threshold,
            guard_reason=r.guard_reason,
            decided_by=r.decided_by,
            decided_at=r.decided_at,
            actor=r.actor,
        )
        for r in rows
    ]


def _load(conn: Connection, principal: Principal, import_id: int, action: Action) -> ImportOut:
    row = conn.execute(sa.select(s.hr_import).where(s.hr_import.c.id == import_id)).first()
    if row is None:
        raise not_found()
    out = _outs(conn, [row])[0]
    authorize(principal, action, Resource.of(out.organisations))
    return out


def _visible(seen: Visibility) -> Any:
    if seen.everything:
        return sa.true()
    if not seen.organisations:
        return sa.false()
    e, o = s.hr_event, s.organisation
    events_of = sa.select(e.c.id).where(e.c.import_id == s.hr_import.c.id)
    in_orgs = events_of.join(o, o.c.id == e.c.organisation_id).where(
        o.c.ods_code.in_(sorted(seen.organisations))
    )
    return sa.or_(~sa.exists(events_of), sa.exists(in_orgs))


@router.get("/imports", response_model=Page[ImportOut], summary="List HR imports")
def list_imports(
    principal: CurrentPrincipal,
    paging: Paging,
    engine: EngineDep,
    status: Annotated[ImportStatus | None, Query(description="Only in this status")] = None,
) -> Page[ImportOut]:
    seen = authorize_list(principal, Action.READ_OPERATIONS)
    after = int_key(paging)
    i = s.hr_import
    query = sa.select(i).where(_visible(seen)).order_by(i.c.id).limit(paging.limit + 1)
    if status is not None:
        query = query.where(i.c.status == status)
    if after is not None:
        query = query.where(i.c.id > after)
    with engine.connect() as conn:
        items = _outs(conn, conn.execute(query).all())
    return paging.page(items, lambda x: x.id)


@router.get("/imports/{import_id}", response_model=ImportOut, summary="One HR import")
def get_import(
    import_id: Id, principal: CurrentPrincipal, engine: EngineDep, response: Response
) -> ImportOut:
    with engine.connect() as conn:
        out = _load(conn, principal, import_id, Action.READ_OPERATIONS)
    with_etag(response, out)
    return out


@router.get(
    "/imports/{import_id}/quarantine",
    response_model=Page[QuarantineOut],
    summary="Rows of an import rejected or accepted with a warning",
)
def get_quarantine(
    import_id: Id, principal: CurrentPrincipal, paging: Paging, engine: EngineDep
) -> Page[QuarantineOut]:
    after = int_key(paging)
    with engine.connect() as conn:
        _load(conn, principal, import_id, Action.READ_OPERATIONS)
    # The quarantine of a finished import never changes: the key is the position in it.
    start = 0 if after is None else after + 1
    rows = importer.quarantine(engine, import_id)[start : start + paging.limit + 1]
    page = paging.page(list(enumerate(rows, start)), lambda x: x[0])
    return Page[QuarantineOut](
        items=[QuarantineOut(**q._asdict()) for _, q in page.items], next=page.next
    )


def _decide(
    conn_engine: EngineDep,
    principal: Principal,
    import_id: Id,
    if_match: str | None,
    response: Response,
    reason: str | None,
) -> ImportOut:
    with conn_engine.connect() as conn:
        current = _load(conn, principal, import_id, Action.APPROVE_HR)
    check_if_match(if_match, current)
    if reason is None:
        importer.approve_import(conn_engine, import_id, actor=principal.subject)
    else:
        importer.reject_import(conn_engine, import_id, actor=principal.subject, reason=reason)
    with conn_engine.connect() as conn:
        out = _load(conn, principal, import_id, Action.APPROVE_HR)
    with_etag(response, out)
    return out


@router.post(
    "/imports/{import_id}/approve",
    response_model=ImportOut,
    summary="Approve an import held by the guard (its terminations are applied)",
    responses=responses(409, 412),
)
def approve(
    import_id: Id,
    principal: CurrentPrincipal,
    engine: EngineDep,
    response: Response,
    if_match: IfMatch = None,
) -> ImportOut:
    return _decide(engine, principal, import_id, if_match, response, None)


@router.post(
    "/imports/{import_id}/reject",
    response_model=ImportOut,
    summary="Reject an import held by the guard (its terminations are discarded)",
    responses=responses(409, 412),
)
def reject(
    import_id: Id,
    body: RejectIn,
    principal: CurrentPrincipal,
    engine: EngineDep,
    response: Response,
    if_match: IfMatch = None,
) -> ImportOut:
    return _decide(engine, principal, import_id, if_match, response, body.reason)
