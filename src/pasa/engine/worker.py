"""The in-process worker: carries pending operations from the ledger to the connectors.

Rules (each one is a test in ``tests/engine/test_worker.py`` or
``tests/engine/test_worker_batches.py``):

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
* Paused targets are skipped.
* **Batches.** A target's due operations are claimed and committed in batches: one
  transaction claims up to ``batch_size`` operations (default :data:`BATCH_SIZE`), sends them
  one after another (a connector is called once per operation, in ledger order), and
  commits every outcome of the batch together: the operation rows, the account changes
  (external ids, renames), manual tasks, and the batch's audit entries as one multi-row
  insert (:func:`pasa.audit.log.append_many`). A batch also ends once it has been open for
  ``batch_seconds`` (default :data:`BATCH_SECONDS`, by the run's clock, pacing waits
  included), so a slow or paced target commits often; the operations it had claimed but not
  sent go to the next batch.
* **Crash safety.** Connector calls happen *before* their batch commits. A worker killed
  mid-batch (SIGKILL, power loss) loses the outcomes of that batch only: those operations
  are still pending in the ledger and are sent again by the next run — at most
  ``batch_size`` operations, each of which the connectors accept again (they are
  idempotent: a repeated create returns the same id, a repeated membership change is a
  no-op). An operation whose outcome was committed is never sent again. A worker stopped
  by an exception (Ctrl-C, ``SystemExit``) still commits the outcomes it has before the
  exception goes on; only the operation in hand is sent again.
* Safe to run concurrently on PostgreSQL: a batch's operations are claimed with
  ``SELECT ... FOR UPDATE SKIP LOCKED`` and re-checked inside the claiming transaction
  (still pending, due, no earlier open operation of the account outside the batch); an
  operation another worker holds is left to it.
* Pacing: a target whose settings carry ``rate_per_minute`` gets at most that many operations
  per minute (a token bucket per target, one token every ``60 / rate`` seconds, driven by the
  injectable ``now`` and ``sleep``). The worker waits for a token rather than skipping, so
  one run still drains the target, slowly; the wait is reported per target. Only an
  operation about to be sent takes a token.
* A ``rename`` that succeeds changes the account's recorded username in the same
  transaction as the success record; later operations of that account use the new name.
"""

from __future__ import annotations

import datetime as dt
import random
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from pasa.audit import log as audit
from pasa.clock import now as _clock_now
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
# Operations claimed and committed per transaction: also the most a killed worker re-sends.
BATCH_SIZE = 200
# A batch commits once it has been open this long (seconds, by the run's clock).
BATCH_SECONDS = 2.0
_CHUNK = 500  # ids per IN (...) list

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


def _chunks(items: Sequence[Any], size: int = _CHUNK) -> Iterable[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


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
    batch_size: int = BATCH_SIZE
    batch_seconds: float = BATCH_SECONDS

    def in_partition(self) -> sa.ColumnElement[bool]:
        if self.partition is None:
            return sa.true()
        k, n = self.partition
        return (operation.c.person_id % n) == k

    def now(self) -> dt.datetime:
        return _utc(self.clock())

    def room(self) -> bool:
        return self.limit is None or self.report.executed < self.limit

    def batch_cap(self) -> int:
        """Operations to claim for the next batch: never more than the run's limit allows."""
        if self.limit is None:
            return self.batch_size
        return max(1, min(self.batch_size, self.limit - self.report.executed))

    def wait_for(self, bucket: _Bucket | None) -> float:
        """Seconds until the paced target's next token (0 for an unpaced target)."""
        if bucket is None or bucket.next_at is None:
            return 0.0
        return max(0.0, (bucket.next_at - self.now()).total_seconds())

    def pace(self, bucket: _Bucket | None, counts: TargetReport) -> None:
        """Wait (by ``sleep``) for the paced target's next token and take it."""
        if bucket is None:
            return
        now = self.now()
        wait = 0.0 if bucket.next_at is None else (bucket.next_at - now).total_seconds()
        if wait > 0:
            self.sleep(wait)
            counts.waited += wait
            now = bucket.next_at or now
        bucket.next_at = now + bucket.interval

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
    batch_size: int = BATCH_SIZE,
    batch_seconds: float = BATCH_SECONDS,
) -> WorkerReport:
    """Execute every due pending operation once; return what happened.

    ``connectors`` maps target key to connector. ``circuit_breaker`` consecutive transient
    failures on one target stop that target for this run (its remaining operations are
    counted as deferred and tried on the next run). A target with ``rate_per_minute`` in its
    settings is paced: the run waits (``sleep``, in seconds) for its tokens. ``partition``
    ``(k, n)`` limits the run to the accounts of people whose id is ``k`` modulo ``n``.
    ``batch_size`` operations at most are claimed and committed per transaction, and a batch
    commits once it has been open ``batch_seconds``; a killed worker re-sends at most one
    batch (see the module docstring). ``progress`` is called with the running number of
    executed operations once their outcomes are committed.
    """
    if partition is not None and not 0 <= partition[0] < partition[1]:
        raise ValueError(f"partition {partition} must be (k, n) with 0 <= k < n")
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    run = _Run(
        engine=engine,
        clock=now or _clock_now,
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
        batch_size=batch_size,
        batch_seconds=batch_seconds,
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


# A row of the target's page of open operations: id, person_id, status, not_before.
_Candidate = Any


@dataclass
class _Target:
    """One target's work in this run: its connector, counts, pacing and failure streak."""

    id: int
    key: str
    connector: Connector
    counts: TargetReport
    bucket: _Bucket | None
    blocked: set[int] = field(default_factory=set)  # person ids with an unfinished operation
    transient_in_a_row: int = 0

    def circuit_open(self, run: _Run) -> bool:
        return self.transient_in_a_row >= run.circuit_breaker


def _run_target(
    run: _Run, target_id: int, key: str, connector: Connector, rate: float | None = None
) -> None:
    tgt = _Target(
        id=target_id,
        key=key,
        connector=connector,
        counts=run.report.by_target.setdefault(key, TargetReport()),
        bucket=_Bucket(dt.timedelta(seconds=60 / rate)) if rate else None,
    )
    queue: deque[_Candidate] = deque()
    batch: list[_Candidate] = []
    after = 0
    exhausted = False
    start = run.now()
    while True:
        if not queue and not exhausted:
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
            if page:
                after = page[-1].id
                queue.extend(page)
            else:
                exhausted = True
        if not queue:
            if not batch:
                return
            queue.extendleft(reversed(_run_batch(run, tgt, batch)))
            batch = []
            continue
        row = queue.popleft()
        runnable = row.status == OperationStatus.PENDING and _due(row.not_before, start)
        if row.person_id in tgt.blocked or not runnable:
            if runnable:
                run.report.blocked += 1
            tgt.blocked.add(row.person_id)
            continue
        if not run.room() or tgt.circuit_open(run):
            run.report.deferred += 1
            continue
        batch.append(row)
        if len(batch) >= run.batch_cap():
            # Operations the batch claimed but did not send come back first, in order.
            queue.extendleft(reversed(_run_batch(run, tgt, batch)))
            batch = []


@dataclass
class _Account:
    """The recorded account an operation acts on, as this batch has changed it so far."""

    id: int
    username: str
    attributes: dict[str, Any]


@dataclass
class _Batch:
    """The operations one transaction claimed, and the outcomes to commit with it."""

    key: str
    ops: dict[int, sa.Row[Any]]  # claimed (locked) operations, by id
    # person id -> ids of that account's open operations on the target (ascending)
    open_ids: dict[int, list[int]]
    # person id -> (id, username) of that account's open renames (ascending)
    renames: dict[int, list[tuple[int, str]]]
    accounts: dict[int, _Account]  # by account id
    account_of_person: dict[int, int]  # person id -> account id
    updates: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    external_ids: list[dict[str, Any]] = field(default_factory=list)
    new_usernames: list[dict[str, Any]] = field(default_factory=list)
    # (operation, audit details to complete with the task id, task values)
    manual: list[tuple[sa.Row[Any], dict[str, Any], dict[str, Any]]] = field(default_factory=list)
    entries: list[audit.Entry] = field(default_factory=list)
    sent: int = 0

    def waits_behind_earlier(self, op: sa.Row[Any]) -> bool:
        """An earlier operation of the account is open and not this batch's to run first."""
        for other in self.open_ids.get(op.person_id, ()):
            if other >= op.id:
                return False
            if other not in self.ops:
                return True
        return False

    def account_of(self, op: sa.Row[Any]) -> _Account | None:
        if op.account_id is not None:
            return self.accounts.get(op.account_id)
        found = self.account_of_person.get(op.person_id)
        return None if found is None else self.accounts.get(found)

    def later_rename(self, op: sa.Row[Any]) -> str | None:
        """The name the account's first unfinished rename recorded after ``op`` starts from.

        Operations run in id order, so the renames after ``op`` are as the batch found them.
        """
        for other, username in self.renames.get(op.person_id, ()):
            if other > op.id:
                return username
        return None

    def outcome(self, result: str, params: dict[str, Any]) -> None:
        self.updates.setdefault(result, []).append(params)

    def audit(
        self, run: _Run, action: str, op: sa.Row[Any], details: dict[str, Any], when: dt.datetime
    ) -> None:
        self.entries.append(
            audit.Entry(
                actor=run.actor,
                action=action,
                subject_type="operation",
                subject_id=op.id,
                details=details,
                at=when,
            )
        )


# What sending an operation and recording its outcome read of it.
_CLAIMED = tuple(
    operation.c[name]
    for name in (
        "id",
        "plan_id",
        "target_id",
        "person_id",
        "account_id",
        "kind",
        "username",
        "payload",
        "attempts",
        "not_before",
    )
)


def _claim(conn: Connection, tgt: _Target, ids: Sequence[int]) -> _Batch:
    """Lock the batch's operations that are still pending, and read what running them needs."""
    ops: dict[int, sa.Row[Any]] = {}
    for chunk in _chunks(ids):
        query = sa.select(*_CLAIMED).where(
            operation.c.id.in_(chunk), operation.c.status == OperationStatus.PENDING
        )
        if conn.dialect.name == "postgresql":
            query = query.with_for_update(skip_locked=True)
        ops.update((row.id, row) for row in conn.execute(query))
    persons = sorted({op.person_id for op in ops.values()})
    open_ids: dict[int, list[int]] = {}
    renames: dict[int, list[tuple[int, str]]] = {}
    for chunk in _chunks(persons):
        rows = conn.execute(
            sa.select(operation.c.id, operation.c.person_id, operation.c.kind, operation.c.username)
            .where(
                operation.c.target_id == tgt.id,
                operation.c.person_id.in_(chunk),
                operation.c.status.in_(OPEN_STATUSES),
            )
            .order_by(operation.c.id)
        )
        for row in rows:
            open_ids.setdefault(row.person_id, []).append(row.id)
            if row.kind == OperationKind.RENAME:
                renames.setdefault(row.person_id, []).append((row.id, str(row.username)))
    accounts: dict[int, _Account] = {}
    account_of_person: dict[int, int] = {}
    by_id = sorted({op.account_id for op in ops.values() if op.account_id is not None})
    by_person = sorted({op.person_id for op in ops.values() if op.account_id is None})
    columns = (account.c.id, account.c.person_id, account.c.username, account.c.attributes)
    for chunk in _chunks(by_id):
        for row in conn.execute(sa.select(*columns).where(account.c.id.in_(chunk))):
            accounts[row.id] = _Account(row.id, str(row.username), dict(row.attributes or {}))
    for chunk in _chunks(by_person):
        query = sa.select(*columns).where(
            account.c.target_id == tgt.id, account.c.person_id.in_(chunk)
        )
        for row in conn.execute(query):
            accounts.setdefault(
                row.id, _Account(row.id, str(row.username), dict(row.attributes or {}))
            )
            account_of_person[row.person_id] = row.id
    return _Batch(tgt.key, ops, open_ids, renames, accounts, account_of_person)


def _run_batch(run: _Run, tgt: _Target, rows: list[_Candidate]) -> list[_Candidate]:
    """Claim, send and commit one batch; return the rows it claimed but did not get to."""
    executed_before = run.report.executed
    interrupted: BaseException | None = None
    leftover: list[_Candidate] = []
    with run.engine.connect() as conn, conn.begin():
        batch = _claim(conn, tgt, [row.id for row in rows])
        try:
            leftover = _send(run, tgt, batch, rows)
        except BaseException as exc:  # stopped mid-batch: keep what was done, then stop
            interrupted = exc
        try:
            _write(conn, batch)
        except BaseException:
            if interrupted is not None:
                raise interrupted from None
            raise
    if interrupted is not None:
        raise interrupted
    if run.progress is not None:
        for executed in range(executed_before + 1, run.report.executed + 1):
            run.progress(executed)
    return leftover


def _send(run: _Run, tgt: _Target, batch: _Batch, rows: list[_Candidate]) -> list[_Candidate]:
    """Send the batch's operations in order; return the rows left for the next batch."""
    opened = run.now()
    for index, row in enumerate(rows):
        if row.person_id in tgt.blocked:  # an earlier operation of this batch did not succeed
            run.report.blocked += 1
            continue
        if not run.room() or tgt.circuit_open(run):
            run.report.deferred += 1
            continue
        op = batch.ops.get(row.id)
        if op is None or not _due(op.not_before, run.now()):
            # Another worker has it, or it changed state meanwhile.
            tgt.blocked.add(row.person_id)
            continue
        if batch.waits_behind_earlier(op):
            run.report.blocked += 1
            tgt.blocked.add(row.person_id)
            continue
        if batch.sent:
            open_for = (run.now() - opened).total_seconds() + run.wait_for(tgt.bucket)
            if open_for > run.batch_seconds:
                return rows[index:]  # commit what was sent; the rest goes to the next batch
        run.pace(tgt.bucket, tgt.counts)
        outcome = _attempt(run, batch, tgt.connector, op)
        batch.sent += 1
        if outcome == "retried":
            tgt.transient_in_a_row += 1
            if tgt.transient_in_a_row == run.circuit_breaker:
                run.report.circuit_open_targets.append(tgt.key)
        else:
            tgt.transient_in_a_row = 0
        setattr(tgt.counts, outcome, getattr(tgt.counts, outcome) + 1)
        setattr(run.report, outcome, getattr(run.report, outcome) + 1)
        if outcome != "succeeded":
            tgt.blocked.add(row.person_id)
    return []


def _attempt(run: _Run, batch: _Batch, connector: Connector, op: sa.Row[Any]) -> str:
    """Send one claimed operation and record its outcome in the batch. Returns the outcome."""
    acct = batch.account_of(op)
    kind = OperationKind(op.kind)
    username = _current_username(batch, op, kind, acct)
    needed = _NEEDS[kind]
    if needed not in connector.capabilities:
        return _park(
            run,
            batch,
            op,
            username,
            f"the connector for {batch.key} cannot do '{needed}' operations; carry it "
            "out by hand and cancel this operation",
        )
    try:
        external_id = _call(connector, kind, username, op.payload or {})
    except ManualFulfilment as signal:
        return _manual(run, batch, op, username, acct, signal)
    except TransientError as exc:
        return _retry(run, batch, op, username, str(exc), exc.retry_after)
    except ConnectorError as exc:
        return _park(run, batch, op, username, str(exc) or type(exc).__name__)
    except (OSError, TimeoutError) as exc:
        return _retry(run, batch, op, username, f"connection error: {exc}", None)
    except Exception as exc:  # a connector bug must not stop the other targets
        return _retry(run, batch, op, username, f"unexpected {type(exc).__name__}: {exc}", None)
    return _succeed(run, batch, op, username, acct, external_id, kind)


def _current_username(
    batch: _Batch, op: sa.Row[Any], kind: OperationKind, acct: _Account | None
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
        later = batch.later_rename(op)
        if later is not None:
            return later
    return acct.username


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


def _succeed(
    run: _Run,
    batch: _Batch,
    op: sa.Row[Any],
    username: str,
    acct: _Account | None,
    external_id: str | None,
    kind: OperationKind | None = None,
) -> str:
    when = run.now()
    batch.outcome("succeeded", {"b_id": op.id, "b_attempts": op.attempts + 1, "b_when": when})
    if external_id is not None and acct is not None:
        batch.external_ids.append({"b_id": acct.id, "b_external_id": external_id, "b_when": when})
    extra: dict[str, Any] = {}
    if kind is OperationKind.RENAME:
        new_username = _new_username(op.payload or {})
        extra["new_username"] = new_username
        # Record the new name, unless a later rename (already recorded) supersedes it.
        if acct is not None and batch.later_rename(op) is None:
            batch.new_usernames.append(
                {"b_id": acct.id, "b_username": new_username, "b_when": when}
            )
            acct.username = new_username
    batch.audit(
        run,
        "operation.succeeded",
        op,
        _details(op, batch.key, username, external_id=external_id, **extra),
        when,
    )
    return "succeeded"


def _retry(
    run: _Run,
    batch: _Batch,
    op: sa.Row[Any],
    username: str,
    message: str,
    retry_after: float | None,
) -> str:
    attempts = op.attempts + 1
    if attempts >= run.max_attempts:
        return _park(run, batch, op, username, f"gave up after {attempts} attempts: {message}")
    when = run.now()
    not_before = when + run.backoff(attempts, retry_after)
    batch.outcome(
        "retried",
        {"b_id": op.id, "b_attempts": attempts, "b_error": message, "b_not_before": not_before},
    )
    batch.audit(
        run,
        "operation.retry",
        op,
        _details(op, batch.key, username, error=message, not_before=not_before.isoformat()),
        when,
    )
    return "retried"


def _park(run: _Run, batch: _Batch, op: sa.Row[Any], username: str, message: str) -> str:
    when = run.now()
    batch.outcome("parked", {"b_id": op.id, "b_attempts": op.attempts + 1, "b_error": message})
    batch.audit(run, "operation.parked", op, _details(op, batch.key, username, error=message), when)
    return "parked"


def _manual(
    run: _Run,
    batch: _Batch,
    op: sa.Row[Any],
    username: str,
    acct: _Account | None,
    signal: ManualFulfilment,
) -> str:
    when = run.now()
    payload = dict(op.payload or {})
    attributes = dict(acct.attributes) if acct is not None else {}
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
    batch.outcome("waiting_manual", {"b_id": op.id, "b_attempts": op.attempts + 1})
    # The task id is known once the task is written (see _write), before the audit entry.
    details = _details(
        op,
        batch.key,
        username,
        task_id=None,
        assignee=signal.assignee,
        instructions=instructions,
    )
    batch.manual.append((op, details, values))
    batch.audit(run, "operation.manual", op, details, when)
    return "waiting_manual"


# --- committing a batch --------------------------------------------------------------------

_B = sa.bindparam

_UPDATES: dict[str, sa.Update] = {
    "succeeded": operation.update()
    .where(operation.c.id == _B("b_id"))
    .values(
        status=OperationStatus.SUCCEEDED,
        attempts=_B("b_attempts"),
        completed_at=_B("b_when", type_=operation.c.completed_at.type),
        last_error=None,
        not_before=None,
    ),
    "retried": operation.update()
    .where(operation.c.id == _B("b_id"))
    .values(
        attempts=_B("b_attempts"),
        last_error=_B("b_error"),
        not_before=_B("b_not_before", type_=operation.c.not_before.type),
    ),
    "parked": operation.update()
    .where(operation.c.id == _B("b_id"))
    .values(
        status=OperationStatus.PARKED,
        attempts=_B("b_attempts"),
        last_error=_B("b_error"),
        not_before=None,
    ),
    "waiting_manual": operation.update()
    .where(operation.c.id == _B("b_id"))
    .values(
        status=OperationStatus.WAITING_MANUAL,
        attempts=_B("b_attempts"),
        not_before=None,
        last_error=None,
    ),
}

_SET_EXTERNAL_ID = (
    account.update()
    .where(account.c.id == _B("b_id"))
    .values(
        external_id=_B("b_external_id"),
        updated_at=_B("b_when", type_=account.c.updated_at.type),
    )
)

_SET_USERNAME = (
    account.update()
    .where(account.c.id == _B("b_id"), account.c.username != _B("b_username"))
    .values(
        username=_B("b_username"),
        updated_at=_B("b_when", type_=account.c.updated_at.type),
    )
)


def _write(conn: Connection, batch: _Batch) -> None:
    """Record every outcome of the batch in ``conn``'s transaction, audit entries last."""
    for result, statement in _UPDATES.items():
        params = batch.updates.get(result)
        if params:
            conn.execute(statement, params)
    if batch.external_ids:
        conn.execute(_SET_EXTERNAL_ID, batch.external_ids)
    for rename in batch.new_usernames:  # one by one, in order: a later rename wins
        conn.execute(_SET_USERNAME, rename)
    for op, details, values in batch.manual:
        details["task_id"] = _write_task(conn, op.id, values)
    audit.append_many(conn, batch.entries)


def _write_task(conn: Connection, op_id: int, values: dict[str, Any]) -> int:
    task_id = conn.execute(
        sa.select(manual_task.c.id).where(manual_task.c.operation_id == op_id)
    ).scalar()
    if task_id is None:
        return int(
            conn.execute(
                manual_task.insert()
                .values(operation_id=op_id, **values)
                .returning(manual_task.c.id)
            ).scalar_one()
        )
    # the operation was retried after its task was cancelled: reopen the task
    conn.execute(manual_task.update().where(manual_task.c.id == task_id).values(values))
    return int(task_id)
