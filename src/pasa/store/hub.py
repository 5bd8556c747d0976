"""Read the identity hub and PASA's recorded state into the pure core's value types.

One set-based query per concern (no per-person round trips): a 7,000-staff trust loads in a
fraction of a second, and the same code serves the what-if paths (nothing is written here).
"""

from __future__ import annotations

import datetime as dt
import json
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
    TimeBoundGrant,
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


def _text(value: Any) -> str | None:
    return None if value is None or value == "" else str(value)


def _day(value: Any) -> dt.date | None:
    if value is None or value == "":
        return None
    if isinstance(value, dt.date):
        return value
    return dt.date.fromisoformat(str(value)[:10])


def _superseded(data: dict[str, Any], valid_to: dt.date) -> Assignment:
    """An assignment version from its history record, in force until ``valid_to``."""
    position = Position(
        organisation=str(data["Org_Code"]),
        position_number=str(data["Position_Number"]),
        title=str(data["Position_Title"]),
        staff_group=str(data["Staff_Group"]),
        job_role_code=str(data["Job_Role_Code"]),
        area_of_work=str(data["Area_Of_Work"]),
        occupation_code=str(data["Occupation_Code"]),
        grade_code=str(data["Grade_Code"]),
        department_code=str(data["Department_Code"]),
        department_name=str(data["Department_Name"]),
        cost_centre=str(data["Cost_Centre"]),
        site_code=str(data["Location_Code"]),
        site_name=str(data["Location_Name"]),
    )
    start = _day(data["Assignment_Start_Date"]) or valid_to
    return Assignment(
        assignment_number=str(data["Assignment_Number"]),
        organisation=str(data["Org_Code"]),
        employee_number=str(data["Employee_Number"]),
        position=position,
        category=_CATEGORIES.get(str(data["Assignment_Category"]), AssignmentCategory.PERMANENT),
        status=_STATUSES.get(str(data["Assignment_Status"]), AssignmentStatus.ACTIVE),
        primary=data.get("Primary_Assignment") in ("Y", True),
        start_date=start,
        end_date=valid_to,
        supervisor_assignment_number=_text(data.get("Supervisor_Assignment_Number")),
        wte=float(data.get("WTE") or 0),
    )


def _previous_versions(
    conn: Connection, ids: list[int] | None, since: dt.date
) -> dict[int, list[Assignment]]:
    """Assignment versions superseded on or after ``since`` (a mover's old posts)."""
    h, a = s.assignment_history, s.assignment
    query = (
        sa.select(a.c.person_id, h.c.valid_to, h.c.data)
        .select_from(h.join(a, a.c.id == h.c.assignment_id))
        .where(h.c.valid_to.is_not(None), h.c.valid_to >= since)
        .order_by(a.c.person_id, h.c.id)
    )
    if ids is not None:
        query = query.where(a.c.person_id.in_(ids))
    out: dict[int, list[Assignment]] = {}
    for person_id, valid_to, data in conn.execute(query):
        record = json.loads(data) if isinstance(data, str | bytes) else data
        start = _day(record.get("Assignment_Start_Date"))
        if start is not None and start > valid_to:
            continue  # changed before it started: that version was never in force
        out.setdefault(person_id, []).append(_superseded(record, valid_to))
    return out


def iter_people(
    conn: Connection,
    person_ids: Iterable[int] | None = None,
    *,
    previous_since: dt.date | None = None,
) -> Iterator[PersonView]:
    """Every person with all their assignments, streamed in person order.

    ``previous_since`` also loads assignment versions superseded on or after that date
    (for handover windows after a move); None loads none.
    """
    ids = list(person_ids) if person_ids is not None else None
    if ids is not None and not ids:
        return
    previous = _previous_versions(conn, ids, previous_since) if previous_since else {}
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
            previous=tuple(previous.get(person_id, ())),
        )


def load_people(
    conn: Connection,
    person_ids: Iterable[int] | None = None,
    *,
    previous_since: dt.date | None = None,
) -> list[PersonView]:
    return list(iter_people(conn, person_ids, previous_since=previous_since))


def load_time_bound_grants(
    conn: Connection, person_ids: Iterable[int] | None = None
) -> list[TimeBoundGrant]:
    """Approved, unrevoked time-bound grants (requests), for the planner to honour."""
    g = s.access_grant
    query = sa.select(g).where(g.c.status == "active").order_by(g.c.id)
    if person_ids is not None:
        query = query.where(g.c.person_id.in_(list(person_ids)))
    return [
        TimeBoundGrant(
            grant_id=r.id,
            person_id=r.person_id,
            target=r.target_key,
            kind=EntitlementKind(r.kind) if r.kind else None,
            value=r.value,
            valid_from=r.valid_from,
            valid_to=r.valid_to,
            justification=r.justification,
            approved_by=r.approved_by,
        )
        for r in conn.execute(query)
    ]


def load_recorded(conn: Connection, person_ids: Iterable[int] | None = None) -> RecordedState:
    """Accounts and grants PASA has recorded (intended and sent) per target."""
    acc, t, g = s.account, s.target, s.account_grant
    acc_query = sa.select(
        acc.c.id,
        acc.c.person_id,
        t.c.key,
        acc.c.username,
        acc.c.status,
        acc.c.attributes,
        acc.c.status_since,
    ).select_from(acc.join(t, t.c.id == acc.c.target_id))
    grant_query = sa.select(
        g.c.account_id, acc.c.person_id, t.c.key, g.c.kind, g.c.value, g.c.valid_from, g.c.valid_to
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
            status_since=r.status_since,
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
            valid_from=r.valid_from,
            valid_to=r.valid_to,
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
