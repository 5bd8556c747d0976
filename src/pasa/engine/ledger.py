"""The durable operations ledger (a transactional outbox).

:func:`record_plan` writes one ``operation`` row per planned operation *and* the matching
change to PASA's recorded state (``account``, ``account_grant``) in the caller's
transaction: both commit or neither, so a plan is never half-recorded and re-planning
straight afterwards finds nothing left to do. Workers (:mod:`pasa.engine.worker`) then carry
each operation to its target.

Payload conventions (what the planner puts in ``PlannedOperation.payload``):

* ``create_account``: ``{"attributes": {...}, "enabled": true}`` (``enabled`` optional;
  ``false`` pre-provisions a disabled account);
* ``update_attributes``: ``{"changes": {attr: [old, new]}}`` (``{attr: new}`` and
  ``{"attributes": ...}`` also accepted);
* ``add_membership`` / ``remove_membership``: ``{"kind": "group", "value": "..."}``.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from pasa.audit import log as audit
from pasa.clock import local_date
from pasa.clock import now as _clock_now
from pasa.connectors.base import create_attributes, membership_of, update_changes
from pasa.domain.errors import ConfigurationError, PasaError
from pasa.domain.errors import NotFoundError as PasaNotFoundError
from pasa.domain.operations import OperationKind, OperationStatus, PlannedOperation
from pasa.store.schema import account, account_grant, manual_task, operation, target

_CHUNK = 500  # ids per IN (...) list: well inside SQLite's and psycopg's parameter limits

OPEN_STATUSES: tuple[str, ...] = (
    OperationStatus.PENDING,
    OperationStatus.RUNNING,
    OperationStatus.WAITING_MANUAL,
    OperationStatus.PARKED,
)


class OperationStateError(PasaError):
    """An operation cannot be retried or cancelled in its current state."""


@dataclass(frozen=True, slots=True)
class RecordedPlan:
    plan_id: str
    operations: int
    # target key -> operation kind -> count
    counts: dict[str, dict[str, int]]
    audit_seq: int | None


@dataclass(frozen=True, slots=True)
class OperationRecord:
    id: int
    plan_id: str
    target: str
    person_id: int
    account_id: int | None
    kind: str
    username: str
    payload: dict[str, Any]
    reasons: list[dict[str, Any]]
    summary: str
    status: str
    attempts: int
    last_error: str | None
    created_at: dt.datetime
    not_before: dt.datetime | None
    completed_at: dt.datetime | None


def _utcnow() -> dt.datetime:
    return _clock_now()


def canonical_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)


def idempotency_key(plan_id: str, index: int, op: PlannedOperation) -> str:
    text = "\x1f".join(
        (plan_id, str(index), str(op.kind), op.target, op.username, canonical_json(op.payload))
    )
    return hashlib.sha256(text.encode()).hexdigest()


def _chunks(items: Sequence[Any], size: int = _CHUNK) -> Iterable[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _target_ids(conn: Connection, keys: set[str]) -> dict[str, int]:
    found = {
        row.key: row.id
        for row in conn.execute(sa.select(target.c.key, target.c.id).where(target.c.key.in_(keys)))
    }
    missing = sorted(keys - set(found))
    if missing:
        raise ConfigurationError(
            f"the plan names target(s) {', '.join(missing)} that are not configured; "
            "load the policy that defines them first"
        )
    return found


def _accounts_by_person(
    conn: Connection, pairs: set[tuple[int, int]]
) -> dict[tuple[int, int], tuple[int, dict[str, Any]]]:
    """(target_id, person_id) -> (account id, attributes), for the given pairs."""
    out: dict[tuple[int, int], tuple[int, dict[str, Any]]] = {}
    by_target: dict[int, list[int]] = {}
    for tid, pid in pairs:
        by_target.setdefault(tid, []).append(pid)
    for tid, pids in by_target.items():
        for chunk in _chunks(sorted(pids)):
            rows = conn.execute(
                sa.select(account.c.id, account.c.person_id, account.c.attributes).where(
                    account.c.target_id == tid, account.c.person_id.in_(chunk)
                )
            )
            for row in rows:
                out[(tid, row.person_id)] = (row.id, dict(row.attributes or {}))
    return out


def record_plan(
    conn: Connection,
    operations: Sequence[PlannedOperation],
    *,
    plan_id: str,
    actor: str,
    now: dt.datetime | None = None,
    at: dt.date | None = None,
) -> RecordedPlan:
    """Record the operations and the recorded-state changes they stand for, in ``conn``'s
    transaction. An empty plan records nothing (and writes no audit entry). ``at`` is the
    plan's as-at date: account status changes are recorded as starting on it."""
    if not operations:
        return RecordedPlan(plan_id=plan_id, operations=0, counts={}, audit_seq=None)
    when = now or _utcnow()
    day = at or local_date(when)
    tids = _target_ids(conn, {op.target for op in operations})
    pairs = {(tids[op.target], op.person_id) for op in operations}
    existing = _accounts_by_person(conn, pairs)

    # 1. Accounts being created: insert new rows in bulk, reuse rows of deleted accounts.
    new_rows: list[dict[str, Any]] = []
    revive: list[dict[str, Any]] = []
    for op in operations:
        if op.kind is not OperationKind.CREATE_ACCOUNT:
            continue
        key = (tids[op.target], op.person_id)
        status = "enabled" if op.payload.get("enabled", True) else "disabled"
        attrs = create_attributes(op.payload)
        if key in existing:
            revive.append(
                {
                    "b_id": existing[key][0],
                    "b_username": op.username,
                    "b_status": status,
                    "b_attributes": attrs,
                    "b_since": day,
                }
            )
            existing[key] = (existing[key][0], attrs)
        else:
            new_rows.append(
                {
                    "target_id": key[0],
                    "person_id": op.person_id,
                    "username": op.username,
                    "external_id": None,
                    "status": status,
                    "status_since": day,
                    "attributes": attrs,
                    "created_at": when,
                    "updated_at": when,
                }
            )
    if new_rows:
        conn.execute(account.insert(), new_rows)
        existing.update(
            _accounts_by_person(conn, {(r["target_id"], r["person_id"]) for r in new_rows})
        )
    if revive:
        conn.execute(
            account.update()
            .where(account.c.id == sa.bindparam("b_id"))
            .values(
                username=sa.bindparam("b_username"),
                status=sa.bindparam("b_status"),
                status_since=sa.bindparam("b_since"),
                attributes=sa.bindparam("b_attributes"),
                external_id=None,
                updated_at=when,
            ),
            revive,
        )
        # A revived account starts with no grants: whatever it held went with the deletion.
        conn.execute(
            account_grant.delete().where(
                account_grant.c.account_id.in_([r["b_id"] for r in revive])
            )
        )

    # 2. Changes to existing accounts and grants.
    attr_updates: dict[int, dict[str, Any]] = {}
    status_updates: dict[int, str] = {}
    renames: dict[int, str] = {}
    grants_add: dict[tuple[int, str, str], list[dict[str, Any]]] = {}
    windows: dict[tuple[int, str, str], tuple[dt.date | None, dt.date | None]] = {}
    grants_remove: set[tuple[int, str, str]] = set()
    account_ids: list[int | None] = []
    for op in operations:
        found = existing.get((tids[op.target], op.person_id))
        account_id = found[0] if found else None
        account_ids.append(account_id)
        if op.kind is OperationKind.CREATE_ACCOUNT:
            continue
        if account_id is None:
            raise ConfigurationError(
                f"operation {op.kind} for person {op.person_id} on target {op.target} needs "
                "an account that PASA has not recorded; plan a create_account first"
            )
        assert found is not None
        if op.kind is OperationKind.RENAME:
            renames[account_id] = str(op.payload["new_username"])
        elif op.kind is OperationKind.UPDATE_ATTRIBUTES:
            merged = attr_updates.get(account_id, found[1])
            attr_updates[account_id] = {**merged, **update_changes(op.payload)}
        elif op.kind is OperationKind.ENABLE:
            status_updates[account_id] = "enabled"
        elif op.kind is OperationKind.DISABLE:
            status_updates[account_id] = "disabled"
        elif op.kind is OperationKind.DELETE:
            status_updates[account_id] = "deleted"
        elif op.kind is OperationKind.ADD_MEMBERSHIP:
            kind, value = membership_of(op.payload)
            grants_remove.discard((account_id, kind, value))
            grants_add[(account_id, kind, value)] = _reasons(op)
            windows[(account_id, kind, value)] = (
                _iso_date(op.payload.get("valid_from")),
                _iso_date(op.payload.get("valid_to")),
            )
        elif op.kind is OperationKind.REMOVE_MEMBERSHIP:
            kind, value = membership_of(op.payload)
            grants_add.pop((account_id, kind, value), None)
            grants_remove.add((account_id, kind, value))
    if attr_updates:
        conn.execute(
            account.update()
            .where(account.c.id == sa.bindparam("b_id"))
            .values(attributes=sa.bindparam("b_attributes"), updated_at=when),
            [{"b_id": i, "b_attributes": a} for i, a in attr_updates.items()],
        )
    if renames:
        conn.execute(
            account.update()
            .where(account.c.id == sa.bindparam("b_id"))
            .values(username=sa.bindparam("b_username"), updated_at=when),
            [{"b_id": i, "b_username": u} for i, u in renames.items()],
        )
    if status_updates:
        conn.execute(
            account.update()
            .where(account.c.id == sa.bindparam("b_id"))
            .values(status=sa.bindparam("b_status"), status_since=day, updated_at=when),
            [{"b_id": i, "b_status": s} for i, s in status_updates.items()],
        )
        deleted = [i for i, s in status_updates.items() if s == "deleted"]
        if deleted:
            conn.execute(account_grant.delete().where(account_grant.c.account_id.in_(deleted)))
    if grants_remove:
        conn.execute(
            account_grant.delete().where(
                account_grant.c.account_id == sa.bindparam("b_account"),
                account_grant.c.kind == sa.bindparam("b_kind"),
                account_grant.c.value == sa.bindparam("b_value"),
            ),
            [{"b_account": a, "b_kind": k, "b_value": v} for a, k, v in grants_remove],
        )
    if grants_add:
        held = _existing_grants(conn, sorted({a for a, _, _ in grants_add}))
        rows = [
            {
                "account_id": a,
                "kind": k,
                "value": v,
                "reasons": r,
                "granted_at": when,
                "valid_from": windows[(a, k, v)][0],
                "valid_to": windows[(a, k, v)][1],
            }
            for (a, k, v), r in grants_add.items()
            if (a, k, v) not in held
        ]
        if rows:
            conn.execute(account_grant.insert(), rows)
        again = [
            {
                "b_account": a,
                "b_kind": k,
                "b_value": v,
                "b_reasons": r,
                "b_from": windows[(a, k, v)][0],
                "b_to": windows[(a, k, v)][1],
            }
            for (a, k, v), r in grants_add.items()
            if (a, k, v) in held
        ]
        if again:
            conn.execute(
                account_grant.update()
                .where(
                    account_grant.c.account_id == sa.bindparam("b_account"),
                    account_grant.c.kind == sa.bindparam("b_kind"),
                    account_grant.c.value == sa.bindparam("b_value"),
                )
                .values(
                    reasons=sa.bindparam("b_reasons"),
                    valid_from=sa.bindparam("b_from", type_=sa.Date()),
                    valid_to=sa.bindparam("b_to", type_=sa.Date()),
                ),
                again,
            )

    # 3. The operations themselves, in bulk.
    op_rows = [
        {
            "idempotency_key": idempotency_key(plan_id, index, op),
            "plan_id": plan_id,
            "target_id": tids[op.target],
            "person_id": op.person_id,
            "account_id": account_ids[index],
            "kind": str(op.kind),
            "username": op.username,
            "payload": json.loads(canonical_json(op.payload)),
            "reasons": _reasons(op),
            "summary": op.summary or f"{op.kind} {op.username} on {op.target}",
            "status": OperationStatus.PENDING,
            "attempts": 0,
            "created_at": when,
        }
        for index, op in enumerate(operations)
    ]
    conn.execute(operation.insert(), op_rows)

    counter: Counter[tuple[str, str]] = Counter((op.target, str(op.kind)) for op in operations)
    counts: dict[str, dict[str, int]] = {}
    for (tkey, kind), n in sorted(counter.items()):
        counts.setdefault(tkey, {})[kind] = n
    seq = audit.append(
        conn,
        actor=actor,
        action="plan.apply",
        subject_type="plan",
        subject_id=plan_id,
        details={"operations": len(operations), "counts": counts},
        at=when,
    )
    return RecordedPlan(plan_id=plan_id, operations=len(operations), counts=counts, audit_seq=seq)


def _iso_date(value: object) -> dt.date | None:
    return dt.date.fromisoformat(value) if isinstance(value, str) else None


def _reasons(op: PlannedOperation) -> list[dict[str, Any]]:
    return [dataclasses.asdict(r) for r in op.reasons]


def _existing_grants(conn: Connection, account_ids: Sequence[int]) -> set[tuple[int, str, str]]:
    held: set[tuple[int, str, str]] = set()
    for chunk in _chunks(account_ids):
        rows = conn.execute(
            sa.select(
                account_grant.c.account_id, account_grant.c.kind, account_grant.c.value
            ).where(account_grant.c.account_id.in_(chunk))
        )
        held.update((r.account_id, r.kind, r.value) for r in rows)
    return held


# --- reading the ledger ----------------------------------------------------------------------


def pending_counts(conn: Connection) -> dict[str, int]:
    """Target key -> number of operations still pending (every configured target listed)."""
    rows = conn.execute(
        sa.select(target.c.key, sa.func.count(operation.c.id))
        .select_from(
            target.outerjoin(
                operation,
                sa.and_(
                    operation.c.target_id == target.c.id,
                    operation.c.status == OperationStatus.PENDING,
                ),
            )
        )
        .group_by(target.c.key)
        .order_by(target.c.key)
    )
    return {key: int(n) for key, n in rows}


def status_counts(conn: Connection) -> dict[str, dict[str, int]]:
    """Target key -> status -> number of operations."""
    rows = conn.execute(
        sa.select(target.c.key, operation.c.status, sa.func.count())
        .select_from(operation.join(target, operation.c.target_id == target.c.id))
        .group_by(target.c.key, operation.c.status)
        .order_by(target.c.key, operation.c.status)
    )
    out: dict[str, dict[str, int]] = {}
    for key, status, n in rows:
        out.setdefault(key, {})[status] = int(n)
    return out


def list_operations(
    conn: Connection,
    *,
    status: str | OperationStatus | None = None,
    target: str | None = None,
    plan_id: str | None = None,
    person_id: int | None = None,
    limit: int | None = None,
    offset: int = 0,
) -> list[OperationRecord]:
    query = (
        sa.select(operation, _target.c.key.label("target_key"))
        .join(_target, operation.c.target_id == _target.c.id)
        .order_by(operation.c.id)
    )
    if status is not None:
        query = query.where(operation.c.status == str(status))
    if target is not None:
        query = query.where(_target.c.key == target)
    if plan_id is not None:
        query = query.where(operation.c.plan_id == plan_id)
    if person_id is not None:
        query = query.where(operation.c.person_id == person_id)
    if limit is not None:
        query = query.limit(limit)
    if offset:
        query = query.offset(offset)
    return [record_of(row) for row in conn.execute(query)]


_target = target  # the parameter named ``target`` shadows the table inside list_operations


def get_operation(conn: Connection, op_id: int) -> OperationRecord:
    rows = conn.execute(
        sa.select(operation, target.c.key.label("target_key"))
        .join(target, operation.c.target_id == target.c.id)
        .where(operation.c.id == op_id)
    ).first()
    if rows is None:
        raise PasaNotFoundError(f"operation {op_id} does not exist")
    return record_of(rows)


def record_of(row: sa.Row[Any]) -> OperationRecord:
    """An operation row selected with its target's key as ``target_key``."""
    return OperationRecord(
        id=row.id,
        plan_id=row.plan_id,
        target=row.target_key,
        person_id=row.person_id,
        account_id=row.account_id,
        kind=row.kind,
        username=row.username,
        payload=dict(row.payload or {}),
        reasons=list(row.reasons or []),
        summary=row.summary,
        status=row.status,
        attempts=row.attempts,
        last_error=row.last_error,
        created_at=row.created_at,
        not_before=row.not_before,
        completed_at=row.completed_at,
    )


# --- operator actions ------------------------------------------------------------------------


def _lock(conn: Connection, op_id: int) -> sa.Row[Any]:
    query = sa.select(operation).where(operation.c.id == op_id)
    if conn.dialect.name == "postgresql":
        query = query.with_for_update()
    row = conn.execute(query).first()
    if row is None:
        raise PasaNotFoundError(f"operation {op_id} does not exist")
    return row


def retry_operation(
    conn: Connection, op_id: int, actor: str, *, now: Callable[[], dt.datetime] | None = None
) -> None:
    """Send a parked operation again: back to pending, attempts from zero, run at once."""
    when = (now or _utcnow)()
    row = _lock(conn, op_id)
    if row.status != OperationStatus.PARKED:
        raise OperationStateError(
            f"operation {op_id} is {row.status}; only parked operations can be retried"
        )
    conn.execute(
        operation.update()
        .where(operation.c.id == op_id)
        .values(status=OperationStatus.PENDING, attempts=0, not_before=None)
    )
    audit.append(
        conn,
        actor=actor,
        action="operation.retry_requested",
        subject_type="operation",
        subject_id=op_id,
        details={"previous_error": row.last_error, "kind": row.kind, "username": row.username},
        at=when,
    )


def cancel_operation(
    conn: Connection,
    op_id: int,
    actor: str,
    *,
    reason: str = "",
    now: Callable[[], dt.datetime] | None = None,
) -> None:
    """Stop an operation that has not succeeded (pending, parked or waiting for a person).

    PASA's recorded state is not rolled back: the next plan compares desired with recorded
    state and, where needed, plans the change again.
    """
    when = (now or _utcnow)()
    row = _lock(conn, op_id)
    if row.status not in OPEN_STATUSES:
        raise OperationStateError(
            f"operation {op_id} is {row.status}; only pending, parked or waiting operations "
            "can be cancelled"
        )
    conn.execute(
        operation.update()
        .where(operation.c.id == op_id)
        .values(status=OperationStatus.CANCELLED, completed_at=when)
    )
    conn.execute(
        manual_task.update()
        .where(manual_task.c.operation_id == op_id, manual_task.c.status == "open")
        .values(
            status="cancelled",
            completed_at=when,
            completed_by=actor,
            completion={"cancelled": reason or True},
        )
    )
    audit.append(
        conn,
        actor=actor,
        action="operation.cancelled",
        subject_type="operation",
        subject_id=op_id,
        details={
            "reason": reason,
            "kind": row.kind,
            "username": row.username,
            "previous_status": row.status,
        },
        at=when,
    )
