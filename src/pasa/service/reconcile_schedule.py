"""Scheduled reconciliation: the scheduler pre-step that reconciles targets when they are due.

A target with the setting ``reconcile_every_hours`` (a positive number; see
:func:`pasa.connectors.registry.reconcile_every_hours`) is reconciled by a tick when it is
not paused and its last reconciliation run (``reconciliation_run``, on demand or scheduled)
started at least that many hours before the tick. The run is the same as ``pasa reconcile
TARGET`` with the target's own ``reconcile`` policy (report or correct): a run row, its
findings and a ``reconcile.run`` audit entry, by the tick's actor. Targets without the
setting are only reconciled on demand.

A target that fails (connector down, a bad setting) is logged, audited
(``reconcile.failed``) and named in the step's summary; the other targets and the tick carry
on. Its failed run (left without ``finished_at``) does not count as reconciled: it is tried
again at the first tick :data:`RETRY_AFTER` later (or after its interval, if shorter).

The time. Scheduler pre-steps receive the tick's organisation-local *date*, not its clock,
so the tick's instant is taken as the system clock's instant brought into that date
(:func:`tick_instant`): the real time when the tick runs on today's date (always so in
production), the start of the date when a test or demo travels forward to a later date (the
end of it when travelling back). Runs are stamped with that instant, so time travel moves
the schedule with it, a day at a time. :func:`reconcile_due` takes an explicit instant.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass

import sqlalchemy as sa
import structlog
from sqlalchemy.engine import Engine

from pasa import clock
from pasa.audit.log import append
from pasa.clock import local_instant
from pasa.config import get_settings
from pasa.connectors.registry import reconcile_every_hours
from pasa.engine.reconcile import ReconciliationReport, reconcile
from pasa.store import schema as s

log = structlog.get_logger(__name__)

EVERY_SETTING = "reconcile_every_hours"
# A failed (or still running) attempt holds the next one back this long.
RETRY_AFTER = dt.timedelta(hours=1)


@dataclass(frozen=True, slots=True)
class Outcome:
    """What the schedule did for one due target: a report, or the error that stopped it."""

    target: str
    report: ReconciliationReport | None = None
    error: str | None = None

    def __str__(self) -> str:
        if self.error is not None:
            return f"{self.target} ({self.error})"
        assert self.report is not None
        found = len(self.report.findings)
        text = f"{self.target} ({found:,} finding{'' if found == 1 else 's'}"
        if self.report.corrections:
            text += f", {self.report.corrections:,} corrections"
        return text + ")"


def _aware(value: dt.datetime) -> dt.datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=dt.UTC)


def tick_instant(at: dt.date, tz: str, real_now: dt.datetime | None = None) -> dt.datetime:
    """The system clock's instant (``real_now``) brought into the local date ``at``."""
    real_now = real_now or clock.now()
    start = local_instant(at, dt.time(0, 0), tz)
    end = local_instant(at + dt.timedelta(days=1), dt.time(0, 0), tz) - dt.timedelta(microseconds=1)
    return min(max(real_now, start), end)


def _starting_at(start: dt.datetime, then: Callable[[], dt.datetime]) -> Callable[[], dt.datetime]:
    """A clock that reads ``start`` once (the run's start), then ``then()``."""
    first = [start]

    def now() -> dt.datetime:
        return first.pop() if first else then()

    return now


def due_targets(engine: Engine, now: dt.datetime) -> list[tuple[str, str | None]]:
    """(target key, setting error or ``None``) for every unpaused target due at ``now``.

    A target whose ``reconcile_every_hours`` setting is invalid is always listed, with the
    error, so every tick says so until it is fixed.
    """
    t, r = s.target, s.reconciliation_run
    with engine.connect() as conn:
        targets = conn.execute(
            sa.select(t.c.id, t.c.key, t.c.settings).where(t.c.paused.is_(False)).order_by(t.c.key)
        ).all()
        finished = dict(
            conn.execute(
                sa.select(r.c.target_id, sa.func.max(r.c.started_at))
                .where(r.c.finished_at.is_not(None))
                .group_by(r.c.target_id)
            ).all()
        )
        attempted = dict(
            conn.execute(
                sa.select(r.c.target_id, sa.func.max(r.c.started_at))
                .where(r.c.finished_at.is_(None))
                .group_by(r.c.target_id)
            ).all()
        )
    due: list[tuple[str, str | None]] = []
    for target_id, key, settings in targets:
        settings = dict(settings or {})
        if EVERY_SETTING not in settings:
            continue
        try:
            hours = reconcile_every_hours(key, settings)
        except Exception as exc:  # a bad setting is reported, never fatal to the others
            due.append((key, str(exc)))
            continue
        if hours is None:
            continue
        every = dt.timedelta(hours=hours)
        last = finished.get(target_id)
        if last is not None and now - _aware(last) < every:
            continue
        tried = attempted.get(target_id)
        if tried is not None and now - _aware(tried) < min(every, RETRY_AFTER):
            continue
        due.append((key, None))
    return due


def reconcile_due(
    engine: Engine, now: dt.datetime, *, actor: str, at: dt.date | None = None
) -> list[Outcome]:
    """Reconcile every target due at ``now`` (its own policy); one failure stops no other.

    ``at`` is the "as at" date for leavers (default the local date of ``now``).
    """
    at = at or clock.local_date(now, get_settings().timezone)
    real_start = clock.now()

    def stamp() -> dt.datetime:  # the tick's instant, moving on as real time does
        return now + (clock.now() - real_start)

    outcomes: list[Outcome] = []
    for key, setting_error in due_targets(engine, now):
        if setting_error is not None:
            log.error("reconcile.schedule_setting_invalid", target=key, error=setting_error)
            outcomes.append(Outcome(key, error=f"ConfigurationError: {setting_error}"))
            continue
        # Every run starts at the tick's instant (when it was found due), so a target due
        # every 24 hours is due again at the same time of day, not a tick later each day.
        try:
            report = reconcile(engine, key, actor=actor, at=at, now=_starting_at(now, stamp))
        except Exception as exc:  # one target down must not stop the others
            error = f"{type(exc).__name__}: {exc}"
            log.exception("reconcile.scheduled_run_failed", target=key, at=at.isoformat())
            try:
                with engine.begin() as conn:
                    append(
                        conn,
                        actor=actor,
                        action="reconcile.failed",
                        subject_type="target",
                        subject_id=key,
                        details={"scheduled": True, "error": error},
                        at=stamp(),
                    )
            except Exception:  # the log line above is the record of last resort
                log.exception("reconcile.failure_not_audited", target=key)
            outcomes.append(Outcome(key, error=error))
            continue
        log.info(
            "reconcile.scheduled_run",
            target=key,
            run_id=report.run_id,
            policy=report.policy,
            counts=report.counts,
        )
        outcomes.append(Outcome(key, report=report))
    return outcomes


def summary(outcomes: list[Outcome]) -> str | None:
    """One line for the tick report (``None`` when nothing was due)."""
    if not outcomes:
        return None
    done = [o for o in outcomes if o.error is None]
    failed = [o for o in outcomes if o.error is not None]
    parts = []
    if done:
        parts.append(f"reconciled {', '.join(map(str, done))}")
    if failed:
        parts.append(f"reconciliation failed: {', '.join(map(str, failed))}")
    return "; ".join(parts)


def scheduled_reconciliations(engine: Engine, at: dt.date, actor: str) -> str | None:
    """The scheduler pre-step (``pasa.service.scheduler.PRE_STEPS``)."""
    now = tick_instant(at, get_settings().timezone)
    return summary(reconcile_due(engine, now, actor=actor, at=at))
