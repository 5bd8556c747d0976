"""Readiness of a starter, mover or leaver: every account, group, application role and door
zone they are due on their date, each ready / pending (with the date it is expected) /
manual task / failed — read from the policy (what is due), the recorded state (what is held)
and the operations ledger (what is under way). Read-only; the views authorize first.

Everything is read in a fixed number of queries for any number of people
(:func:`assess_many`), so My team can tag every starter without a query per person.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from pasa.domain.errors import ConfigurationError
from pasa.domain.grants import EntitlementKind
from pasa.domain.model import PersonView
from pasa.domain.operations import OperationStatus
from pasa.policy.document import PolicyDocument, TargetSpec
from pasa.policy.evaluate import compile_policy, person_access
from pasa.service.access import LEAVER_VISIBLE_DAYS
from pasa.store import schema as s
from pasa.store.hub import load_people, load_time_bound_grants
from pasa.store.policy_repo import load_active_policy

# The daily run enables starters' accounts before the working day begins: the time the
# pages promise (the business case's "everything works at 08:00 on day one").
DAY_ONE_TIME = "08:00"

READY, PENDING, MANUAL, FAILED = "ready", "pending", "manual", "failed"
_RANK = {READY: 0, PENDING: 1, MANUAL: 2, FAILED: 3}
_OPEN = {
    OperationStatus.PENDING.value: PENDING,
    OperationStatus.RUNNING.value: PENDING,
    OperationStatus.WAITING_MANUAL.value: MANUAL,
    OperationStatus.PARKED.value: FAILED,
}
_ACCOUNT_KINDS = {"create_account", "enable", "rename", "update_attributes"}
_CLOSING_KINDS = {"disable", "delete"}
_KIND_WORDS = {
    "account": "Account",
    EntitlementKind.GROUP.value: "Group",
    EntitlementKind.APP_ROLE.value: "Application role",
    EntitlementKind.DOOR_ZONE.value: "Door zone",
}


@dataclass(frozen=True, slots=True)
class Item:
    """One thing due to a person on one target, and how far it has got."""

    target: str
    target_name: str
    kind: str  # account | group | app_role | door_zone
    value: str  # the username (accounts) or the group / role / zone
    state: str  # ready | pending | manual | failed
    detail: str  # one plain sentence: when it was done, when it is expected, what is wrong
    done_at: dt.datetime | None = None
    expected: dt.date | None = None
    holder: str | None = None  # manual tasks: who holds it
    due_at: dt.datetime | None = None  # manual tasks: the SLA

    @property
    def kind_text(self) -> str:
        return _KIND_WORDS.get(self.kind, self.kind.replace("_", " ").capitalize())


@dataclass(frozen=True, slots=True)
class Readiness:
    person: PersonView
    event: str  # starter | mover | leaver | current
    date: dt.date
    today: dt.date
    items: list[Item] = field(default_factory=list)
    notes: tuple[str, ...] = ()

    def count(self, state: str) -> int:
        return sum(1 for i in self.items if i.state == state)

    @property
    def ready(self) -> int:
        return self.count(READY)

    @property
    def all_ready(self) -> bool:
        return all(i.state == READY for i in self.items)

    @property
    def live(self) -> bool:
        """Worth polling: something is still to happen (not only waiting for people)."""
        return not self.all_ready

    @property
    def tag(self) -> tuple[str, str]:
        """The short tag of My team: (text, NHS.UK tag class)."""
        if self.count(FAILED):
            return "Needs attention", "nhsuk-tag--red"
        if self.all_ready:
            return "Ready", "nhsuk-tag--green"
        if self.event == "leaver" and self.date >= self.today:
            # Nothing is closed before the last day: "0 of 2 ready" would read as a fault.
            return f"Closes {self.date.day} {self.date:%b}", "nhsuk-tag--grey"
        return f"{self.ready} of {len(self.items)} ready", "nhsuk-tag--blue"

    @property
    def headline(self) -> str:
        when = f"{self.date:%A} {self.date.day} {self.date:%B}"
        if not self.items:
            return f"Nothing is due for {when}."
        if self.all_ready:
            if self.event == "leaver":
                return f"All access is closed for {when}."
            return f"Everything is ready for {when}."
        parts = [f"{self.ready} of {len(self.items)} ready"]
        if failed := self.count(FAILED):
            parts.append(f"{failed} {'needs' if failed == 1 else 'need'} the identity team")
        if manual := self.count(MANUAL):
            parts.append(f"{manual} waiting for a manual task")
        return "; ".join(parts)


# --- reading ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Op:
    id: int
    person_id: int
    target: str
    kind: str
    payload: dict[str, Any]
    status: str
    created_at: dt.datetime
    completed_at: dt.datetime | None
    not_before: dt.datetime | None
    last_error: str | None
    assignee: str | None
    due_at: dt.datetime | None


@dataclass(slots=True)
class _State:
    """The recorded state and operations of the people assessed, read in four queries."""

    accounts: dict[tuple[int, str], Any] = field(default_factory=dict)
    grants: dict[tuple[int, str, str, str], Any] = field(default_factory=dict)
    ops: dict[tuple[int, str], list[_Op]] = field(default_factory=dict)


def _read_state(conn: Connection, ids: Sequence[int]) -> _State:
    state = _State()
    a, t, g, op, task = s.account, s.target, s.account_grant, s.operation, s.manual_task
    for r in conn.execute(
        sa.select(a.c.person_id, t.c.key, a.c.username, a.c.status, a.c.created_at, a.c.updated_at)
        .select_from(a.join(t, t.c.id == a.c.target_id))
        .where(a.c.person_id.in_(ids))
    ):
        state.accounts[(r.person_id, r.key)] = r
    for r in conn.execute(
        sa.select(a.c.person_id, t.c.key, g.c.kind, g.c.value, g.c.granted_at, g.c.valid_from)
        .select_from(g.join(a, a.c.id == g.c.account_id).join(t, t.c.id == a.c.target_id))
        .where(a.c.person_id.in_(ids))
    ):
        state.grants[(r.person_id, r.key, r.kind, r.value)] = r
    row: Any
    for row in conn.execute(
        sa.select(
            op.c.id,
            op.c.person_id,
            t.c.key,
            op.c.kind,
            op.c.payload,
            op.c.status,
            op.c.created_at,
            op.c.completed_at,
            op.c.not_before,
            op.c.last_error,
            task.c.assignee,
            task.c.due_at,
        )
        .select_from(
            op.join(t, t.c.id == op.c.target_id).outerjoin(task, task.c.operation_id == op.c.id)
        )
        .where(op.c.person_id.in_(ids), op.c.status != OperationStatus.CANCELLED.value)
        .order_by(op.c.id)
    ):
        state.ops.setdefault((row.person_id, row.key), []).append(
            _Op(
                row.id,
                row.person_id,
                row.key,
                row.kind,
                dict(row.payload or {}),
                row.status,
                _aware(row.created_at),
                _aware_or_none(row.completed_at),
                _aware_or_none(row.not_before),
                row.last_error,
                row.assignee,
                _aware_or_none(row.due_at),
            )
        )
    return state


def _aware(value: dt.datetime) -> dt.datetime:
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


def _aware_or_none(value: dt.datetime | None) -> dt.datetime | None:
    return None if value is None else _aware(value)


def _day(value: dt.date) -> str:
    return f"{value:%a} {value.day} {value:%b %Y}"


def _from_ops(ops: Iterable[_Op], spec: TargetSpec, base: Item) -> Item | None:
    """The item as the ledger tells it, or None if no open operation concerns it."""
    worst: _Op | None = None
    for op in ops:
        state = _OPEN.get(op.status)
        if state is not None and (worst is None or _RANK[state] > _RANK[_OPEN[worst.status]]):
            worst = op
    if worst is None:
        return None
    state = _OPEN[worst.status]
    name = spec.name
    if state == FAILED:
        problem = (worst.last_error or "the system refused the change").rstrip(".")
        detail = (
            f"{name} could not make this change ({problem}). The identity team has been told "
            "and will put it right."
        )
        return _replace(base, state=FAILED, detail=detail)
    if state == MANUAL:
        holder = worst.assignee or "the service desk"
        due = f" by {worst.due_at:%-d %b %Y %H:%M}" if worst.due_at else ""
        detail = f"A manual task: {holder} will set this up in {name}{due}."
        return _replace(base, state=MANUAL, detail=detail, holder=holder, due_at=worst.due_at)
    if worst.not_before is not None:
        expected = worst.not_before.date()
        detail = f"{name} did not answer; PASA tries again at {worst.not_before:%-d %b %H:%M}."
        return _replace(base, state=PENDING, detail=detail, expected=expected)
    return _replace(base, state=PENDING, detail=f"Queued: {name} is being updated now.")


def _replace(item: Item, **changes: Any) -> Item:
    values = {f: getattr(item, f) for f in Item.__dataclass_fields__}
    values.update(changes)
    return Item(**values)


def _account_item(
    pid: int, spec: TargetSpec, date: dt.date, today: dt.date, st: _State, leaver: bool
) -> Item:
    key = spec.key
    account = st.accounts.get((pid, key))
    ops = st.ops.get((pid, key), [])
    username = account.username if account is not None else ""
    base = Item(key, spec.name, "account", username, PENDING, "")
    wanted = _CLOSING_KINDS if leaver else _ACCOUNT_KINDS
    found = _from_ops((o for o in ops if o.kind in wanted), spec, base)
    if found is not None:
        return found
    done = [o for o in ops if o.kind in wanted and o.status == "succeeded" and o.completed_at]
    done_at = done[-1].completed_at if done else None
    if leaver:
        if account is None or account.status in ("disabled", "deleted"):
            return _replace(
                base, state=READY, done_at=done_at, detail="Closed: the account is disabled."
            )
        return _replace(base, expected=date, detail=f"To be disabled at the end of {_day(date)}.")
    if account is not None and account.status == "enabled":
        return _replace(
            base,
            state=READY,
            done_at=done_at or _aware(account.updated_at),
            detail=f"Ready: the account {account.username} is enabled.",
        )
    if account is not None:
        when = _aware(account.created_at)
        return _replace(
            base,
            expected=date,
            detail=(
                f"Created (disabled) on {_day(when.date())}; enabled by {DAY_ONE_TIME} on "
                f"{_day(date)}."
            ),
        )
    prehire = spec.lifecycle.prehire_days
    created = max(today, date - dt.timedelta(days=prehire))
    if prehire and created < date:
        detail = (
            f"To be created (disabled) on {_day(created)} and enabled by {DAY_ONE_TIME} on "
            f"{_day(date)}."
        )
    else:
        detail = f"To be created and enabled by {DAY_ONE_TIME} on {_day(max(date, today))}."
    return _replace(base, expected=created, detail=detail)


def _grant_item(
    pid: int, spec: TargetSpec, kind: str, value: str, date: dt.date, today: dt.date, st: _State
) -> Item:
    key = spec.key
    base = Item(key, spec.name, kind, value, PENDING, "")
    ops = [
        o
        for o in st.ops.get((pid, key), [])
        if o.kind == "add_membership"
        and o.payload.get("kind") == kind
        and o.payload.get("value") == value
    ]
    found = _from_ops(ops, spec, base)
    if found is not None:
        return found
    held = st.grants.get((pid, key, kind, value))
    if held is not None:
        opens = held.valid_from
        detail = "Ready."
        if opens is not None and opens > today:
            detail = f"Ready: sent to {spec.name}, opens on {_day(opens)}."
        return _replace(base, state=READY, done_at=_aware(held.granted_at), detail=detail)
    door_on_the_day = kind == EntitlementKind.DOOR_ZONE.value and not spec.lifecycle.dated_access
    if door_on_the_day:
        expected = max(date, today)
        detail = f"Door access opens on {_day(expected)}."
    else:
        expected = max(today, date - dt.timedelta(days=spec.lifecycle.prehire_days))
        detail = f"To be added on {_day(expected)}, ready for {_day(date)}."
    return _replace(base, expected=expected, detail=detail)


def assess_many(
    conn: Connection,
    people: Sequence[tuple[PersonView, str, dt.date]],
    today: dt.date,
) -> dict[tuple[int, str, dt.date], Readiness]:
    """Readiness of each (person, event, date), keyed so; a fixed number of queries for any
    number of people (My team tags every starter, mover and leaver at once)."""
    if not people:
        return {}
    try:
        document: PolicyDocument | None = load_active_policy(conn)
    except ConfigurationError:
        document = None
    if document is None:
        note = ("No access policy is loaded, so nothing is due yet.",)
        return {(p.person_id, e, d): Readiness(p, e, d, today, [], note) for p, e, d in people}
    compiled = compile_policy(document)
    specs = {t.key: t for t in document.targets}
    ids = sorted({p.person_id for p, _, _ in people})
    requests = load_time_bound_grants(conn, ids)
    st = _read_state(conn, ids)
    out: dict[tuple[int, str, dt.date], Readiness] = {}
    for person, event, date in people:
        pid = person.person_id
        items: list[Item] = []
        if event == "leaver":
            for (owner, key), _account in sorted(st.accounts.items()):
                if owner == pid and key in specs:
                    items.append(_account_item(pid, specs[key], date, today, st, leaver=True))
        else:
            # What is due on the day (or today, once the day has passed).
            at = max(date, today)
            due = person_access(person, compiled, at, [r for r in requests if r.person_id == pid])
            for key in sorted(due.accounts):
                if key in specs:
                    items.append(_account_item(pid, specs[key], date, today, st, leaver=False))
            for key, kind, value in sorted(due.grants):
                if key in specs:
                    items.append(_grant_item(pid, specs[key], kind.value, value, date, today, st))
        out[(pid, event, date)] = Readiness(person, event, date, today, items)
    return out


def event_of(conn: Connection, person: PersonView, today: dt.date) -> tuple[str, dt.date]:
    """The change a readiness page is about: the next start, a move, an end; else today."""
    starts = [a.start_date for a in person.assignments if a.start_date > today]
    if starts:
        return "starter", min(starts)
    e = s.hr_event
    moved = conn.scalar(
        sa.select(sa.func.min(e.c.effective_date)).where(
            e.c.person_id == person.person_id,
            e.c.kind == "changed",
            e.c.state == "applied",
            e.c.effective_date >= today,
        )
    )
    if moved is not None:
        return "mover", moved
    active = person.active_assignments(today)
    ends = [a.end_date for a in person.assignments if a.end_date is not None]
    if not active and ends:
        return "leaver", max(ends)
    if active and all(a.end_date is not None for a in active):
        return "leaver", max(a.end_date for a in active if a.end_date is not None)
    return "current", today


def readiness_of(engine: Engine, person_id: int, today: dt.date) -> Readiness | None:
    """One person's readiness for their next change, or None if there is no such person."""
    with engine.connect() as conn:
        # The same look-back as My team, so a recent mover's handover access is counted alike.
        since = today - dt.timedelta(days=LEAVER_VISIBLE_DAYS)
        found = load_people(conn, [person_id], previous_since=since)
        if not found:
            return None
        person = found[0]
        event, date = event_of(conn, person, today)
        return assess_many(conn, [(person, event, date)], today)[(person_id, event, date)]


# --- the day-one credential handover -----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Handover:
    id: int
    target: str
    username: str
    status: str  # waiting | revealed | redeemed | expired | revoked
    manager_person_id: int | None
    revealed_by: str | None
    revealed_at: dt.datetime | None
    expires_at: dt.datetime | None


def handovers_of(engine: Engine, person_id: int) -> list[Handover]:
    """The person's open or used handovers (newest first per account; revoked ones hidden)."""
    ch, acc, t = s.credential_handover, s.account, s.target
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(
                ch.c.id,
                t.c.name,
                acc.c.username,
                ch.c.status,
                ch.c.manager_person_id,
                ch.c.revealed_by,
                ch.c.revealed_at,
                ch.c.expires_at,
            )
            .select_from(
                ch.join(acc, acc.c.id == ch.c.account_id).join(t, t.c.id == acc.c.target_id)
            )
            .where(ch.c.person_id == person_id, ch.c.status != "revoked")
            .order_by(ch.c.id.desc())
        ).all()
    return [
        Handover(
            r.id,
            r.name,
            r.username,
            r.status,
            r.manager_person_id,
            r.revealed_by,
            _aware_or_none(r.revealed_at),
            _aware_or_none(r.expires_at),
        )
        for r in rows
    ]
