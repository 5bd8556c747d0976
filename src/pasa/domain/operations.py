"""Operations: the unit the planner produces and the ledger carries to a connector."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from pasa.domain.grants import Reason


class OperationKind(StrEnum):
    CREATE_ACCOUNT = "create_account"
    RENAME = "rename"
    UPDATE_ATTRIBUTES = "update_attributes"
    ENABLE = "enable"
    ADD_MEMBERSHIP = "add_membership"
    REMOVE_MEMBERSHIP = "remove_membership"
    DISABLE = "disable"
    DELETE = "delete"


# Per-account execution order: an account exists (under its current name) before it is
# changed, gains access before old access is removed (movers are never left with nothing),
# and is disabled, then deleted, last.
PHASE: dict[OperationKind, int] = {
    OperationKind.CREATE_ACCOUNT: 0,
    OperationKind.RENAME: 1,
    OperationKind.UPDATE_ATTRIBUTES: 2,
    OperationKind.ENABLE: 3,
    OperationKind.ADD_MEMBERSHIP: 4,
    OperationKind.REMOVE_MEMBERSHIP: 5,
    OperationKind.DISABLE: 6,
    OperationKind.DELETE: 7,
}


class OperationStatus(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    WAITING_MANUAL = "waiting_manual"
    SUCCEEDED = "succeeded"
    PARKED = "parked"
    CANCELLED = "cancelled"


@dataclass(frozen=True, slots=True)
class PlannedOperation:
    """One change to carry to one target, with every reason behind it.

    ``payload`` holds what the connector needs (attributes, membership kind/value);
    ``username`` is the account's name on the target (allocated by the planner for creates).
    """

    kind: OperationKind
    person_id: int
    target: str
    username: str
    payload: dict[str, Any] = field(default_factory=dict)
    reasons: tuple[Reason, ...] = ()
    summary: str = ""

    @property
    def phase(self) -> int:
        return PHASE[self.kind]
