"""Scheduled evaluation: one *tick* plans what today's HR record means and carries it out.

A tick takes the organisation-local date of the clock's "now" (``Europe/London`` by default,
so 23:30 UTC on 31 July in summer is already 1 August), runs the registered
:data:`PRE_STEPS` for that date, applies the plan (operations and recorded state, one
transaction) and runs the worker over every pending operation, in-process, through the same
task function the procrastinate workers run (:func:`pasa.engine.tasks.drain`).
``pasa worker --once`` and ``pasa worker --in-process --every SECONDS`` run ticks here; on
PostgreSQL ``pasa worker`` runs procrastinate workers, whose periodic task calls
:func:`prepare` and defers the execution as jobs (see ``docs/architecture.md``).

Other modules register pre-steps (rotation batches due today, lifecycle state recording,
credential handover preparation, scheduled reconciliation) by appending to
:data:`PRE_STEPS`. A pre-step takes ``(engine, local date, actor)`` and returns an optional
one-line summary; one that raises is logged and reported, and the tick carries on.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import structlog
from sqlalchemy.engine import Engine

from pasa.clock import Clock, local_date
from pasa.config import get_settings
from pasa.engine import tasks
from pasa.engine.worker import WorkerReport
from pasa.service import provisioning

log = structlog.get_logger(__name__)

PreStep = Callable[[Engine, dt.date, str], str | None]

# Run in order at the start of every tick, before planning.
PRE_STEPS: list[PreStep] = []


@dataclass(frozen=True, slots=True)
class StepResult:
    name: str
    summary: str | None = None
    error: str | None = None

    def __str__(self) -> str:
        if self.error is not None:
            return f"{self.name} FAILED: {self.error}"
        return f"{self.name}: {self.summary}" if self.summary else self.name


@dataclass(frozen=True, slots=True)
class TickReport:
    at: dt.date
    steps: tuple[StepResult, ...] = ()
    # ``None``: planning was not run this tick (``plan=False``).
    planned: int | None = None
    worker: WorkerReport = field(default_factory=WorkerReport)

    @property
    def failed_steps(self) -> tuple[StepResult, ...]:
        return tuple(s for s in self.steps if s.error is not None)

    def __str__(self) -> str:
        parts = [f"Tick as at {self.at.isoformat()}"]
        parts += [str(s) for s in self.steps if s.summary or s.error]
        if self.planned is not None:
            parts.append(f"planned {self.planned:,} operations")
        parts.append(f"worker: {self.worker}")
        return "; ".join(parts)


def _name(step: PreStep) -> str:
    return getattr(step, "__qualname__", None) or getattr(step, "__name__", None) or repr(step)


@dataclass(frozen=True, slots=True)
class Prepared:
    """What a tick did before execution: the local date, the pre-steps and the plan."""

    at: dt.date
    steps: tuple[StepResult, ...] = ()
    planned: int | None = None


def prepare(
    engine: Engine,
    clock: Clock,
    *,
    actor: str = "scheduler",
    tz: str | None = None,
    plan: bool = True,
) -> Prepared:
    """The first half of a tick: pre-steps and apply (unless ``plan=False``); no execution."""
    at = local_date(clock.now(), tz or get_settings().timezone)
    steps: list[StepResult] = []
    for step in list(PRE_STEPS):
        name = _name(step)
        try:
            steps.append(StepResult(name, step(engine, at, actor)))
        except Exception as exc:  # one failing step must not stop the tick
            log.exception("scheduler.pre_step_failed", step=name, at=at.isoformat())
            steps.append(StepResult(name, error=f"{type(exc).__name__}: {exc}"))
    planned: int | None = None
    if plan:
        planned = provisioning.apply(engine, at, actor=actor).operations
    return Prepared(at=at, steps=tuple(steps), planned=planned)


def tick(
    engine: Engine,
    clock: Clock,
    *,
    actor: str = "scheduler",
    tz: str | None = None,
    plan: bool = True,
    max_attempts: int | None = None,
) -> TickReport:
    """One scheduled evaluation: pre-steps, apply (unless ``plan=False``), execute.

    Execution runs in this process: :func:`pasa.engine.tasks.drain` over every target, the
    task function a procrastinate drain job runs for one partition of one target.
    """
    settings = get_settings()
    prepared = prepare(engine, clock, actor=actor, tz=tz, plan=plan)
    at, steps, planned = prepared.at, prepared.steps, prepared.planned
    worker = tasks.drain(
        engine,
        now=clock.now,
        max_attempts=max_attempts if max_attempts is not None else settings.max_attempts,
    )
    report = TickReport(at=at, steps=tuple(steps), planned=planned, worker=worker)
    log.info(
        "scheduler.tick",
        at=at.isoformat(),
        planned=planned,
        succeeded=worker.succeeded,
        parked=worker.parked,
        retried=worker.retried,
        failed_steps=len(report.failed_steps),
    )
    return report


def run(
    engine: Engine,
    clock: Clock,
    every: dt.timedelta,
    *,
    ticks: int | None = None,
    sleep: Callable[[float], None] = time.sleep,
    on_tick: Callable[[TickReport], None] | None = None,
    actor: str = "scheduler",
    tz: str | None = None,
    plan: bool = True,
) -> list[TickReport]:
    """Tick every ``every`` (measured from the start of each tick) for ``ticks`` ticks, or
    for ever when ``ticks`` is ``None``; return the reports (kept only when ``ticks`` is set).
    """
    if every <= dt.timedelta(0):
        raise ValueError("the interval between ticks must be more than zero")
    reports: list[TickReport] = []
    done = 0
    while ticks is None or done < ticks:
        started = clock.now()
        report = tick(engine, clock, actor=actor, tz=tz, plan=plan)
        done += 1
        if ticks is not None:
            reports.append(report)
        if on_tick is not None:
            on_tick(report)
        if ticks is not None and done >= ticks:
            break
        elapsed = (clock.now() - started).total_seconds()
        sleep(max(every.total_seconds() - elapsed, 0.0))
    return reports


# Built-in pre-steps (imported last: they import nothing from this module). Lifecycle states
# are recorded before new accounts get their day-one activation codes; targets due a
# scheduled reconciliation (``reconcile_every_hours``) are reconciled last.
from pasa.service.access_requests import request_housekeeping  # noqa: E402
from pasa.service.handover import credential_handovers  # noqa: E402
from pasa.service.lifecycle import lifecycle_states  # noqa: E402
from pasa.service.passport_issuer import passport_lifecycle  # noqa: E402
from pasa.service.reconcile_schedule import scheduled_reconciliations  # noqa: E402
from pasa.service.rotation import rotation_batches  # noqa: E402

PRE_STEPS.extend(
    [
        rotation_batches,
        lifecycle_states,
        credential_handovers,
        scheduled_reconciliations,
        passport_lifecycle,
        request_housekeeping,  # reminders, escalation, expiry; sends the email outbox
    ]
)
