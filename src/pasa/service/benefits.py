"""The benefits dashboard's facts for one organisation and period, read in a few set-based
queries, then computed by the pure :mod:`pasa.domain.benefits`.

* **Starters**: people with a *new* assignment (an applied ``hr_event`` of kind ``new``) in
  the organisation whose start date falls in the period; the HR record was received at the
  event's ``recorded_at``. Assignments that arrived in the organisation's first (baseline)
  import are not starters: at go-live that extract holds every existing member of staff, and
  those who started recently were provisioned by hand before PASA.
* **Their required systems**: the operations planned for them that grant access (not
  disable, delete or remove), created from the record's arrival to the end of day one (or
  within a day of a late record), cancelled ones left out. A system is ready when all its
  operations succeeded, at the last completion.
* **Operations**: those that succeeded in the period for people of the organisation;
  manual when they carried a manual task.
* **Open exceptions**: parked operations, open manual tasks, rejected rows of the period's
  imports, held imports, and findings of the latest reconciliation run of each target.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from pasa.clock import local_instant
from pasa.config import Settings
from pasa.domain.benefits import Baseline, BenefitsReport, StarterFacts, compute
from pasa.domain.operations import OperationKind, OperationStatus
from pasa.store import schema as s

DEFAULT_DAYS = 90
MAX_DAYS = 731  # two years: the longest period a page or the API will compute
_GRANTING = [
    OperationKind.CREATE_ACCOUNT.value,
    OperationKind.RENAME.value,
    OperationKind.UPDATE_ATTRIBUTES.value,
    OperationKind.ENABLE.value,
    OperationKind.ADD_MEMBERSHIP.value,
]


@dataclass(frozen=True, slots=True)
class Exceptions:
    parked_operations: int
    open_manual_tasks: int
    quarantined_rows: int
    held_imports: int
    reconciliation_findings: int

    def as_rows(self) -> list[tuple[str, int, str]]:
        """(label, count, where it is worked on) for the chart and its table."""
        return [
            ("Parked operations", self.parked_operations, "/exceptions"),
            ("Open manual tasks", self.open_manual_tasks, "/exceptions"),
            ("Quarantined HR rows", self.quarantined_rows, "/exceptions"),
            ("Held imports", self.held_imports, "/exceptions"),
            ("Reconciliation findings", self.reconciliation_findings, "/exceptions"),
        ]

    @property
    def total(self) -> int:
        return sum(n for _, n, _ in self.as_rows())


@dataclass(frozen=True, slots=True)
class Dashboard:
    ods_code: str
    organisation: str
    report: BenefitsReport
    exceptions: Exceptions
    baseline: Baseline


def baseline_of(settings: Settings) -> Baseline:
    return Baseline(
        wte=settings.benefits_baseline_wte,
        cost_gbp=settings.benefits_baseline_cost_gbp,
        staff=settings.benefits_baseline_staff,
        hours_per_wte=settings.benefits_hours_per_wte,
    )


def default_period(today: dt.date, days: int = DEFAULT_DAYS) -> tuple[dt.date, dt.date]:
    return today - dt.timedelta(days=days - 1), today


def _utc(value: dt.datetime) -> dt.datetime:
    # SQLite hands back naive timestamps, stored in UTC.
    return value if value.tzinfo is not None else value.replace(tzinfo=dt.UTC)


def _org_people(org_id: int) -> sa.Select[Any]:
    a = s.assignment
    return sa.select(a.c.person_id).where(a.c.organisation_id == org_id)


def _starters(
    conn: Connection, org_id: int, start: dt.date, end: dt.date, tz: str
) -> list[StarterFacts]:
    e, a = s.hr_event, s.assignment
    baseline_import = conn.scalar(
        sa.select(sa.func.min(e.c.import_id)).where(e.c.organisation_id == org_id)
    )
    not_baseline = e.c.import_id != (baseline_import if baseline_import is not None else -1)
    rows = conn.execute(
        sa.select(e.c.person_id, sa.func.min(e.c.recorded_at), sa.func.min(a.c.start_date))
        .select_from(
            e.join(
                a,
                sa.and_(
                    a.c.organisation_id == e.c.organisation_id,
                    a.c.assignment_number == e.c.assignment_number,
                ),
            )
        )
        .where(
            e.c.organisation_id == org_id,
            e.c.kind == "new",
            e.c.state == "applied",
            e.c.person_id.is_not(None),
            a.c.start_date.between(start, end),
            not_baseline,
        )
        .group_by(e.c.person_id)
    ).all()
    received = {int(p): (_utc(at), day) for p, at, day in rows}
    if not received:
        return []
    starters = (
        sa.select(e.c.person_id)
        .select_from(
            e.join(
                a,
                sa.and_(
                    a.c.organisation_id == e.c.organisation_id,
                    a.c.assignment_number == e.c.assignment_number,
                ),
            )
        )
        .where(
            e.c.organisation_id == org_id,
            e.c.kind == "new",
            e.c.state == "applied",
            a.c.start_date.between(start, end),
            not_baseline,
        )
    )
    op, task = s.operation, s.manual_task
    earliest = min(at for at, _ in received.values())
    ops = conn.execute(
        sa.select(
            op.c.person_id,
            s.target.c.key,
            op.c.status,
            op.c.created_at,
            op.c.completed_at,
            task.c.id.is_not(None).label("manual"),
        )
        .select_from(
            op.join(s.target, s.target.c.id == op.c.target_id).outerjoin(
                task, task.c.operation_id == op.c.id
            )
        )
        .where(
            op.c.person_id.in_(starters),
            op.c.kind.in_(_GRANTING),
            op.c.status != OperationStatus.CANCELLED.value,
            op.c.created_at >= earliest,
        )
    )
    systems: dict[int, dict[str, list[dt.datetime | None]]] = defaultdict(dict)
    manual: set[int] = set()
    for person_id, target, status, created_at, completed_at, is_manual in ops:
        got_at, start_date = received[person_id]
        created = _utc(created_at)
        until = max(
            local_instant(start_date + dt.timedelta(days=1), tz=tz),
            got_at + dt.timedelta(days=1),
        )
        if not got_at <= created < until:
            continue  # planned for something else: an earlier spell, a later request
        done = (
            _utc(completed_at)
            if status == OperationStatus.SUCCEEDED.value and completed_at is not None
            else None
        )
        systems[person_id].setdefault(target, []).append(done)
        if is_manual:
            manual.add(person_id)
    facts = []
    for person_id, (got_at, start_date) in sorted(received.items()):
        ready: dict[str, dt.datetime | None] = {}
        for target, times in systems.get(person_id, {}).items():
            ready[target] = None if None in times else max(t for t in times if t is not None)
        facts.append(StarterFacts(person_id, got_at, start_date, ready, person_id in manual))
    return facts


def _operation_counts(
    conn: Connection, org_id: int, since: dt.datetime, until: dt.datetime
) -> tuple[int, int]:
    op, task = s.operation, s.manual_task
    is_manual = task.c.id.is_not(None)
    counts = {
        bool(flag): int(n)
        for flag, n in conn.execute(
            sa.select(is_manual.label("manual"), sa.func.count())
            .select_from(op.outerjoin(task, task.c.operation_id == op.c.id))
            .where(
                op.c.status == OperationStatus.SUCCEEDED.value,
                op.c.completed_at >= since,
                op.c.completed_at < until,
                op.c.person_id.in_(_org_people(org_id)),
            )
            .group_by(is_manual)
        )
    }
    return counts.get(False, 0), counts.get(True, 0)


def _headcount(conn: Connection, org_id: int, at: dt.date) -> int:
    a = s.assignment
    return int(
        conn.scalar(
            sa.select(sa.func.count(sa.distinct(a.c.person_id))).where(
                a.c.organisation_id == org_id,
                a.c.start_date <= at,
                sa.or_(a.c.end_date.is_(None), a.c.end_date >= at),
            )
        )
        or 0
    )


def _exceptions(conn: Connection, org_id: int, since: dt.datetime) -> Exceptions:
    op, task, imp, q, e = s.operation, s.manual_task, s.hr_import, s.hr_quarantine, s.hr_event
    people = _org_people(org_id)
    org_imports = sa.select(e.c.import_id).where(e.c.organisation_id == org_id)
    count = sa.func.count()
    parked = conn.scalar(
        sa.select(count)
        .select_from(op)
        .where(op.c.status == OperationStatus.PARKED.value, op.c.person_id.in_(people))
    )
    tasks = conn.scalar(
        sa.select(count)
        .select_from(task.join(op, op.c.id == task.c.operation_id))
        .where(task.c.status == "open", op.c.person_id.in_(people))
    )
    quarantined = conn.scalar(
        sa.select(count)
        .select_from(q.join(imp, imp.c.id == q.c.import_id))
        .where(
            q.c.severity == "rejected",
            imp.c.started_at >= since,
            imp.c.id.in_(org_imports),
        )
    )
    held = conn.scalar(
        sa.select(count).select_from(imp).where(imp.c.status == "held", imp.c.id.in_(org_imports))
    )
    run, f = s.reconciliation_run, s.reconciliation_finding
    latest = sa.select(sa.func.max(run.c.id)).group_by(run.c.target_id)
    # Orphan accounts belong to no person, so to no organisation: every viewer sees them.
    findings = conn.scalar(
        sa.select(count)
        .select_from(f)
        .where(f.c.run_id.in_(latest), sa.or_(f.c.person_id.is_(None), f.c.person_id.in_(people)))
    )
    return Exceptions(
        int(parked or 0), int(tasks or 0), int(quarantined or 0), int(held or 0), int(findings or 0)
    )


def organisation_id(engine: Engine, ods_code: str) -> tuple[int, str] | None:
    o = s.organisation
    with engine.connect() as conn:
        row = conn.execute(sa.select(o.c.id, o.c.name).where(o.c.ods_code == ods_code)).first()
    return (int(row.id), str(row.name)) if row else None


def dashboard(
    engine: Engine,
    ods_code: str,
    start: dt.date,
    end: dt.date,
    *,
    now: dt.datetime,
    baseline: Baseline = Baseline(),
    tz: str = "Europe/London",
) -> Dashboard | None:
    """Every figure for one organisation (None when there is no such organisation)."""
    if end < start:
        raise ValueError("the period ends before it starts")
    if (end - start).days + 1 > MAX_DAYS:
        raise ValueError(f"the period is longer than {MAX_DAYS} days")
    found = organisation_id(engine, ods_code)
    if found is None:
        return None
    org_id, name = found
    since = local_instant(start, tz=tz)
    until = local_instant(end + dt.timedelta(days=1), tz=tz)
    with engine.connect() as conn:
        starters = _starters(conn, org_id, start, end, tz)
        automated, manual = _operation_counts(conn, org_id, since, until)
        headcount = _headcount(conn, org_id, end)
        exceptions = _exceptions(conn, org_id, since)
    report = compute(
        starters,
        automated=automated,
        manual=manual,
        headcount=headcount,
        period_from=start,
        period_to=end,
        now=now,
        baseline=baseline,
        timezone=tz,
    )
    return Dashboard(ods_code, name, report, exceptions, baseline)
