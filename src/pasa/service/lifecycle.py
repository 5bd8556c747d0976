"""Record every person's and every assignment's lifecycle state, and each transition.

:func:`record_states` is a scheduler pre-step: it computes the states of every person on a
date (:mod:`pasa.domain.lifecycle`), compares them with ``lifecycle_state``, writes the rows
that changed, appends one ``lifecycle_transition`` per change and one audit entry per
person-level transition — set-based and batched, so a 7,000-person first run takes about a
second.
"""

from __future__ import annotations

import datetime as dt
import json
from collections import Counter
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from pasa.audit import log as audit
from pasa.clock import now as _clock_now
from pasa.domain.errors import ConfigurationError, NotFoundError
from pasa.domain.lifecycle import DEFAULT_LEAVER_DAYS, PERSON_SCOPE, states_of
from pasa.policy.document import PolicyDocument
from pasa.store import hub
from pasa.store import schema as s
from pasa.store.policy_repo import load_active_policy

_BATCH = 1000


def leaver_days_of(document: PolicyDocument | None) -> int:
    """The longest ``retention_days`` over the policy's targets (30 when none is set)."""
    days = [
        t.lifecycle.retention_days
        for t in (document.targets if document is not None else ())
        if t.lifecycle.retention_days is not None
    ]
    return max(days) if days else DEFAULT_LEAVER_DAYS


def _active_policy(conn: Connection) -> PolicyDocument | None:
    try:
        return load_active_policy(conn)
    except ConfigurationError:
        return None


def append_audit_many(
    conn: Connection,
    *,
    actor: str,
    entries: list[tuple[str, str, str | int, dict[str, Any]]],
    at: dt.datetime | None = None,
) -> None:
    """Append many audit entries ``(action, subject_type, subject_id, details)`` at once.

    The same hash chain as :func:`pasa.audit.log.append` (``pasa audit verify`` checks them
    alike), but one read of the chain head and batched inserts, in the caller's transaction.
    """
    if not entries:
        return
    if conn.dialect.name == "postgresql":
        conn.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": audit._LOCK_KEY})
    log = s.audit_log
    head = sa.select(log.c.seq, log.c.hash).order_by(log.c.seq.desc()).limit(1)
    last = conn.execute(head).first()
    seq = 0 if last is None else last.seq
    prev = audit.GENESIS if last is None else last.hash
    when = (at or _clock_now()).astimezone(dt.UTC)
    stamp = audit._timestamp(when)
    rows: list[dict[str, Any]] = []
    for action, subject_type, subject_id, details in entries:
        seq += 1
        body = json.loads(json.dumps(details, default=str))
        digest = audit.chain_hash(
            prev, audit._canonical(seq, stamp, actor, action, subject_type, str(subject_id), body)
        )
        rows.append(
            {
                "seq": seq,
                "at": when,
                "actor": actor,
                "action": action,
                "subject_type": subject_type,
                "subject_id": str(subject_id),
                "details": body,
                "prev_hash": prev,
                "hash": digest,
            }
        )
        prev = digest
    for start in range(0, len(rows), _BATCH):
        conn.execute(log.insert(), rows[start : start + _BATCH])


@dataclass(frozen=True, slots=True)
class _Change:
    person_id: int
    scope: str
    old: str | None
    new: str


def record_states(engine: Engine, at: dt.date, *, actor: str = "scheduler") -> str | None:
    """Compute everyone's states on ``at``; record the changes; one-line summary or None."""
    now = _clock_now()
    with engine.begin() as conn:
        leaver_days = leaver_days_of(_active_policy(conn))
        ls = s.lifecycle_state
        recorded: dict[tuple[int, str], str] = {
            (pid, scope): state
            for pid, scope, state in conn.execute(sa.select(ls.c.person_id, ls.c.scope, ls.c.state))
        }
        changes: list[_Change] = []
        for person in hub.iter_people(conn):
            for scope, state in states_of(person, at, leaver_days).items():
                old = recorded.get((person.person_id, scope))
                if old != state.value:
                    changes.append(_Change(person.person_id, scope, old, state.value))
        if not changes:
            return None
        inserts = [
            {
                "person_id": c.person_id,
                "scope": c.scope,
                "state": c.new,
                "since": at,
                "updated_at": now,
            }
            for c in changes
            if c.old is None
        ]
        updates = [
            {
                "b_person": c.person_id,
                "b_scope": c.scope,
                "b_state": c.new,
                "b_since": at,
                "b_updated": now,
            }
            for c in changes
            if c.old is not None
        ]
        for start in range(0, len(inserts), _BATCH):
            conn.execute(ls.insert(), inserts[start : start + _BATCH])
        if updates:
            statement = (
                ls.update()
                .where(ls.c.person_id == sa.bindparam("b_person"))
                .where(ls.c.scope == sa.bindparam("b_scope"))
                .values(
                    state=sa.bindparam("b_state"),
                    since=sa.bindparam("b_since"),
                    updated_at=sa.bindparam("b_updated"),
                )
            )
            for start in range(0, len(updates), _BATCH):
                conn.execute(statement, updates[start : start + _BATCH])
        transitions = [
            {
                "person_id": c.person_id,
                "scope": c.scope,
                "from_state": c.old,
                "to_state": c.new,
                "effective_date": at,
                "recorded_at": now,
            }
            for c in changes
        ]
        for start in range(0, len(transitions), _BATCH):
            conn.execute(s.lifecycle_transition.insert(), transitions[start : start + _BATCH])
        append_audit_many(
            conn,
            actor=actor,
            at=now,
            entries=[
                (
                    "lifecycle.transition",
                    "person",
                    c.person_id,
                    {"from": c.old, "to": c.new, "effective_date": at.isoformat()},
                )
                for c in changes
                if c.scope == PERSON_SCOPE
            ],
        )
    counts = Counter(f"{c.old or 'new'}->{c.new}" for c in changes if c.scope == PERSON_SCOPE)
    people = sum(counts.values())
    ordered = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    detail = ", ".join(f"{n} {k}" for k, n in ordered)
    summary = f"lifecycle: {people} transitions" + (f" ({detail})" if detail else "")
    if len(changes) > people:
        summary += f"; {len(changes) - people} assignment state changes"
    return summary


def lifecycle_states(engine: Engine, at: dt.date, actor: str) -> str | None:
    """The scheduler pre-step (``pasa.service.scheduler.PRE_STEPS``)."""
    return record_states(engine, at, actor=actor)


@dataclass(frozen=True, slots=True)
class ScopeHistory:
    scope: str  # "" for the person
    state: str | None
    since: dt.date | None
    transitions: tuple[tuple[dt.date, str | None, str], ...]  # (date, from, to)


@dataclass(frozen=True, slots=True)
class LifecycleReport:
    person_id: int
    uid: str
    name: str
    scopes: tuple[ScopeHistory, ...]  # the person first, then each assignment


def show(engine: Engine, term: str) -> list[LifecycleReport]:
    """The recorded states and transition history of everyone matching ``term``."""
    with engine.connect() as conn:
        ids = hub.find_person_ids(conn, term)
        if not ids:
            raise NotFoundError(
                f"no person matches '{term}' (try an employee or assignment number, "
                "a GMC/NMC number, or 'First Last')"
            )
        ls, lt, p = s.lifecycle_state, s.lifecycle_transition, s.person
        people = {
            r.id: r
            for r in conn.execute(
                sa.select(p.c.id, p.c.uid, p.c.first_name, p.c.last_name, p.c.known_as).where(
                    p.c.id.in_(ids)
                )
            )
        }
        states: dict[tuple[int, str], tuple[str, dt.date]] = {
            (r.person_id, r.scope): (r.state, r.since)
            for r in conn.execute(sa.select(ls).where(ls.c.person_id.in_(ids)))
        }
        history: dict[tuple[int, str], list[tuple[dt.date, str | None, str]]] = {}
        for r in conn.execute(
            sa.select(lt).where(lt.c.person_id.in_(ids)).order_by(lt.c.effective_date, lt.c.id)
        ):
            history.setdefault((r.person_id, r.scope), []).append(
                (r.effective_date, r.from_state, r.to_state)
            )
    reports = []
    for pid in ids:
        row = people[pid]
        scopes = sorted({scope for (q, scope) in (*states, *history) if q == pid} | {PERSON_SCOPE})
        reports.append(
            LifecycleReport(
                person_id=pid,
                uid=row.uid,
                name=f"{row.known_as or row.first_name} {row.last_name}",
                scopes=tuple(
                    ScopeHistory(
                        scope=scope,
                        state=states.get((pid, scope), (None, None))[0],
                        since=states.get((pid, scope), (None, None))[1],
                        transitions=tuple(history.get((pid, scope), ())),
                    )
                    for scope in scopes
                ),
            )
        )
    return reports
