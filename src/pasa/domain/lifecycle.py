"""Lifecycle states of a person and of each of their assignments on a date (pure).

An assignment is ``pre_hire`` before its start date, ``active`` (or ``suspended`` when ESR
says "Suspend Assignment") while in force, a ``leaver`` for ``leaver_days`` after its end
date, and ``former`` after that. A person takes the "liveliest" state of their assignments:
active, else suspended, else pre_hire (how a rehired former employee comes back), else
leaver, else former. ``leaver_days`` is chosen by the caller (the service uses the longest
account retention of the policy's targets, 30 days if none is set).
"""

from __future__ import annotations

import datetime as dt
from enum import StrEnum

from pasa.domain.model import Assignment, AssignmentStatus, PersonView

DEFAULT_LEAVER_DAYS = 30
PERSON_SCOPE = ""


class LifecycleState(StrEnum):
    PRE_HIRE = "pre_hire"
    ACTIVE = "active"
    SUSPENDED = "suspended"
    LEAVER = "leaver"
    FORMER = "former"


# Position of each state in a single assignment's life (active and suspended share a stage).
STAGE: dict[LifecycleState, int] = {
    LifecycleState.PRE_HIRE: 0,
    LifecycleState.ACTIVE: 1,
    LifecycleState.SUSPENDED: 1,
    LifecycleState.LEAVER: 2,
    LifecycleState.FORMER: 3,
}

# Person-level precedence: the first state any assignment is in wins.
_PRECEDENCE = (
    LifecycleState.ACTIVE,
    LifecycleState.SUSPENDED,
    LifecycleState.PRE_HIRE,
    LifecycleState.LEAVER,
)


def assignment_scope(assignment: Assignment) -> str:
    """The ``lifecycle_state.scope`` of an assignment: ``ODS/assignment number``."""
    return f"{assignment.organisation}/{assignment.assignment_number}"


def assignment_state(
    assignment: Assignment, at: dt.date, leaver_days: int = DEFAULT_LEAVER_DAYS
) -> LifecycleState:
    """The state of one assignment on ``at`` (end date inclusive: in force that day)."""
    if at < assignment.start_date:
        return LifecycleState.PRE_HIRE
    end = assignment.end_date
    if end is None or at <= end:
        if assignment.status == AssignmentStatus.SUSPENDED:
            return LifecycleState.SUSPENDED
        return LifecycleState.ACTIVE
    if at <= end + dt.timedelta(days=max(leaver_days, 0)):
        return LifecycleState.LEAVER
    return LifecycleState.FORMER


def person_state(
    person: PersonView, at: dt.date, leaver_days: int = DEFAULT_LEAVER_DAYS
) -> LifecycleState:
    """The person's overall state on ``at`` (``former`` when they hold no assignment)."""
    found = {assignment_state(a, at, leaver_days) for a in person.assignments}
    for state in _PRECEDENCE:
        if state in found:
            return state
    return LifecycleState.FORMER


def states_of(
    person: PersonView, at: dt.date, leaver_days: int = DEFAULT_LEAVER_DAYS
) -> dict[str, LifecycleState]:
    """Scope -> state: ``""`` for the person, ``ODS/assignment`` for each assignment."""
    out = {PERSON_SCOPE: person_state(person, at, leaver_days)}
    for a in person.assignments:
        out[assignment_scope(a)] = assignment_state(a, at, leaver_days)
    return out
