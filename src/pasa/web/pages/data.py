"""What the pages show, read from the identity hub (read-only; no authorization here: the
views authorize before calling).

* :func:`team` — a line manager's reports (from :attr:`Principal.reports`, worked out from HR
  by :func:`pasa.service.access.user_principal`) with the starters, movers and leavers among
  them and their dates.
* :func:`access_of` — one person's accounts per target, what each holds, how ready it is,
  and the reason for each (the same explanation ``pasa explain`` prints).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass, field, replace

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from pasa.domain.errors import PasaError
from pasa.domain.model import Assignment, PersonView
from pasa.domain.operations import OperationStatus
from pasa.policy.explain import Explanation, ReasonDetail
from pasa.service.access import LEAVER_VISIBLE_DAYS
from pasa.service.provisioning import explain_person
from pasa.store import schema as s
from pasa.store.hub import load_people
from pasa.web.pages.readiness_data import Readiness, assess_many

# --- My team -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Change:
    """A starter, mover or leaver among a manager's reports."""

    kind: str  # starter | mover | leaver
    person: PersonView
    date: dt.date
    detail: str
    readiness: Readiness | None = None  # for the tag and the link to the readiness page


@dataclass(frozen=True, slots=True)
class Member:
    person: PersonView
    post: Assignment | None  # the post managed by this manager, as it stands today
    status: str  # current | starting | leaving | left


@dataclass(frozen=True, slots=True)
class Team:
    at: dt.date
    members: list[Member] = field(default_factory=list)
    changes: list[Change] = field(default_factory=list)


def _managed(view: PersonView, managers: frozenset[str]) -> list[Assignment]:
    return [a for a in view.assignments if a.supervisor_assignment_number in managers]


def _manager_assignments(engine: Engine, person_id: int, at: dt.date) -> frozenset[str]:
    a = s.assignment
    with engine.connect() as conn:
        return frozenset(
            conn.scalars(
                sa.select(a.c.assignment_number).where(
                    a.c.person_id == person_id,
                    a.c.start_date <= at,
                    sa.or_(a.c.end_date.is_(None), a.c.end_date >= at),
                )
            )
        )


def team(engine: Engine, manager_person_id: int, report_ids: Iterable[int], at: dt.date) -> Team:
    """The reports of a manager on ``at`` with their starters, movers and leavers."""
    since = at - dt.timedelta(days=LEAVER_VISIBLE_DAYS)
    managers = _manager_assignments(engine, manager_person_id, at)
    ids = sorted(set(report_ids))
    with engine.connect() as conn:
        people = load_people(conn, ids, previous_since=since)
        e = s.hr_event
        upcoming_moves = {
            (r.person_id, r.assignment_number): r.effective_date
            for r in conn.execute(
                sa.select(e.c.person_id, e.c.assignment_number, e.c.effective_date).where(
                    e.c.person_id.in_(ids),
                    e.c.kind == "changed",
                    e.c.state == "applied",
                    e.c.effective_date >= since,
                )
            )
        }
    members: list[Member] = []
    changes: list[Change] = []
    for view in sorted(people, key=lambda v: (v.last_name, v.first_name, v.person_id)):
        posts = _managed(view, managers)
        current = [p for p in posts if p.is_active_on(at)]
        post = (current or sorted(posts, key=lambda p: p.start_date))[0] if posts else None
        status = "current"
        for p in posts:
            if p.start_date > at:
                changes.append(
                    Change("starter", view, p.start_date, f"{p.position.title}, {_where(p)}")
                )
                status = "starting" if not current else status
            if p.end_date is not None and p.end_date >= since:
                changes.append(Change("leaver", view, p.end_date, f"{p.position.title}"))
                status = "left" if p.end_date < at else "leaving"
            moved = upcoming_moves.get((view.person_id, p.assignment_number))
            earlier = [
                old
                for old in view.previous
                if old.assignment_number == p.assignment_number
                and old.position.position_number != p.position.position_number
            ]
            if moved is not None and earlier:
                changes.append(
                    Change(
                        "mover",
                        view,
                        moved,
                        f"from {earlier[-1].position.title} to {p.position.title}",
                    )
                )
        members.append(Member(view, post, status))
    changes.sort(key=lambda c: (c.date, c.kind, c.person.last_name))
    if changes:
        # Readiness of every change at once: a fixed number of queries, however big the team.
        with engine.connect() as conn:
            assessed = assess_many(conn, [(c.person, c.kind, c.date) for c in changes], at)
        changes = [
            replace(c, readiness=assessed.get((c.person.person_id, c.kind, c.date)))
            for c in changes
        ]
    return Team(at, members, changes)


def _where(post: Assignment) -> str:
    parts = [post.position.department_name, post.position.site_name]
    return ", ".join(p for p in parts if p) or post.organisation


# --- My access -----------------------------------------------------------------------------

# How ready a target is for one person, from the operations recorded for them there (the
# same reading as :mod:`pasa.service.readiness`): the worst state wins.
_STATE = {
    OperationStatus.SUCCEEDED.value: "ready",
    OperationStatus.CANCELLED.value: "ready",
    OperationStatus.WAITING_MANUAL.value: "manual",
    OperationStatus.PARKED.value: "failed",
}
_RANK = {"ready": 0, "pending": 1, "manual": 2, "failed": 3}


@dataclass(frozen=True, slots=True)
class Holding:
    kind: str
    value: str
    valid_to: dt.date | None
    reasons: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class TargetAccess:
    target: str
    name: str
    username: str | None
    status: str | None  # enabled | disabled | deleted; None: no account recorded yet
    readiness: str  # ready | pending | manual | failed
    reasons: tuple[str, ...]  # why the account is held
    holdings: list[Holding] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class PersonAccess:
    person: PersonView
    at: dt.date
    targets: list[TargetAccess]
    notes: tuple[str, ...] = ()


def _reason_texts(reasons: Iterable[ReasonDetail]) -> tuple[str, ...]:
    return tuple(r.text() for r in reasons)


def access_of(engine: Engine, person_id: int, at: dt.date) -> PersonAccess | None:
    """A person's access per target with the reason for each, or None if no such person."""
    with engine.connect() as conn:
        found = load_people(conn, [person_id])
        if not found:
            return None
        a, t, g, op = s.account, s.target, s.account_grant, s.operation
        names: dict[str, str] = {k: n for k, n in conn.execute(sa.select(t.c.key, t.c.name))}
        accounts = {
            r.key: r
            for r in conn.execute(
                sa.select(a.c.id, t.c.key, a.c.username, a.c.status)
                .select_from(a.join(t, t.c.id == a.c.target_id))
                .where(a.c.person_id == person_id)
            )
        }
        held: dict[str, list[tuple[str, str, dt.date | None]]] = {}
        for r in conn.execute(
            sa.select(t.c.key, g.c.kind, g.c.value, g.c.valid_to)
            .select_from(g.join(a, a.c.id == g.c.account_id).join(t, t.c.id == a.c.target_id))
            .where(a.c.person_id == person_id)
            .order_by(g.c.kind, g.c.value)
        ):
            held.setdefault(r.key, []).append((r.kind, r.value, r.valid_to))
        readiness: dict[str, str] = {}
        for key, status in conn.execute(
            sa.select(t.c.key, op.c.status)
            .select_from(op.join(t, t.c.id == op.c.target_id))
            .where(op.c.person_id == person_id)
            .distinct()
        ):
            state = _STATE.get(status, "pending")
            if _RANK[state] >= _RANK[readiness.get(key, "ready")]:
                readiness[key] = state
    view = found[0]
    explanation: Explanation | None = None
    notes: tuple[str, ...] = ()
    try:
        explained = explain_person(engine, view.uid, at)
        explanation = next((e for p, e in explained if p.person_id == person_id), None)
    except PasaError as exc:
        notes = (f"The reasons cannot be worked out: {exc}.",)
    why_account: dict[str, tuple[str, ...]] = {}
    why_grant: dict[tuple[str, str, str], tuple[str, ...]] = {}
    if explanation is not None:
        notes = notes + explanation.notes
        why_account = {w.target: _reason_texts(w.reasons) for w in explanation.accounts}
        why_grant = {
            (w.target, w.kind, w.value): _reason_texts(w.reasons) for w in explanation.grants
        }
    targets = []
    for key in sorted(set(accounts) | set(why_account)):
        account = accounts.get(key)
        holdings = [
            Holding(kind, value, valid_to, why_grant.get((key, kind, value), ()))
            for kind, value, valid_to in held.get(key, [])
        ]
        targets.append(
            TargetAccess(
                target=key,
                name=names.get(key, key),
                username=account.username if account is not None else None,
                status=account.status if account is not None else None,
                readiness=readiness.get(key, "pending" if account is None else "ready"),
                reasons=why_account.get(key, ()),
                holdings=holdings,
            )
        )
    return PersonAccess(view, at, targets, notes)
