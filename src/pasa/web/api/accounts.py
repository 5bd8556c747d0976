"""Accounts PASA has recorded in target systems, with the access each holds.

Reading is ``access.read``: staff see their own accounts, line managers their reports',
system owners those in their system, administrators, auditors and tokens their
organisation's.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Annotated, Any, Literal

import sqlalchemy as sa
from fastapi import APIRouter, Query, Response
from pydantic import BaseModel
from sqlalchemy.engine import Connection

from pasa.domain.access import Action
from pasa.store import schema as s
from pasa.web.api.common import (
    MAX_ID,
    EngineDep,
    Id,
    Instant,
    Page,
    Paging,
    authorize_list,
    int_key,
    not_found,
    person_filter,
    person_resource,
    with_etag,
)
from pasa.web.security import CurrentPrincipal, authorize

router = APIRouter(tags=["accounts"])

AccountStatus = Literal["enabled", "disabled", "deleted"]


class AccessOut(BaseModel):
    kind: str
    value: str
    valid_from: dt.date | None
    valid_to: dt.date | None


class AccountOut(BaseModel):
    id: int
    person_id: int
    target: str
    username: str
    external_id: str | None
    status: str
    status_since: dt.date | None
    created_at: Instant
    updated_at: Instant
    access: list[AccessOut]


def _query() -> sa.Select[Any]:
    a, t = s.account, s.target
    return sa.select(
        a.c.id,
        a.c.person_id,
        t.c.key,
        a.c.username,
        a.c.external_id,
        a.c.status,
        a.c.status_since,
        a.c.created_at,
        a.c.updated_at,
    ).select_from(a.join(t, t.c.id == a.c.target_id))


def _outs(conn: Connection, rows: Sequence[Any]) -> list[AccountOut]:
    g = s.account_grant
    access: dict[int, list[AccessOut]] = {}
    ids = [r.id for r in rows]
    if ids:
        for r in conn.execute(
            sa.select(g).where(g.c.account_id.in_(ids)).order_by(g.c.kind, g.c.value)
        ):
            access.setdefault(r.account_id, []).append(
                AccessOut(kind=r.kind, value=r.value, valid_from=r.valid_from, valid_to=r.valid_to)
            )
    return [
        AccountOut(
            id=r.id,
            person_id=r.person_id,
            target=r.key,
            username=r.username,
            external_id=r.external_id,
            status=r.status,
            status_since=r.status_since,
            created_at=r.created_at,
            updated_at=r.updated_at,
            access=access.get(r.id, []),
        )
        for r in rows
    ]


@router.get("/accounts", response_model=Page[AccountOut], summary="List accounts")
def list_accounts(
    principal: CurrentPrincipal,
    paging: Paging,
    engine: EngineDep,
    person_id: Annotated[
        int | None, Query(ge=1, le=MAX_ID, description="Only this person's accounts")
    ] = None,
    target: Annotated[
        str | None, Query(max_length=60, description="Only accounts in this target")
    ] = None,
    status: Annotated[AccountStatus | None, Query(description="Only in this status")] = None,
) -> Page[AccountOut]:
    seen = authorize_list(principal, Action.READ_ACCESS)
    after = int_key(paging)
    a, t = s.account, s.target
    query = (
        _query()
        .where(person_filter(seen, a.c.person_id, t.c.key))
        .order_by(a.c.id)
        .limit(paging.limit + 1)
    )
    if person_id is not None:
        query = query.where(a.c.person_id == person_id)
    if target is not None:
        query = query.where(t.c.key == target)
    if status is not None:
        query = query.where(a.c.status == status)
    if after is not None:
        query = query.where(a.c.id > after)
    with engine.connect() as conn:
        items = _outs(conn, conn.execute(query).all())
    return paging.page(items, lambda x: x.id)


@router.get("/accounts/{account_id}", response_model=AccountOut, summary="One account")
def get_account(
    account_id: Id, principal: CurrentPrincipal, engine: EngineDep, response: Response
) -> AccountOut:
    with engine.connect() as conn:
        row = conn.execute(_query().where(s.account.c.id == account_id)).first()
        if row is None:
            raise not_found()
        authorize(principal, Action.READ_ACCESS, person_resource(conn, row.person_id, row.key))
        out = _outs(conn, [row])[0]
    with_etag(response, out)
    return out
