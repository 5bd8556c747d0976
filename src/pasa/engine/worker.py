"""The in-process worker: carries pending operations from the ledger to the connectors.

Rules (each one is a test in ``tests/engine/test_worker.py``):

* Targets are worked one after another, and a failing target never blocks the others: its
  failures are recorded on its own operations and the worker moves on.
* Per account, operations run in ledger order: an operation waits while an earlier operation
  of the same account on the same target has not succeeded (a failed create holds back that
  account's memberships, and only that account's).
* :class:`~pasa.connectors.base.TransientError` (and connection errors) → retried later:
  ``attempts`` + 1, ``not_before`` pushed back exponentially with jitter, ``last_error``
  recorded; after ``max_attempts`` the operation is *parked*, visibly, with its reason.
  :class:`~pasa.connectors.base.PermanentError` (incl. conflicts, not-found) parks at once.
* :class:`~pasa.connectors.base.ManualFulfilment` → a ``manual_task`` row and status
  ``waiting_manual``.
* Paused targets are skipped. Every outcome is committed in its own transaction, with its
  audit entry, before the next operation starts — a killed worker loses at most the
  operation in hand, which is re-sent (connectors are idempotent).
* Safe to run concurrently on PostgreSQL: each operation is claimed with
  ``SELECT ... FOR UPDATE SKIP LOCKED`` and re-checked inside the claiming transaction.
* Pacing: a target whose settings carry ``rate_per_minute`` gets at most that many operations
  per minute (a token bucket per target, one token every ``60 / rate`` seconds, driven by the
  injectable ``now`` and ``sleep``). The worker waits for a token rather than skipping, so
  one run still drains the target, slowly; the wait is reported per target.
* A ``rename`` that succeeds changes the account's recorded username in the same
  transaction as the success record; later operations of that account use the new name.
"""

from __future__ import annotations

import datetime as dt
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from pasa.audit import log as audit
from pasa.connectors.base import (
    Capability,
    Connector,
    ConnectorError,
    ManualFulfilment,
    PermanentError,
    TransientError,
    create_attributes,
    membership_of,
    update_changes,
)
from pasa.connectors.manual import describe_task
from pasa.connectors.registry import rate_per_minute
from pasa.domain.operations import OperationKind, OperationStatus
from pasa.engine.ledger import OPEN_STATUSES
from pasa.store.schema import account, manual_task, operation, target

ACTOR = "worker"
_PAGE = 1000

_NEEDS: dict[OperationKind, Capability] = {
    OperationKind.CREATE_ACCOUNT: Capability.CREATE,
    OperationKind.RENAME: Capability.RENAME,
    OperationKind.UPDATE_ATTRIBUTES: Capability.UPDATE,
    OperationKind.ENABLE: Capability.ENABLE_DISABLE,
    OperationKind.DISABLE: Capability.ENABLE_DISABLE,
    OperationKind.DELETE: Capability.DELETE,
    OperationKind.ADD_MEMBERSHIP: Capability.MEMBERSHIPS,
    OperationKind.REMOVE_MEMBERSHIP: Capability.MEMBERSHIPS,
}


@dataclass
class TargetReport:
    succeeded: int = 0
    waiting_manual: int = 0
    retried: int = 0
    parked: int = 0
    # Seconds spent waiting for the target's rate limit (``rate_per_minute``).
    waited: float = 0.0


@dataclass
class WorkerReport:
    succeeded: int = 0
    waiting_manual: int = 0
    retried: int = 0
    parked: int = 0
    skipped_paused: int = 0
    # Due operations held back behind an earlier, unfinished operation of the same account.
    blocked: int = 0
    # Due operations not tried this run: their target kept failing (circuit open) or the
    # run's ``limit`` was reached.
    deferred: int = 0
    # Targets with pending operations but no connector supplied to this run.
    unconfigured_targets: list[str] = field(default_factory=list)
    circuit_open_targets: list[str] = field(default_factory=list)
    by_target: dict[str, TargetReport] = field(default_factory=dict)

    @property
    def executed(self) -> int:
        return self.succeeded + self.waiting_manual + self.retried + self.parked

    @property
    def waited(self) -> dict[str, float]:
        """Seconds spent waiting for each paced target's rate limit (paced targets only)."""
        return {key: t.waited for key, t in self.by_target.items() if t.waited > 0}

    def __str__(self) -> str:
        parts = [f"{self.succeeded:,} succeeded"]
        for count, words in (
            (self.waiting_manual, "became manual tasks"),
            (self.retried, "will be retried"),
            (self.parked, "parked (see `pasa ops list --status parked`)"),
            (self.blocked, "wait behind an earlier operation of the same account"),
            (self.deferred, "deferred"),
            (self.skipped_paused, "skipped (target paused)"),
        ):
            if count:
                parts.append(f"{count:,} {words}")
        if self.circuit_open_targets:
            parts.append("failing targets left alone: " + ", ".join(self.circuit_open_targets))
        if self.unconfigured_targets:
            parts.append("targets without a connector: " + ", ".join(self.unconfigured_targets))
        if self.waited:
            parts.append(
                "paced: "
                + ", ".join(f"{key} waited {secs:,.1f}s" for key, secs in self.waited.items())
            )
        return "; ".join(parts)


def _utc(value: dt.datetime) -> dt.datetime:
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


def _due(not_before: dt.datetime | None, now: dt.datetime) -> bool:
    return not_before is None or _utc(not_before) <= now


@dataclass
class _Bucket:
    """A token bucket of one token: the next send may start at ``next_at``."""

    interval: dt.timedelta
    next_at: dt.datetime | None = None


@dataclass
class _Run:
    engine: Engine
    clock: Callable[[], dt.datetime]
    max_attempts: int
    rng: random.Random
    backoff_base: float
    backoff_cap: float
    circuit_breaker: int
    actor: str
    limit: int | None
    progress: Callable[[int], None] | None
    report: WorkerReport
    sleep: Callable[[float], None] = time.sleep
    # (k, n): only operations of people with person_id % n == k. Every operation of one
    # account falls in one partition, so partitions can run in parallel in any order.
    partition: tuple[int, int] | None = None

    def in_partition(self) -> sa.ColumnElement[bool]:
        if self.partition is None:
            return sa.true()
        k, n = self.partition
        return (operation.c.person_id % n) == k

    def now(self) -> dt.datetime:
        return _utc(self.clock())

    def room(self) -> bool:
        return self.limit is None or self.report.executed < self.limit

    def pace(self, bucket: _Bucket | None, counts: TargetReport) -> _Bucket | None:
        """Wait (by ``sleep``) for the paced target's next token; return the token taken."""
        if bucket is None:
            return None
        taken = _Bucket(bucket.interval, bucket.next_at)
        now = self.now()
        wait = 0.0 if bucket.next_at is None else (bucket.next_at - now).total_seconds()
        if wait > 0:
            self.sleep(wait)
            counts.waited += wait
            now = bucket.next_at or now
        bucket.next_at = now + bucket.interval
        return taken

    def backoff(self, attempts: int, retry_after: float | None) -> dt.timedelta:
        seconds = min(self.backoff_base * 2 ** max(attempts - 1, 0), self.backoff_cap)
        if retry_after is not None:
            seconds = max(seconds, retry_after)
        return dt.timedelta(seconds=seconds * (1 + 0.25 * self.rng.random()))


def run_pending(
    engine: Engine,
    connectors: Mapping[str, Connector],
    *,
    now: Callable[[], dt.datetime] | None = None,
    max_attempts: int = 5,
    limit: int | None = None,
    progress: Callable[[int], None] | None = None,
    actor: str = ACTOR,
    rng: random.Random | None = None,
    backoff_base: float = 30.0,
    backoff_cap: float = 3600.0,
    circuit_breaker: int = 10,
    sleep: Callable[[float], None] = time.sleep,
    partition: tuple[int, int] | None = None,
) -> WorkerReport:
    """Execute every due pending operation once; return what happened.

    ``connectors`` maps target key to connector. ``circuit_breaker`` consecutive transient
    failures on one target stop that target for this run (its remaining operations are
    counted as deferred and tried on the next run). A target with ``rate_per_minute`` in its
    settings is paced: the run waits (``sleep``, in seconds) for its tokens. ``partition``
    ``(k, n)`` limits the run to the accounts of people whose id is ``k`` modulo ``n``.
    """
    if partition is not None and not 0 <= partition[0] < partition[1]:
        raise ValueError(f"partition {partition} must be (k, n) with 0 <= k < n")
    run = _Run(
        engine=engine,
        clock=now or (lambda: dt.datetime.now(dt.UTC)),
        max_attempts=max_attempts,
        rng=rng or random.Random(),
        backoff_base=backoff_base,
        backoff_cap=backoff_cap,
        circuit_breaker=circuit_breaker,
        actor=actor,
        limit=limit,
        progress=progress,
        report=WorkerReport(),
        sleep=sleep,
        partition=partition,
    )
    with engine.connect() as conn:
        targets = conn.execute(
            sa.select(target.c.id, target.c.key, target.c.paused, target.c.settings)
            .where(
                sa.exists().where(
                    operation.c.target_id == target.c.id,
                    operation.c.status == OperationStatus.PENDING,
                    run.in_partition(),
                )
            )
            .order_by(target.c.key)
        ).all()
    for t in targets:
        if t.paused:
            run.report.skipped_paused += _count_due(run, t.id)
            continue
        connector = connectors.get(t.key)
        if connector is None:
            run.report.unconfigured_targets.append(t.key)
            run.report.deferred += _count_due(run, t.id)
            continue
        if not run.room():
            run.report.deferred += _count_due(run, t.id)
            continue
        rate = rate_per_minute(t.key, t.settings or {})
        _run_target(run, t.id, t.key, connector, rate)
    return run.report


def _count_due(run: _Run, target_id: int) -> int:
    now = run.now()
    with run.engine.connect() as conn:
        rows = conn.execute(
            sa.select(operation.c.not_before).where(
                operation.c.target_id == target_id,
                operation.c.status == OperationStatus.PENDING,
                run.in_partition(),
            )
        )
        return sum(1 for (nb,) in rows if _due(nb, now))


def _run_target(
    run: _Run, target_id: int, key: str, connector: Connector, rate: float | None = None
) -> None:
    counts = run.report.by_target.setdefault(key, TargetReport())
    bucket = _Bucket(dt.timedelta(seconds=60 / rate)) if rate else None
    blocked: set[int] = set()  # person ids with an unfinished earlier operation
    transient_in_a_row = 0
    after = 0
    start = run.now()
    while True:
        with run.engine.connect() as conn:
            page = conn.execute(
                sa.select(
                    operation.c.id,
                    operation.c.person_id,
                    operation.c.status,
                    operation.c.not_before,
                )
                .where(
                    operation.c.target_id == target_id,
                    operation.c.status.in_(OPEN_STATUSES),
                    operation.c.id > after,
                    run.in_partition(),
                )
                .order_by(operation.c.id)
                .limit(_PAGE)
            ).all()
        if not page:
            return
        after = page[-1].id
        for row in page:
            runnable = row.status == OperationStatus.PENDING and _due(row.not_before, start)
            if row.person_id in blocked or not runnable:
                if runnable:
                    run.report.blocked += 1
                blocked.add(row.person_id)
                continue
            if not run.room() or transient_in_a_row >= run.circuit_breaker:
                run.report.deferred += 1
                continue
            token = run.pace(bucket, counts)
            outcome = _execute(run, key, connector, row.id)
            if token is not None and bucket is not None and outcome not in _SENT:
                bucket.next_at = token.next_at  # nothing was sent: give the token back
            if outcome == "retried":
                transient_in_a_row += 1
                if transient_in_a_row == run.circuit_breaker:
                    run.report.circuit_open_targets.append(key)
            elif outcome in ("succeeded", "parked", "waiting_manual"):
                transient_in_a_row = 0
            if outcome == "blocked":
                run.report.blocked += 1
            if outcome in ("succeeded", "parked", "waiting_manual", "retried"):
                setattr(counts, outcome, getattr(counts, outcome) + 1)
                setattr(run.report, outcome, getattr(run.report, outcome) + 1)
                if run.progress is not None:
                    run.progress(run.report.executed)
            if outcome != "succeeded":
                blocked.add(row.person_id)


_SENT = frozenset({"succeeded", "parked", "waiting_manual", "retried"})


def _claim(conn: Connection, op_id: int) -> sa.Row[Any] | None:
    query = sa.select(operation).where(
        operation.c.id == op_id, operation.c.status == OperationStatus.PENDING
    )
    if conn.dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    return conn.execute(query).first()


def _execute(run: _Run, key: str, connector: Connector, op_id: int) -> str:
    """Run one operation; commit its outcome and audit entry. Returns the outcome."""
    with run.engine.begin() as conn:
        op = _claim(conn, op_id)
        if op is None:
            return "gone"  # another worker has it, or it changed state meanwhile
        if not _due(op.not_before, run.now()):
            return "not_due"
        earlier = conn.execute(
            sa.select(operation.c.id)
            .where(
                operation.c.target_id == op.target_id,
                operation.c.person_id == op.person_id,
                operation.c.id < op.id,
                operation.c.status.in_(OPEN_STATUSES),
            )
            .limit(1)
        ).first()
        if earlier is not None:
            return "blocked"
        acct = _account_of(conn, op)
        kind = OperationKind(op.kind)
        username = _current_username(conn, op, kind, acct)
        needed = _NEEDS[kind]
        if needed not in connector.capabilities:
            return _park(
                run,
                conn,
                op,
                key,
                username,
                f"the connector for {key} cannot do '{needed}' operations; carry it "
                "out by hand and cancel this operation",
            )
        try:
            external_id = _call(connector, kind, username, op.payload or {})
        except ManualFulfilment as signal:
            return _manual(run, conn, op, key, username, acct, signal)
        except TransientError as exc:
            return _retry(run, conn, op, key, username, str(exc), exc.retry_after)
        except ConnectorError as exc:
            return _park(run, conn, op, key, username, str(exc) or type(exc).__name__)
        except (OSError, TimeoutError) as exc:
            return _retry(run, conn, op, key, username, f"connection error: {exc}", None)
        except Exception as exc:  # a connector bug must not stop the other targets
            return _retry(
                run, conn, op, key, username, f"unexpected {type(exc).__name__}: {exc}", None
            )
        return _succeed(run, conn, op, key, username, acct, external_id, kind)


def _account_of(conn: Connection, op: sa.Row[Any]) -> sa.Row[Any] | None:
    if op.account_id is not None:
        where = account.c.id == op.account_id
    else:
        where = sa.and_(account.c.target_id == op.target_id, account.c.person_id == op.person_id)
    return conn.execute(sa.select(account).where(where)).first()


def _later_rename(conn: Connection, op: sa.Row[Any]) -> str | None:
    """The name the account's first unfinished rename recorded after ``op`` starts from."""
    name = conn.execute(
        sa.select(operation.c.username)
        .where(
            operation.c.target_id == op.target_id,
            operation.c.person_id == op.person_id,
            operation.c.kind == OperationKind.RENAME,
            operation.c.id > op.id,
            operation.c.status.in_(OPEN_STATUSES),
        )
        .order_by(operation.c.id)
        .limit(1)
    ).scalar()
    return None if name is None else str(name)


def _current_username(
    conn: Connection, op: sa.Row[Any], kind: OperationKind, acct: sa.Row[Any] | None
) -> str:
    """The name the account has in the target when ``op`` runs.

    The recorded username is PASA's intent: it already holds the new name of a rename that
    has not run yet. A rename names the account as it is (its own ``username``); an
    operation recorded before an unfinished rename uses the name that rename starts from;
    otherwise the recorded name (which a completed manual task may have corrected).
    """
    if kind is OperationKind.RENAME or acct is None:
        return str(op.username)
    if acct.username != op.username:
        later = _later_rename(conn, op)
        if later is not None:
            return later
    return str(acct.username)


def _call(
    connector: Connector, kind: OperationKind, username: str, payload: Mapping[str, Any]
) -> str | None:
    if kind is OperationKind.CREATE_ACCOUNT:
        external_id = connector.create(username, create_attributes(payload))
        if payload.get("enabled", True) is False:
            connector.disable(username)  # pre-provisioned: exists, cannot be used yet
        return external_id
    if kind is OperationKind.RENAME:
        connector.rename(username, _new_username(payload))
    elif kind is OperationKind.UPDATE_ATTRIBUTES:
        connector.update(username, update_changes(payload))
    elif kind is OperationKind.ENABLE:
        connector.enable(username)
    elif kind is OperationKind.DISABLE:
        connector.disable(username)
    elif kind is OperationKind.DELETE:
        connector.delete(username)
    elif kind is OperationKind.ADD_MEMBERSHIP:
        if Capability.VALIDITY_DATES in connector.capabilities:
            connector.add_member(
                username,
                *membership_of(payload),
                valid_from=_date_of(payload, "valid_from"),
                valid_to=_date_of(payload, "valid_to"),
            )
        else:
            connector.add_member(username, *membership_of(payload))
    elif kind is OperationKind.REMOVE_MEMBERSHIP:
        connector.remove_member(username, *membership_of(payload))
    return None


def _new_username(payload: Mapping[str, Any]) -> str:
    new = payload.get("new_username")
    if not new or not isinstance(new, str):
        raise PermanentError(f"a rename operation's payload needs 'new_username', got {payload}")
    return new


def _date_of(payload: Mapping[str, Any], name: str) -> dt.date | None:
    """An optional ISO date of a membership payload (``valid_from`` / ``valid_to``)."""
    value = payload.get(name)
    if value is None or value == "":
        return None
    if isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(str(value)[:10])
    except ValueError:
        raise PermanentError(f"membership {name} '{value}' is not an ISO date") from None


def _details(op: sa.Row[Any], key: str, username: str, **extra: Any) -> dict[str, Any]:
    return {
        "target": key,
        "kind": op.kind,
        "username": username,
        "plan_id": op.plan_id,
        "attempt": op.attempts + 1,
        **extra,
    }


def _audit(
    run: _Run,
    conn: Connection,
    action: str,
    op: sa.Row[Any],
    details: dict[str, Any],
    when: dt.datetime,
) -> None:
    audit.append(
        conn,
        actor=run.actor,
        action=action,
        subject_type="operation",
        subject_id=op.id,
        details=details,
        at=when,
    )


def _succeed(
    run: _Run,
    conn: Connection,
    op: sa.Row[Any],
    key: str,
    username: str,
    acct: sa.Row[Any] | None,
    external_id: str | None,
    kind: OperationKind | None = None,
) -> str:
    when = run.now()
    conn.execute(
        operation.update()
        .where(operation.c.id == op.id)
        .values(
            status=OperationStatus.SUCCEEDED,
            attempts=op.attempts + 1,
            completed_at=when,
            last_error=None,
            not_before=None,
        )
    )
    if external_id is not None and acct is not None:
        conn.execute(
            account.update()
            .where(account.c.id == acct.id)
            .values(external_id=external_id, updated_at=when)
        )
    extra: dict[str, Any] = {}
    if kind is OperationKind.RENAME:
        new_username = _new_username(op.payload or {})
        extra["new_username"] = new_username
        # Record the new name, unless a later rename (already recorded) supersedes it.
        if acct is not None and _later_rename(conn, op) is None:
            conn.execute(
                account.update()
                .where(account.c.id == acct.id, account.c.username != new_username)
                .values(username=new_username, updated_at=when)
            )
    _audit(
        run,
        conn,
        "operation.succeeded",
        op,
        _details(op, key, username, external_id=external_id, **extra),
        when,
    )
    return "succeeded"


def _retry(
    run: _Run,
    conn: Connection,
    op: sa.Row[Any],
    key: str,
    username: str,
    message: str,
    retry_after: float | None,
) -> str:
    attempts = op.attempts + 1
    if attempts >= run.max_attempts:
        return _park(run, conn, op, key, username, f"gave up after {attempts} attempts: {message}")
    when = run.now()
    not_before = when + run.backoff(attempts, retry_after)
    conn.execute(
        operation.update()
        .where(operation.c.id == op.id)
        .values(attempts=attempts, last_error=message, not_before=not_before)
    )
    _audit(
        run,
        conn,
        "operation.retry",
        op,
        _details(op, key, username, error=message, not_before=not_before.isoformat()),
        when,
    )
    return "retried"


def _park(
    run: _Run, conn: Connection, op: sa.Row[Any], key: str, username: str, message: str
) -> str:
    when = run.now()
    conn.execute(
        operation.update()
        .where(operation.c.id == op.id)
        .values(
            status=OperationStatus.PARKED,
            attempts=op.attempts + 1,
            last_error=message,
            not_before=None,
        )
    )
    _audit(run, conn, "operation.parked", op, _details(op, key, username, error=message), when)
    return "parked"


def _manual(
    run: _Run,
    conn: Connection,
    op: sa.Row[Any],
    key: str,
    username: str,
    acct: sa.Row[Any] | None,
    signal: ManualFulfilment,
) -> str:
    when = run.now()
    payload = dict(op.payload or {})
    attributes = dict(acct.attributes or {}) if acct is not None else {}
    if not attributes and op.kind == OperationKind.CREATE_ACCOUNT:
        attributes = create_attributes(payload)
    instructions = signal.instructions or describe_task(
        op.kind, system=signal.system, username=username, payload=payload, attributes=attributes
    )
    values = {
        "target_id": op.target_id,
        "assignee": signal.assignee,
        "instructions": instructions,
        "status": "open",
        "created_at": when,
        "due_at": when + dt.timedelta(hours=signal.sla_hours),
        "completed_at": None,
        "completed_by": None,
        "completion": None,
    }
    task_id = conn.execute(
        sa.select(manual_task.c.id).where(manual_task.c.operation_id == op.id)
    ).scalar()
    if task_id is None:
        task_id = conn.execute(
            manual_task.insert().values(operation_id=op.id, **values).returning(manual_task.c.id)
        ).scalar_one()
    else:  # the operation was retried after its task was cancelled: reopen the task
        conn.execute(manual_task.update().where(manual_task.c.id == task_id).values(values))
    conn.execute(
        operation.update()
        .where(operation.c.id == op.id)
        .values(
            status=OperationStatus.WAITING_MANUAL,
            attempts=op.attempts + 1,
            not_before=None,
            last_error=None,
        )
    )
    _audit(
        run,
        conn,
        "operation.manual",
        op,
        _details(
            op, key, username, task_id=task_id, assignee=signal.assignee, instructions=instructions
        ),
        when,
    )
    return "waiting_manual"
