"""The approval route of an access request (pasa.domain.requests): examples and properties."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pasa.domain.access import Binding, Principal, Role
from pasa.domain.requests import (
    TERMINAL,
    AccessRequest,
    Chase,
    RequestError,
    Stage,
    State,
    chase,
    check_dates,
    decide,
    may_decide,
    submit,
    withdraw,
)

AT = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.UTC)
PERSON = 10
MANAGER = Principal("lm@nhs.net", person_id=20, reports={PERSON: frozenset({"RXL"})})
STAFF = Principal("staff@nhs.net", person_id=PERSON, person_organisations=frozenset({"RXL"}))
OWNER = Principal("so@nhs.net", bindings=frozenset({Binding(Role.SYSTEM_OWNER, "RXL", "epr")}))
OTHER_OWNER = Principal(
    "so2@nhs.net", bindings=frozenset({Binding(Role.SYSTEM_OWNER, "RXL", "doors")})
)
IDENTITY = Principal("it@nhs.net", bindings=frozenset({Binding(Role.ORG_ADMIN, "RXL")}))
OTHER_IDENTITY = Principal("it2@nhs.net", bindings=frozenset({Binding(Role.ORG_ADMIN, "RYJ")}))
# The line manager who is also the system owner: still may not approve what they asked for.
MANAGER_OWNER = Principal(
    "lmso@nhs.net",
    person_id=21,
    reports={PERSON: frozenset({"RXL"})},
    bindings=frozenset({Binding(Role.SYSTEM_OWNER, "RXL", "epr")}),
)
PEOPLE = [MANAGER, STAFF, OWNER, OTHER_OWNER, IDENTITY, OTHER_IDENTITY, MANAGER_OWNER]
BOTH = (Stage.LINE_MANAGER, Stage.SYSTEM_OWNER)


def _submit(by: Principal, stages: tuple[Stage, ...] = BOTH, sla: int = 24) -> AccessRequest:
    return submit(
        requester=by,
        person_id=PERSON,
        organisations=frozenset({"RXL"}),
        target="epr",
        stages=stages,
        sla_hours=sla,
        at=AT,
    )


def test_staff_request_waits_for_the_line_manager_then_the_system_owner() -> None:
    request = _submit(STAFF)
    assert request.state is State.AWAITING_LINE_MANAGER
    assert not may_decide(request, OWNER)[0]
    request = decide(request, MANAGER, approve=True, reason="", at=AT)
    assert request.state is State.AWAITING_SYSTEM_OWNER
    assert not may_decide(request, OTHER_OWNER)[0]
    request = decide(request, OWNER, approve=True, reason="qualified", at=AT)
    assert request.state is State.APPROVED
    assert [d.by for d in request.decisions] == ["lm@nhs.net", "so@nhs.net"]


def test_a_line_manager_asking_gives_the_line_manager_stage() -> None:
    request = _submit(MANAGER)
    assert request.state is State.AWAITING_SYSTEM_OWNER
    assert request.decisions[0].by_request and request.decisions[0].by == "lm@nhs.net"


def test_a_line_manager_asking_for_a_line_manager_only_item_needs_someone_else() -> None:
    request = _submit(MANAGER, stages=(Stage.LINE_MANAGER,))
    assert request.state is State.AWAITING_LINE_MANAGER and request.decisions == ()
    assert not may_decide(request, MANAGER)[0]
    assert decide(request, IDENTITY, approve=True, reason="", at=AT).state is State.APPROVED


def test_nobody_decides_their_own_request_or_one_for_themselves() -> None:
    request = _submit(MANAGER_OWNER)
    allowed, why = may_decide(request, MANAGER_OWNER)
    assert not allowed and "separation of duties" in why
    with pytest.raises(RequestError, match="separation of duties"):
        decide(request, MANAGER_OWNER, approve=True, reason="", at=AT)
    for_me = _submit(MANAGER)
    assert not may_decide(for_me, STAFF)[0]


def test_a_rejection_needs_a_reason_and_ends_the_request() -> None:
    request = _submit(STAFF)
    with pytest.raises(RequestError, match="say why"):
        decide(request, MANAGER, approve=False, reason=" ", at=AT)
    rejected = decide(request, MANAGER, approve=False, reason="not needed on this ward", at=AT)
    assert rejected.state is State.REJECTED
    with pytest.raises(RequestError):
        withdraw(rejected, STAFF)


def test_the_identity_team_of_the_organisation_may_decide_an_escalated_stage() -> None:
    request = _submit(STAFF)
    assert may_decide(request, IDENTITY)[0]
    assert not may_decide(request, OTHER_IDENTITY)[0]


def test_reminder_past_the_sla_and_escalation_past_twice_the_sla() -> None:
    request = _submit(STAFF, sla=24)
    assert chase(request, AT + dt.timedelta(hours=23)) is Chase.NONE
    assert chase(request, AT + dt.timedelta(hours=24)) is Chase.REMINDER
    assert chase(request, AT + dt.timedelta(hours=48)) is Chase.ESCALATION
    # The next stage starts its own clock.
    later = AT + dt.timedelta(hours=47)
    moved = decide(request, MANAGER, approve=True, reason="", at=later)
    assert chase(moved, later + dt.timedelta(hours=1)) is Chase.NONE


def test_dates_are_checked_against_the_catalogue_limit() -> None:
    today = dt.date(2026, 3, 2)
    assert check_dates(starts=today, ends=None, today=today, max_days=None) is None
    assert "needs an end date" in str(
        check_dates(starts=today, ends=None, today=today, max_days=90)
    )
    too_long = check_dates(
        starts=today, ends=today + dt.timedelta(days=91), today=today, max_days=90
    )
    assert too_long is not None and "31 May 2026" in too_long
    assert "before the start" in str(
        check_dates(starts=today, ends=today - dt.timedelta(days=1), today=today, max_days=None)
    )
    assert "in the past" in str(
        check_dates(starts=today - dt.timedelta(days=1), ends=None, today=today, max_days=None)
    )


# --- properties ------------------------------------------------------------------------------

actions = st.lists(
    st.tuples(
        st.sampled_from(["approve", "reject", "withdraw"]),
        st.sampled_from(range(len(PEOPLE))),
    ),
    max_size=8,
)
stage_lists = st.sampled_from(
    [(Stage.LINE_MANAGER,), (Stage.SYSTEM_OWNER,), BOTH, (Stage.SYSTEM_OWNER, Stage.LINE_MANAGER)]
)


@settings(max_examples=300, deadline=None)
@given(requester=st.sampled_from(PEOPLE), stages=stage_lists, steps=actions)
def test_any_sequence_of_decisions_keeps_the_route_sound(
    requester: Principal, stages: tuple[Stage, ...], steps: list[tuple[str, int]]
) -> None:
    request = _submit(requester, stages)
    for kind, who in steps:
        actor = PEOPLE[who]
        before = request
        try:
            if kind == "withdraw":
                request = withdraw(request, actor)
            else:
                request = decide(request, actor, approve=kind == "approve", reason="because", at=AT)
        except RequestError:
            assert request == before
            continue
        # Terminal states stay terminal: nothing succeeds on a closed request.
        assert before.state not in TERMINAL
        if kind != "withdraw":
            # Never the requester, never the person the access is for.
            assert actor.subject != request.requester
            assert actor.person_id != request.person_id
    if request.state is State.APPROVED:
        # Every stage, in order, has an approval by someone.
        assert tuple(d.stage for d in request.approvals) == stages
        for d in request.approvals:
            assert d.by != request.requester or (d.by_request and d.stage is Stage.LINE_MANAGER)
        # Someone other than the requester always approved.
        assert any(d.by != request.requester for d in request.approvals)
    if request.state not in TERMINAL:
        assert request.current_stage is not None
