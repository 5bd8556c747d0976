"""The audit log (append-only, hash-chained): who did what, when, to what (``audit.read``).

Auditors and administrators only (API tokens never read the audit log). A platform
administrator reads every entry; an organisation's auditors and administrators read the
entries about its people, their operations and its HR imports.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

import sqlalchemy as sa
from fastapi import APIRouter, Query
from pydantic import BaseModel

from pasa.domain.access import Action
from pasa.store import schema as s
from pasa.web.api.common import (
    EngineDep,
    Instant,
    Page,
    Paging,
    Visibility,
    authorize_list,
    int_key,
    person_in_orgs,
)
from pasa.web.security import CurrentPrincipal

router = APIRouter(tags=["audit"])


class AuditEntryOut(BaseModel):
    seq: int
    at: Instant
    actor: str
    action: str
    subject_type: str
    subject_id: str
    details: dict[str, Any]
    hash: str


def _visible(seen: Visibility) -> Any:
    if seen.everything:
        return sa.true()
    if not seen.organisations:
        return sa.false()
    log, p, op, e, o = s.audit_log, s.person, s.operation, s.hr_event, s.organisation
    orgs = seen.organisations
    people = sa.select(sa.cast(p.c.id, sa.String)).where(person_in_orgs(p.c.id, orgs))
    operations = sa.select(sa.cast(op.c.id, sa.String)).where(person_in_orgs(op.c.person_id, orgs))
    imports = (
        sa.select(sa.cast(e.c.import_id, sa.String))
        .join(o, o.c.id == e.c.organisation_id)
        .where(o.c.ods_code.in_(sorted(orgs)))
    )
    return sa.or_(
        sa.and_(log.c.subject_type == "person", log.c.subject_id.in_(people)),
        sa.and_(log.c.subject_type == "operation", log.c.subject_id.in_(operations)),
        sa.and_(log.c.subject_type == "hr_import", log.c.subject_id.in_(imports)),
    )


@router.get("/audit", response_model=Page[AuditEntryOut], summary="Read the audit log")
def list_audit(
    principal: CurrentPrincipal,
    paging: Paging,
    engine: EngineDep,
    action: Annotated[
        str | None, Query(max_length=60, description="Only this action, e.g. grant.add")
    ] = None,
    actor: Annotated[str | None, Query(max_length=200, description="Only by this actor")] = None,
    subject_type: Annotated[
        str | None, Query(max_length=40, description="Only about this kind, e.g. person")
    ] = None,
    subject_id: Annotated[
        str | None, Query(max_length=100, description="Only about this subject")
    ] = None,
    since: Annotated[dt.datetime | None, Query(description="Only at or after")] = None,
    until: Annotated[dt.datetime | None, Query(description="Only before")] = None,
) -> Page[AuditEntryOut]:
    seen = authorize_list(principal, Action.READ_AUDIT)
    after = int_key(paging)
    log = s.audit_log
    query = sa.select(log).where(_visible(seen)).order_by(log.c.seq).limit(paging.limit + 1)
    for column, value in (
        (log.c.action, action),
        (log.c.actor, actor),
        (log.c.subject_type, subject_type),
        (log.c.subject_id, subject_id),
    ):
        if value is not None:
            query = query.where(column == value)
    if since is not None:
        query = query.where(log.c.at >= since)
    if until is not None:
        query = query.where(log.c.at < until)
    if after is not None:
        query = query.where(log.c.seq > after)
    with engine.connect() as conn:
        items = [
            AuditEntryOut(
                seq=r.seq,
                at=r.at,
                actor=r.actor,
                action=r.action,
                subject_type=r.subject_type,
                subject_id=r.subject_id,
                details=dict(r.details or {}),
                hash=r.hash,
            )
            for r in conn.execute(query)
        ]
    return paging.page(items, lambda x: x.seq)
