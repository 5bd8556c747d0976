"""People with their assignments: list, search and read (``people.read``).

A line manager lists their reports, staff themselves, administrators, auditors and tokens
the people of their organisation; a person's assignments in organisations the caller may
not see are left out.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated

import sqlalchemy as sa
from fastapi import APIRouter, Query, Response
from pydantic import BaseModel

from pasa.domain.access import Action, Principal
from pasa.domain.model import PersonView
from pasa.store import schema as s
from pasa.store.hub import find_person_ids, load_people
from pasa.web.api.common import (
    EngineDep,
    Id,
    Page,
    Paging,
    authorize_list,
    int_key,
    not_found,
    person_filter,
    person_in_orgs,
    person_resource,
    with_etag,
)
from pasa.web.security import CurrentPrincipal, authorize

router = APIRouter(tags=["people"])


class AssignmentOut(BaseModel):
    """A person's employment in one organisation, as the HR record states it."""

    assignment_number: str
    organisation: str
    employee_number: str
    position_number: str
    position_title: str
    staff_group: str
    job_role_code: str
    department: str
    site: str
    category: str
    status: str
    primary: bool
    start_date: dt.date
    end_date: dt.date | None
    supervisor_assignment_number: str | None
    wte: float


class PersonOut(BaseModel):
    id: int
    uid: str
    first_name: str
    last_name: str
    known_as: str | None
    display_name: str
    email: str | None
    assignments: list[AssignmentOut]


def person_out(view: PersonView, principal: Principal) -> PersonOut:
    orgs = principal.organisations()
    return PersonOut(
        id=view.person_id,
        uid=view.uid,
        first_name=view.first_name,
        last_name=view.last_name,
        known_as=view.known_as,
        display_name=view.display_name,
        email=view.email,
        assignments=[
            AssignmentOut(
                assignment_number=a.assignment_number,
                organisation=a.organisation,
                employee_number=a.employee_number,
                position_number=a.position.position_number,
                position_title=a.position.title,
                staff_group=a.position.staff_group,
                job_role_code=a.position.job_role_code,
                department=a.position.department_name,
                site=a.position.site_name,
                category=a.category.value,
                status=a.status.value,
                primary=a.primary,
                start_date=a.start_date,
                end_date=a.end_date,
                supervisor_assignment_number=a.supervisor_assignment_number,
                wte=a.wte,
            )
            for a in view.assignments
            if orgs is None or a.organisation in orgs
        ],
    )


@router.get("/people", response_model=Page[PersonOut], summary="List or search people")
def list_people(
    principal: CurrentPrincipal,
    paging: Paging,
    engine: EngineDep,
    q: Annotated[
        str | None,
        Query(
            min_length=1,
            max_length=200,
            description="A PASA uid, an identifier (employee or assignment number, GMC/NMC "
            "number...), or 'first last' name",
        ),
    ] = None,
    organisation: Annotated[
        str | None,
        Query(max_length=10, description="Only people with an assignment in this ODS code"),
    ] = None,
) -> Page[PersonOut]:
    seen = authorize_list(principal, Action.READ_PEOPLE)
    after = int_key(paging)
    p = s.person
    with engine.connect() as conn:
        query = sa.select(p.c.id).where(person_filter(seen, p.c.id)).order_by(p.c.id)
        if q is not None:
            query = query.where(p.c.id.in_(find_person_ids(conn, q)))
        if organisation is not None:
            query = query.where(person_in_orgs(p.c.id, frozenset({organisation.upper()})))
        if after is not None:
            query = query.where(p.c.id > after)
        ids = list(conn.scalars(query.limit(paging.limit + 1)))
        people = load_people(conn, ids)
    by_id = {v.person_id: v for v in people}
    items = [person_out(by_id[i], principal) for i in ids if i in by_id]
    return paging.page(items, lambda x: x.id)


@router.get("/people/{person_id}", response_model=PersonOut, summary="One person")
def get_person(
    person_id: Id, principal: CurrentPrincipal, engine: EngineDep, response: Response
) -> PersonOut:
    with engine.connect() as conn:
        authorize(principal, Action.READ_PEOPLE, person_resource(conn, person_id))
        found = load_people(conn, [person_id])
    if not found:
        raise not_found()
    out = person_out(found[0], principal)
    with_etag(response, out)
    return out
