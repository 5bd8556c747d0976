"""Read the identity hub and PASA's recorded state into the pure core's value types.

One set-based query per concern (no per-person round trips): a 7,000-staff trust loads in a
fraction of a second, and the same code serves the what-if paths (nothing is written here).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from itertools import groupby
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from pasa.domain.grants import (
    AccountStatus,
    EntitlementKind,
    RecordedAccount,
    RecordedGrant,
    RecordedState,
)
from pasa.domain.model import (
    Assignment,
    AssignmentCategory,
    AssignmentStatus,
    PersonView,
    Position,
)
from pasa.store import schema as s

_CATEGORIES = {c.value: c for c in AssignmentCategory}
_STATUSES = {c.value: c for c in AssignmentStatus}


def _people_query(person_ids: Iterable[int] | None) -> sa.Select[Any]:
    a, p, pos, d, st, o = s.assignment, s.person, s.position, s.department, s.site, s.organisation
    query = (
        sa.select(
            p.c.id.label("person_id"),
            p.c.uid,
            p.c.first_name,
            p.c.last_name,
            p.c.known_as,
            p.c.email,
            o.c.ods_code,
            a.c.assignment_number,
            a.c.employee_number,
            a.c.category,
            a.c.status,
            a.c.is_primary,
            a.c.start_date,
            a.c.end_date,
            a.c.supervisor_assignment_number,
            a.c.wte,
            pos.c.position_number,
            pos.c.title,
            pos.c.staff_group,
            pos.c.job_role_code,
            pos.c.area_of_work,
            pos.c.occupation_code,
            pos.c.grade_code,
            d.c.code.label("department_code"),
            d.c.name.label("department_name"),
            d.c.cost_centre,
            st.c.code.label("site_code"),
            st.c.name.label("site_name"),
        )
        .select_from(
            a.join(p, p.c.id == a.c.person_id)
            .join(o, o.c.id == a.c.organisation_id)
            .join(pos, pos.c.id == a.c.position_id)
            .join(d, d.c.id == pos.c.department_id)
            .join(st, st.c.id == pos.c.site_id)
        )
        .order_by(p.c.id, a.c.assignment_number)
    )
    if person_ids is not None:
        query = query.where(p.c.id.in_(list(person_ids)))
    return query


def _assignment(row: Any) -> Assignment:
    position = Position(
        organisation=row.ods_code,
        position_number=row.position_number,
        title=row.title,
        staff_group=row.staff_group,
        job_role_code=row.job_role_code,
        area_of_work=row.area_of_work,
        occupation_code=row.occupation_code,
        grade_code=row.grade_code,
        department_code=row.department_code,
        department_name=row.department_name,
        cost_centre=row.cost_centre,
        site_code=row.site_code,
        site_name=row.site_name,
    )
    return Assignment(
        assignment_number=row.assignment_number,
        organisation=row.ods_code,
        employee_number=row.employee_number,
        position=position,
        category=_CATEGORIES.get(row.category, AssignmentCategory.PERMANENT),
        status=_STATUSES.get(row.status, AssignmentStatus.ACTIVE),
        primary=bool(row.is_primary),
        start_date=row.start_date,
        end_date=row.end_date,
        supervisor_assignment_number=row.supervisor_assignment_number,
        wte=float(row.wte),
    )


def iter_people(conn: Connection, person_ids: Iterable[int] | None = None) -> Iterator[PersonView]:
    """Every person with all their assignments, streamed in person order."""
    ids = list(person_ids) if person_ids is not None else None
    if ids is not None and not ids:
        return
    identifiers: dict[int, list[tuple[str, str]]] = {}
    id_query = sa.select(
        s.person_identifier.c.person_id, s.person_identifier.c.scheme, s.person_identifier.c.value
    )
    if ids is not None:
        id_query = id_query.where(s.person_identifier.c.person_id.in_(ids))
    for pid, scheme, value in conn.execute(id_query):
        identifiers.setdefault(pid, []).append((scheme, value))
    rows = conn.execute(_people_query(ids).execution_options(yield_per=10_000))
    for person_id, group in groupby(rows, key=lambda r: r.person_id):
        members = list(group)
        first = members[0]
        yield PersonView(
            person_id=person_id,
            uid=first.uid,
            first_name=first.first_name,
            last_name=first.last_name,
            known_as=first.known_as,
            email=first.email,
            assignments=tuple(_assignment(r) for r in members),
            identifiers=tuple(sorted(identifiers.get(person_id, ()))),
        )


def load_people(conn: Connection, person_ids: Iterable[int] | None = None) -> list[PersonView]:
    return list(iter_people(conn, person_ids))


def load_recorded(conn: Connection, person_ids: Iterable[int] | None = None) -> RecordedState:
    """Accounts and grants PASA has recorded (intended and sent) per target."""
    acc, t, g = s.account, s.target, s.account_grant
    acc_query = sa.select(
        acc.c.id, acc.c.person_id, t.c.key, acc.c.username, acc.c.status, acc.c.attributes
    ).select_from(acc.join(t, t.c.id == acc.c.target_id))
    grant_query = sa.select(
        g.c.account_id, acc.c.person_id, t.c.key, g.c.kind, g.c.value
    ).select_from(g.join(acc, acc.c.id == g.c.account_id).join(t, t.c.id == acc.c.target_id))
    if person_ids is not None:
        ids = list(person_ids)
        acc_query = acc_query.where(acc.c.person_id.in_(ids))
        grant_query = grant_query.where(acc.c.person_id.in_(ids))
    accounts = tuple(
        RecordedAccount(
            account_id=r.id,
            person_id=r.person_id,
            target=r.key,
            username=r.username,
            status=AccountStatus(r.status),
            attributes=dict(r.attributes or {}),
        )
        for r in conn.execute(acc_query)
    )
    grants = tuple(
        RecordedGrant(
            account_id=r.account_id,
            person_id=r.person_id,
            target=r.key,
            kind=EntitlementKind(r.kind),
            value=r.value,
        )
        for r in conn.execute(grant_query)
    )
    return RecordedState(accounts=accounts, grants=grants)


def taken_usernames(conn: Connection) -> dict[str, set[str]]:
    """Usernames already used per target key (including disabled and deleted accounts)."""
    out: dict[str, set[str]] = {}
    query = sa.select(s.target.c.key, s.account.c.username).select_from(
        s.account.join(s.target, s.target.c.id == s.account.c.target_id)
    )
    for key, username in conn.execute(query):
        out.setdefault(key, set()).add(username)
    return out


def find_person_ids(conn: Connection, term: str) -> list[int]:
    """People matching a PASA uid, an identifier (employee/assignment number, GMC...) or a name."""
    term = term.strip()
    ids: set[int] = set()
    ids.update(conn.scalars(sa.select(s.person.c.id).where(s.person.c.uid == term)))
    ids.update(
        conn.scalars(
            sa.select(s.person_identifier.c.person_id).where(s.person_identifier.c.value == term)
        )
    )
    ids.update(
        conn.scalars(
            sa.select(s.assignment.c.person_id).where(s.assignment.c.assignment_number == term)
        )
    )
    if not ids and term.isdigit():
        ids.update(conn.scalars(sa.select(s.person.c.id).where(s.person.c.id == int(term))))
    if not ids and " " in term:
        first, _, last = term.partition(" ")
        ids.update(
            conn.scalars(
                sa.select(s.person.c.id).where(
                    sa.func.lower(s.person.c.first_name) == first.lower(),
                    sa.func.lower(s.person.c.last_name) == last.strip().lower(),
                )
            )
        )
    return sorted(ids)
