"""Time-bound grants: approved requests for access between two dates.

Reading is ``access.read``; recording a grant and revoking one are ``access.approve``: the
caller is the approver, and must not be the requester (separation of duties). The planner
honours a grant only while the person holds an active assignment.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

import sqlalchemy as sa
from fastapi import APIRouter, Query, Response
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.engine import Connection

from pasa.domain.access import Action
from pasa.domain.grants import EntitlementKind
from pasa.service import access_grants
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
from pasa.web.api.problems import ApiProblem, responses
from pasa.web.security import CurrentPrincipal, authorize

router = APIRouter(tags=["grants"])

GrantStatus = Literal["active", "revoked"]


class GrantOut(BaseModel):
    id: int
    person_id: int
    target: str
    kind: str | None = Field(description="group, app_role or door_zone; null: an account only")
    value: str
    valid_from: dt.date
    valid_to: dt.date | None
    justification: str
    requested_by: str
    approved_by: str
    approved_at: Instant
    status: str
    revoked_by: str | None
    revoked_at: Instant | None


class GrantIn(BaseModel):
    """A grant to record; the caller approves it."""

    model_config = ConfigDict(extra="forbid")

    person_id: Annotated[int, Field(ge=1, le=MAX_ID)]
    target: Annotated[str, Field(min_length=1, max_length=60)]
    kind: EntitlementKind | None = None
    value: Annotated[str, Field(max_length=200)] = ""
    valid_from: dt.date
    valid_to: dt.date | None = None
    justification: Annotated[str, Field(min_length=1, max_length=2000)]
    requested_by: Annotated[str, Field(min_length=1, max_length=200)]


class RevokeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: Annotated[str, Field(max_length=2000)] = ""


def _out(r: Any) -> GrantOut:
    return GrantOut(
        id=r.id,
        person_id=r.person_id,
        target=r.target_key,
        kind=r.kind,
        value=r.value,
        valid_from=r.valid_from,
        valid_to=r.valid_to,
        justification=r.justification,
        requested_by=r.requested_by,
        approved_by=r.approved_by,
        approved_at=r.approved_at,
        status=r.status,
        revoked_by=r.revoked_by,
        revoked_at=r.revoked_at,
    )


@router.get("/grants", response_model=Page[GrantOut], summary="List time-bound grants")
def list_grants(
    principal: CurrentPrincipal,
    paging: Paging,
    engine: EngineDep,
    person_id: Annotated[
        int | None, Query(ge=1, le=MAX_ID, description="Only this person's grants")
    ] = None,
    target: Annotated[str | None, Query(max_length=60, description="Only on this target")] = None,
    status: Annotated[GrantStatus | None, Query(description="Only in this status")] = None,
) -> Page[GrantOut]:
    seen = authorize_list(principal, Action.READ_ACCESS)
    after = int_key(paging)
    g = s.access_grant
    query = (
        sa.select(g)
        .where(person_filter(seen, g.c.person_id, g.c.target_key))
        .order_by(g.c.id)
        .limit(paging.limit + 1)
    )
    if person_id is not None:
        query = query.where(g.c.person_id == person_id)
    if target is not None:
        query = query.where(g.c.target_key == target)
    if status is not None:
        query = query.where(g.c.status == status)
    if after is not None:
        query = query.where(g.c.id > after)
    with engine.connect() as conn:
        items = [_out(r) for r in conn.execute(query)]
    return paging.page(items, lambda x: x.id)


def _load(conn: Connection, grant_id: int) -> GrantOut | None:
    row = conn.execute(sa.select(s.access_grant).where(s.access_grant.c.id == grant_id)).first()
    return None if row is None else _out(row)


@router.get("/grants/{grant_id}", response_model=GrantOut, summary="One grant")
def get_grant(
    grant_id: Id, principal: CurrentPrincipal, engine: EngineDep, response: Response
) -> GrantOut:
    with engine.connect() as conn:
        out = _load(conn, grant_id)
        if out is None:
            raise not_found()
        authorize(principal, Action.READ_ACCESS, person_resource(conn, out.person_id, out.target))
    with_etag(response, out)
    return out


@router.post(
    "/grants",
    response_model=GrantOut,
    status_code=201,
    summary="Record an approved time-bound grant",
    responses=responses(409),
)
def create_grant(
    body: GrantIn, principal: CurrentPrincipal, engine: EngineDep, response: Response
) -> GrantOut:
    with engine.connect() as conn:
        resource = person_resource(conn, body.person_id, body.target)
    authorize(principal, Action.APPROVE_ACCESS, resource)
    if body.kind is not None and not body.value.strip():
        raise ApiProblem(422, f"a {body.kind.value} grant needs the {body.kind.value} in 'value'")
    grant_id = access_grants.add_grant(
        engine,
        person_id=body.person_id,
        target=body.target,
        kind=body.kind,
        value=body.value,
        valid_from=body.valid_from,
        valid_to=body.valid_to,
        justification=body.justification,
        requested_by=body.requested_by,
        approved_by=principal.subject,
    )
    with engine.connect() as conn:
        out = _load(conn, grant_id)
    assert out is not None
    response.headers["Location"] = f"/api/v1/grants/{grant_id}"
    with_etag(response, out)
    return out


@router.post(
    "/grants/{grant_id}/revoke",
    response_model=GrantOut,
    summary="Revoke a grant (the access goes at the next plan)",
    responses=responses(409, 412),
)
def revoke_grant(
    grant_id: Id,
    principal: CurrentPrincipal,
    engine: EngineDep,
    response: Response,
    body: RevokeIn | None = None,
    if_match: IfMatch = None,
) -> GrantOut:
    with engine.connect() as conn:
        current = _load(conn, grant_id)
        if current is None:
            raise not_found()
        resource = person_resource(conn, current.person_id, current.target)
    authorize(principal, Action.APPROVE_ACCESS, resource)
    check_if_match(if_match, current)
    access_grants.revoke_grant(
        engine, grant_id, actor=principal.subject, reason=body.reason if body else ""
    )
    with engine.connect() as conn:
        out = _load(conn, grant_id)
    assert out is not None
    with_etag(response, out)
    return out
