"""Positions (ESR posts): reference data of the identity hub (``people.read``).

Reading positions is over the whole organisation: administrators, auditors and tokens of
the organisation; staff and line managers see people, not the establishment.
"""

from __future__ import annotations

from typing import Annotated

import sqlalchemy as sa
from fastapi import APIRouter, Query, Response
from pydantic import BaseModel

from pasa.domain.access import Action, Resource
from pasa.store import schema as s
from pasa.web.api.common import (
    EngineDep,
    Id,
    Page,
    Paging,
    authorize_list,
    int_key,
    not_found,
    with_etag,
)
from pasa.web.security import CurrentPrincipal, authorize

router = APIRouter(tags=["positions"])


class PositionOut(BaseModel):
    id: int
    organisation: str
    position_number: str
    title: str
    staff_group: str
    job_role_code: str
    area_of_work: str
    occupation_code: str
    grade_code: str
    department_code: str
    department: str
    site_code: str
    site: str


def _positions_query() -> sa.Select[tuple[object, ...]]:
    p, o, d, st = s.position, s.organisation, s.department, s.site
    return sa.select(
        p,
        o.c.ods_code,
        d.c.code.label("department_code"),
        d.c.name.label("department_name"),
        st.c.code.label("site_code"),
        st.c.name.label("site_name"),
    ).select_from(
        p.join(o, o.c.id == p.c.organisation_id)
        .join(d, d.c.id == p.c.department_id)
        .join(st, st.c.id == p.c.site_id)
    )


def _position(r: sa.Row[tuple[object, ...]]) -> PositionOut:
    m = r._mapping
    return PositionOut(
        id=m["id"],
        organisation=m["ods_code"],
        position_number=m["position_number"],
        title=m["title"],
        staff_group=m["staff_group"],
        job_role_code=m["job_role_code"],
        area_of_work=m["area_of_work"],
        occupation_code=m["occupation_code"],
        grade_code=m["grade_code"],
        department_code=m["department_code"],
        department=m["department_name"],
        site_code=m["site_code"],
        site=m["site_name"],
    )


@router.get("/positions", response_model=Page[PositionOut], summary="List positions")
def list_positions(
    principal: CurrentPrincipal,
    paging: Paging,
    engine: EngineDep,
    organisation: Annotated[
        str | None, Query(max_length=10, description="Only positions of this ODS code")
    ] = None,
    staff_group: Annotated[
        str | None, Query(max_length=2, description="Only this NWD staff group (01..10)")
    ] = None,
    job_role_code: Annotated[
        str | None, Query(max_length=5, description="Only this NWD job role code")
    ] = None,
) -> Page[PositionOut]:
    seen = authorize_list(principal, Action.READ_PEOPLE)
    after = int_key(paging)
    p, o = s.position, s.organisation
    query = _positions_query().order_by(p.c.id).limit(paging.limit + 1)
    if not seen.everything:
        query = query.where(o.c.ods_code.in_(sorted(seen.organisations)))
    if organisation is not None:
        query = query.where(o.c.ods_code == organisation.upper())
    if staff_group is not None:
        query = query.where(p.c.staff_group == staff_group)
    if job_role_code is not None:
        query = query.where(p.c.job_role_code == job_role_code)
    if after is not None:
        query = query.where(p.c.id > after)
    with engine.connect() as conn:
        items = [_position(r) for r in conn.execute(query)]
    return paging.page(items, lambda x: x.id)


@router.get("/positions/{position_id}", response_model=PositionOut, summary="One position")
def get_position(
    position_id: Id, principal: CurrentPrincipal, engine: EngineDep, response: Response
) -> PositionOut:
    with engine.connect() as conn:
        row = conn.execute(_positions_query().where(s.position.c.id == position_id)).first()
    if row is None:
        authorize(principal, Action.READ_PEOPLE, Resource())
        raise not_found()
    out = _position(row)
    authorize(principal, Action.READ_PEOPLE, Resource.of(out.organisation))
    with_etag(response, out)
    return out
