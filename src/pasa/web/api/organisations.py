"""Organisations (ODS codes): reference data of the identity hub (``people.read``).

Reading an organisation is over the whole organisation: its administrators, auditors and
tokens; staff and line managers see people, not the establishment.
"""

from __future__ import annotations

import sqlalchemy as sa
from fastapi import APIRouter, Response
from pydantic import BaseModel

from pasa.domain.access import Action, Resource
from pasa.store import schema as s
from pasa.web.api.common import (
    EngineDep,
    Instant,
    Page,
    Paging,
    authorize_list,
    not_found,
    str_key,
    with_etag,
)
from pasa.web.security import CurrentPrincipal, authorize

router = APIRouter(tags=["organisations"])


class OrganisationOut(BaseModel):
    ods_code: str
    name: str
    created_at: Instant


@router.get("/organisations", response_model=Page[OrganisationOut], summary="List organisations")
def list_organisations(
    principal: CurrentPrincipal, paging: Paging, engine: EngineDep
) -> Page[OrganisationOut]:
    seen = authorize_list(principal, Action.READ_PEOPLE)
    after = str_key(paging)
    o = s.organisation
    query = sa.select(o).order_by(o.c.ods_code).limit(paging.limit + 1)
    if not seen.everything:
        query = query.where(o.c.ods_code.in_(sorted(seen.organisations)))
    if after is not None:
        query = query.where(o.c.ods_code > after)
    with engine.connect() as conn:
        rows = conn.execute(query).all()
    items = [
        OrganisationOut(ods_code=r.ods_code, name=r.name, created_at=r.created_at) for r in rows
    ]
    return paging.page(items, lambda x: x.ods_code)


@router.get("/organisations/{ods_code}", response_model=OrganisationOut, summary="One organisation")
def get_organisation(
    ods_code: str, principal: CurrentPrincipal, engine: EngineDep, response: Response
) -> OrganisationOut:
    code = ods_code.upper()
    authorize(principal, Action.READ_PEOPLE, Resource.of(code))
    o = s.organisation
    with engine.connect() as conn:
        row = conn.execute(sa.select(o).where(o.c.ods_code == code)).first()
    if row is None:
        raise not_found()
    out = OrganisationOut(ods_code=row.ods_code, name=row.name, created_at=row.created_at)
    with_etag(response, out)
    return out
