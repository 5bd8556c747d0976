"""HR push: an organisation's HR changes by API, through the same import as a file.

``POST /organisations/{ods_code}/hr-records`` takes JSON records keyed by the extract's
column names; ``POST /organisations/{ods_code}/hr-scim-bulk`` takes a SCIM ``BulkRequest``
of Users as Entra ID's API-driven inbound provisioning sends it. Both need ``hr.import`` in
that organisation (an ``hr:push`` token of it, or its identity team) and answer with the
import's counts and every quarantined row named by the sender's own reference. See
``docs/hr-feed.md`` ("HR push").
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from fastapi import APIRouter, Body, Path, Query, Request
from pydantic import BaseModel, Field
from sqlalchemy.engine import Engine

from pasa.clock import local_date
from pasa.config import get_settings
from pasa.domain.access import Action, Principal, Resource
from pasa.hr.push import MAX_RECORDS, PushRows, PushShapeError, from_records, from_scim_bulk
from pasa.service.hr_push import PushRefused, push
from pasa.web.api.common import EngineDep
from pasa.web.api.problems import ApiProblem, FieldError, responses
from pasa.web.security import CurrentPrincipal, authorize, clock_of

router = APIRouter(tags=["hr push"])

Cell = str | int | float | bool | None


class HrRecords(BaseModel):
    records: list[dict[str, Cell]] = Field(
        min_length=1,
        max_length=MAX_RECORDS,
        description="One object per assignment, keyed by the extract's column names "
        "(Org_Code, Employee_Number, Assignment_Number, ...; docs/hr-feed.md)",
    )


class PushProblemOut(BaseModel):
    reference: str = Field(description="the sender's: 'record 3' or the SCIM bulkId")
    row_number: int
    severity: str
    field: str | None
    reason: str


class PushOut(BaseModel):
    import_id: int
    status: str
    as_of: dt.date
    rows_total: int
    rows_accepted: int
    rows_rejected: int
    rows_warned: int
    events_new: int
    events_changed: int
    events_ended: int
    problems: list[PushProblemOut]


AsOf = Annotated[
    dt.date | None,
    Query(description="Effective date of the records (default: today in the organisation)"),
]


def _push(
    request: Request,
    engine: Engine,
    principal: Principal,
    ods_code: str,
    rows: PushRows,
    as_of: Any,
) -> PushOut:
    day = as_of or local_date(clock_of(request).now(), get_settings().timezone)
    try:
        outcome = push(engine, rows, organisation=ods_code, actor=principal.subject, as_of=day)
    except PushRefused as exc:
        errors = [
            FieldError(location=f"{q.reference}.{q.field or 'row'}", message=q.reason)
            for q in exc.problems
        ]
        raise ApiProblem(422, str(exc), errors=errors or None) from None
    r = outcome.result
    return PushOut(
        import_id=r.import_id,
        status=r.status,
        as_of=day,
        rows_total=r.rows_total,
        rows_accepted=r.rows_accepted,
        rows_rejected=r.rows_rejected,
        rows_warned=r.rows_warned,
        events_new=r.events_new,
        events_changed=r.events_changed,
        events_ended=r.events_ended,
        problems=[
            PushProblemOut(
                reference=p.reference,
                row_number=p.row_number,
                severity=p.severity,
                field=p.field,
                reason=p.reason,
            )
            for p in outcome.problems
        ],
    )


def _may_push(principal: Principal, ods_code: str) -> None:
    authorize(principal, Action.IMPORT_HR, Resource.of(ods_code.upper()))


@router.post(
    "/organisations/{ods_code}/hr-records",
    response_model=PushOut,
    responses=responses(413, 429),
    summary="Push HR records (JSON) through the import",
)
def push_records(
    ods_code: Annotated[str, Path(max_length=10)],
    body: HrRecords,
    request: Request,
    engine: EngineDep,
    principal: CurrentPrincipal,
    as_of: AsOf = None,
) -> PushOut:
    _may_push(principal, ods_code)
    try:
        rows = from_records({"records": body.records})
    except PushShapeError as exc:
        raise ApiProblem(422, str(exc)) from None
    return _push(request, engine, principal, ods_code, rows, as_of)


@router.post(
    "/organisations/{ods_code}/hr-scim-bulk",
    response_model=PushOut,
    responses=responses(413, 429),
    summary="Push HR records as a SCIM BulkRequest of Users (Entra inbound shape)",
)
def push_scim_bulk(
    ods_code: Annotated[str, Path(max_length=10)],
    body: Annotated[dict[str, Any], Body(description="A SCIM BulkRequest (RFC 7644 section 3.7)")],
    request: Request,
    engine: EngineDep,
    principal: CurrentPrincipal,
    as_of: AsOf = None,
) -> PushOut:
    _may_push(principal, ods_code)
    try:
        rows = from_scim_bulk(body)
    except PushShapeError as exc:
        raise ApiProblem(422, str(exc)) from None
    return _push(request, engine, principal, ods_code, rows, as_of)
