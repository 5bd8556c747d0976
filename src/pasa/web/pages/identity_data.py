"""What the identity team's pages show, read from the hub (no authorization here: the views in
:mod:`pasa.web.pages.identity` authorize first and pass the :class:`Visibility` that scopes
every query to the principal's organisations).

* the exceptions board: parked operations, open manual tasks with their SLA, imports with
  quarantined rows or held by the guard, the latest reconciliation findings per target, and
  target health;
* person search (name, ESR employee or assignment number, e-mail, username, account id);
* one person's full timeline: HR events, lifecycle transitions, grants and approved requests,
  operations with their outcome, reconciliation findings and audit entries.

One write lives here because no service offers it yet: taking a manual task
(:func:`assign_task`), audited in the same transaction.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from pasa.audit import log as audit
from pasa.clock import local_date
from pasa.config import get_settings
from pasa.connectors.manual import ManualTaskError
from pasa.domain.errors import NotFoundError
from pasa.domain.grants import Reason
from pasa.domain.operations import OperationStatus
from pasa.store import schema as s
from pasa.web.api.common import Visibility, person_filter

T = TypeVar("T")

PAGE_SIZE = 25
TIMELINE_PAGE_SIZE = 100
SEARCH_LIMIT = 50


def utc(value: dt.datetime | None) -> dt.datetime | None:
    """SQLite hands back naive timestamps (stored in UTC): state the offset everywhere."""
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=dt.UTC)
    return value


@dataclass(frozen=True, slots=True)
class Paged(Generic[T]):
    items: list[T]
    page: int
    total: int
    size: int = PAGE_SIZE

    @property
    def pages(self) -> int:
        return max(1, math.ceil(self.total / self.size))


def _page_of(conn: Connection, query: sa.Select[Any], page: int, size: int) -> tuple[Any, int]:
    total = int(conn.scalar(sa.select(sa.func.count()).select_from(query.subquery())) or 0)
    page = min(max(page, 1), max(1, math.ceil(total / size)))
    rows = conn.execute(query.limit(size).offset((page - 1) * size)).all()
    return rows, total


def _name(first: str, last: str, known_as: str | None = None) -> str:
    return f"{known_as or first} {last}"


def reason_text(value: Any) -> str:
    """A stored reason (a :class:`Reason` as a dict) in words; anything else as it is."""
    if isinstance(value, dict):
        try:
            return Reason(**value).describe()
        except TypeError:
            return ", ".join(f"{k} {v}" for k, v in value.items() if v)
    return str(value)


# --- the exceptions board ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ParkedOperation:
    id: int
    person_id: int
    person: str
    target: str
    target_name: str
    kind: str
    username: str
    summary: str
    attempts: int
    last_error: str | None
    parked_since: dt.datetime | None


def parked_operations(engine: Engine, seen: Visibility, page: int = 1) -> Paged[ParkedOperation]:
    op, t, p = s.operation, s.target, s.person
    query = (
        sa.select(op, t.c.key, t.c.name.label("target_name"), p.c.first_name, p.c.last_name)
        .select_from(op.join(t, t.c.id == op.c.target_id).join(p, p.c.id == op.c.person_id))
        .where(op.c.status == OperationStatus.PARKED, person_filter(seen, op.c.person_id, t.c.key))
        .order_by(op.c.id)
    )
    with engine.connect() as conn:
        rows, total = _page_of(conn, query, page, PAGE_SIZE)
        a = s.audit_log
        # When it was parked: the worker's audit entry (the ledger keeps no such column).
        since = {
            int(subject): when
            for subject, when in conn.execute(
                sa.select(a.c.subject_id, sa.func.max(a.c.at))
                .where(
                    a.c.subject_type == "operation",
                    a.c.action == "operation.parked",
                    a.c.subject_id.in_([str(r.id) for r in rows]),
                )
                .group_by(a.c.subject_id)
            )
        }
    items = [
        ParkedOperation(
            id=r.id,
            person_id=r.person_id,
            person=_name(r.first_name, r.last_name),
            target=r.key,
            target_name=r.target_name,
            kind=r.kind,
            username=r.username,
            summary=r.summary,
            attempts=r.attempts,
            last_error=r.last_error,
            parked_since=utc(since.get(r.id) or r.created_at),
        )
        for r in rows
    ]
    return Paged(items, page, total)


@dataclass(frozen=True, slots=True)
class Task:
    id: int
    operation_id: int
    person_id: int
    person: str
    target: str
    target_name: str
    assignee: str
    instructions: str
    created_at: dt.datetime
    due_at: dt.datetime
    overdue: bool


def open_tasks(engine: Engine, seen: Visibility, now: dt.datetime, page: int = 1) -> Paged[Task]:
    """Open manual tasks, the soonest due first."""
    m, op, t, p = s.manual_task, s.operation, s.target, s.person
    query = (
        sa.select(
            m, op.c.person_id, t.c.key, t.c.name.label("target_name"), p.c.first_name, p.c.last_name
        )
        .select_from(
            m.join(op, op.c.id == m.c.operation_id)
            .join(t, t.c.id == m.c.target_id)
            .join(p, p.c.id == op.c.person_id)
        )
        .where(m.c.status == "open", person_filter(seen, op.c.person_id, t.c.key))
        .order_by(m.c.due_at, m.c.id)
    )
    with engine.connect() as conn:
        rows, total = _page_of(conn, query, page, PAGE_SIZE)
    items = []
    for r in rows:
        due = utc(r.due_at)
        assert due is not None
        items.append(
            Task(
                id=r.id,
                operation_id=r.operation_id,
                person_id=r.person_id,
                person=_name(r.first_name, r.last_name),
                target=r.key,
                target_name=r.target_name,
                assignee=r.assignee,
                instructions=r.instructions,
                created_at=utc(r.created_at) or due,
                due_at=due,
                overdue=due < now,
            )
        )
    return Paged(items, page, total)


def assign_task(engine: Engine, task_id: int, *, assignee: str, actor: str) -> None:
    """Give an open manual task to ``assignee`` (audited with the previous assignee)."""
    m = s.manual_task
    with engine.begin() as conn:
        row = conn.execute(sa.select(m.c.assignee, m.c.status).where(m.c.id == task_id)).first()
        if row is None:
            raise NotFoundError(f"manual task {task_id} does not exist")
        if row.status != "open":
            raise ManualTaskError(f"manual task {task_id} is already {row.status}")
        conn.execute(m.update().where(m.c.id == task_id).values(assignee=assignee))
        audit.append(
            conn,
            actor=actor,
            action="manual_task.assigned",
            subject_type="manual_task",
            subject_id=task_id,
            details={"assignee": assignee, "previous": row.assignee},
        )


@dataclass(frozen=True, slots=True)
class Problem:
    row_number: int
    severity: str
    field: str | None
    reason: str
    value: str | None
    assignment_number: str | None


@dataclass(frozen=True, slots=True)
class ImportIssue:
    id: int
    filename: str
    as_of: dt.date
    status: str
    started_at: dt.datetime
    rows_total: int
    rows_rejected: int
    rows_warned: int
    events_ended: int
    active_before: int
    guard_threshold: float
    guard_reason: str | None
    organisations: tuple[str, ...]
    problems: list[Problem] = field(default_factory=list)
    problems_total: int = 0

    @property
    def ended_share(self) -> float | None:
        """The share of active assignments this import would end (what tripped the guard)."""
        if self.active_before <= 0:
            return None
        return self.events_ended / self.active_before


def _imports_visible(seen: Visibility) -> Any:
    """Imports with an event in the principal's organisations, or with none at all (a file
    every row of which was rejected belongs to nobody yet)."""
    if seen.everything:
        return sa.true()
    if not seen.organisations:
        return sa.false()
    e, o = s.hr_event, s.organisation
    events_of = sa.select(e.c.id).where(e.c.import_id == s.hr_import.c.id)
    in_orgs = events_of.join(o, o.c.id == e.c.organisation_id).where(
        o.c.ods_code.in_(sorted(seen.organisations))
    )
    return sa.or_(~sa.exists(events_of), sa.exists(in_orgs))


def import_organisations(conn: Connection, import_id: int) -> frozenset[str]:
    e, o = s.hr_event, s.organisation
    return frozenset(
        conn.scalars(
            sa.select(o.c.ods_code)
            .select_from(e.join(o, o.c.id == e.c.organisation_id))
            .where(e.c.import_id == import_id)
            .distinct()
        )
    )


PROBLEMS_SHOWN = 20


def import_issues(engine: Engine, seen: Visibility, page: int = 1) -> Paged[ImportIssue]:
    """Held imports first, then imports with quarantined rows, newest first; each with its
    first rows in quarantine."""
    i, q = s.hr_import, s.hr_quarantine
    held_first = sa.case((i.c.status == "held", 0), else_=1)
    query = (
        sa.select(i)
        .where(
            _imports_visible(seen),
            sa.or_(i.c.status == "held", i.c.rows_rejected > 0, i.c.rows_warned > 0),
        )
        .order_by(held_first, i.c.id.desc())
    )
    with engine.connect() as conn:
        rows, total = _page_of(conn, query, page, PAGE_SIZE)
        items = []
        for r in rows:
            problems = [
                Problem(x.row_number, x.severity, x.field, x.reason, x.value, x.assignment_number)
                for x in conn.execute(
                    sa.select(q)
                    .where(q.c.import_id == r.id)
                    .order_by(q.c.row_number, q.c.id)
                    .limit(PROBLEMS_SHOWN)
                )
            ]
            count = int(conn.scalar(sa.select(sa.func.count()).where(q.c.import_id == r.id)) or 0)
            items.append(
                ImportIssue(
                    id=r.id,
                    filename=r.filename,
                    as_of=r.as_of,
                    status=r.status,
                    started_at=utc(r.started_at) or r.started_at,
                    rows_total=r.rows_total,
                    rows_rejected=r.rows_rejected,
                    rows_warned=r.rows_warned,
                    events_ended=r.events_ended,
                    active_before=r.active_before,
                    guard_threshold=r.guard_threshold,
                    guard_reason=r.guard_reason,
                    organisations=tuple(sorted(import_organisations(conn, r.id))),
                    problems=problems,
                    problems_total=count,
                )
            )
    return Paged(items, page, total)


@dataclass(frozen=True, slots=True)
class FindingRow:
    id: int
    target: str
    target_name: str
    kind: str
    username: str
    person_id: int | None
    person: str | None
    details: dict[str, Any]
    found_at: dt.datetime


# The kinds an operator acts on (``unlinked`` and ``missing`` are shown too: both need a look).
FINDING_KINDS = ("orphan", "unmatched", "drifted", "unlinked", "missing")


def _latest_runs() -> Any:
    r = s.reconciliation_run
    return sa.select(sa.func.max(r.c.id)).group_by(r.c.target_id).scalar_subquery()


def _findings_visible(seen: Visibility) -> Any:
    f = s.reconciliation_finding
    # A finding about nobody (an orphan account) is the whole identity team's to look at.
    return sa.or_(f.c.person_id.is_(None), person_filter(seen, f.c.person_id))


def findings(
    engine: Engine, seen: Visibility, page: int = 1, kind: str | None = None
) -> Paged[FindingRow]:
    """Findings of the latest reconciliation of every target, by target."""
    f, t, p = s.reconciliation_finding, s.target, s.person
    query = (
        sa.select(f, t.c.key, t.c.name.label("target_name"), p.c.first_name, p.c.last_name)
        .select_from(f.join(t, t.c.id == f.c.target_id).outerjoin(p, p.c.id == f.c.person_id))
        .where(f.c.run_id.in_(_latest_runs()), _findings_visible(seen))
        .order_by(t.c.key, f.c.kind, f.c.username)
    )
    if kind is not None:
        query = query.where(f.c.kind == kind)
    with engine.connect() as conn:
        rows, total = _page_of(conn, query, page, PAGE_SIZE)
    items = [
        FindingRow(
            id=r.id,
            target=r.key,
            target_name=r.target_name,
            kind=r.kind,
            username=r.username,
            person_id=r.person_id,
            person=_name(r.first_name, r.last_name) if r.first_name is not None else None,
            details=dict(r.details or {}),
            found_at=utc(r.found_at) or r.found_at,
        )
        for r in rows
    ]
    return Paged(items, page, total)


@dataclass(frozen=True, slots=True)
class TargetHealth:
    key: str
    name: str
    connector: str
    paused: bool
    queued: int
    parked: int
    manual: int
    failed: int  # parked and cancelled are both "did not happen"; failed = parked here
    oldest_queued: dt.datetime | None
    last_reconciled: dt.datetime | None
    last_counts: dict[str, int]


def target_health(engine: Engine, seen: Visibility) -> list[TargetHealth]:
    """Every target: paused or running, what waits on it (in the principal's organisations),
    and its last reconciliation."""
    op, t, r = s.operation, s.target, s.reconciliation_run
    visible = person_filter(seen, op.c.person_id, t.c.key)
    with engine.connect() as conn:
        counts: dict[tuple[str, str], int] = {}
        oldest: dict[str, dt.datetime] = {}
        for key, status, n, first in conn.execute(
            sa.select(t.c.key, op.c.status, sa.func.count(), sa.func.min(op.c.created_at))
            .select_from(op.join(t, t.c.id == op.c.target_id))
            .where(
                op.c.status.in_(
                    [
                        OperationStatus.PENDING,
                        OperationStatus.RUNNING,
                        OperationStatus.PARKED,
                        OperationStatus.WAITING_MANUAL,
                    ]
                ),
                visible,
            )
            .group_by(t.c.key, op.c.status)
        ):
            counts[(key, status)] = int(n)
            if status in (OperationStatus.PENDING, OperationStatus.RUNNING) and first is not None:
                when = utc(first)
                assert when is not None
                oldest[key] = min(oldest.get(key, when), when)
        runs = {
            row.target_id: row
            for row in conn.execute(sa.select(r).where(r.c.id.in_(_latest_runs())))
        }
        targets = conn.execute(
            sa.select(t.c.id, t.c.key, t.c.name, t.c.connector, t.c.paused).order_by(t.c.key)
        ).all()
    out = []
    for row in targets:
        run = runs.get(row.id)
        queued = counts.get((row.key, OperationStatus.PENDING), 0) + counts.get(
            (row.key, OperationStatus.RUNNING), 0
        )
        parked = counts.get((row.key, OperationStatus.PARKED), 0)
        out.append(
            TargetHealth(
                key=row.key,
                name=row.name,
                connector=row.connector,
                paused=bool(row.paused),
                queued=queued,
                parked=parked,
                manual=counts.get((row.key, OperationStatus.WAITING_MANUAL), 0),
                failed=parked,
                oldest_queued=oldest.get(row.key),
                last_reconciled=utc(run.finished_at or run.started_at) if run else None,
                last_counts={k: int(v) for k, v in (run.counts or {}).items()} if run else {},
            )
        )
    return out


@dataclass(frozen=True, slots=True)
class Board:
    parked: int
    tasks: int
    overdue: int
    held_imports: int
    quarantined_imports: int
    findings: int
    paused_targets: int
    targets: int


def board(engine: Engine, seen: Visibility, now: dt.datetime) -> Board:
    """The counts on the board's summary cards."""
    op, t, m, i = s.operation, s.target, s.manual_task, s.hr_import
    f = s.reconciliation_finding
    with engine.connect() as conn:

        def count(query: sa.Select[Any]) -> int:
            return int(conn.scalar(query) or 0)

        parked = count(
            sa.select(sa.func.count())
            .select_from(op.join(t, t.c.id == op.c.target_id))
            .where(
                op.c.status == OperationStatus.PARKED, person_filter(seen, op.c.person_id, t.c.key)
            )
        )
        tasks_q = (
            sa.select(sa.func.count())
            .select_from(m.join(op, op.c.id == m.c.operation_id).join(t, t.c.id == m.c.target_id))
            .where(m.c.status == "open", person_filter(seen, op.c.person_id, t.c.key))
        )
        tasks = count(tasks_q)
        overdue = count(tasks_q.where(m.c.due_at < now))
        held = count(sa.select(sa.func.count()).where(i.c.status == "held", _imports_visible(seen)))
        quarantined = count(
            sa.select(sa.func.count()).where(
                i.c.status != "held",
                sa.or_(i.c.rows_rejected > 0, i.c.rows_warned > 0),
                _imports_visible(seen),
            )
        )
        found = count(
            sa.select(sa.func.count()).where(
                f.c.run_id.in_(_latest_runs()), _findings_visible(seen)
            )
        )
        paused = count(sa.select(sa.func.count()).where(t.c.paused.is_(True)))
        targets = count(sa.select(sa.func.count()).select_from(t))
    return Board(parked, tasks, overdue, held, quarantined, found, paused, targets)


# --- person search ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PersonHit:
    id: int
    name: str
    email: str | None
    employee_numbers: tuple[str, ...]
    assignment_numbers: tuple[str, ...]
    organisations: tuple[str, ...]
    usernames: tuple[str, ...]


MAX_TERMS = 5


def _term_matches(term: str) -> Any:
    """Does a person match one word of the query: name, e-mail, ESR employee or assignment
    number, a username or account id on any target, or any cross-referenced identifier."""
    p, a, acc, pi = s.person, s.assignment, s.account, s.person_identifier

    def has(col: sa.ColumnElement[Any]) -> Any:
        return sa.func.lower(col).contains(term, autoescape=True)

    return sa.or_(
        has(p.c.first_name),
        has(p.c.last_name),
        has(sa.func.coalesce(p.c.known_as, "")),
        has(sa.func.coalesce(p.c.email, "")),
        sa.exists().where(
            a.c.person_id == p.c.id, sa.or_(has(a.c.employee_number), has(a.c.assignment_number))
        ),
        sa.exists().where(
            acc.c.person_id == p.c.id,
            sa.or_(has(acc.c.username), has(sa.func.coalesce(acc.c.external_id, ""))),
        ),
        sa.exists().where(pi.c.person_id == p.c.id, has(pi.c.value)),
    )


def search_terms(q: str) -> list[str]:
    return [w.lower() for w in q.split()][:MAX_TERMS]


def search_people(engine: Engine, seen: Visibility, q: str) -> tuple[list[PersonHit], bool]:
    """People matching every word of ``q`` (up to :data:`SEARCH_LIMIT`; the flag says more
    matched)."""
    terms = search_terms(q)
    if not terms:
        return [], False
    p, a, o, acc = s.person, s.assignment, s.organisation, s.account
    query = (
        sa.select(p.c.id, p.c.first_name, p.c.last_name, p.c.known_as, p.c.email)
        .where(person_filter(seen, p.c.id), *(_term_matches(t) for t in terms))
        .order_by(p.c.last_name, p.c.first_name, p.c.id)
        .limit(SEARCH_LIMIT + 1)
    )
    with engine.connect() as conn:
        rows = conn.execute(query).all()
        more = len(rows) > SEARCH_LIMIT
        rows = rows[:SEARCH_LIMIT]
        ids = [r.id for r in rows]
        posts: dict[int, list[tuple[str, str, str]]] = {}
        for post in conn.execute(
            sa.select(a.c.person_id, a.c.employee_number, a.c.assignment_number, o.c.ods_code)
            .select_from(a.join(o, o.c.id == a.c.organisation_id))
            .where(a.c.person_id.in_(ids))
            .order_by(a.c.assignment_number)
        ):
            posts.setdefault(post.person_id, []).append(
                (post.employee_number, post.assignment_number, post.ods_code)
            )
        names: dict[int, list[str]] = {}
        for person_id, username in conn.execute(
            sa.select(acc.c.person_id, acc.c.username)
            .where(acc.c.person_id.in_(ids))
            .order_by(acc.c.username)
        ):
            names.setdefault(person_id, []).append(username)
    hits = []
    for r in rows:
        mine = posts.get(r.id, [])
        hits.append(
            PersonHit(
                id=r.id,
                name=_name(r.first_name, r.last_name, r.known_as),
                email=r.email,
                employee_numbers=tuple(sorted({x[0] for x in mine})),
                assignment_numbers=tuple(x[1] for x in mine),
                organisations=tuple(sorted({x[2] for x in mine})),
                usernames=tuple(dict.fromkeys(names.get(r.id, []))),
            )
        )
    return hits, more


# --- the timeline ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Event:
    at: dt.datetime
    category: str  # hr | lifecycle | grant | request | account | operation | finding | audit
    what: str
    who: str
    why: str = ""
    status: str | None = None  # a tag: queued | sent | done | failed | parked | cancelled ...


@dataclass(frozen=True, slots=True)
class Day:
    date: dt.date
    events: list[Event]


@dataclass(frozen=True, slots=True)
class Timeline:
    person_id: int
    name: str
    email: str | None
    organisations: tuple[str, ...]
    days: list[Day]
    page: int
    total: int
    size: int = TIMELINE_PAGE_SIZE

    @property
    def pages(self) -> int:
        return max(1, math.ceil(self.total / self.size))


# The operation statuses in the words of the timeline.
OPERATION_STATE = {
    OperationStatus.PENDING.value: "queued",
    OperationStatus.RUNNING.value: "sent",
    OperationStatus.WAITING_MANUAL.value: "manual task",
    OperationStatus.SUCCEEDED.value: "done",
    OperationStatus.PARKED.value: "parked",
    OperationStatus.CANCELLED.value: "cancelled",
}


def _changes_text(changes: Any) -> str:
    if not isinstance(changes, dict) or not changes:
        return ""
    parts = []
    for key, value in sorted(changes.items()):
        if isinstance(value, list | tuple) and len(value) == 2:
            parts.append(f"{key}: {value[0]} → {value[1]}")
        else:
            parts.append(f"{key}: {value}")
    return "; ".join(parts)


def _audit_text(details: Any) -> str:
    if not isinstance(details, dict):
        return ""
    shown = []
    for key, value in details.items():
        if value in (None, "", [], {}):
            continue
        if key in ("reasons",):
            continue
        shown.append(f"{key.replace('_', ' ')}: {value}")
    return "; ".join(shown)[:500]


def _events(conn: Connection, person_id: int) -> list[Event]:
    out: list[Event] = []
    e, i, o = s.hr_event, s.hr_import, s.organisation
    for r in conn.execute(
        sa.select(e, i.c.filename, i.c.actor, o.c.ods_code)
        .select_from(e.join(i, i.c.id == e.c.import_id).join(o, o.c.id == e.c.organisation_id))
        .where(e.c.person_id == person_id)
    ):
        kind = {
            "new": "new assignment",
            "changed": "assignment changed",
            "ended": "assignment ended",
        }
        what = (
            f"HR: {kind.get(r.kind, r.kind)} {r.assignment_number} at {r.ods_code}, "
            f"effective {r.effective_date:%-d %b %Y}"
        )
        detail = _changes_text(r.changes)
        out.append(
            Event(
                utc(r.recorded_at) or r.recorded_at,
                "hr",
                what + (f" ({detail})" if detail else ""),
                r.actor,
                f"HR import {r.import_id} ({r.filename})",
                r.state,
            )
        )
    h, a = s.assignment_history, s.assignment
    for r in conn.execute(
        sa.select(
            h.c.valid_from, h.c.valid_to, h.c.recorded_at, h.c.import_id, a.c.assignment_number
        )
        .select_from(h.join(a, a.c.id == h.c.assignment_id))
        .where(a.c.person_id == person_id)
    ):
        until = f" to {r.valid_to:%-d %b %Y}" if r.valid_to else ""
        out.append(
            Event(
                utc(r.recorded_at) or r.recorded_at,
                "hr",
                f"HR record: assignment {r.assignment_number} version from "
                f"{r.valid_from:%-d %b %Y}{until}",
                "HR",
                f"HR import {r.import_id}" if r.import_id else "",
            )
        )
    lt = s.lifecycle_transition
    for r in conn.execute(sa.select(lt).where(lt.c.person_id == person_id)):
        scope = f"assignment {r.scope}" if r.scope else "person"
        was = (r.from_state or "none").replace("_", " ")
        out.append(
            Event(
                utc(r.recorded_at) or r.recorded_at,
                "lifecycle",
                f"Lifecycle ({scope}): {was} → {r.to_state.replace('_', ' ')}, effective "
                f"{r.effective_date:%-d %b %Y}",
                "PASA scheduler",
                "from the HR record's dates",
            )
        )
    acc, t, g = s.account, s.target, s.account_grant
    for r in conn.execute(
        sa.select(acc, t.c.name.label("target_name"))
        .select_from(acc.join(t, t.c.id == acc.c.target_id))
        .where(acc.c.person_id == person_id)
    ):
        out.append(
            Event(
                utc(r.created_at) or r.created_at,
                "account",
                f"Account '{r.username}' recorded on {r.target_name} (now {r.status})",
                "PASA plan",
            )
        )
    for r in conn.execute(
        sa.select(g, t.c.name.label("target_name"), acc.c.username)
        .select_from(g.join(acc, acc.c.id == g.c.account_id).join(t, t.c.id == acc.c.target_id))
        .where(acc.c.person_id == person_id)
    ):
        until = f" until {r.valid_to:%-d %b %Y}" if r.valid_to else ""
        out.append(
            Event(
                utc(r.granted_at) or r.granted_at,
                "grant",
                f"Granted {r.kind.replace('_', ' ')} '{r.value}' on {r.target_name}{until}",
                "PASA plan",
                "; ".join(reason_text(x) for x in (r.reasons or [])),
            )
        )
    ag = s.access_grant
    for r in conn.execute(sa.select(ag).where(ag.c.person_id == person_id)):
        what = f"{r.kind.replace('_', ' ')} '{r.value}'" if r.kind else "an account"
        until = f" to {r.valid_to:%-d %b %Y}" if r.valid_to else ""
        out.append(
            Event(
                utc(r.approved_at) or r.approved_at,
                "request",
                f"Request approved: {what} on {r.target_key} from {r.valid_from:%-d %b %Y}{until}",
                f"{r.approved_by} (asked by {r.requested_by})",
                r.justification,
                r.status,
            )
        )
        if r.revoked_at is not None:
            out.append(
                Event(
                    utc(r.revoked_at) or r.revoked_at,
                    "request",
                    f"Request revoked: {what} on {r.target_key}",
                    r.revoked_by or "",
                )
            )
    op = s.operation
    op_ids: list[int] = []
    for r in conn.execute(
        sa.select(op, t.c.name.label("target_name"))
        .select_from(op.join(t, t.c.id == op.c.target_id))
        .where(op.c.person_id == person_id)
    ):
        op_ids.append(r.id)
        state = OPERATION_STATE.get(r.status, r.status)
        result = ""
        if r.last_error:
            result = f"; last error after {r.attempts} attempts: {r.last_error}"
        elif r.completed_at is not None:
            result = f"; {state} {utc(r.completed_at):%-d %b %Y %H:%M} UTC"
        out.append(
            Event(
                utc(r.created_at) or r.created_at,
                "operation",
                f"Operation {r.id} on {r.target_name}: {r.summary}{result}",
                "PASA plan",
                "; ".join(reason_text(x) for x in (r.reasons or [])),
                state,
            )
        )
    f = s.reconciliation_finding
    for r in conn.execute(
        sa.select(f, t.c.name.label("target_name"))
        .select_from(f.join(t, t.c.id == f.c.target_id))
        .where(f.c.person_id == person_id)
    ):
        out.append(
            Event(
                utc(r.found_at) or r.found_at,
                "finding",
                f"Reconciliation of {r.target_name}: account '{r.username}' {r.kind}",
                "reconciliation",
                _audit_text(r.details),
                r.kind,
            )
        )
    m = s.manual_task
    task_ids = (
        [int(x) for x in conn.scalars(sa.select(m.c.id).where(m.c.operation_id.in_(op_ids)))]
        if op_ids
        else []
    )
    out.extend(_audit_events(conn, person_id, op_ids, task_ids))
    return out


def _audit_events(
    conn: Connection, person_id: int, op_ids: Sequence[int], task_ids: Sequence[int]
) -> Iterable[Event]:
    """Audit entries about the person, their operations and their manual tasks."""
    a = s.audit_log
    about = [sa.and_(a.c.subject_type == "person", a.c.subject_id == str(person_id))]
    for subject_type, ids in (("operation", op_ids), ("manual_task", task_ids)):
        for start in range(0, len(ids), 500):
            chunk = [str(x) for x in ids[start : start + 500]]
            about.append(sa.and_(a.c.subject_type == subject_type, a.c.subject_id.in_(chunk)))
    for r in conn.execute(sa.select(a).where(sa.or_(*about))):
        yield Event(
            utc(r.at) or r.at,
            "audit",
            f"{r.subject_type.replace('_', ' ').capitalize()} {r.subject_id}: "
            f"{r.action.rpartition('.')[2].replace('_', ' ')}",
            r.actor,
            _audit_text(r.details),
        )


def person_summary(conn: Connection, person_id: int) -> tuple[str, str | None] | None:
    p = s.person
    row = conn.execute(
        sa.select(p.c.first_name, p.c.last_name, p.c.known_as, p.c.email).where(p.c.id == person_id)
    ).first()
    if row is None:
        return None
    return _name(row.first_name, row.last_name, row.known_as), row.email


def timeline(
    engine: Engine, person_id: int, organisations: Iterable[str], page: int = 1
) -> Timeline | None:
    """Everything that happened to a person, newest first, grouped by the organisation's local
    day (``PASA_TIMEZONE``); None if no such person."""
    with engine.connect() as conn:
        found = person_summary(conn, person_id)
        if found is None:
            return None
        events = _events(conn, person_id)
    events.sort(key=lambda x: x.at, reverse=True)
    total = len(events)
    pages = max(1, math.ceil(total / TIMELINE_PAGE_SIZE))
    page = min(max(page, 1), pages)
    shown = events[(page - 1) * TIMELINE_PAGE_SIZE : page * TIMELINE_PAGE_SIZE]
    days: list[Day] = []
    tz = get_settings().timezone
    for event in shown:
        date = local_date(event.at, tz)
        if not days or days[-1].date != date:
            days.append(Day(date, []))
        days[-1].events.append(event)
    name, email = found
    return Timeline(person_id, name, email, tuple(sorted(organisations)), days, page, total)
