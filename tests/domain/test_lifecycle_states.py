"""Lifecycle states of assignments and people (pure): examples and properties."""

from __future__ import annotations

import datetime as dt

from hypothesis import given
from hypothesis import strategies as st

from pasa.domain.lifecycle import (
    STAGE,
    LifecycleState,
    assignment_scope,
    assignment_state,
    person_state,
    states_of,
)
from pasa.domain.model import (
    Assignment,
    AssignmentCategory,
    AssignmentStatus,
    PersonView,
    Position,
)

D = dt.date
POS = Position(
    organisation="RXL",
    position_number="P1",
    title="Staff Nurse",
    staff_group="03",
    job_role_code="03001",
    area_of_work="Medicine",
    occupation_code="N1A",
    grade_code="Band 5",
    department_code="W12",
    department_name="Ward 12",
    cost_centre="CC1",
    site_code="VIC",
    site_name="Victoria",
)


def make_assignment(
    start: dt.date,
    end: dt.date | None = None,
    status: AssignmentStatus = AssignmentStatus.ACTIVE,
    number: str = "1001",
) -> Assignment:
    return Assignment(
        assignment_number=number,
        organisation="RXL",
        employee_number="E1",
        position=POS,
        category=AssignmentCategory.PERMANENT,
        status=status,
        primary=True,
        start_date=start,
        end_date=end,
        supervisor_assignment_number=None,
        wte=1.0,
    )


def make_person(*assignments: Assignment) -> PersonView:
    return PersonView(
        person_id=1,
        uid="u1",
        first_name="Jane",
        last_name="Smith",
        known_as=None,
        email=None,
        assignments=assignments,
    )


def test_assignment_states_through_a_career() -> None:
    a = make_assignment(D(2026, 1, 10), D(2026, 6, 30))
    assert assignment_state(a, D(2026, 1, 9)) is LifecycleState.PRE_HIRE
    assert assignment_state(a, D(2026, 1, 10)) is LifecycleState.ACTIVE
    assert assignment_state(a, D(2026, 6, 30)) is LifecycleState.ACTIVE  # end date inclusive
    assert assignment_state(a, D(2026, 7, 1), 30) is LifecycleState.LEAVER
    assert assignment_state(a, D(2026, 7, 30), 30) is LifecycleState.LEAVER
    assert assignment_state(a, D(2026, 7, 31), 30) is LifecycleState.FORMER
    suspended = make_assignment(D(2026, 1, 10), status=AssignmentStatus.SUSPENDED)
    assert assignment_state(suspended, D(2026, 3, 1)) is LifecycleState.SUSPENDED
    assert assignment_scope(a) == "RXL/1001"


def test_person_precedence_and_the_rehired_former_employee() -> None:
    old = make_assignment(D(2020, 1, 1), D(2024, 1, 31), number="1")
    rehire = make_assignment(D(2026, 9, 1), number="2")
    person = make_person(old, rehire)
    at = D(2026, 8, 1)
    assert assignment_state(old, at) is LifecycleState.FORMER
    assert person_state(person, at) is LifecycleState.PRE_HIRE
    assert person_state(person, D(2026, 9, 1)) is LifecycleState.ACTIVE
    suspended = make_assignment(D(2020, 1, 1), status=AssignmentStatus.SUSPENDED, number="3")
    assert person_state(make_person(suspended, rehire), at) is LifecycleState.SUSPENDED
    assert person_state(make_person(), at) is LifecycleState.FORMER
    states = states_of(person, at)
    assert states == {
        "": LifecycleState.PRE_HIRE,
        "RXL/1": LifecycleState.FORMER,
        "RXL/2": LifecycleState.PRE_HIRE,
    }


# --- properties --------------------------------------------------------------------------------

days = st.dates(min_value=D(2015, 1, 1), max_value=D(2035, 12, 31))
statuses = st.sampled_from(list(AssignmentStatus))


@st.composite
def assignments_(draw: st.DrawFn, number: str = "1001") -> Assignment:
    start = draw(days)
    end = draw(st.none() | st.dates(min_value=start, max_value=D(2036, 12, 31)))
    return make_assignment(start, end, draw(statuses), number)


@st.composite
def people(draw: st.DrawFn) -> PersonView:
    count = draw(st.integers(min_value=0, max_value=4))
    return make_person(*(draw(assignments_(str(1000 + i))) for i in range(count)))


@given(people(), days, st.integers(min_value=0, max_value=400))
def test_person_state_is_one_of_the_five(person: PersonView, at: dt.date, leaver_days: int) -> None:
    assert person_state(person, at, leaver_days) in set(LifecycleState)


@given(people(), days, st.integers(min_value=0, max_value=400))
def test_any_active_assignment_makes_the_person_active(
    person: PersonView, at: dt.date, leaver_days: int
) -> None:
    active = any(
        assignment_state(a, at, leaver_days) is LifecycleState.ACTIVE for a in person.assignments
    )
    assert (person_state(person, at, leaver_days) is LifecycleState.ACTIVE) == active


@given(assignments_(), days, days, st.integers(min_value=0, max_value=400))
def test_one_assignment_only_moves_forward_in_time(
    a: Assignment, d1: dt.date, d2: dt.date, leaver_days: int
) -> None:
    early, late = sorted((d1, d2))
    before, after = assignment_state(a, early, leaver_days), assignment_state(a, late, leaver_days)
    assert STAGE[before] <= STAGE[after]
    if STAGE[before] == STAGE[after] == 1:
        assert before is after  # the status of one assignment version does not change
