"""Plan, apply, what-if and explain: the core loop from identity hub to operations ledger.

``compute_plan`` is read-only (the same code serves ``pasa plan`` and what-if). ``apply``
re-computes the plan inside the write transaction and records operations and the new
recorded state together, so an operation can never exist without the change that caused it.
``what_if`` runs the same evaluation and planner with a changed policy or changed HR data
(a rotation batch) and reports only what the change itself adds, writing nothing.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from pasa.connectors.base import Connector
from pasa.connectors.registry import build_connector
from pasa.domain.errors import NotFoundError
from pasa.domain.grants import RecordedState, TimeBoundGrant
from pasa.domain.model import PersonView
from pasa.domain.operations import OperationKind, PlannedOperation
from pasa.engine.ledger import record_plan
from pasa.engine.worker import WorkerReport, run_pending
from pasa.planning.plan import Plan, apply_to_recorded, plan
from pasa.policy.document import PolicyDocument
from pasa.policy.evaluate import CompiledPolicy, compile_policy, evaluate
from pasa.policy.explain import Explanation, explain
from pasa.store import hub
from pasa.store import schema as s
from pasa.store.policy_repo import load_active_policy


@dataclass(frozen=True, slots=True)
class PlanContext:
    plan: Plan
    people: int
    policy: PolicyDocument


PeopleOverlay = Callable[[list[PersonView]], list[PersonView]]
"""Changes HR data in memory for a what-if (e.g. a rotation batch laid over the hub)."""


@dataclass(frozen=True, slots=True)
class _Inputs:
    """Everything one evaluation reads, loaded once."""

    people: list[PersonView]
    requests: list[TimeBoundGrant]
    recorded: RecordedState
    taken: dict[str, set[str]]


def lookback_days(document: PolicyDocument) -> int:
    """How far back superseded assignment versions matter (the longest handover window)."""
    return max((t.lifecycle.mover_overlap_days for t in document.targets), default=0)


def _load(
    conn: Connection, document: PolicyDocument, at: dt.date, person_ids: Iterable[int] | None
) -> _Inputs:
    ids = list(person_ids) if person_ids is not None else None
    lookback = lookback_days(document)
    since = at - dt.timedelta(days=lookback) if lookback else None
    people: list[PersonView] = hub.load_people(conn, ids, previous_since=since)
    loaded = [p.person_id for p in people] if ids is not None else None
    return _Inputs(
        people=people,
        requests=hub.load_time_bound_grants(conn, loaded),
        recorded=hub.load_recorded(conn, loaded),
        taken=hub.taken_usernames(conn),
    )


def _plan(
    compiled: CompiledPolicy,
    at: dt.date,
    people: list[PersonView],
    requests: list[TimeBoundGrant],
    recorded: RecordedState,
    taken: Mapping[str, set[str]],
) -> Plan:
    desired = evaluate(people, compiled, at, requests)
    return plan(desired, recorded, compiled.targets, taken)


def _plan_in(conn: Connection, at: dt.date, person_ids: Iterable[int] | None) -> PlanContext:
    document = load_active_policy(conn)
    inputs = _load(conn, document, at, person_ids)
    result = _plan(
        compile_policy(document), at, inputs.people, inputs.requests, inputs.recorded,
        inputs.taken,
    )  # fmt: skip
    return PlanContext(plan=result, people=len(inputs.people), policy=document)


def compute_plan(
    engine: Engine, at: dt.date, person_ids: Iterable[int] | None = None
) -> PlanContext:
    """What would change at ``at``: pure evaluation and planning; nothing is written."""
    with engine.connect() as conn:
        return _plan_in(conn, at, person_ids)


@dataclass(frozen=True, slots=True)
class WhatIf:
    """What a change (policy or HR data) would do at ``at``, beyond what happens anyway.

    ``baseline`` is the plan at ``at`` without the change; ``operations`` are the ones the
    change adds on top of it; ``gains`` / ``losses`` summarise them per person as
    ``(target, "group GG-X")`` pairs, where an account is ``(target, "account")``.
    """

    at: dt.date
    baseline: Plan
    operations: tuple[PlannedOperation, ...]
    people: Mapping[int, PersonView]
    gains: Mapping[int, tuple[tuple[str, str], ...]] = field(default_factory=dict)
    losses: Mapping[int, tuple[tuple[str, str], ...]] = field(default_factory=dict)

    def counts_by_target_kind(self) -> dict[tuple[str, OperationKind], int]:
        return Plan(self.at, self.operations).counts_by_target_kind()


_GAIN = {OperationKind.CREATE_ACCOUNT, OperationKind.ENABLE, OperationKind.ADD_MEMBERSHIP}
_LOSS = {OperationKind.DISABLE, OperationKind.DELETE, OperationKind.REMOVE_MEMBERSHIP}


def _describe(op: PlannedOperation) -> tuple[str, str]:
    if op.kind in (OperationKind.ADD_MEMBERSHIP, OperationKind.REMOVE_MEMBERSHIP):
        kind = str(op.payload.get("kind", "")).replace("_", " ")
        return (op.target, f"{kind} {op.payload.get('value', '')}")
    return (op.target, "account")


def what_if(
    engine: Engine,
    at: dt.date,
    *,
    policy: PolicyDocument | None = None,
    overlay: PeopleOverlay | None = None,
    person_ids: Iterable[int] | None = None,
) -> WhatIf:
    """Simulate ``policy`` (instead of the active one) and/or ``overlay`` (changed HR data)
    at ``at`` with the same evaluation and planner as the real run; nothing is written."""
    with engine.connect() as conn:
        active = load_active_policy(conn)
        document = policy or active
        inputs = _load(conn, document, at, person_ids)
    baseline = _plan(
        compile_policy(active), at, inputs.people, inputs.requests, inputs.recorded, inputs.taken
    )
    after = apply_to_recorded(inputs.recorded, baseline.operations, at)
    taken = {k: set(v) for k, v in inputs.taken.items()}
    for account in after.accounts:
        taken.setdefault(account.target, set()).add(account.username)
    people = overlay(list(inputs.people)) if overlay is not None else inputs.people
    changed = _plan(compile_policy(document), at, people, inputs.requests, after, taken)
    gains: dict[int, list[tuple[str, str]]] = {}
    losses: dict[int, list[tuple[str, str]]] = {}
    for op in changed.operations:
        if op.kind in _GAIN:
            gains.setdefault(op.person_id, []).append(_describe(op))
        elif op.kind in _LOSS:
            losses.setdefault(op.person_id, []).append(_describe(op))
    return WhatIf(
        at=at,
        baseline=baseline,
        operations=changed.operations,
        people={p.person_id: p for p in people},
        gains={k: tuple(dict.fromkeys(v)) for k, v in gains.items()},
        losses={k: tuple(dict.fromkeys(v)) for k, v in losses.items()},
    )


@dataclass(frozen=True, slots=True)
class ApplyResult:
    plan_id: str
    operations: int
    people: int


def apply(
    engine: Engine, at: dt.date, *, actor: str, person_ids: Iterable[int] | None = None
) -> ApplyResult:
    """Plan and record operations + recorded state in one transaction (the outbox)."""
    plan_id = str(uuid.uuid4())
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            # One planner at a time: two concurrent applies would plan the same changes twice.
            conn.execute(sa.text("SELECT pg_advisory_xact_lock(7305)"))
        ctx = _plan_in(conn, at, person_ids)
        if ctx.plan.operations:
            record_plan(conn, ctx.plan.operations, plan_id=plan_id, actor=actor, at=at)
    return ApplyResult(plan_id=plan_id, operations=len(ctx.plan.operations), people=ctx.people)


def connectors_for(engine: Engine) -> dict[str, Connector]:
    with engine.connect() as conn:
        rows = conn.execute(sa.select(s.target.c.key, s.target.c.connector, s.target.c.settings))
        return {r.key: build_connector(r.key, r.connector, dict(r.settings)) for r in rows}


def execute(
    engine: Engine,
    *,
    max_attempts: int = 5,
    progress: Callable[[int], None] | None = None,
    now: Callable[[], dt.datetime] | None = None,
) -> WorkerReport:
    """Run the in-process worker over every pending operation."""
    return run_pending(
        engine, connectors_for(engine), max_attempts=max_attempts, progress=progress, now=now
    )


def explain_person(
    engine: Engine, term: str, at: dt.date, target: str | None = None
) -> list[tuple[PersonView, Explanation]]:
    with engine.connect() as conn:
        ids = hub.find_person_ids(conn, term)
        if not ids:
            raise NotFoundError(
                f"no person matches '{term}' (try an employee or assignment number, "
                "a GMC/NMC number, or 'First Last')"
            )
        document = load_active_policy(conn)
        if target is not None and target not in {t.key for t in document.targets}:
            known = ", ".join(sorted(t.key for t in document.targets))
            raise NotFoundError(f"no target '{target}' in the active policy (targets: {known})")
        compiled = compile_policy(document)
        inputs = _load(conn, document, at, ids)
        by_person: dict[int, list[TimeBoundGrant]] = {}
        for grant in inputs.requests:
            by_person.setdefault(grant.person_id, []).append(grant)
        return [
            (p, explain(p, compiled, at, target, by_person.get(p.person_id, ())))
            for p in inputs.people
        ]
