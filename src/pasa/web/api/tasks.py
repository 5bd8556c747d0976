"""Manual tasks: operations on systems PASA cannot reach, done by a person and recorded.

Reading is ``operations.read``; completing a task is ``operations.manage``. Completing
records what was done (the username actually created, the system's id) and marks the
operation succeeded.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import sqlalchemy as sa
from fastapi import APIRouter, Query, Response
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.engine import Connection

from pasa.connectors.manual import complete_manual_task
from pasa.domain.access import Action, Principal
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

router = APIRouter(tags=["manual tasks"])

TaskStatus = Literal["open", "done", "cancelled"]


class TaskOut(BaseModel):
    id: int
    operation_id: int
    target: str
    person_id: Annotated[int, Field(ge=1, le=MAX_ID)]
    assignee: str
    instructions: str
    status: str
    created_at: Instant
    due_at: Instant
    completed_at: Instant | None
    completed_by: str | None
    completion: dict[str, Any] | None


class CompleteIn(BaseModel):
    """What the person did in the system."""

    model_config = ConfigDict(extra="forbid")

    username: Annotated[str | None, Field(min_length=1, max_length=200)] = None
    external_id: Annotated[str | None, Field(min_length=1, max_length=200)] = None
    note: Annotated[str | None, Field(max_length=2000)] = None


def _query() -> sa.Select[Any]:
    m, op, t = s.manual_task, s.operation, s.target
    return sa.select(m, t.c.key, op.c.person_id).select_from(
        m.join(op, op.c.id == m.c.operation_id).join(t, t.c.id == m.c.target_id)
    )


def _out(r: Any) -> TaskOut:
    return TaskOut(
        id=r.id,
        operation_id=r.operation_id,
        target=r.key,
        person_id=r.person_id,
        assignee=r.assignee,
        instructions=r.instructions,
        status=r.status,
        created_at=r.created_at,
        due_at=r.due_at,
        completed_at=r.completed_at,
        completed_by=r.completed_by,
        completion=r.completion,
    )


def _load(conn: Connection, principal: Principal, task_id: int, action: Action) -> TaskOut:
    row = conn.execute(_query().where(s.manual_task.c.id == task_id)).first()
    if row is None:
        raise not_found()
    authorize(principal, action, person_resource(conn, row.person_id, row.key))
    return _out(row)


@router.get("/manual-tasks", response_model=Page[TaskOut], summary="List manual tasks")
def list_tasks(
    principal: CurrentPrincipal,
    paging: Paging,
    engine: EngineDep,
    status: Annotated[TaskStatus | None, Query(description="Only in this status")] = None,
    target: Annotated[str | None, Query(max_length=60, description="Only for this target")] = None,
    assignee: Annotated[
        str | None, Query(max_length=200, description="Only for this assignee")
    ] = None,
) -> Page[TaskOut]:
    seen = authorize_list(principal, Action.READ_OPERATIONS)
    after = int_key(paging)
    m, op, t = s.manual_task, s.operation, s.target
    query = (
        _query()
        .where(person_filter(seen, op.c.person_id, t.c.key))
        .order_by(m.c.id)
        .limit(paging.limit + 1)
    )
    if status is not None:
        query = query.where(m.c.status == status)
    if target is not None:
        query = query.where(t.c.key == target)
    if assignee is not None:
        query = query.where(m.c.assignee == assignee)
    if after is not None:
        query = query.where(m.c.id > after)
    with engine.connect() as conn:
        items = [_out(r) for r in conn.execute(query)]
    return paging.page(items, lambda x: x.id)


@router.get("/manual-tasks/{task_id}", response_model=TaskOut, summary="One manual task")
def get_task(
    task_id: Id, principal: CurrentPrincipal, engine: EngineDep, response: Response
) -> TaskOut:
    with engine.connect() as conn:
        out = _load(conn, principal, task_id, Action.READ_OPERATIONS)
    with_etag(response, out)
    return out


@router.post(
    "/manual-tasks/{task_id}/complete",
    response_model=TaskOut,
    summary="Record a manual task as done",
    responses=responses(409, 412),
)
def complete(
    task_id: Id,
    principal: CurrentPrincipal,
    engine: EngineDep,
    response: Response,
    body: CompleteIn | None = None,
    if_match: IfMatch = None,
) -> TaskOut:
    with engine.connect() as conn:
        current = _load(conn, principal, task_id, Action.OPERATE)
    check_if_match(if_match, current)
    done = body.model_dump(exclude_none=True) if body else {}
    complete_manual_task(engine, task_id, actor=principal.subject, completion=done)
    with engine.connect() as conn:
        out = _load(conn, principal, task_id, Action.OPERATE)
    with_etag(response, out)
    return out
