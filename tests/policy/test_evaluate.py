"""Evaluation: who should hold what on a date, and every reason why."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st
from policy_factories import TODAY, assignment, assignments, person

from pasa.domain.grants import DesiredAccount, DesiredGrant, DesiredState, EntitlementKind, Reason
from pasa.domain.model import AssignmentCategory, AssignmentStatus, PersonView
from pasa.policy import compile_policy, evaluate, load_policy_file, parse_policy
from pasa.policy.document import TargetLifecycle

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "policy.yaml"

POLICY = compile_policy(
    parse_policy(
        """
version: 1
targets:
  - {key: ad, name: Directory, connector: memory}
  - {key: epr, name: EPR, connector: memory}
  - {key: doors, name: Doors, connector: memory, username_template: "{employee_number}"}
birthright: [ad]
roles:
  - key: basics
    entitlements: [{target: ad, groups: [All-Staff]}]
  - key: nurse
    entitlements:
      - {target: epr, app_roles: [Nurse]}
      - {target: doors, door_zones: [wards]}
  - key: doctor
    entitlements:
      - {target: epr, app_roles: [Clinician, Prescriber]}
      - {target: doors, door_zones: [wards, mess]}
rules:
  - {key: all-staff, when: {category: {not_in: [Honorary]}}, grant: [basics]}
  - {key: nurses, when: {staff_group: "03"}, grant: [nurse]}
  - {key: doctors, when: {all: [{staff_group: "01"}, {not: {category: Honorary}}]}, grant: [doctor]}
""",
        "test-policy",
    )
)


def held(state: DesiredState, person_id: int) -> set[tuple[str, str, str]]:
    out = {(a.target, "account", "") for a in state.accounts if a.person_id == person_id}
    out |= {(g.target, g.kind.value, g.value) for g in state.grants if g.person_id == person_id}
    return out


def nurse_and_bank_doctor() -> PersonView:
    nurse = assignment("10000001")
    doctor = assignment(
        "20000001",
        pos={"organisation": "RHW", "staff_group": "01", "job_role_code": "01005"},
        category=AssignmentCategory.BANK,
        primary=False,
    )
    return person(1, nurse, doctor)


def test_nurse_gets_birthright_rule_access_and_reasons() -> None:
    state = evaluate([person(1)], POLICY, TODAY)
    assert held(state, 1) == {
        ("ad", "account", ""),
        ("ad", "group", "All-Staff"),
        ("epr", "account", ""),
        ("epr", "app_role", "Nurse"),
        ("doors", "account", ""),
        ("doors", "door_zone", "wards"),
    }
    ad = next(a for a in state.accounts if a.target == "ad")
    assert Reason("birthright", None, None, "RXL", "10000001") in ad.reasons
    assert Reason("rule", "all-staff", "basics", "RXL", "10000001") in ad.reasons
    nurse = next(g for g in state.grants if g.value == "Nurse")
    assert nurse.kind is EntitlementKind.APP_ROLE
    assert nurse.reasons == (Reason("rule", "nurses", "nurse", "RXL", "10000001"),)


def test_access_is_the_union_across_assignments_and_organisations() -> None:
    state = evaluate([nurse_and_bank_doctor()], POLICY, TODAY)
    values = {v for _, kind, v in held(state, 1) if kind != "account"}
    assert values == {"All-Staff", "Nurse", "Clinician", "Prescriber", "wards", "mess"}
    wards = next(g for g in state.grants if g.value == "wards")
    assert {(r.organisation, r.assignment_number) for r in wards.reasons} == {
        ("RXL", "10000001"),
        ("RHW", "20000001"),
    }


def test_ending_one_assignment_removes_only_what_it_alone_justified() -> None:
    p = nurse_and_bank_doctor()
    doctor_ends = dt.date(2026, 12, 31)
    p = person(1, p.assignments[0], replace(p.assignments[1], end_date=doctor_ends))
    before = held(evaluate([p], POLICY, doctor_ends), 1)
    after = held(evaluate([p], POLICY, doctor_ends + dt.timedelta(days=1)), 1)
    assert before - after == {
        ("epr", "app_role", "Clinician"),
        ("epr", "app_role", "Prescriber"),
        ("doors", "door_zone", "mess"),
    }
    assert ("doors", "door_zone", "wards") in after  # still justified by the nursing post


def test_nothing_before_start_or_after_end_but_person_is_still_evaluated() -> None:
    a = assignment(start_date=dt.date(2026, 12, 1), end_date=dt.date(2027, 1, 31))
    p = person(7, a)
    for day in (dt.date(2026, 11, 30), dt.date(2027, 2, 1)):
        state = evaluate([p], POLICY, day)
        assert state.accounts == () and state.grants == ()
        assert state.evaluated_person_ids == frozenset({7})
    assert held(evaluate([p], POLICY, dt.date(2027, 1, 31)), 7)  # end date is inclusive


def test_suspended_assignment_holds_accounts_disabled_without_door_zones() -> None:
    p = person(3, assignment(status=AssignmentStatus.SUSPENDED))
    state = evaluate([p], POLICY, TODAY)
    assert state.accounts and all(not a.enabled for a in state.accounts)
    assert all("suspended" in r.detail for a in state.accounts for r in a.reasons)
    assert state.grants, "groups and roles are kept for the return"
    assert not [g for g in state.grants if g.kind == EntitlementKind.DOOR_ZONE]


def test_attributes_come_from_primary_assignment_with_manager_resolved() -> None:
    manager = person(2, assignment("20000002"), first_name="Mo", last_name="Khan")
    staff = person(
        1,
        assignment("10000001", supervisor_assignment_number="20000002",
                   pos={"title": "Sister", "department_name": "Ward 9"}),
        assignment("10000001-2", primary=False, pos={"title": "Bank Nurse"}),
    )  # fmt: skip
    state = evaluate([staff, manager], POLICY, TODAY)
    attrs = next(a for a in state.accounts if a.person_id == 1).attributes
    assert attrs.job_title == "Sister"
    assert attrs.department == "Ward 9"
    assert attrs.manager_employee_number == "20000002"
    assert attrs.employee_number == "10000001"
    # the supervisor number is organisation-qualified: another trust's 20000002 is not them
    elsewhere = person(
        1,
        assignment(
            "10000001", pos={"organisation": "RHW"}, supervisor_assignment_number="20000002"
        ),
    )
    attrs = evaluate([elsewhere, manager], POLICY, TODAY).accounts[0].attributes
    assert attrs.manager_employee_number is None


@st.composite
def people(draw: st.DrawFn) -> list[PersonView]:
    out = []
    for pid in range(1, draw(st.integers(1, 6)) + 1):
        n = draw(st.integers(1, 3))
        assigns = []
        for i in range(n):
            a = draw(assignments(f"{10000000 + pid}-{i + 1}"))
            start = draw(st.dates(dt.date(2026, 1, 1), dt.date(2027, 12, 31)))
            end = draw(st.none() | st.dates(start, dt.date(2028, 12, 31)))
            assigns.append(replace(a, start_date=start, end_date=end))
        out.append(person(pid, *assigns))
    return out


EXAMPLE_POLICY = compile_policy(load_policy_file(EXAMPLE))
_EXAMPLE_DOC = load_policy_file(EXAMPLE)
EXAMPLE_WITHOUT_WINDOWS = compile_policy(
    _EXAMPLE_DOC.model_copy(
        update={
            "targets": tuple(
                t.model_copy(update={"lifecycle": TargetLifecycle()}) for t in _EXAMPLE_DOC.targets
            )
        }
    )
)


@settings(max_examples=150, deadline=None)
@given(folks=people(), day=st.dates(dt.date(2026, 1, 1), dt.date(2028, 12, 31)))
def test_every_grant_has_reasons_that_really_match(folks: list[PersonView], day: dt.date) -> None:
    for policy in (POLICY, EXAMPLE_POLICY):
        state = evaluate(folks, policy, day)
        by_id = {p.person_id: p for p in folks}
        rules = {r.key: r for r in policy.rules}
        account_targets = {(a.person_id, a.target) for a in state.accounts}
        items: list[DesiredAccount | DesiredGrant] = [*state.accounts, *state.grants]
        for item in items:
            assert item.reasons
            p = by_id[item.person_id]
            for reason in item.reasons:
                a = next(
                    x for x in p.assignments
                    if (x.organisation, x.assignment_number)
                    == (reason.organisation, reason.assignment_number)
                )  # fmt: skip
                if reason.detail.startswith("suspended"):
                    assert a.is_active_on(day) and a.status == AssignmentStatus.SUSPENDED
                elif reason.detail.startswith("pre-hire"):
                    assert day < a.start_date
                else:
                    assert a.is_active_on(day) and a.status != AssignmentStatus.SUSPENDED
                if reason.kind == "rule":
                    assert reason.rule is not None and rules[reason.rule].matches(a)
                    assert reason.role in rules[reason.rule].roles
                else:
                    assert reason.kind == "birthright" and item.target in policy.birthright
        for g in state.grants:  # a grant always comes with its account
            assert (g.person_id, g.target) in account_targets
        # someone with no granting assignment can use nothing
        for p in folks:
            if not any(
                a.is_active_on(day) and a.status != AssignmentStatus.SUSPENDED
                for a in p.assignments
            ):
                assert not [a for a in state.accounts if a.person_id == p.person_id and a.enabled]
        assert state.evaluated_person_ids == {p.person_id for p in folks}


@settings(max_examples=100, deadline=None)
@given(folks=people(), day=st.dates(dt.date(2026, 1, 1), dt.date(2028, 12, 31)))
def test_union_equals_evaluating_each_assignment_alone(
    folks: list[PersonView], day: dt.date
) -> None:
    # Without lifecycle windows: those deliberately break a plain union (a new post's pre-hire
    # access is withheld while the person still uses the account; handover needs another post).
    state = evaluate(folks, EXAMPLE_WITHOUT_WINDOWS, day)
    for p in folks:
        parts: set[tuple[str, str, str]] = set()
        for a in p.assignments:
            alone = evaluate([person(p.person_id, a)], EXAMPLE_WITHOUT_WINDOWS, day)
            parts |= held(alone, p.person_id)
        assert held(state, p.person_id) == parts


def test_output_is_deterministic() -> None:
    folks = [nurse_and_bank_doctor(), person(2)]
    assert evaluate(folks, POLICY, TODAY) == evaluate(list(reversed(folks)), POLICY, TODAY)
