"""Access requests: submit from the policy's catalogue, decide stage by stage, follow to ready.

The route itself (states, who may decide, reminders) is the pure :mod:`pasa.domain.requests`;
this module loads a request into it, writes back what it returns, and tells people by
writing to the notification outbox (:mod:`pasa.service.notify`) in the same transaction as
the change, with an audit entry. A request approved at its last stage becomes a time-bound
grant (:func:`pasa.service.access_grants.add_grant`) and the person is planned at once, so
the operations are queued for the worker; an approved request whose grant could not be
recorded is picked up again by the scheduler step (:func:`request_housekeeping`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
import structlog
from sqlalchemy.engine import Connection, Engine

from pasa.audit import log as audit
from pasa.domain.access import Action, Principal, Resource, Role, decide
from pasa.domain.errors import NotFoundError
from pasa.domain.requests import (
    TERMINAL,
    AccessRequest,
    Chase,
    RequestError,
    Stage,
    StageDecision,
    State,
    chase,
    check_dates,
    due_at,
    lapsed,
    may_decide,
)
from pasa.domain.requests import decide as decide_stage
from pasa.domain.requests import expire as expire_request
from pasa.domain.requests import submit as submit_request
from pasa.domain.requests import withdraw as withdraw_request
from pasa.policy.document import RequestableSpec
from pasa.service import access_grants, notify, provisioning
from pasa.store import schema as s
from pasa.store.policy_repo import load_active_policy

log = structlog.get_logger(__name__)

__all__ = ["RequestError", "RequestView", "State"]


class RequestRefused(RequestError):
    """The principal may see the request but not do this to it (a 403, not a conflict)."""


@dataclass(frozen=True, slots=True)
class OperationView:
    id: int
    kind: str
    summary: str
    status: str
    completed_at: dt.datetime | None


@dataclass(frozen=True, slots=True)
class RequestView:
    """A request as pages and the API show it."""

    id: int
    person_id: int
    person_name: str
    organisations: tuple[str, ...]
    item_key: str
    target: str
    kind: str | None
    value: str
    description: str
    justification: str
    valid_from: dt.date
    valid_to: dt.date | None
    requested_by: str
    state: State
    stages: tuple[Stage, ...]
    current_stage: Stage | None
    sla_hours: int
    submitted_at: dt.datetime
    due_at: dt.datetime | None
    escalated: bool
    closed_at: dt.datetime | None
    closed_by: str | None
    grant_id: int | None
    decisions: tuple[StageDecision, ...]

    @property
    def what(self) -> str:
        kind = "account" if self.kind is None else self.kind.replace("_", " ")
        return f"{kind} {self.value}".strip()

    def overdue(self, now: dt.datetime) -> bool:
        return self.due_at is not None and now >= self.due_at


@dataclass(frozen=True, slots=True)
class Progress:
    """Where an approved request is on its way to ready: the person's operations for it."""

    operations: tuple[OperationView, ...]
    ready: bool
    starts_later: bool


# --- reading ---------------------------------------------------------------------------------


def _aware(value: dt.datetime | None) -> dt.datetime | None:
    # SQLite hands back naive datetimes; every instant PASA writes is UTC.
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=dt.UTC)


def _domain(row: Any, decisions: Sequence[Any]) -> AccessRequest:
    submitted = _aware(row.submitted_at)
    assert submitted is not None
    return AccessRequest(
        requester=row.requested_by,
        requester_person_id=row.requester_person_id,
        person_id=row.person_id,
        organisations=frozenset(row.organisations),
        target=row.target_key,
        stages=tuple(Stage(x) for x in row.stages),
        sla_hours=row.sla_hours,
        submitted_at=submitted,
        state=State(row.state),
        decisions=tuple(
            StageDecision(
                Stage(d.stage),
                d.decided_by,
                bool(d.approved),
                _aware(d.decided_at) or submitted,
                d.reason,
                bool(d.by_request),
            )
            for d in decisions
        ),
        stage_since=_aware(row.stage_since),
        closed_by=row.closed_by,
    )


def _name_column() -> sa.ColumnElement[Any]:
    p = s.person
    return sa.func.coalesce(p.c.known_as, p.c.first_name) + " " + p.c.last_name


def _query() -> sa.Select[Any]:
    r = s.access_request
    return sa.select(r, _name_column().label("person_name")).select_from(
        r.join(s.person, s.person.c.id == r.c.person_id)
    )


def _views(conn: Connection, rows: Sequence[Any]) -> list[RequestView]:
    if not rows:
        return []
    d = s.access_request_decision
    by_request: dict[int, list[Any]] = {}
    for dec in conn.execute(
        sa.select(d).where(d.c.request_id.in_([r.id for r in rows])).order_by(d.c.id)
    ):
        by_request.setdefault(dec.request_id, []).append(dec)
    try:
        catalogue = {i.key: i for i in load_active_policy(conn).requestable}
    except Exception:  # no active policy: the request still shows, without its description
        catalogue = {}
    out = []
    for row in rows:
        request = _domain(row, by_request.get(row.id, []))
        item = catalogue.get(row.item_key)
        out.append(
            RequestView(
                id=row.id,
                person_id=row.person_id,
                person_name=row.person_name,
                organisations=tuple(sorted(row.organisations)),
                item_key=row.item_key,
                target=row.target_key,
                kind=row.kind,
                value=row.value,
                description=item.description if item else "",
                justification=row.justification,
                valid_from=row.valid_from,
                valid_to=row.valid_to,
                requested_by=row.requested_by,
                state=request.state,
                stages=request.stages,
                current_stage=request.current_stage,
                sla_hours=row.sla_hours,
                submitted_at=request.submitted_at,
                due_at=due_at(request),
                escalated=row.escalated_at is not None,
                closed_at=_aware(row.closed_at),
                closed_by=row.closed_by,
                grant_id=row.grant_id,
                decisions=request.decisions,
            )
        )
    return out


def get_request(engine: Engine, request_id: int) -> RequestView:
    with engine.connect() as conn:
        rows = conn.execute(_query().where(s.access_request.c.id == request_id)).all()
        views = _views(conn, rows)
    if not views:
        raise NotFoundError(f"no access request #{request_id}")
    return views[0]


def person_organisations(
    conn: Connection, person_id: int, at: dt.date | None = None
) -> frozenset[str]:
    """The ODS codes of the person's assignments (current ones on ``at``, when given)."""
    a, o = s.assignment, s.organisation
    query = (
        sa.select(o.c.ods_code)
        .select_from(a.join(o, o.c.id == a.c.organisation_id))
        .where(a.c.person_id == person_id)
        .distinct()
    )
    if at is not None:
        query = query.where(sa.or_(a.c.end_date.is_(None), a.c.end_date >= at))
    return frozenset(conn.scalars(query))


def resource_of(view: RequestView) -> Resource:
    return Resource.of(view.organisations, person_id=view.person_id, target=view.target)


def _owned(principal: Principal) -> list[tuple[str, str | None]]:
    return [
        (b.target, b.organisation)
        for b in principal.bindings
        if b.role is Role.SYSTEM_OWNER and b.target is not None
    ]


def _admin_orgs(principal: Principal) -> tuple[bool, set[str]]:
    everything = False
    orgs: set[str] = set()
    for b in principal.bindings:
        if b.role in (Role.ORG_ADMIN, Role.PLATFORM_ADMIN, Role.AUDITOR):
            if b.organisation is None:
                everything = True
            else:
                orgs.add(b.organisation)
    return everything, orgs


def visible_filter(principal: Principal) -> Any:
    """SQL: the requests ``principal`` may see (theirs, their reports', their system's,
    their organisation's)."""
    r = s.access_request
    everything, orgs = _admin_orgs(principal)
    if everything:
        return sa.true()
    terms: list[Any] = [r.c.requested_by == principal.subject]
    if principal.person_id is not None:
        terms.append(r.c.person_id == principal.person_id)
    if principal.reports:
        terms.append(r.c.person_id.in_(sorted(principal.reports)))
    for target, _org in _owned(principal):
        terms.append(r.c.target_key == target)
    if principal.is_token and principal.token_organisation:
        orgs.add(principal.token_organisation)
    if orgs:
        a, o = s.assignment, s.organisation
        terms.append(
            r.c.person_id.in_(
                sa.select(a.c.person_id)
                .join(o, o.c.id == a.c.organisation_id)
                .where(o.c.ods_code.in_(sorted(orgs)))
            )
        )
    return sa.or_(*terms)


def list_requests(
    engine: Engine,
    principal: Principal,
    *,
    after: int | None = None,
    limit: int = 100,
    state: str | None = None,
    person_id: int | None = None,
) -> list[RequestView]:
    """Requests ``principal`` may see, newest first... by id, for cursor paging."""
    r = s.access_request
    query = _query().where(visible_filter(principal)).order_by(r.c.id).limit(limit)
    if after is not None:
        query = query.where(r.c.id > after)
    if state is not None:
        query = query.where(r.c.state == state)
    if person_id is not None:
        query = query.where(r.c.person_id == person_id)
    with engine.connect() as conn:
        views = _views(conn, conn.execute(query).all())
    # Organisation-level visibility above is by any assignment; system owners see only the
    # requests of their organisation (decide() has the last word on each row).
    return [
        v
        for v in views
        if decide(principal, Action.READ_ACCESS, resource_of(v)) or _mine(v, principal)
    ]


def _mine(view: RequestView, principal: Principal) -> bool:
    return view.requested_by == principal.subject or view.person_id == principal.person_id


@dataclass(frozen=True, slots=True)
class Inbox:
    """The requests page: what I asked for, for my reports, and what waits for me."""

    mine: list[RequestView]
    for_reports: list[RequestView]
    waiting: list[RequestView]


def inbox(engine: Engine, principal: Principal) -> Inbox:
    r = s.access_request
    with engine.connect() as conn:
        rows = conn.execute(
            _query()
            .where(visible_filter(principal))
            .order_by(r.c.submitted_at.desc(), r.c.id.desc())
            .limit(500)
        ).all()
        views = _views(conn, rows)
        unrouted = {
            v.id
            for v in views
            if v.state not in TERMINAL
            and v.current_stage is not None
            and not _stage_approvers(conn, _as_domain(v), v.current_stage)
        }
    mine, reports, waiting = [], [], []
    for v in views:
        if v.person_id == principal.person_id or (
            v.requested_by == principal.subject and v.person_id not in principal.reports
        ):
            mine.append(v)
        elif v.person_id in principal.reports:
            reports.append(v)
        # The identity team's queue is what was escalated to it, or what nobody else may
        # decide (no approver but the requester), not every request.
        if (
            v.state not in TERMINAL
            and may_decide(_as_domain(v), principal)[0]
            and (_natural_approver(v, principal) or v.escalated or v.id in unrouted)
        ):
            waiting.append(v)
    waiting.sort(key=lambda v: v.due_at or v.submitted_at)
    return Inbox(mine, reports, waiting)


def _natural_approver(view: RequestView, principal: Principal) -> bool:
    if view.current_stage is Stage.LINE_MANAGER:
        return view.person_id in principal.reports
    if view.current_stage is Stage.SYSTEM_OWNER:
        return any(t == view.target for t, _ in _owned(principal))
    return False


def _as_domain(view: RequestView) -> AccessRequest:
    return AccessRequest(
        requester=view.requested_by,
        requester_person_id=None,
        person_id=view.person_id,
        organisations=frozenset(view.organisations),
        target=view.target,
        stages=view.stages,
        sla_hours=view.sla_hours,
        submitted_at=view.submitted_at,
        state=view.state,
        decisions=view.decisions,
        stage_since=(view.due_at - dt.timedelta(hours=view.sla_hours)) if view.due_at else None,
    )


def can_decide(view: RequestView, principal: Principal) -> tuple[bool, str]:
    return may_decide(_as_domain(view), principal)


def catalogue(engine: Engine) -> tuple[RequestableSpec, ...]:
    with engine.connect() as conn:
        return load_active_policy(conn).requestable


def progress(engine: Engine, view: RequestView, today: dt.date) -> Progress:
    """The person's operations on the request's target since it was approved, and whether
    they are all done (the access is ready)."""
    if view.state is not State.APPROVED or view.grant_id is None:
        return Progress((), False, False)
    op, t, g = s.operation, s.target, s.access_grant
    with engine.connect() as conn:
        approved_at = conn.scalar(sa.select(g.c.approved_at).where(g.c.id == view.grant_id))
        rows = conn.execute(
            sa.select(
                op.c.id,
                op.c.kind,
                op.c.summary,
                op.c.status,
                op.c.payload,
                op.c.completed_at,
                op.c.created_at,
            )
            .select_from(op.join(t, t.c.id == op.c.target_id))
            .where(op.c.person_id == view.person_id, t.c.key == view.target)
            .order_by(op.c.id)
        ).all()
    since = _aware(approved_at)
    ops = []
    for row in rows:
        created = _aware(row.created_at)
        if since is not None and created is not None and created < since - dt.timedelta(seconds=1):
            continue
        value = str((row.payload or {}).get("value", ""))
        if view.kind is not None and value and value != view.value:
            continue
        ops.append(
            OperationView(row.id, row.kind, row.summary, row.status, _aware(row.completed_at))
        )
    starts_later = view.valid_from > today and not ops
    # No operation at all: the access was already held (ready), unless it starts later.
    ready = not starts_later and all(o.status == "succeeded" for o in ops)
    return Progress(tuple(ops), ready, starts_later)


# --- changing --------------------------------------------------------------------------------


def submit(
    engine: Engine,
    principal: Principal,
    *,
    person_id: int,
    item_key: str,
    justification: str,
    valid_from: dt.date | None,
    valid_to: dt.date | None,
    now: dt.datetime,
    today: dt.date,
) -> RequestView:
    """Record a request for ``item_key`` for ``person_id``; the caller has been authorized
    for ``access.request`` on that person. Notifies the first stage's approvers."""
    text = justification.strip()
    if not text:
        raise RequestError("say why the access is needed (the justification is required)")
    if len(text) > 2000:
        raise RequestError("the justification is too long (at most 2,000 characters)")
    starts = valid_from or today
    with engine.begin() as conn:
        document = load_active_policy(conn)
        try:
            item = document.requestable_item(item_key)
        except KeyError:
            known = ", ".join(i.key for i in document.requestable) or "none"
            raise RequestError(
                f"'{item_key}' is not in the catalogue (requestable: {known})"
            ) from None
        problem = check_dates(starts=starts, ends=valid_to, today=today, max_days=item.max_days)
        if problem is not None:
            raise RequestError(problem)
        if conn.scalar(sa.select(s.person.c.id).where(s.person.c.id == person_id)) is None:
            raise NotFoundError(f"no person {person_id}")
        orgs = person_organisations(conn, person_id, today) or person_organisations(conn, person_id)
        request = submit_request(
            requester=principal,
            person_id=person_id,
            organisations=orgs,
            target=item.target,
            stages=tuple(Stage(x) for x in item.approvers),
            sla_hours=item.sla_hours,
            at=now,
        )
        r = s.access_request
        request_id = int(
            conn.execute(
                r.insert()
                .values(
                    person_id=person_id,
                    organisations=sorted(orgs),
                    item_key=item.key,
                    target_key=item.target,
                    kind=item.kind.value if item.kind else None,
                    value=item.value,
                    justification=text,
                    valid_from=starts,
                    valid_to=valid_to,
                    requested_by=principal.subject,
                    requester_person_id=principal.person_id,
                    stages=[x.value for x in request.stages],
                    sla_hours=item.sla_hours,
                    state=request.state.value,
                    submitted_at=now,
                    stage_since=request.stage_since,
                    closed_at=now if request.state in TERMINAL else None,
                )
                .returning(r.c.id)
            ).scalar_one()
        )
        _write_decisions(conn, request_id, request.decisions)
        audit.append(
            conn,
            actor=principal.subject,
            action="request.submit",
            subject_type="person",
            subject_id=person_id,
            details={
                "request_id": request_id,
                "item": item.key,
                "target": item.target,
                "valid_from": starts.isoformat(),
                "valid_to": valid_to.isoformat() if valid_to else None,
                "state": request.state.value,
            },
        )
        _tell_about(conn, request_id, request)
    _after_change(engine, request_id, request, now=now, today=today, actor=principal.subject)
    return get_request(engine, request_id)


def _write_decisions(conn: Connection, request_id: int, decisions: Iterable[StageDecision]) -> None:
    for d in decisions:
        conn.execute(
            s.access_request_decision.insert().values(
                request_id=request_id,
                stage=d.stage.value,
                decided_by=d.by,
                approved=d.approved,
                by_request=d.by_request,
                reason=d.reason,
                decided_at=d.at,
            )
        )


def _load_for_update(conn: Connection, request_id: int) -> tuple[Any, AccessRequest]:
    r, d = s.access_request, s.access_request_decision
    query = sa.select(r).where(r.c.id == request_id)
    if conn.dialect.name == "postgresql":
        query = query.with_for_update()
    row = conn.execute(query).first()
    if row is None:
        raise NotFoundError(f"no access request #{request_id}")
    decisions = conn.execute(
        sa.select(d).where(d.c.request_id == request_id).order_by(d.c.id)
    ).all()
    return row, _domain(row, decisions)


def decide_request(
    engine: Engine,
    principal: Principal,
    request_id: int,
    *,
    approve: bool,
    reason: str,
    now: dt.datetime,
    today: dt.date,
) -> RequestView:
    """Approve or reject the waiting stage. The last approval makes the grant and plans."""
    with engine.begin() as conn:
        row, request = _load_for_update(conn, request_id)
        allowed, why = may_decide(request, principal)
        if not allowed:
            if request.state in TERMINAL:
                raise RequestError(why)
            raise RequestRefused(why)
        updated = decide_stage(request, principal, approve=approve, reason=reason, at=now)
        conn.execute(
            s.access_request.update()
            .where(s.access_request.c.id == request_id)
            .values(
                state=updated.state.value,
                stage_since=updated.stage_since,
                reminded_at=None,
                escalated_at=None if updated.state not in TERMINAL else row.escalated_at,
                closed_at=now if updated.state in TERMINAL else None,
                closed_by=updated.closed_by
                if updated.state is State.REJECTED
                else (principal.subject if updated.state is State.APPROVED else None),
            )
        )
        _write_decisions(conn, request_id, updated.decisions[len(request.decisions) :])
        audit.append(
            conn,
            actor=principal.subject,
            action="request.approve" if approve else "request.reject",
            subject_type="person",
            subject_id=request.person_id,
            details={
                "request_id": request_id,
                "stage": request.current_stage.value if request.current_stage else None,
                "reason": reason.strip(),
                "state": updated.state.value,
            },
        )
        _tell_about(conn, request_id, updated)
    _after_change(engine, request_id, updated, now=now, today=today, actor=principal.subject)
    return get_request(engine, request_id)


def withdraw(
    engine: Engine,
    principal: Principal,
    request_id: int,
    *,
    now: dt.datetime,
    may_request_for: bool = False,
) -> RequestView:
    """Withdraw a waiting request (``may_request_for``: the caller was authorized for
    ``access.request`` on the person)."""
    with engine.begin() as conn:
        _row, request = _load_for_update(conn, request_id)
        try:
            updated = withdraw_request(request, principal, may_request_for=may_request_for)
        except RequestError as exc:
            if request.state in TERMINAL:
                raise
            raise RequestRefused(str(exc)) from None
        conn.execute(
            s.access_request.update()
            .where(s.access_request.c.id == request_id)
            .values(
                state=updated.state.value,
                stage_since=None,
                closed_at=now,
                closed_by=principal.subject,
            )
        )
        audit.append(
            conn,
            actor=principal.subject,
            action="request.withdraw",
            subject_type="person",
            subject_id=request.person_id,
            details={"request_id": request_id},
        )
    return get_request(engine, request_id)


def _after_change(
    engine: Engine,
    request_id: int,
    request: AccessRequest,
    *,
    now: dt.datetime,
    today: dt.date,
    actor: str,
) -> None:
    if request.state is State.APPROVED:
        grant_approved(engine, request_id, today=today, actor=actor)


def grant_approved(engine: Engine, request_id: int, *, today: dt.date, actor: str) -> int | None:
    """Make the grant of an approved request (once) and plan the person: the operations are
    queued for the worker. Returns the grant id (``None``: not approved)."""
    r = s.access_request
    with engine.connect() as conn:
        row = conn.execute(sa.select(r).where(r.c.id == request_id)).first()
        if row is None or row.state != State.APPROVED.value:
            return None
        if row.grant_id is not None:
            return int(row.grant_id)
        approvers = [
            d.decided_by
            for d in conn.execute(
                sa.select(s.access_request_decision.c.decided_by)
                .where(s.access_request_decision.c.request_id == request_id)
                .order_by(s.access_request_decision.c.id.desc())
            )
        ]
    approver = next((a for a in approvers if a != row.requested_by), approvers[0])
    grant_id = access_grants.add_grant(
        engine,
        person_id=row.person_id,
        target=row.target_key,
        kind=row.kind,
        value=row.value,
        valid_from=row.valid_from,
        valid_to=row.valid_to,
        justification=f"request #{request_id}: {row.justification}",
        requested_by=row.requested_by,
        approved_by=approver,
    )
    with engine.begin() as conn:
        conn.execute(
            r.update().where(r.c.id == request_id, r.c.grant_id.is_(None)).values(grant_id=grant_id)
        )
        audit.append(
            conn,
            actor=actor,
            action="request.granted",
            subject_type="person",
            subject_id=row.person_id,
            details={"request_id": request_id, "grant_id": grant_id},
        )
    result = provisioning.apply(engine, today, actor=actor, person_ids=[row.person_id])
    log.info(
        "request.granted", request_id=request_id, grant_id=grant_id, operations=result.operations
    )
    return grant_id


# --- notifications ---------------------------------------------------------------------------


def _line_manager_emails(conn: Connection, person_id: int) -> list[str]:
    a, m, p = s.assignment, s.assignment.alias("manager"), s.person
    return sorted(
        {
            e.lower()
            for e in conn.scalars(
                sa.select(p.c.email)
                .select_from(
                    a.join(
                        m,
                        sa.and_(
                            m.c.organisation_id == a.c.organisation_id,
                            m.c.assignment_number == a.c.supervisor_assignment_number,
                        ),
                    ).join(p, p.c.id == m.c.person_id)
                )
                .where(
                    a.c.person_id == person_id, p.c.email.is_not(None), m.c.person_id != person_id
                )
            )
            if e
        }
    )


def _bound(
    conn: Connection, roles: Sequence[Role], orgs: frozenset[str], target: str | None
) -> list[str]:
    b, o = s.role_binding, s.organisation
    query = (
        sa.select(b.c.subject)
        .select_from(b.outerjoin(o, o.c.id == b.c.organisation_id))
        .where(
            b.c.role.in_([x.value for x in roles]),
            b.c.revoked_at.is_(None),
            sa.or_(b.c.organisation_id.is_(None), o.c.ods_code.in_(sorted(orgs))),
        )
    )
    if target is not None:
        query = query.where(b.c.target_key == target)
    return sorted(set(conn.scalars(query)))


def _person(conn: Connection, person_id: int) -> tuple[str, str | None]:
    row = conn.execute(
        sa.select(_name_column().label("name"), s.person.c.email).where(s.person.c.id == person_id)
    ).one()
    return str(row.name), row.email


def _stage_approvers(conn: Connection, request: AccessRequest, stage: Stage) -> list[str]:
    if stage is Stage.LINE_MANAGER:
        found = _line_manager_emails(conn, request.person_id)
    else:
        found = _bound(conn, [Role.SYSTEM_OWNER], request.organisations, request.target)
    return [x for x in found if x != request.requester]


def _tell_about(conn: Connection, request_id: int, request: AccessRequest) -> None:
    """Email whoever must act next: the waiting stage's approvers, or, once decided, the
    requester and the person."""
    row = conn.execute(sa.select(s.access_request).where(s.access_request.c.id == request_id)).one()
    name, email = _person(conn, request.person_id)
    what = notify.RequestFacts(
        request_id=request_id,
        person=name,
        what=("account" if row.kind is None else row.kind.replace("_", " "))
        + (f" {row.value}" if row.value else ""),
        target=row.target_key,
        requested_by=row.requested_by,
        justification=row.justification,
        valid_to=row.valid_to,
    )
    stage = request.current_stage
    if stage is not None:
        # Nobody but the requester holds the stage: the identity team decides it.
        approvers = _stage_approvers(conn, request, stage) or _bound(
            conn, [Role.ORG_ADMIN], request.organisations, None
        )
        for to in approvers:
            notify.queue(conn, notify.approval_needed(what, to, stage), request_id=request_id)
        return
    if request.state in (State.APPROVED, State.REJECTED):
        last = request.decisions[-1] if request.decisions else None
        for to in sorted({request.requester, *([email.lower()] if email else [])}):
            if "@" in to:
                notify.queue(
                    conn,
                    notify.decided(
                        what,
                        to,
                        request.state is State.APPROVED,
                        last.reason if last else "",
                        last.by if last else "",
                    ),
                    request_id=request_id,
                )


def request_housekeeping(
    engine: Engine, at: dt.date, actor: str, now: dt.datetime | None = None
) -> str | None:
    """Scheduler pre-step: expire lapsed requests, remind past the SLA, escalate past twice
    the SLA, make any missing grant of an approved request, then send the outbox."""
    from pasa.clock import now as utcnow

    instant = now or utcnow()
    reminded = escalated = expired = granted = 0
    r = s.access_request
    with engine.connect() as conn:
        open_ids = list(
            conn.scalars(sa.select(r.c.id).where(r.c.state.not_in([x.value for x in TERMINAL])))
        )
        missing = list(
            conn.scalars(
                sa.select(r.c.id).where(r.c.state == State.APPROVED.value, r.c.grant_id.is_(None))
            )
        )
    for request_id in open_ids:
        with engine.begin() as conn:
            row, request = _load_for_update(conn, request_id)
            if request.state in TERMINAL:
                continue
            if lapsed(request, instant, row.valid_to, at):
                updated = expire_request(request)
                conn.execute(
                    r.update()
                    .where(r.c.id == request_id)
                    .values(
                        state=updated.state.value,
                        stage_since=None,
                        closed_at=instant,
                        closed_by=actor,
                    )
                )
                audit.append(
                    conn,
                    actor=actor,
                    action="request.expire",
                    subject_type="person",
                    subject_id=request.person_id,
                    details={"request_id": request_id},
                )
                expired += 1
                continue
            due = chase(request, instant)
            stage = request.current_stage
            assert stage is not None
            name, _email = _person(conn, request.person_id)
            facts = notify.RequestFacts(
                request_id,
                name,
                (
                    ("account" if row.kind is None else row.kind.replace("_", " "))
                    + (f" {row.value}" if row.value else "")
                ),
                row.target_key,
                row.requested_by,
                row.justification,
                row.valid_to,
            )
            if due is Chase.ESCALATION and row.escalated_at is None:
                team = _bound(conn, [Role.ORG_ADMIN], request.organisations, None)
                for to in team:
                    notify.queue(
                        conn,
                        notify.escalated(facts, to, stage, request.sla_hours),
                        request_id=request_id,
                    )
                conn.execute(
                    r.update()
                    .where(r.c.id == request_id)
                    .values(escalated_at=instant, reminded_at=row.reminded_at or instant)
                )
                audit.append(
                    conn,
                    actor=actor,
                    action="request.escalate",
                    subject_type="person",
                    subject_id=request.person_id,
                    details={"request_id": request_id, "stage": stage.value, "to": team},
                )
                escalated += 1
            elif due is Chase.REMINDER and row.reminded_at is None:
                for to in _stage_approvers(conn, request, stage):
                    notify.queue(
                        conn,
                        notify.reminder(facts, to, stage, request.sla_hours),
                        request_id=request_id,
                    )
                conn.execute(r.update().where(r.c.id == request_id).values(reminded_at=instant))
                audit.append(
                    conn,
                    actor=actor,
                    action="request.remind",
                    subject_type="person",
                    subject_id=request.person_id,
                    details={"request_id": request_id, "stage": stage.value},
                )
                reminded += 1
    for request_id in missing:
        if grant_approved(engine, request_id, today=at, actor=actor) is not None:
            granted += 1
    sent = notify.send_pending(engine)
    parts = [
        f"{n} {w}"
        for n, w in (
            (reminded, "reminded"),
            (escalated, "escalated"),
            (expired, "expired"),
            (granted, "granted"),
            (sent.sent, "emails sent"),
            (sent.logged, "emails logged"),
            (sent.failed, "emails failed"),
        )
        if n
    ]
    return "requests: " + ", ".join(parts) if parts else None


# --- the demo --------------------------------------------------------------------------------


def seed_demo_requests(engine: Engine, at: dt.date, now: dt.datetime) -> list[int]:
    """A few pending requests so the demo's Requests pages are not empty: from the line
    manager with the most reports (the demo's line manager persona) and one of their staff."""
    from pasa.service import access

    p, a, r = s.person, s.assignment, s.assignment.alias("report")
    current = sa.and_(a.c.start_date <= at, sa.or_(a.c.end_date.is_(None), a.c.end_date >= at))
    with engine.connect() as conn:
        manager_email = conn.scalar(
            sa.select(p.c.email)
            .select_from(
                p.join(a, a.c.person_id == p.c.id).join(
                    r,
                    sa.and_(
                        r.c.organisation_id == a.c.organisation_id,
                        r.c.supervisor_assignment_number == a.c.assignment_number,
                        r.c.person_id != a.c.person_id,
                        sa.or_(r.c.end_date.is_(None), r.c.end_date >= at),
                    ),
                )
            )
            .where(p.c.email.is_not(None), current)
            .group_by(p.c.id, p.c.email)
            .order_by(sa.func.count(sa.distinct(r.c.person_id)).desc(), p.c.id)
            .limit(1)
        )
    if manager_email is None:
        return []
    manager = access.user_principal(engine, str(manager_email).lower(), at=at)
    reports = sorted(manager.reports)
    items = {i.key for i in catalogue(engine)}
    made: list[int] = []
    asks = [
        ("pacs-account", "Reporting on chest films for the respiratory clinic", 180),
        ("epr-prescriber", "Qualified as a non-medical prescriber (V300) last month", None),
    ]
    for person_id, (key, why, days) in zip(reports, asks, strict=False):
        if key in items:
            made.append(
                submit(
                    engine,
                    manager,
                    person_id=person_id,
                    item_key=key,
                    justification=why,
                    valid_from=None,
                    valid_to=at + dt.timedelta(days=days) if days else None,
                    now=now,
                    today=at,
                ).id
            )
    # A member of staff asks for themselves: it waits for the line manager.
    with engine.connect() as conn:
        emails = dict(conn.execute(sa.select(p.c.id, p.c.email).where(p.c.id.in_(reports))).all())
    own = next((pid for pid in reports[len(asks) :] if emails.get(pid)), None)
    if own is not None and "remote-access" in items:
        staff = access.user_principal(engine, str(emails[own]).lower(), at=at)
        made.append(
            submit(
                engine,
                staff,
                person_id=own,
                item_key="remote-access",
                justification="On call from home one week in four",
                valid_from=None,
                valid_to=at + dt.timedelta(days=90),
                now=now,
                today=at,
            ).id
        )
    return made
