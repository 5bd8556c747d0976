"""Executing operations as jobs of a task engine (procrastinate), on one machine or several.

The ledger (``operation``) stays the truth: what to send, in which order, with how many
attempts. procrastinate only decides *who works which slice when*. Its jobs live in the same
PostgreSQL database as PASA (``procrastinate_*`` tables), so scale-out needs no other server:
start ``pasa worker`` on as many machines as wanted, all pointing at the same database.

* A **drain job** (task ``pasa.drain``, function :func:`drain`) runs the ordinary worker,
  :func:`pasa.engine.worker.run_pending`, for one partition ``k`` of ``n`` of one target:
  the accounts of people whose id is ``k`` modulo ``n``. Every operation of one account falls
  in one partition, so partitions can run at the same time on different machines without
  disturbing per-account order; each job carries the procrastinate ``lock``
  ``pasa.drain:<target>:<k>/<n>`` (one job of a partition runs at a time) and the same
  ``queueing_lock`` (a partition is never queued twice).
* ``n`` is the target's ``concurrency`` setting (default 4): at most that many jobs work the
  target at once. A paced target (``rate_per_minute``) is drained by one job at a time, so
  its limit holds across every worker. A paused target gets no jobs; a job that finds its
  target paused does nothing (the worker skips paused targets).
* A job works at most :data:`BATCH` operations and then queues its partition again (behind
  any other waiting job), so a large backlog is shared out fairly between targets and
  workers. A failing target's job stops at the worker's circuit breaker and is not queued
  again; the next tick tries it. Other targets have their own jobs: one failing target never
  blocks the others.
* The periodic task ``pasa.tick`` (every minute, deferred once per minute whichever worker
  defers it) runs the scheduler's pre-steps and plan (:func:`pasa.service.scheduler.prepare`,
  unless the workers run with ``--no-plan``) and then :func:`dispatch`: one drain job for
  each partition of each unpaused target that has operations due. Operations retried later
  (``not_before``) are picked up by the first tick after they fall due.
* The periodic task ``pasa.retry_stalled`` (every minute) puts back the jobs of a worker
  that died without stopping (SIGKILL, power loss): procrastinate workers send heartbeats,
  and a ``doing`` job whose worker's heartbeat is older than :data:`STALLED_AFTER` seconds
  is retried (procrastinate's documented recipe). The batch that worker had in hand was
  never committed; it is sent again (connectors are idempotent), so nothing is lost.

The embedded default (SQLite, and ``pasa worker --once`` on any database) calls the same
task function in-process, sequentially: :func:`drain` over every target
(:func:`pasa.service.scheduler.tick`). See ``docs/architecture.md`` ("Executing operations:
procrastinate") and ``docs/operations.md``.
"""

from __future__ import annotations

import datetime as dt
import os
import socket
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import procrastinate
import sqlalchemy as sa
import structlog
from procrastinate import exceptions as pexc
from procrastinate.job_context import JobContext
from procrastinate.jobs import Status
from procrastinate.schema import SchemaManager
from sqlalchemy.engine import Engine

from pasa.audit import log as audit
from pasa.clock import SystemClock
from pasa.clock import now as _clock_now
from pasa.config import get_settings
from pasa.connectors.base import Connector
from pasa.connectors.registry import build_connector, concurrency, rate_per_minute
from pasa.domain.errors import ConfigurationError, NotFoundError, PasaError
from pasa.domain.operations import OperationStatus
from pasa.engine.worker import ACTOR, WorkerReport, run_pending
from pasa.store import schema as s
from pasa.store.db import normalise_url

log = structlog.get_logger(__name__)

QUEUE = "pasa"
# Operations one drain job works before it queues its partition again.
BATCH = 500
# A running job whose worker has sent no heartbeat for this long is retried (seconds); the
# workers send one every HEARTBEAT seconds.
HEARTBEAT = 10.0
STALLED_AFTER = 60.0
# The periodic tasks are fetched before drain jobs (procrastinate: higher first).
_PERIODIC_PRIORITY = 10
# Serialises the idempotent creation of procrastinate's tables (pg_advisory_xact_lock key).
_SCHEMA_LOCK = 7306


# --- the task functions (the same in-process and in procrastinate jobs) -------------------


@dataclass(frozen=True, slots=True)
class Drain:
    """Partition ``k`` of ``n`` of one target: one drain job."""

    target: str
    k: int = 0
    n: int = 1

    @property
    def lock(self) -> str:
        return f"pasa.drain:{self.target}:{self.k}/{self.n}"

    def __str__(self) -> str:
        return f"{self.target} {self.k}/{self.n}"


def partitions(target_key: str, settings: Mapping[str, Any]) -> int:
    """How many drain jobs may work a target at once (1 for a paced target)."""
    n = concurrency(target_key, settings)
    return 1 if rate_per_minute(target_key, settings) is not None else n


def _connectors(engine: Engine, target_key: str | None) -> dict[str, Connector]:
    query = sa.select(s.target.c.key, s.target.c.connector, s.target.c.settings)
    if target_key is not None:
        query = query.where(s.target.c.key == target_key)
    with engine.connect() as conn:
        rows = conn.execute(query).all()
    return {r.key: build_connector(r.key, r.connector, dict(r.settings or {})) for r in rows}


def drain(
    engine: Engine,
    target_key: str | None = None,
    k: int = 0,
    n: int = 1,
    *,
    now: Callable[[], dt.datetime] | None = None,
    max_attempts: int | None = None,
    limit: int | None = None,
    actor: str = ACTOR,
    progress: Callable[[int], None] | None = None,
) -> WorkerReport:
    """Execute the due operations of partition ``k`` of ``n`` of ``target_key``.

    ``target_key=None`` works every target (the in-process tick). The work itself is
    :func:`pasa.engine.worker.run_pending`: claiming, per-account order, retries, parking,
    pacing and paused targets are all its rules.
    """
    connectors = _connectors(engine, target_key)
    try:
        return run_pending(
            engine,
            connectors,
            now=now,
            max_attempts=max_attempts if max_attempts is not None else get_settings().max_attempts,
            limit=limit,
            actor=actor,
            progress=progress,
            partition=None if n == 1 else (k, n),
        )
    finally:
        for connector in connectors.values():
            connector.close()


def _utc(value: dt.datetime) -> dt.datetime:
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


def due_drains(engine: Engine, now: dt.datetime | None = None) -> list[Drain]:
    """The partitions that have operations due now, of every unpaused target.

    A target whose ``concurrency`` or ``rate_per_minute`` setting is invalid is logged and
    left out: it must not stop the others.
    """
    when = _utc(now or _clock_now())
    drains: list[Drain] = []
    with engine.connect() as conn:
        targets = conn.execute(
            sa.select(s.target.c.id, s.target.c.key, s.target.c.settings)
            .where(
                s.target.c.paused.is_(False),
                sa.exists().where(
                    s.operation.c.target_id == s.target.c.id,
                    s.operation.c.status == OperationStatus.PENDING,
                ),
            )
            .order_by(s.target.c.key)
        ).all()
        for t in targets:
            try:
                n = partitions(t.key, t.settings or {})
            except ConfigurationError as exc:
                log.error("tasks.target_misconfigured", target=t.key, error=str(exc))
                continue
            part = (s.operation.c.person_id % n).label("part")
            rows = conn.execute(
                sa.select(
                    part,
                    sa.func.count().label("total"),
                    sa.func.count(s.operation.c.not_before).label("later"),
                    sa.func.min(s.operation.c.not_before).label("soonest"),
                )
                .where(
                    s.operation.c.target_id == t.id,
                    s.operation.c.status == OperationStatus.PENDING,
                )
                .group_by(part)
                .order_by(part)
            ).all()
            for r in rows:
                if r.total > r.later or _utc(r.soonest) <= when:
                    drains.append(Drain(t.key, int(r.part), n))
    return drains


@dataclass(frozen=True, slots=True)
class DispatchReport:
    deferred: tuple[Drain, ...] = ()
    # Partitions that already had a job waiting (queueing lock): nothing added.
    already_queued: tuple[Drain, ...] = ()

    def __str__(self) -> str:
        return (
            f"{len(self.deferred)} drain jobs deferred, "
            f"{len(self.already_queued)} partitions already queued"
        )


def defer_drains(drains: list[Drain]) -> DispatchReport:
    """Queue one job per partition; a partition with a job already waiting is left alone."""
    deferred: list[Drain] = []
    queued: list[Drain] = []
    for d in drains:
        try:
            drain_job.configure(lock=d.lock, queueing_lock=d.lock).defer(
                target=d.target, k=d.k, n=d.n
            )
        except pexc.AlreadyEnqueued:
            queued.append(d)
        else:
            deferred.append(d)
    return DispatchReport(tuple(deferred), tuple(queued))


def dispatch(engine: Engine, now: dt.datetime | None = None) -> DispatchReport:
    """Defer a drain job for every partition with due operations (needs an open :data:`app`)."""
    report = defer_drains(due_drains(engine, now))
    log.info(
        "tasks.dispatch", deferred=len(report.deferred), already_queued=len(report.already_queued)
    )
    return report


# --- pausing ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TargetState:
    key: str
    name: str
    connector: str
    paused: bool
    concurrency: int | None
    rate_per_minute: float | None
    pending: int


def set_paused(engine: Engine, key: str, paused: bool, *, actor: str) -> bool:
    """Pause (or resume) a target, audited; return whether anything changed."""
    with engine.begin() as conn:
        row = conn.execute(sa.select(s.target.c.id, s.target.c.paused).where(s.target.c.key == key))
        found = row.first()
        if found is None:
            known = ", ".join(
                conn.execute(sa.select(s.target.c.key).order_by(s.target.c.key)).scalars()
            )
            raise NotFoundError(f"no target '{key}' (targets: {known or 'none'})")
        if found.paused == paused:
            return False
        conn.execute(s.target.update().where(s.target.c.id == found.id).values(paused=paused))
        audit.append(
            conn,
            actor=actor,
            action="target.paused" if paused else "target.resumed",
            subject_type="target",
            subject_id=key,
            details={"target": key},
        )
    return True


def list_targets(engine: Engine) -> list[TargetState]:
    pending = (
        sa.select(sa.func.count())
        .where(
            s.operation.c.target_id == s.target.c.id,
            s.operation.c.status == OperationStatus.PENDING,
        )
        .scalar_subquery()
    )
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(
                s.target.c.key,
                s.target.c.name,
                s.target.c.connector,
                s.target.c.paused,
                s.target.c.settings,
                pending.label("pending"),
            ).order_by(s.target.c.key)
        ).all()
    states = []
    for r in rows:
        settings = r.settings or {}
        try:
            n: int | None = partitions(r.key, settings)
            rate = rate_per_minute(r.key, settings)
        except ConfigurationError:
            n, rate = None, None
        states.append(
            TargetState(r.key, r.name, r.connector, bool(r.paused), n, rate, int(r.pending))
        )
    return states


# --- procrastinate: the app, its connection and its tables ---------------------------------


def conninfo(database_url: str) -> str:
    """A libpq connection string for PASA's (PostgreSQL) database URL."""
    url = sa.engine.make_url(normalise_url(database_url))
    if url.get_backend_name() != "postgresql":
        raise ConfigurationError(
            "procrastinate workers need PostgreSQL (PASA_DATABASE_URL=postgresql://...); "
            "on SQLite run `pasa worker --in-process`"
        )
    return str(url.set(drivername="postgresql").render_as_string(hide_password=False))


def make_connector(database_url: str, *, pool_size: int = 4) -> procrastinate.PsycopgConnector:
    return procrastinate.PsycopgConnector(
        conninfo=conninfo(database_url), min_size=1, max_size=max(pool_size, 2)
    )


# The connector is replaced by the database's own when the app is used (:func:`using`,
# :func:`run_worker`); this placeholder is never opened.
app = procrastinate.App(connector=procrastinate.PsycopgConnector(), import_paths=[__name__])


def ensure_schema(engine: Engine) -> bool:
    """Create procrastinate's tables unless they exist; return whether they were created.

    Safe when several workers start at once: the check and the creation run under one
    advisory lock, in one transaction.
    """
    if engine.dialect.name != "postgresql":
        raise ConfigurationError("procrastinate's job tables need PostgreSQL")
    with engine.begin() as conn:
        conn.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": _SCHEMA_LOCK})
        if conn.execute(sa.text("SELECT to_regclass('procrastinate_jobs')")).scalar() is not None:
            return False
        # The schema is many statements; psycopg runs them at once when given no parameters.
        raw: Any = conn.connection.driver_connection
        raw.execute(SchemaManager.get_schema())
    log.info("tasks.schema_created")
    return True


@contextmanager
def using(database_url: str) -> Iterator[procrastinate.App]:
    """The app, connected (synchronously) to PASA's database: to defer jobs from outside."""
    with app.replace_connector(make_connector(database_url)):
        app.open()
        try:
            yield app
        finally:
            app.close()


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def run_worker(
    engine: Engine,
    database_url: str,
    *,
    concurrency: int = 1,
    plan: bool = True,
    name: str | None = None,
    wait: bool = True,
) -> None:
    """Run a procrastinate worker until stopped (SIGINT/SIGTERM finish the jobs in hand)."""
    ensure_schema(engine)
    with app.replace_connector(make_connector(database_url, pool_size=concurrency + 3)):
        app.run_worker(
            name=name or worker_name(),
            concurrency=concurrency,
            wait=wait,
            additional_context={"plan": plan},
            update_heartbeat_interval=HEARTBEAT,
            stalled_worker_timeout=STALLED_AFTER,
            delete_jobs="successful",
        )


_engines: dict[str, Engine] = {}
_engines_lock = threading.Lock()


def _engine() -> Engine:
    """The PASA database engine of this worker process (from ``PASA_DATABASE_URL``)."""
    from pasa.store.db import make_engine

    url = get_settings().database_url
    with _engines_lock:
        if url not in _engines:
            _engines[url] = make_engine(url)
        return _engines[url]


def _actor(context: JobContext) -> str:
    return f"{ACTOR}:{context.worker_name}" if context.worker_name else ACTOR


@app.task(name="pasa.drain", queue=QUEUE, pass_context=True)
def drain_job(context: JobContext, target: str, k: int, n: int) -> dict[str, int]:
    """A procrastinate job: :func:`drain` for one partition, then queue it again if needed."""
    engine = _engine()
    with engine.connect() as conn:
        settings = conn.execute(
            sa.select(s.target.c.settings).where(s.target.c.key == target)
        ).scalar()
    try:
        paced = settings is not None and rate_per_minute(target, settings) is not None
        report = drain(engine, target, k, n, limit=None if paced else BATCH, actor=_actor(context))
    except PasaError as exc:  # a misconfigured target: fail this job only, visibly
        log.error("tasks.drain_failed", target=target, partition=f"{k}/{n}", error=str(exc))
        raise
    more = report.deferred > 0 and not report.circuit_open_targets
    if more and report.executed >= BATCH:
        defer_drains([Drain(target, k, n)])
    log.info(
        "tasks.drain",
        target=target,
        partition=f"{k}/{n}",
        succeeded=report.succeeded,
        retried=report.retried,
        parked=report.parked,
        requeued=more,
    )
    return {"executed": report.executed, "succeeded": report.succeeded}


@app.periodic(cron="* * * * *", periodic_id="pasa.tick")
@app.task(
    name="pasa.tick",
    queue=QUEUE,
    pass_context=True,
    lock="pasa.tick",
    queueing_lock="pasa.tick",
    priority=_PERIODIC_PRIORITY,
)
def tick_job(context: JobContext, timestamp: int) -> None:
    """Every minute: the scheduler's pre-steps and plan, then a drain job per due partition."""
    from pasa.service import scheduler

    engine = _engine()
    plan = bool(context.additional_context.get("plan", True))
    prepared = scheduler.prepare(engine, SystemClock(), plan=plan)
    report = dispatch(engine)
    log.info(
        "tasks.tick",
        at=prepared.at.isoformat(),
        planned=prepared.planned,
        failed_steps=[s.name for s in prepared.steps if s.error is not None],
        deferred=len(report.deferred),
    )


@app.periodic(cron="* * * * *", periodic_id="pasa.retry_stalled")
@app.task(
    name="pasa.retry_stalled",
    queue=QUEUE,
    pass_context=True,
    queueing_lock="pasa.retry_stalled",
    priority=_PERIODIC_PRIORITY,
)
async def retry_stalled_jobs(context: JobContext, timestamp: int) -> int:
    """Put back the running jobs of workers that stopped sending heartbeats."""
    manager = context.app.job_manager
    retried = 0
    for job in await manager.get_stalled_jobs(seconds_since_heartbeat=STALLED_AFTER):
        try:
            await manager.retry_job(job)
            retried += 1
        except pexc.UniqueViolation:
            # The same partition is already queued again: that job does the work.
            await manager.finish_job(job, status=Status.FAILED, delete_job=False)
        log.warning("tasks.stalled_job", job_id=job.id, task=job.task_name, lock=job.lock)
    return retried
