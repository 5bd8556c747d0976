"""Manual fulfilment: systems with no interface PASA can drive.

The :class:`ManualConnector` never touches a system. Each call raises
:class:`~pasa.connectors.base.ManualFulfilment`; the worker then records a ``manual_task``
(assignee and ``sla_hours`` from the target's settings, a one-sentence instruction) and sets
the operation to ``waiting_manual``. Later operations for the same account wait until the
task is completed, so the person doing them always sees the username actually created.

:func:`complete_manual_task` and :func:`cancel_manual_task` are what the UI, API and CLI call.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from pasa.audit import log as audit
from pasa.clock import now as _clock_now
from pasa.connectors.base import (
    ALL_CAPABILITIES,
    Attributes,
    Connector,
    ManualFulfilment,
    RemoteAccount,
    update_changes,
)
from pasa.domain.errors import NotFoundError as PasaNotFoundError
from pasa.domain.errors import PasaError
from pasa.domain.operations import OperationKind, OperationStatus
from pasa.store.schema import account, manual_task, operation

DEFAULT_ASSIGNEE = "identity-access-team"
DEFAULT_SLA_HOURS = 24.0


class ManualTaskError(PasaError):
    """A manual task cannot be completed or cancelled in its current state."""


class ManualConnector(Connector):
    """Turns every operation into a task for ``assignee`` to carry out in ``system``."""

    capabilities = ALL_CAPABILITIES

    def __init__(
        self,
        system: str,
        *,
        assignee: str = DEFAULT_ASSIGNEE,
        sla_hours: float = DEFAULT_SLA_HOURS,
    ) -> None:
        self.system = system
        self.assignee = assignee
        self.sla_hours = sla_hours

    def _signal(self) -> ManualFulfilment:
        return ManualFulfilment(
            system=self.system, assignee=self.assignee, sla_hours=self.sla_hours
        )

    def create(self, username: str, attributes: Attributes) -> str:
        raise self._signal()

    def update(self, username: str, changes: Attributes) -> None:
        raise self._signal()

    def rename(self, username: str, new_username: str) -> None:
        raise self._signal()

    def enable(self, username: str) -> None:
        raise self._signal()

    def disable(self, username: str) -> None:
        raise self._signal()

    def delete(self, username: str) -> None:
        raise self._signal()

    def add_member(self, username: str, kind: str, value: str, **_: object) -> None:
        raise self._signal()

    def remove_member(self, username: str, kind: str, value: str) -> None:
        raise self._signal()

    def read(self, username: str) -> RemoteAccount | None:
        return None  # PASA cannot see into a manual system

    def list(self) -> Iterator[RemoteAccount]:
        return iter(())


def _person(attributes: Mapping[str, Any]) -> str:
    name = attributes.get("display_name") or " ".join(
        p for p in (attributes.get("first_name"), attributes.get("last_name")) if p
    )
    employee = attributes.get("employee_number")
    name = name or "the person"
    return f"{name} (employee {employee})" if employee else str(name)


def describe_task(
    kind: OperationKind | str,
    *,
    system: str,
    username: str,
    payload: Mapping[str, Any],
    attributes: Mapping[str, Any],
) -> str:
    """One clear sentence telling a person what to do, in the system's own terms."""
    who = _person(attributes)
    k = OperationKind(kind)
    if k is OperationKind.CREATE_ACCOUNT:
        state = "" if payload.get("enabled", True) else " (leave it disabled until the start date)"
        return (
            f"Create an account for {who} in {system} with username '{username}'{state}; "
            "record the username you created if it differs."
        )
    if k is OperationKind.UPDATE_ATTRIBUTES:
        changes = update_changes(payload)
        listed = ", ".join(f"{key} to '{value}'" for key, value in sorted(changes.items()))
        return f"Update the account '{username}' of {who} in {system}: set {listed or 'details'}."
    if k is OperationKind.ENABLE:
        return f"Enable the account '{username}' of {who} in {system}."
    if k is OperationKind.DISABLE:
        return f"Disable the account '{username}' of {who} in {system}."
    if k is OperationKind.DELETE:
        return f"Delete the account '{username}' of {who} in {system}."
    kind_label = str(payload.get("kind", "group")).replace("_", " ")
    value = payload.get("value", "")
    if k is OperationKind.ADD_MEMBERSHIP:
        return f"Give the account '{username}' of {who} the {kind_label} '{value}' in {system}."
    return f"Remove the {kind_label} '{value}' from the account '{username}' of {who} in {system}."


def _utcnow() -> dt.datetime:
    return _clock_now()


def _open_task(conn: sa.Connection, task_id: int) -> sa.Row[Any]:
    query = sa.select(manual_task).where(manual_task.c.id == task_id)
    if conn.dialect.name == "postgresql":
        query = query.with_for_update()
    task = conn.execute(query).first()
    if task is None:
        raise PasaNotFoundError(f"manual task {task_id} does not exist")
    if task.status != "open":
        raise ManualTaskError(f"manual task {task_id} is already {task.status}")
    return task


def complete_manual_task(
    engine: Engine,
    task_id: int,
    *,
    actor: str,
    completion: Mapping[str, Any] | None = None,
    now: Callable[[], dt.datetime] | None = None,
) -> None:
    """Mark the task done and its operation succeeded, recording what the person did.

    ``completion`` may carry ``username`` (the username actually created) and
    ``external_id``; both are written to the account so later operations use them.
    """
    when = (now or _utcnow)()
    done = dict(completion or {})
    with engine.begin() as conn:
        task = _open_task(conn, task_id)
        op = conn.execute(sa.select(operation).where(operation.c.id == task.operation_id)).one()
        conn.execute(
            manual_task.update()
            .where(manual_task.c.id == task_id)
            .values(status="done", completed_at=when, completed_by=actor, completion=done)
        )
        conn.execute(
            operation.update()
            .where(operation.c.id == op.id)
            .values(status=OperationStatus.SUCCEEDED, completed_at=when, last_error=None)
        )
        changes: dict[str, Any] = {}
        username = done.get("username")
        if isinstance(username, str) and username.strip() and username.strip() != op.username:
            changes["username"] = username.strip()
        if done.get("external_id"):
            changes["external_id"] = str(done["external_id"])
        if changes and op.account_id is not None:
            changes["updated_at"] = when
            try:
                with conn.begin_nested():
                    conn.execute(
                        account.update().where(account.c.id == op.account_id).values(changes)
                    )
            except sa.exc.IntegrityError as exc:
                raise ManualTaskError(
                    f"username '{changes.get('username')}' is already recorded for another "
                    "account in this system; check the username and complete the task again"
                ) from exc
        audit.append(
            conn,
            actor=actor,
            action="manual_task.completed",
            subject_type="manual_task",
            subject_id=task_id,
            details={
                "operation_id": op.id,
                "kind": op.kind,
                "username": op.username,
                "completion": done,
            },
            at=when,
        )


def cancel_manual_task(
    engine: Engine,
    task_id: int,
    *,
    actor: str,
    reason: str = "",
    now: Callable[[], dt.datetime] | None = None,
) -> None:
    """Cancel an open task and its operation (e.g. the starter withdrew)."""
    when = (now or _utcnow)()
    with engine.begin() as conn:
        task = _open_task(conn, task_id)
        conn.execute(
            manual_task.update()
            .where(manual_task.c.id == task_id)
            .values(
                status="cancelled",
                completed_at=when,
                completed_by=actor,
                completion={"cancelled": reason} if reason else {"cancelled": True},
            )
        )
        conn.execute(
            operation.update()
            .where(operation.c.id == task.operation_id)
            .values(status=OperationStatus.CANCELLED, completed_at=when)
        )
        audit.append(
            conn,
            actor=actor,
            action="manual_task.cancelled",
            subject_type="manual_task",
            subject_id=task_id,
            details={"operation_id": task.operation_id, "reason": reason},
            at=when,
        )
