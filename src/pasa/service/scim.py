"""The SCIM service provider's data: users and groups of one organisation, read and written.

Data model (see ``docs/scim.md``):

* **Users** are the PASA people who hold an assignment (any, past or future) in the token's
  organisation — *HR-sourced*: ``id`` is ``person.uid``; names, e-mail, employee number,
  department, organisation and manager come from the identity hub and are **read-only**
  through SCIM (a change is ``400 mutability``; HR is the source) — plus the users the
  organisation's SCIM client created — *SCIM-created*: a ``person`` row tied to the
  organisation by a ``scim_user`` row and a ``person_identifier`` (scheme ``scim``, issuer
  the ODS code, value the lower-cased userName). They are fully writable. DELETE
  **soft-deletes** them: the person row stays (the audit trail and any accounts PASA holds
  still name it), the ``scim_user`` row is marked deleted, the userName is freed, e-mails and
  group memberships are removed, and the id answers 404 from then on.
* **Groups** live in ``scim_group`` / ``scim_group_member`` per organisation; members are
  users of the same organisation (nested groups are refused).
* Every write is audited in its own transaction (actor: the token's subject).
* Filters become SQL (:mod:`pasa.web.scim.filters`) over the columns mapped below.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.sql.elements import ColumnElement

from pasa.audit import log as audit
from pasa.store import schema as s
from pasa.web.scim.errors import ScimError, invalid_value, mutability, not_found
from pasa.web.scim.filters import Clause, Compiler, Field, MultiValued
from pasa.web.scim.models import ENTERPRISE_SCHEMA, GROUP_SCHEMA, USER_SCHEMA

ENT = ENTERPRISE_SCHEMA


@dataclass(frozen=True, slots=True)
class Scope:
    """Who is asking, about which organisation, and where the service lives."""

    organisation_id: int
    ods_code: str
    organisation_name: str
    actor: str
    base_url: str  # e.g. http://host/scim/v2
    today: dt.date

    def location(self, kind: str, ident: str) -> str:
        return f"{self.base_url}/{kind}/{ident}"


def scope_for(
    conn: Connection, ods_code: str, *, actor: str, base_url: str, today: dt.date
) -> Scope:
    o = s.organisation
    row = conn.execute(sa.select(o.c.id, o.c.name).where(o.c.ods_code == ods_code)).first()
    if row is None:
        raise ScimError(404, f"no organisation '{ods_code}'")
    return Scope(int(row.id), ods_code, str(row.name), actor, base_url.rstrip("/"), today)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _iso(value: dt.datetime) -> str:
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return value.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


def etag(doc: Mapping[str, Any]) -> str:
    """The weak entity tag of a representation (without its ``meta``)."""
    body = {k: v for k, v in doc.items() if k != "meta"}
    digest = hashlib.sha256(json.dumps(body, sort_keys=True, default=str).encode()).hexdigest()
    return f'W/"{digest[:24]}"'


def _finish(doc: dict[str, Any], kind: str, created: dt.datetime, modified: dt.datetime) -> None:
    doc["meta"] = {
        "resourceType": kind,
        "created": _iso(created),
        "lastModified": _iso(modified),
        "location": doc.pop("_location"),
    }
    doc["meta"]["version"] = etag(doc)


# --- users: which people, and the SQL of their attributes --------------------------------------

p, su, a = s.person, s.scim_user, s.assignment
HR = su.c.person_id.is_(None)


def _current_assignment(scope: Scope) -> Clause:
    return sa.exists().where(
        a.c.person_id == p.c.id,
        a.c.organisation_id == scope.organisation_id,
        a.c.start_date <= scope.today,
        sa.or_(a.c.end_date.is_(None), a.c.end_date >= scope.today),
    )


def _users_of(scope: Scope) -> Clause:
    return sa.or_(
        sa.and_(su.c.organisation_id == scope.organisation_id, su.c.deleted_at.is_(None)),
        sa.and_(
            HR,
            sa.exists().where(
                a.c.person_id == p.c.id, a.c.organisation_id == scope.organisation_id
            ),
        ),
    )


def _user_name_expr() -> ColumnElement[Any]:
    return sa.case((HR, sa.func.coalesce(p.c.email, p.c.uid)), else_=su.c.user_name)


# Index-friendly look-ups for a top-level ``eq`` (see ``Compiler(lookups=...)``): each is the
# ids of the people who may match, from an index each (the schema's expression indexes), so the
# database starts from them instead of walking every person of the organisation.


def _user_name_lookup(scope: Scope, key: str) -> Clause:
    """People whose lower-cased userName may be ``key`` (HR: lower(coalesce(email, uid)))."""
    p2, su2 = p.alias("un_person"), su.alias("un_scim_user")
    return p.c.id.in_(
        sa.union_all(
            sa.select(p2.c.id).where(sa.func.lower(sa.func.coalesce(p2.c.email, p2.c.uid)) == key),
            sa.select(su2.c.person_id).where(
                su2.c.organisation_id == scope.organisation_id, su2.c.user_name_key == key
            ),
        )
    )


def _email_lookup(scope: Scope, key: str) -> Clause:
    """People who may have the e-mail ``key`` (a SCIM e-mail row, or an HR person's email)."""
    p2, e2 = p.alias("em_person"), s.scim_user_email.alias("em_email")
    return p.c.id.in_(
        sa.union_all(
            sa.select(e2.c.person_id).where(sa.func.lower(e2.c.value) == key),
            sa.select(p2.c.id).where(sa.func.lower(sa.func.coalesce(p2.c.email, p2.c.uid)) == key),
        )
    )


def _employee_number_lookup(scope: Scope, key: str) -> Clause:
    """People who may have the employee number ``key`` in this organisation."""
    a2, su2 = a.alias("en_assignment"), su.alias("en_scim_user")
    org = scope.organisation_id
    return p.c.id.in_(
        sa.union_all(
            sa.select(a2.c.person_id).where(
                a2.c.organisation_id == org, sa.func.lower(a2.c.employee_number) == key
            ),
            sa.select(su2.c.person_id).where(
                su2.c.organisation_id == org, sa.func.lower(su2.c.employee_number) == key
            ),
        )
    )


def _user_compiler(scope: Scope) -> Compiler:
    e = s.scim_user_email
    gm, g = s.scim_group_member, s.scim_group

    def emails(inner: Any) -> Clause:
        scim_part = sa.exists().where(
            e.c.person_id == p.c.id,
            inner(
                {
                    "value": Field(e.c.value),
                    "type": Field(e.c.type),
                    "primary": Field(e.c.is_primary, "boolean"),
                }
            ),
        )
        hr_part = sa.and_(
            HR,
            p.c.email.is_not(None),
            inner(
                {
                    "value": Field(p.c.email),
                    "type": Field(sa.literal("work", sa.String)),
                    "primary": Field(sa.literal(True, sa.Boolean), "boolean"),
                }
            ),
        )
        return sa.or_(scim_part, hr_part)

    def groups(inner: Any) -> Clause:
        return sa.exists().where(
            gm.c.person_id == p.c.id,
            g.c.id == gm.c.group_id,
            g.c.organisation_id == scope.organisation_id,
            inner({"value": Field(g.c.uid, case_exact=True), "display": Field(g.c.display_name)}),
        )

    hr_employee_number = (
        sa.select(sa.func.min(a.c.employee_number))
        .where(a.c.person_id == p.c.id, a.c.organisation_id == scope.organisation_id)
        .scalar_subquery()
    )
    hr_display = sa.func.coalesce(p.c.known_as, p.c.first_name) + " " + p.c.last_name
    attributes: dict[str, Field | MultiValued] = {
        "id": Field(p.c.uid, case_exact=True),
        "externalId": Field(su.c.external_id, case_exact=True),
        "userName": Field(_user_name_expr()),
        "displayName": Field(sa.case((HR, hr_display), else_=su.c.display_name)),
        "name.givenName": Field(sa.func.nullif(p.c.first_name, "")),
        "name.familyName": Field(sa.func.nullif(p.c.last_name, "")),
        "name.middleName": Field(p.c.middle_names),
        "active": Field(sa.case((HR, _current_assignment(scope)), else_=su.c.active), "boolean"),
        "emails": MultiValued(emails),
        "groups": MultiValued(groups),
        "meta.created": Field(sa.func.coalesce(su.c.created_at, p.c.created_at), "datetime"),
        "meta.lastModified": Field(sa.func.coalesce(su.c.updated_at, p.c.updated_at), "datetime"),
        f"{ENT}:employeeNumber": Field(sa.func.coalesce(su.c.employee_number, hr_employee_number)),
    }
    lookups = {
        "userName": lambda key: _user_name_lookup(scope, key),
        "emails": lambda key: _email_lookup(scope, key),
        "emails.value": lambda key: _email_lookup(scope, key),
        f"{ENT}:employeeNumber": lambda key: _employee_number_lookup(scope, key),
    }
    return Compiler(attributes, USER_SCHEMA, "Users", lookups)


def _page(
    conn: Connection,
    base: sa.Select[Any],
    key: ColumnElement[Any],
    compiler: Compiler,
    *,
    filter_text: str | None,
    sort_by: str | None,
    descending: bool,
    start_index: int,
    count: int,
) -> tuple[int, list[int]]:
    if filter_text:
        base = base.where(compiler.where(filter_text))
    total = conn.execute(sa.select(sa.func.count()).select_from(base.subquery())).scalar_one()
    if count <= 0:
        return int(total), []
    order: list[Any] = []
    if sort_by:
        sort_key = compiler.sort_key(sort_by)
        order.append(sort_key.desc() if descending else sort_key.asc())
    order.append(key)
    ids = conn.execute(base.order_by(*order).offset(start_index - 1).limit(count)).scalars()
    return int(total), [int(i) for i in ids]


def list_users(
    conn: Connection,
    scope: Scope,
    *,
    filter_text: str | None = None,
    sort_by: str | None = None,
    descending: bool = False,
    start_index: int = 1,
    count: int = 100,
) -> tuple[int, list[dict[str, Any]]]:
    base = (
        sa.select(p.c.id)
        .select_from(p.outerjoin(su, su.c.person_id == p.c.id))
        .where(_users_of(scope))
    )
    total, ids = _page(
        conn,
        base,
        p.c.id,
        _user_compiler(scope),
        filter_text=filter_text,
        sort_by=sort_by,
        descending=descending,
        start_index=start_index,
        count=count,
    )
    return total, render_users(conn, scope, ids)


def _user_person_id(conn: Connection, scope: Scope, uid: str) -> tuple[int, bool]:
    """(person id, SCIM-created?) of a user of the organisation; 404 otherwise."""
    row = conn.execute(
        sa.select(p.c.id, su.c.person_id.is_not(None).label("scim"))
        .select_from(p.outerjoin(su, su.c.person_id == p.c.id))
        .where(p.c.uid == uid, _users_of(scope))
    ).first()
    if row is None:
        raise not_found("User", uid)
    return int(row.id), bool(row.scim)


def get_user(conn: Connection, scope: Scope, uid: str) -> dict[str, Any]:
    person_id, _ = _user_person_id(conn, scope, uid)
    return render_users(conn, scope, [person_id])[0]


def _groups_of(conn: Connection, scope: Scope, person_ids: Sequence[int]) -> dict[int, list[Any]]:
    gm, g = s.scim_group_member, s.scim_group
    out: dict[int, list[Any]] = {}
    rows = conn.execute(
        sa.select(gm.c.person_id, g.c.uid, g.c.display_name)
        .select_from(gm.join(g, g.c.id == gm.c.group_id))
        .where(gm.c.person_id.in_(person_ids), g.c.organisation_id == scope.organisation_id)
        .order_by(g.c.id)
    )
    for r in rows:
        out.setdefault(int(r.person_id), []).append(
            {
                "value": r.uid,
                "$ref": scope.location("Groups", r.uid),
                "display": r.display_name,
                "type": "direct",
            }
        )
    return out


def _hr_employment(
    conn: Connection, scope: Scope, person_ids: Sequence[int]
) -> dict[int, dict[str, Any]]:
    """Per HR person: employee number, department and manager from their assignment here
    (current ones first, then the primary, then the latest)."""
    d, pos = s.department, s.position
    rows = conn.execute(
        sa.select(
            a.c.person_id,
            a.c.employee_number,
            a.c.is_primary,
            a.c.start_date,
            a.c.end_date,
            a.c.supervisor_assignment_number,
            d.c.name.label("department"),
        )
        .select_from(
            a.join(pos, pos.c.id == a.c.position_id).join(d, d.c.id == pos.c.department_id)
        )
        .where(a.c.person_id.in_(person_ids), a.c.organisation_id == scope.organisation_id)
    ).all()

    def rank(r: Any) -> tuple[bool, bool, dt.date]:
        current = r.start_date <= scope.today and (r.end_date is None or r.end_date >= scope.today)
        return (current, bool(r.is_primary), r.start_date)

    best: dict[int, Any] = {}
    for r in rows:
        pid = int(r.person_id)
        if pid not in best or rank(r) > rank(best[pid]):
            best[pid] = r
    supervisors = {r.supervisor_assignment_number for r in best.values()} - {None}
    managers: dict[str, str] = {}
    if supervisors:
        for number, uid in conn.execute(
            sa.select(a.c.assignment_number, p.c.uid)
            .select_from(a.join(p, p.c.id == a.c.person_id))
            .where(
                a.c.organisation_id == scope.organisation_id,
                a.c.assignment_number.in_(supervisors),
            )
        ):
            managers[number] = uid
    out: dict[int, dict[str, Any]] = {}
    for pid, r in best.items():
        ent: dict[str, Any] = {
            "employeeNumber": r.employee_number,
            "organization": scope.organisation_name,
            "department": r.department,
        }
        manager = managers.get(r.supervisor_assignment_number or "")
        if manager:
            ent["manager"] = {"value": manager, "$ref": scope.location("Users", manager)}
        out[pid] = {"enterprise": ent, "active": rank(r)[0]}
    return out


def render_users(conn: Connection, scope: Scope, person_ids: Sequence[int]) -> list[dict[str, Any]]:
    """The SCIM representations of these users, in the order given."""
    if not person_ids:
        return []
    rows = {
        int(r.id): r
        for r in conn.execute(
            sa.select(
                p,
                su.c.person_id.label("scim_id"),
                su.c.document,
                su.c.created_at.label("scim_created"),
                su.c.updated_at.label("scim_updated"),
            )
            .select_from(p.outerjoin(su, su.c.person_id == p.c.id))
            .where(p.c.id.in_(person_ids))
        )
    }
    hr_ids = [pid for pid, r in rows.items() if r.scim_id is None]
    employment = _hr_employment(conn, scope, hr_ids) if hr_ids else {}
    groups = _groups_of(conn, scope, list(person_ids))
    out = []
    for pid in person_ids:
        r = rows[pid]
        if r.scim_id is not None:
            doc = dict(r.document)
            created, modified = r.scim_created, r.scim_updated
        else:
            doc = _hr_document(r, employment.get(pid, {}))
            created, modified = r.created_at, r.updated_at
        doc["id"] = r.uid
        if pid in groups:
            doc["groups"] = groups[pid]
        doc["_location"] = scope.location("Users", r.uid)
        _finish(doc, "User", created, modified)
        out.append(doc)
    return out


def _hr_document(r: Any, employment: Mapping[str, Any]) -> dict[str, Any]:
    name: dict[str, Any] = {"givenName": r.first_name, "familyName": r.last_name}
    if r.middle_names:
        name["middleName"] = r.middle_names
    if r.title:
        name["honorificPrefix"] = r.title
    name["formatted"] = " ".join(x for x in (r.first_name, r.middle_names, r.last_name) if x)
    doc: dict[str, Any] = {
        "schemas": [USER_SCHEMA, ENT],
        "userName": r.email or r.uid,
        "name": name,
        "displayName": f"{r.known_as or r.first_name} {r.last_name}",
        "active": bool(employment.get("active", False)),
    }
    if r.email:
        doc["emails"] = [{"value": r.email, "type": "work", "primary": True}]
    doc[ENT] = dict(employment.get("enterprise") or {})
    return doc


# --- users: writes --------------------------------------------------------------------------

# What an HR-sourced user's representation may differ in, in a replacement: nothing HR owns.
_HR_IGNORED = {"id", "meta", "groups", "schemas"}


def _text(value: Any, name: str, limit: int, *, required: bool = False) -> str | None:
    if value is None or value == "":
        if required:
            raise invalid_value(f"'{name}' is required")
        return None
    if not isinstance(value, str):
        raise invalid_value(f"'{name}' must be a string")
    if len(value) > limit:
        raise invalid_value(f"'{name}' is longer than {limit} characters")
    return value


def _check_unique_user_name(
    conn: Connection, scope: Scope, user_name: str, person_id: int | None
) -> None:
    query = (
        sa.select(p.c.id)
        .select_from(p.outerjoin(su, su.c.person_id == p.c.id))
        .where(
            _user_name_lookup(scope, user_name.lower()),
            _users_of(scope),
            sa.func.lower(_user_name_expr()) == user_name.lower(),
        )
    )
    if person_id is not None:
        query = query.where(p.c.id != person_id)
    if conn.execute(query.limit(1)).first() is not None:
        raise ScimError(409, f"userName '{user_name}' is already taken", "uniqueness")


def _manager(conn: Connection, scope: Scope, doc: dict[str, Any]) -> None:
    ent = doc.get(ENT)
    if not isinstance(ent, dict) or not ent.get("manager"):
        return
    manager = ent["manager"]
    value = manager.get("value")
    if not value and manager.get("$ref"):
        value = str(manager["$ref"]).rstrip("/").rsplit("/", 1)[-1]
    if not value:
        raise invalid_value("manager needs a value (the manager's user id)")
    try:
        _user_person_id(conn, scope, str(value))
    except ScimError:
        raise invalid_value(f"manager '{value}' is not a user of this organisation") from None
    ent["manager"] = {"value": value, "$ref": scope.location("Users", str(value))}


def _save_user(
    conn: Connection, scope: Scope, doc: dict[str, Any], person_id: int | None
) -> tuple[int, str]:
    """Write a SCIM-created user's document (insert when ``person_id`` is None)."""
    doc = {k: v for k, v in doc.items() if k not in _HR_IGNORED or k == "schemas"}
    user_name = _text(doc.get("userName"), "userName", 200, required=True)
    assert user_name is not None
    _check_unique_user_name(conn, scope, user_name, person_id)
    _manager(conn, scope, doc)
    external_id = _text(doc.get("externalId"), "externalId", 200)
    display_name = _text(doc.get("displayName"), "displayName", 200)
    name = doc.get("name") or {}
    ent = doc.get(ENT) or {}
    employee_number = _text(ent.get("employeeNumber"), "employeeNumber", 40)
    emails = doc.get("emails") or []
    for email in emails:
        _text(email.get("value"), "emails.value", 254, required=True)
        _text(email.get("type"), "emails.type", 40)
    primary = next((x for x in emails if x.get("primary")), emails[0] if emails else None)
    schemas = [USER_SCHEMA] + ([ENT] if ent else [])
    doc["schemas"] = schemas
    if not ent:
        doc.pop(ENT, None)
    now = _now()
    person_values = {
        "first_name": (name.get("givenName") or "")[:100],
        "middle_names": (name.get("middleName") or None) and name["middleName"][:100],
        "last_name": (name.get("familyName") or "")[:100],
        "known_as": display_name[:100] if display_name else None,
        "email": primary["value"] if primary else None,
        "updated_at": now,
    }
    scim_values = {
        "user_name": user_name,
        "user_name_key": user_name.lower(),
        "external_id": external_id,
        "display_name": display_name,
        "active": doc.get("active") is not False,
        "employee_number": employee_number,
        "document": doc,
        "updated_at": now,
    }
    pi = s.person_identifier
    if person_id is None:
        uid = str(uuid.uuid4())
        person_id = conn.execute(
            p.insert().values(uid=uid, created_at=now, **person_values).returning(p.c.id)
        ).scalar_one()
        conn.execute(
            su.insert().values(
                person_id=person_id,
                organisation_id=scope.organisation_id,
                created_by=scope.actor,
                created_at=now,
                **scim_values,
            )
        )
        conn.execute(
            pi.insert().values(
                person_id=person_id,
                scheme="scim",
                issuer=scope.ods_code,
                value=user_name.lower(),
                created_at=now,
            )
        )
    else:
        uid = conn.execute(sa.select(p.c.uid).where(p.c.id == person_id)).scalar_one()
        conn.execute(p.update().where(p.c.id == person_id).values(**person_values))
        conn.execute(su.update().where(su.c.person_id == person_id).values(**scim_values))
        conn.execute(
            pi.update()
            .where(pi.c.person_id == person_id, pi.c.scheme == "scim")
            .values(value=user_name.lower())
        )
    e = s.scim_user_email
    conn.execute(e.delete().where(e.c.person_id == person_id))
    if emails:
        conn.execute(
            e.insert(),
            [
                {
                    "person_id": person_id,
                    "value": x["value"],
                    "type": x.get("type"),
                    "is_primary": bool(x.get("primary")),
                }
                for x in emails
            ],
        )
    return int(person_id), str(uid)


def _audit(
    conn: Connection, scope: Scope, action: str, kind: str, ident: str, details: dict[str, Any]
) -> None:
    audit.append(
        conn,
        actor=scope.actor,
        action=f"scim.{action}",
        subject_type=f"scim_{kind}",
        subject_id=ident,
        details={"organisation": scope.ods_code, **details},
    )


def create_user(conn: Connection, scope: Scope, doc: dict[str, Any]) -> dict[str, Any]:
    person_id, uid = _save_user(conn, scope, doc, None)
    _audit(conn, scope, "user.created", "user", uid, {"userName": doc.get("userName")})
    return render_users(conn, scope, [person_id])[0]


def _changed(before: Mapping[str, Any], after: Mapping[str, Any]) -> list[str]:
    names = []
    for key in sorted(set(before) | set(after)):
        if key in _HR_IGNORED:
            continue
        old, new = before.get(key), after.get(key)
        if key == ENT and isinstance(old, dict) and isinstance(new, dict):
            names += [f"{ENT}:{k}" for k in sorted(set(old) | set(new)) if old.get(k) != new.get(k)]
        elif old != new and not (old in (None, [], {}) and new in (None, [], {})):
            names.append(key)
    return names


def replace_user(
    conn: Connection, scope: Scope, uid: str, doc: dict[str, Any], *, if_match: str | None
) -> dict[str, Any]:
    person_id, scim = _user_person_id(conn, scope, uid)
    current = render_users(conn, scope, [person_id])[0]
    check_if_match(current, if_match)
    if not scim:
        changed = _changed(current, doc)
        if changed:
            raise mutability(
                f"{', '.join(changed)}: HR-owned for this HR-sourced user (change them in "
                "the HR record, not through SCIM)"
            )
        return current
    _save_user(conn, scope, doc, person_id)
    _audit(conn, scope, "user.replaced", "user", uid, {"changed": _changed(current, doc)})
    return render_users(conn, scope, [person_id])[0]


def delete_user(conn: Connection, scope: Scope, uid: str, *, if_match: str | None) -> None:
    person_id, scim = _user_person_id(conn, scope, uid)
    current = render_users(conn, scope, [person_id])[0]
    check_if_match(current, if_match)
    if not scim:
        raise mutability(
            "an HR-sourced user cannot be deleted through SCIM: they leave through the HR record"
        )
    now = _now()
    conn.execute(
        su.update()
        .where(su.c.person_id == person_id)
        .values(deleted_at=now, user_name_key=None, updated_at=now)
    )
    e, pi, gm = s.scim_user_email, s.person_identifier, s.scim_group_member
    conn.execute(e.delete().where(e.c.person_id == person_id))
    conn.execute(pi.delete().where(pi.c.person_id == person_id, pi.c.scheme == "scim"))
    _touch_groups_of(conn, [person_id], now)
    conn.execute(gm.delete().where(gm.c.person_id == person_id))
    _audit(conn, scope, "user.deleted", "user", uid, {"userName": current.get("userName")})


def check_if_match(current: Mapping[str, Any], if_match: str | None) -> None:
    if if_match is None:
        return
    tags = {t.strip() for t in if_match.split(",")}
    version = current["meta"]["version"]
    if "*" in tags:
        return
    bare = {t.removeprefix("W/") for t in tags}
    if version not in tags and version.removeprefix("W/") not in bare:
        raise ScimError(412, f"the resource changed: its version is {version}, not {if_match}")


# --- groups ---------------------------------------------------------------------------------

g, gm = s.scim_group, s.scim_group_member


def _group_compiler(scope: Scope) -> Compiler:
    p2 = p.alias("member_person")

    def members(inner: Any) -> Clause:
        return sa.exists().where(
            gm.c.group_id == g.c.id,
            p2.c.id == gm.c.person_id,
            inner(
                {
                    "value": Field(p2.c.uid, case_exact=True),
                    "type": Field(sa.literal("User", sa.String)),
                }
            ),
        )

    attributes: dict[str, Field | MultiValued] = {
        "id": Field(g.c.uid, case_exact=True),
        "externalId": Field(g.c.external_id, case_exact=True),
        "displayName": Field(g.c.display_name),
        "members": MultiValued(members),
        "meta.created": Field(g.c.created_at, "datetime"),
        "meta.lastModified": Field(g.c.updated_at, "datetime"),
    }
    return Compiler(attributes, GROUP_SCHEMA, "Groups")


def list_groups(
    conn: Connection,
    scope: Scope,
    *,
    filter_text: str | None = None,
    sort_by: str | None = None,
    descending: bool = False,
    start_index: int = 1,
    count: int = 100,
) -> tuple[int, list[dict[str, Any]]]:
    base = sa.select(g.c.id).where(g.c.organisation_id == scope.organisation_id)
    total, ids = _page(
        conn,
        base,
        g.c.id,
        _group_compiler(scope),
        filter_text=filter_text,
        sort_by=sort_by,
        descending=descending,
        start_index=start_index,
        count=count,
    )
    return total, render_groups(conn, scope, ids)


def _group_id(conn: Connection, scope: Scope, uid: str) -> int:
    found = conn.execute(
        sa.select(g.c.id).where(g.c.uid == uid, g.c.organisation_id == scope.organisation_id)
    ).scalar()
    if found is None:
        raise not_found("Group", uid)
    return int(found)


def get_group(conn: Connection, scope: Scope, uid: str) -> dict[str, Any]:
    return render_groups(conn, scope, [_group_id(conn, scope, uid)])[0]


def render_groups(conn: Connection, scope: Scope, ids: Sequence[int]) -> list[dict[str, Any]]:
    if not ids:
        return []
    rows = {int(r.id): r for r in conn.execute(sa.select(g).where(g.c.id.in_(ids)))}
    members: dict[int, list[dict[str, Any]]] = {}
    for group_id, uid in conn.execute(
        sa.select(gm.c.group_id, p.c.uid)
        .select_from(gm.join(p, p.c.id == gm.c.person_id))
        .where(gm.c.group_id.in_(ids))
        .order_by(gm.c.group_id, p.c.id)
    ):
        members.setdefault(int(group_id), []).append(
            {"value": uid, "$ref": scope.location("Users", uid), "type": "User"}
        )
    out = []
    for group_id in ids:
        r = rows[group_id]
        doc: dict[str, Any] = {"schemas": [GROUP_SCHEMA], "id": r.uid}
        if r.external_id:
            doc["externalId"] = r.external_id
        doc["displayName"] = r.display_name
        if members.get(group_id):
            doc["members"] = members[group_id]
        doc["_location"] = scope.location("Groups", r.uid)
        _finish(doc, "Group", r.created_at, r.updated_at)
        out.append(doc)
    return out


def _member_ids(conn: Connection, scope: Scope, members: Iterable[Mapping[str, Any]]) -> set[int]:
    out = set()
    for member in members:
        value = member.get("value")
        if not value and member.get("$ref"):
            value = str(member["$ref"]).rstrip("/").rsplit("/", 1)[-1]
        kind = member.get("type")
        if kind is not None and str(kind).lower() != "user":
            raise invalid_value(f"member '{value}': only users can be members (no nested groups)")
        if not value:
            raise invalid_value("a member needs a value (the user's id)")
        try:
            person_id, _ = _user_person_id(conn, scope, str(value))
        except ScimError:
            raise invalid_value(f"member '{value}' is not a user of this organisation") from None
        out.add(person_id)
    return out


def _save_group(
    conn: Connection, scope: Scope, doc: Mapping[str, Any], group_id: int | None
) -> tuple[int, str, set[int], set[int]]:
    display_name = _text(doc.get("displayName"), "displayName", 200, required=True)
    external_id = _text(doc.get("externalId"), "externalId", 200)
    wanted = _member_ids(conn, scope, doc.get("members") or [])
    now = _now()
    if group_id is None:
        uid = str(uuid.uuid4())
        group_id = conn.execute(
            g.insert()
            .values(
                uid=uid,
                organisation_id=scope.organisation_id,
                display_name=display_name,
                external_id=external_id,
                created_by=scope.actor,
                created_at=now,
                updated_at=now,
            )
            .returning(g.c.id)
        ).scalar_one()
        before: set[int] = set()
    else:
        uid = conn.execute(sa.select(g.c.uid).where(g.c.id == group_id)).scalar_one()
        conn.execute(
            g.update()
            .where(g.c.id == group_id)
            .values(display_name=display_name, external_id=external_id, updated_at=now)
        )
        before = set(
            conn.execute(sa.select(gm.c.person_id).where(gm.c.group_id == group_id)).scalars()
        )
    added, removed = wanted - before, before - wanted
    if removed:
        conn.execute(gm.delete().where(gm.c.group_id == group_id, gm.c.person_id.in_(removed)))
    if added:
        conn.execute(gm.insert(), [{"group_id": group_id, "person_id": x} for x in sorted(added)])
    return int(group_id), str(uid), added, removed


def _uids(conn: Connection, person_ids: Iterable[int]) -> list[str]:
    ids = list(person_ids)
    if not ids:
        return []
    return sorted(conn.execute(sa.select(p.c.uid).where(p.c.id.in_(ids))).scalars())


def create_group(conn: Connection, scope: Scope, doc: Mapping[str, Any]) -> dict[str, Any]:
    group_id, uid, added, _ = _save_group(conn, scope, doc, None)
    _audit(
        conn,
        scope,
        "group.created",
        "group",
        uid,
        {"displayName": doc.get("displayName"), "added": _uids(conn, added)},
    )
    return render_groups(conn, scope, [group_id])[0]


def replace_group(
    conn: Connection, scope: Scope, uid: str, doc: Mapping[str, Any], *, if_match: str | None
) -> dict[str, Any]:
    group_id = _group_id(conn, scope, uid)
    check_if_match(render_groups(conn, scope, [group_id])[0], if_match)
    _, _, added, removed = _save_group(conn, scope, doc, group_id)
    _audit(
        conn,
        scope,
        "group.replaced",
        "group",
        uid,
        {
            "displayName": doc.get("displayName"),
            "added": _uids(conn, added),
            "removed": _uids(conn, removed),
        },
    )
    return render_groups(conn, scope, [group_id])[0]


def delete_group(conn: Connection, scope: Scope, uid: str, *, if_match: str | None) -> None:
    group_id = _group_id(conn, scope, uid)
    current = render_groups(conn, scope, [group_id])[0]
    check_if_match(current, if_match)
    conn.execute(gm.delete().where(gm.c.group_id == group_id))
    conn.execute(g.delete().where(g.c.id == group_id))
    _audit(conn, scope, "group.deleted", "group", uid, {"displayName": current["displayName"]})


def _touch_groups_of(conn: Connection, person_ids: Sequence[int], now: dt.datetime) -> None:
    conn.execute(
        g.update()
        .where(g.c.id.in_(sa.select(gm.c.group_id).where(gm.c.person_id.in_(person_ids))))
        .values(updated_at=now)
    )
