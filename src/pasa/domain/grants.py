"""Desired and recorded access, and the reasons that justify each grant.

An *entitlement* is something a target system can hold for an account: the account itself,
a group membership, an application role or a door zone. A *grant* is an entitlement a person
should hold, with every reason that justifies it (rule, role, HR record).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, fields
from enum import StrEnum


class EntitlementKind(StrEnum):
    GROUP = "group"
    APP_ROLE = "app_role"
    DOOR_ZONE = "door_zone"


@dataclass(frozen=True, slots=True, order=True)
class Reason:
    """Why a grant exists: the rule and role it came from and the HR record that matched.

    ``kind`` is ``rule`` (a policy rule matched an assignment), ``birthright`` (every
    person with an active assignment gets an account on that target) or ``request`` (an
    approved, time-bound grant; ``rule`` then holds the grant's reference). ``detail`` names
    the lifecycle window a reason comes from, when it does: ``pre-hire: starts 2026-12-01``,
    ``suspended``, ``handover after a move: kept until 2026-08-12``. The planner adds
    ``not_justified`` for removals: nothing justifies the access any more, and ``detail``
    says what is missing (e.g. "no active assignment on 2026-11-24 justifies it").
    """

    kind: str
    rule: str | None
    role: str | None
    organisation: str
    assignment_number: str
    detail: str = ""

    def describe(self) -> str:
        if self.kind == "not_justified":
            return self.detail
        record = f"assignment {self.assignment_number} at {self.organisation}"
        if self.kind == "birthright":
            text = f"birthright account for {record}"
        elif self.kind == "request":
            text = f"approved request {self.rule} ({self.role})"
        else:
            text = f"rule '{self.rule}' -> role '{self.role}' for {record}"
        return f"{text} [{self.detail}]" if self.detail else text


@dataclass(frozen=True, slots=True)
class AccountAttributes:
    """Attributes PASA maintains on an account in a target (updated in place on change)."""

    first_name: str
    last_name: str
    display_name: str
    email: str | None
    employee_number: str
    organisation: str
    department: str
    job_title: str
    manager_employee_number: str | None

    def as_dict(self) -> dict[str, str | None]:
        return {
            "first_name": self.first_name,
            "last_name": self.last_name,
            "display_name": self.display_name,
            "email": self.email,
            "employee_number": self.employee_number,
            "organisation": self.organisation,
            "department": self.department,
            "job_title": self.job_title,
            "manager_employee_number": self.manager_employee_number,
        }


# Every attribute PASA maintains on an account, in a stable order (connectors map these).
ACCOUNT_ATTRIBUTE_NAMES: tuple[str, ...] = tuple(f.name for f in fields(AccountAttributes))


@dataclass(frozen=True, slots=True)
class DesiredAccount:
    """A person should hold an account on a target, with these attributes.

    ``enabled`` is False when only a pre-hire window or a suspension justifies the account:
    it exists (ready for day one, or for the return) but cannot be used.
    """

    person_id: int
    target: str
    attributes: AccountAttributes
    reasons: tuple[Reason, ...]
    enabled: bool = True


@dataclass(frozen=True, slots=True)
class DesiredGrant:
    """A person should hold ``kind``/``value`` on ``target`` (requires the account)."""

    person_id: int
    target: str
    kind: EntitlementKind
    value: str
    reasons: tuple[Reason, ...]
    valid_from: dt.date | None = None
    valid_to: dt.date | None = None


@dataclass(frozen=True, slots=True)
class DesiredState:
    """Everything every evaluated person should hold at one date."""

    at: dt.date
    accounts: tuple[DesiredAccount, ...]
    grants: tuple[DesiredGrant, ...]
    evaluated_person_ids: frozenset[int]


class AccountStatus(StrEnum):
    ENABLED = "enabled"
    DISABLED = "disabled"
    DELETED = "deleted"


@dataclass(frozen=True, slots=True)
class RecordedAccount:
    """What PASA has recorded (intended and sent) for one account on one target."""

    account_id: int
    person_id: int
    target: str
    username: str
    status: AccountStatus
    attributes: dict[str, str | None]
    # The organisation-local date the status began; retention counts from it.
    status_since: dt.date | None = None


@dataclass(frozen=True, slots=True)
class RecordedGrant:
    account_id: int
    person_id: int
    target: str
    kind: EntitlementKind
    value: str
    valid_from: dt.date | None = None
    valid_to: dt.date | None = None


@dataclass(frozen=True, slots=True)
class RecordedState:
    accounts: tuple[RecordedAccount, ...]
    grants: tuple[RecordedGrant, ...]


@dataclass(frozen=True, slots=True)
class TimeBoundGrant:
    """An approved request: ``kind``/``value`` on ``target`` between two dates (inclusive).

    ``kind`` None grants only an account on the target. It justifies access only while the
    person holds an active assignment: a request never outlives employment.
    """

    grant_id: int
    person_id: int
    target: str
    kind: EntitlementKind | None
    value: str
    valid_from: dt.date
    valid_to: dt.date | None
    justification: str
    approved_by: str

    def in_force_on(self, on: dt.date) -> bool:
        return self.valid_from <= on and (self.valid_to is None or on <= self.valid_to)
