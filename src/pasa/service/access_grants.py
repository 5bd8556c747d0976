"""Time-bound grants: approved requests the planner honours between two dates.

A grant names a person, a target and optionally a group / application role / door zone
(none: just an account there). It justifies access only from ``valid_from`` to
``valid_to`` inclusive, and only while the person holds an active assignment — a request
never outlives employment. Every change is audited; revoking ends the grant at the next
plan. (Issue 6's approval workflow creates these rows once a request is approved.)
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from pasa.audit import log as audit
from pasa.clock import now as utcnow
from pasa.domain.errors import ConfigurationError, NotFoundError, PasaError
from pasa.domain.grants import EntitlementKind
from pasa.store import schema as s
from pasa.store.policy_repo import load_active_policy


class GrantError(PasaError):
    """A grant cannot be recorded or changed as asked."""


@dataclass(frozen=True, slots=True)
class GrantRow:
    grant_id: int
    person_id: int
    target: str
    kind: str | None
    value: str
    valid_from: dt.date
    valid_to: dt.date | None
    justification: str
    requested_by: str
    approved_by: str
    status: str

    def describe(self) -> str:
        what = "account" if self.kind is None else f"{self.kind.replace('_', ' ')} {self.value}"
        until = f"until {self.valid_to}" if self.valid_to else "no end date"
        return f"#{self.grant_id} {what} on {self.target} from {self.valid_from}, {until}"


def add_grant(
    engine: Engine,
    *,
    person_id: int,
    target: str,
    kind: EntitlementKind | str | None,
    value: str,
    valid_from: dt.date,
    valid_to: dt.date | None,
    justification: str,
    requested_by: str,
    approved_by: str,
) -> int:
    """Record an approved time-bound grant; returns its id."""
    entitlement = EntitlementKind(kind) if kind is not None else None
    if valid_to is not None and valid_to < valid_from:
        raise GrantError(f"the grant ends ({valid_to}) before it starts ({valid_from})")
    if not justification.strip():
        raise GrantError("a grant needs a justification (why this person needs the access)")
    if entitlement is not None and not value.strip():
        raise GrantError(f"a {entitlement.value} grant needs the {entitlement.value} to grant")
    if approved_by == requested_by:
        raise GrantError("the approver must not be the requester (separation of duties)")
    with engine.begin() as conn:
        if conn.scalar(sa.select(s.person.c.id).where(s.person.c.id == person_id)) is None:
            raise NotFoundError(f"no person {person_id}")
        document = load_active_policy(conn)
        targets = {t.key for t in document.targets}
        if target not in targets:
            known = ", ".join(sorted(targets))
            raise ConfigurationError(f"no target '{target}' in the active policy ({known})")
        grant_id = int(
            conn.execute(
                s.access_grant.insert()
                .values(
                    person_id=person_id,
                    target_key=target,
                    kind=entitlement.value if entitlement else None,
                    value=value if entitlement else "",
                    valid_from=valid_from,
                    valid_to=valid_to,
                    justification=justification.strip(),
                    requested_by=requested_by,
                    approved_by=approved_by,
                    approved_at=utcnow(),
                    status="active",
                )
                .returning(s.access_grant.c.id)
            ).scalar_one()
        )
        audit.append(
            conn,
            actor=approved_by,
            action="grant.add",
            subject_type="person",
            subject_id=person_id,
            details={
                "grant_id": grant_id,
                "target": target,
                "kind": entitlement.value if entitlement else None,
                "value": value if entitlement else "",
                "valid_from": valid_from.isoformat(),
                "valid_to": valid_to.isoformat() if valid_to else None,
                "justification": justification.strip(),
                "requested_by": requested_by,
            },
        )
    return grant_id


def revoke_grant(engine: Engine, grant_id: int, *, actor: str, reason: str = "") -> None:
    """End a grant now; the access goes at the next plan unless something else justifies it."""
    with engine.begin() as conn:
        row = conn.execute(
            sa.select(s.access_grant).where(s.access_grant.c.id == grant_id)
        ).one_or_none()
        if row is None:
            raise NotFoundError(f"no grant #{grant_id}")
        if row.status != "active":
            raise GrantError(f"grant #{grant_id} was already revoked by {row.revoked_by}")
        conn.execute(
            s.access_grant.update()
            .where(s.access_grant.c.id == grant_id)
            .values(status="revoked", revoked_by=actor, revoked_at=utcnow())
        )
        audit.append(
            conn,
            actor=actor,
            action="grant.revoke",
            subject_type="person",
            subject_id=row.person_id,
            details={"grant_id": grant_id, "reason": reason},
        )


def list_grants(engine: Engine, person_id: int | None = None) -> list[GrantRow]:
    g = s.access_grant
    query = sa.select(g).order_by(g.c.id)
    if person_id is not None:
        query = query.where(g.c.person_id == person_id)
    with engine.connect() as conn:
        return [
            GrantRow(
                r.id,
                r.person_id,
                r.target_key,
                r.kind,
                r.value,
                r.valid_from,
                r.valid_to,
                r.justification,
                r.requested_by,
                r.approved_by,
                r.status,
            )
            for r in conn.execute(query)
        ]
