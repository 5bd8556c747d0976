"""Plan, apply and explain: the core loop from identity hub to operations ledger.

``compute_plan`` is read-only (the same code serves ``pasa plan`` and what-if). ``apply``
re-computes the plan inside the write transaction and records operations and the new
recorded state together, so an operation can never exist without the change that caused it.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from pasa.connectors.base import Connector
from pasa.connectors.registry import build_connector
from pasa.domain.errors import NotFoundError
from pasa.domain.model import PersonView
from pasa.engine.ledger import record_plan
from pasa.engine.worker import WorkerReport, run_pending
from pasa.planning.plan import Plan, plan
from pasa.policy.document import PolicyDocument
from pasa.policy.evaluate import compile_policy, evaluate
from pasa.policy.explain import Explanation, explain
from pasa.store import hub
from pasa.store import schema as s
from pasa.store.policy_repo import load_active_policy


@dataclass(frozen=True, slots=True)
class PlanContext:
    plan: Plan
    people: int
    policy: PolicyDocument


def _plan_in(conn: Connection, at: dt.date, person_ids: Iterable[int] | None) -> PlanContext:
    document = load_active_policy(conn)
    compiled = compile_policy(document)
    people: list[PersonView] = hub.load_people(conn, person_ids)
    desired = evaluate(people, compiled, at)
    ids = [p.person_id for p in people] if person_ids is not None else None
    recorded = hub.load_recorded(conn, ids)
    targets = {t.key: t for t in document.targets}
    result = plan(desired, recorded, targets, hub.taken_usernames(conn))
    return PlanContext(plan=result, people=len(people), policy=document)


def compute_plan(
    engine: Engine, at: dt.date, person_ids: Iterable[int] | None = None
) -> PlanContext:
    """What would change at ``at``: pure evaluation and planning; nothing is written."""
    with engine.connect() as conn:
        return _plan_in(conn, at, person_ids)


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
            record_plan(conn, ctx.plan.operations, plan_id=plan_id, actor=actor)
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
        # Load everyone so manager look-ups resolve; explain only the matches.
        people = hub.load_people(conn, ids)
        return [(p, explain(p, compiled, at, target)) for p in people]
