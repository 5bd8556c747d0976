"""The operations ledger: every change PASA sends to a target, with its reason and state.

Reading is ``operations.read``; retrying a parked operation and cancelling an open one are
``operations.manage`` (the identity team, the system's owner, ``api:write`` tokens).
"""

from __future__ import annotations

from typing import Annotated, Any

import sqlalchemy as sa
from fastapi import APIRouter, Query, Response
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.engine import Connection

from pasa.domain.access import Action, Principal
from pasa.domain.errors import NotFoundError
from pasa.domain.operations import OperationStatus
from pasa.engine import ledger
from pasa.store import schema as s
from pasa.web.api.common import (
    MAX_ID,
    EngineDep,
    Id,
    IfMatch,
    Instant,
    Page,
    Paging,
    authorize_list,
    check_if_match,
    int_key,
    not_found,
    person_filter,
    person_resource,
    with_etag,
)
from pasa.web.api.problems import responses
from pasa.web.security import CurrentPrincipal, authorize

router = APIRouter(tags=["operations"])


class OperationOut(BaseModel):
    id: int
    plan_id: str
    target: str
    person_id: int
    account_id: int | None
    kind: str
    username: str
    summary: str
    reasons: list[dict[str, Any]] = Field(description="Why: the rules, roles and requests")
    status: OperationStatus
    attempts: int
    last_error: str | None
    created_at: Instant
    not_before: Instant | None
    completed_at: Instant | None


class CancelIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: Annotated[str, Field(max_length=2000)] = ""


def operation_out(r: ledger.OperationRecord) -> OperationOut:
    return OperationOut(
        id=r.id,
        plan_id=r.plan_id,
        target=r.target,
        person_id=r.person_id,
        account_id=r.account_id,
        kind=r.kind,
        username=r.username,
        summary=r.summary,
        reasons=r.reasons,
        status=OperationStatus(r.status),
        attempts=r.attempts,
        last_error=r.last_error,
        created_at=r.created_at,
        not_before=r.not_before,
        completed_at=r.completed_at,
    )


def load_operation(
    conn: Connection, principal: Principal, op_id: int, action: Action
) -> OperationOut:
    """The operation, once ``principal`` may do ``action`` on it (404 when missing)."""
    try:
        record = ledger.get_operation(conn, op_id)
    except NotFoundError:
        raise not_found() from None
    authorize(principal, action, person_resource(conn, record.person_id, record.target))
    return operation_out(record)


@router.get("/operations", response_model=Page[OperationOut], summary="List operations")
def list_operations(
    principal: CurrentPrincipal,
    paging: Paging,
    engine: EngineDep,
    status: Annotated[OperationStatus | None, Query(description="Only in this status")] = None,
    target: Annotated[str | None, Query(max_length=60, description="Only for this target")] = None,
    person_id: Annotated[
        int | None, Query(ge=1, le=MAX_ID, description="Only for this person")
    ] = None,
    plan_id: Annotated[str | None, Query(max_length=36, description="Only from this plan")] = None,
) -> Page[OperationOut]:
    seen = authorize_list(principal, Action.READ_OPERATIONS)
    after = int_key(paging)
    op, t = s.operation, s.target
    query = (
        sa.select(op, t.c.key.label("target_key"))
        .select_from(op.join(t, t.c.id == op.c.target_id))
        .where(person_filter(seen, op.c.person_id, t.c.key))
        .order_by(op.c.id)
        .limit(paging.limit + 1)
    )
    if status is not None:
        query = query.where(op.c.status == status.value)
    if target is not None:
        query = query.where(t.c.key == target)
    if person_id is not None:
        query = query.where(op.c.person_id == person_id)
    if plan_id is not None:
        query = query.where(op.c.plan_id == plan_id)
    if after is not None:
        query = query.where(op.c.id > after)
    with engine.connect() as conn:
        items = [operation_out(ledger.record_of(row)) for row in conn.execute(query)]
    return paging.page(items, lambda x: x.id)


@router.get("/operations/{operation_id}", response_model=OperationOut, summary="One operation")
def get_operation(
    operation_id: Id, principal: CurrentPrincipal, engine: EngineDep, response: Response
) -> OperationOut:
    with engine.connect() as conn:
        out = load_operation(conn, principal, operation_id, Action.READ_OPERATIONS)
    with_etag(response, out)
    return out


@router.post(
    "/operations/{operation_id}/retry",
    response_model=OperationOut,
    summary="Send a parked operation again",
    responses=responses(409, 412),
)
def retry(
    operation_id: Id,
    principal: CurrentPrincipal,
    engine: EngineDep,
    response: Response,
    if_match: IfMatch = None,
) -> OperationOut:
    with engine.begin() as conn:
        current = load_operation(conn, principal, operation_id, Action.OPERATE)
        check_if_match(if_match, current)
        ledger.retry_operation(conn, operation_id, principal.subject)
        out = operation_out(ledger.get_operation(conn, operation_id))
    with_etag(response, out)
    return out


@router.post(
    "/operations/{operation_id}/cancel",
    response_model=OperationOut,
    summary="Cancel an operation that has not succeeded",
    responses=responses(409, 412),
)
def cancel(
    operation_id: Id,
    principal: CurrentPrincipal,
    engine: EngineDep,
    response: Response,
    body: CancelIn | None = None,
    if_match: IfMatch = None,
) -> OperationOut:
    with engine.begin() as conn:
        current = load_operation(conn, principal, operation_id, Action.OPERATE)
        check_if_match(if_match, current)
        ledger.cancel_operation(
            conn, operation_id, principal.subject, reason=body.reason if body else ""
        )
        out = operation_out(ledger.get_operation(conn, operation_id))
    with_etag(response, out)
    return out
