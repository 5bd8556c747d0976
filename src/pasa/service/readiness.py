"""Readiness: for each person with an active assignment, is every target ready?

A target is *ready* for a person when every operation recorded for them there has succeeded;
*manual* when one waits for a person to act; *failed* when one is parked; else *pending*.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from dataclasses import dataclass, field

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from pasa.domain.operations import OperationStatus
from pasa.store import schema as s

_RANK = {"failed": 3, "manual": 2, "pending": 1, "ready": 0}


@dataclass(frozen=True, slots=True)
class ReadinessSummary:
    at: dt.date
    people: int
    people_fully_ready: int
    by_target: dict[str, Counter[str]] = field(default_factory=dict)
    operations: Counter[str] = field(default_factory=Counter)


def _state_of(status: str) -> str:
    if status == OperationStatus.SUCCEEDED:
        return "ready"
    if status == OperationStatus.WAITING_MANUAL:
        return "manual"
    if status == OperationStatus.PARKED:
        return "failed"
    if status == OperationStatus.CANCELLED:
        return "ready"
    return "pending"


def summarise(engine: Engine, at: dt.date) -> ReadinessSummary:
    a, op, t = s.assignment, s.operation, s.target
    with engine.connect() as conn:
        active = set(
            conn.scalars(
                sa.select(a.c.person_id)
                .where(a.c.start_date <= at, sa.or_(a.c.end_date.is_(None), a.c.end_date >= at))
                .distinct()
            )
        )
        worst: dict[tuple[int, str], str] = {}
        op_counts: Counter[str] = Counter()
        rows = conn.execute(
            sa.select(op.c.person_id, t.c.key, op.c.status, sa.func.count())
            .select_from(op.join(t, t.c.id == op.c.target_id))
            .group_by(op.c.person_id, t.c.key, op.c.status)
        )
        for person_id, target, status, n in rows:
            op_counts[status] += n
            if person_id not in active:
                continue
            state = _state_of(status)
            key = (person_id, target)
            if _RANK[state] > _RANK.get(worst.get(key, "ready"), 0):
                worst[key] = state
            else:
                worst.setdefault(key, state)
    by_target: dict[str, Counter[str]] = {}
    not_ready: set[int] = set()
    for (person_id, target), state in worst.items():
        by_target.setdefault(target, Counter())[state] += 1
        if state != "ready":
            not_ready.add(person_id)
    return ReadinessSummary(
        at=at,
        people=len(active),
        people_fully_ready=len(active - not_ready),
        by_target=dict(sorted(by_target.items())),
        operations=op_counts,
    )
