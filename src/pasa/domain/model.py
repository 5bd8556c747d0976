"""Identity-hub value types used by the pure core (policy, planning).

ESR keys on assignment and position, not on person: ``Person 1..* Assignment *..1 Position``.
Staff group, job role, area of work and occupation code belong to the Position. These types
are immutable snapshots assembled by the store for one evaluation; the core never mutates them.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from enum import StrEnum


class AssignmentCategory(StrEnum):
    """ESR assignment (employee) category."""

    PERMANENT = "Permanent"
    FIXED_TERM = "Fixed Term Temp"
    BANK = "Bank"
    HONORARY = "Honorary"
    LEAD_EMPLOYER = "Lead Employer Trainee"


class AssignmentStatus(StrEnum):
    """ESR assignment status as carried in the extract."""

    ACTIVE = "Active Assignment"
    SUSPENDED = "Suspend Assignment"
    ACTING_UP = "Acting Up"
    OUT_ON_SECONDMENT = "Out on External Secondment"


@dataclass(frozen=True, slots=True)
class Position:
    """An ESR position (post). Job role is fixed once saved in ESR; movers change position."""

    organisation: str  # ODS code of the owning organisation
    position_number: str
    title: str
    staff_group: str  # NWD code 01..10
    job_role_code: str  # 5-digit NWD code, starts with the staff group
    area_of_work: str
    occupation_code: str  # an3
    grade_code: str
    department_code: str
    department_name: str
    cost_centre: str
    site_code: str
    site_name: str


@dataclass(frozen=True, slots=True)
class Assignment:
    """One employment relationship of a person with an organisation, effective-dated."""

    assignment_number: str
    organisation: str  # ODS code
    employee_number: str
    position: Position
    category: AssignmentCategory
    status: AssignmentStatus
    primary: bool
    start_date: dt.date
    end_date: dt.date | None
    supervisor_assignment_number: str | None
    wte: float

    def is_active_on(self, on: dt.date) -> bool:
        """True when the assignment is in force on ``on`` (end date inclusive)."""
        if on < self.start_date:
            return False
        return self.end_date is None or on <= self.end_date


@dataclass(frozen=True, slots=True)
class PersonView:
    """A person with every assignment they hold, in every organisation, for one evaluation.

    ``person_id`` is PASA's stable identifier (there is no national employee number);
    ``identifiers`` is the cross-reference (scheme -> value) such as ESR employee numbers,
    GMC/NMC/HCPC numbers and directory ids. ``previous`` holds recently superseded versions
    of assignments (a mover's old post), each with ``end_date`` the last day it was in
    force, so a handover window can keep the old access for a while.
    """

    person_id: int
    uid: str
    first_name: str
    last_name: str
    known_as: str | None
    email: str | None
    assignments: tuple[Assignment, ...]
    identifiers: tuple[tuple[str, str], ...] = field(default=())
    previous: tuple[Assignment, ...] = field(default=())

    @property
    def display_name(self) -> str:
        return f"{self.known_as or self.first_name} {self.last_name}"

    def active_assignments(self, on: dt.date) -> tuple[Assignment, ...]:
        return tuple(a for a in self.assignments if a.is_active_on(on))

    def primary_assignment(self, on: dt.date) -> Assignment | None:
        """The primary active assignment, else the earliest-started active one."""
        active = self.active_assignments(on)
        if not active:
            return None
        primaries = [a for a in active if a.primary]
        pool = primaries or list(active)
        return min(pool, key=lambda a: (a.start_date, a.assignment_number))

    def defining_assignment(self, on: dt.date) -> Assignment | None:
        """The assignment account attributes come from: the primary active one, else the
        next to start (a pre-hire), else the last to end (a leaver)."""
        current = self.primary_assignment(on)
        if current is not None:
            return current
        upcoming = [a for a in self.assignments if a.start_date > on]
        if upcoming:
            return min(upcoming, key=lambda a: (not a.primary, a.start_date, a.assignment_number))
        if not self.assignments:
            return None
        return max(self.assignments, key=lambda a: (a.end_date or dt.date.max, a.primary))
