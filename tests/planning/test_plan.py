"""The planner: desired vs recorded -> ordered, explained operations that converge."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

from hypothesis import given, settings
from hypothesis import strategies as st

from pasa.domain.grants import (
    AccountAttributes,
    AccountStatus,
    DesiredAccount,
    DesiredGrant,
    DesiredState,
    EntitlementKind,
    Reason,
    RecordedAccount,
    RecordedGrant,
    RecordedState,
)
from pasa.domain.operations import PHASE, OperationKind, PlannedOperation
from pasa.planning import Plan, apply_to_recorded, plan
from pasa.policy import TargetSpec

AT = dt.date(2026, 11, 24)
TARGETS = {
    "ad": TargetSpec(key="ad", name="Directory", connector="memory"),
    "epr": TargetSpec(
        key="epr",
        name="EPR",
        connector="memory",
        username_template="{first_name}.{last_name}",
        attributes=("display_name", "department", "job_title"),
    ),
}
G, R = EntitlementKind.GROUP, EntitlementKind.APP_ROLE
WHY = (Reason("rule", "nurses", "nurse", "RXL", "10000001"),)


def attrs(
    pid: int, first: str = "Jane", last: str = "Smith", dept: str = "Ward 1"
) -> AccountAttributes:
    return AccountAttributes(
        first_name=first,
        last_name=last,
        display_name=f"{first} {last}",
        email=None,
        employee_number=f"{10000000 + pid}",
        organisation="RXL",
        department=dept,
        job_title="Staff Nurse",
        manager_employee_number=None,
    )


def desired(
    accounts: Iterable[DesiredAccount],
    grants: Iterable[DesiredGrant] = (),
    evaluated: Iterable[int] = (),
) -> DesiredState:
    accounts = tuple(accounts)
    ids = set(evaluated) | {a.person_id for a in accounts}
    return DesiredState(AT, accounts, tuple(grants), frozenset(ids))


def recorded_account(
    account_id: int, pid: int, target: str = "ad", status: AccountStatus = AccountStatus.ENABLED,
    username: str = "jsmith", **attributes: str | None,
) -> RecordedAccount:  # fmt: skip
    base = {k: v for k, v in attrs(pid).as_dict().items() if k in TARGETS[target].kept_attributes()}
    return RecordedAccount(account_id, pid, target, username, status, {**base, **attributes})


def kinds(p: Plan) -> list[tuple[str, int, OperationKind, str]]:
    return [(op.target, op.person_id, op.kind, op.payload.get("value", "")) for op in p.operations]


def test_joiner_gets_create_then_adds_with_reasons_and_summary() -> None:
    want = desired(
        [DesiredAccount(1, "ad", attrs(1), WHY)],
        [DesiredGrant(1, "ad", G, "Nursing", WHY), DesiredGrant(1, "ad", G, "All-Staff", WHY)],
    )
    p = plan(want, RecordedState((), ()), TARGETS, {"ad": {"jsmith"}})
    assert kinds(p) == [
        ("ad", 1, OperationKind.CREATE_ACCOUNT, ""),
        ("ad", 1, OperationKind.ADD_MEMBERSHIP, "All-Staff"),
        ("ad", 1, OperationKind.ADD_MEMBERSHIP, "Nursing"),
    ]
    create = p.operations[0]
    assert create.username == "jsmith2"  # jsmith is taken on ad
    assert create.summary == "create account jsmith2 on ad for Jane Smith"
    assert create.payload["attributes"]["employee_number"] == "10000001"
    assert all(op.reasons == WHY for op in p.operations)
    assert {op.username for op in p.operations} == {"jsmith2"}
    assert p.counts_by_target_kind() == {
        ("ad", OperationKind.CREATE_ACCOUNT): 1,
        ("ad", OperationKind.ADD_MEMBERSHIP): 2,
    }


def test_target_keeps_only_its_attributes() -> None:
    p = plan(desired([DesiredAccount(1, "epr", attrs(1), WHY)]), RecordedState((), ()), TARGETS, {})
    assert set(p.operations[0].payload["attributes"]) == {"display_name", "department", "job_title"}
    assert p.operations[0].username == "jane.smith"


def test_leaver_loses_grants_then_account_is_disabled_with_reason() -> None:
    rec = RecordedState(
        (recorded_account(1, 1),),
        (RecordedGrant(1, 1, "ad", G, "Nursing"), RecordedGrant(1, 1, "ad", G, "All-Staff")),
    )
    p = plan(desired([], evaluated=[1]), rec, TARGETS, {})
    assert [op.kind for op in p.operations] == [
        OperationKind.REMOVE_MEMBERSHIP,
        OperationKind.REMOVE_MEMBERSHIP,
        OperationKind.DISABLE,
    ]
    for op in p.operations:
        (reason,) = op.reasons
        assert reason.kind == "not_justified"
        assert reason.describe() == "no active assignment on 2026-11-24 justifies it"
    assert p.operations[-1].summary.startswith("disable account jsmith on ad for Jane Smith")


def test_mover_loses_only_unjustified_grant_and_gets_attribute_update() -> None:
    rec = RecordedState(
        (recorded_account(1, 1),),
        (RecordedGrant(1, 1, "ad", G, "Nursing"), RecordedGrant(1, 1, "ad", G, "All-Staff")),
    )
    want = desired(
        [DesiredAccount(1, "ad", attrs(1, dept="Theatres"), WHY)],
        [DesiredGrant(1, "ad", G, "All-Staff", WHY), DesiredGrant(1, "ad", G, "Theatres", WHY)],
    )
    p = plan(want, rec, TARGETS, {})
    assert kinds(p) == [
        ("ad", 1, OperationKind.UPDATE_ATTRIBUTES, ""),
        ("ad", 1, OperationKind.ADD_MEMBERSHIP, "Theatres"),
        ("ad", 1, OperationKind.REMOVE_MEMBERSHIP, "Nursing"),
    ]
    assert p.operations[0].payload == {"changes": {"department": ["Ward 1", "Theatres"]}}
    assert p.operations[2].reasons[0].detail == "no rule grants group Nursing on ad any more"


def test_disabled_account_is_enabled_and_deleted_account_is_created_again() -> None:
    want = desired([DesiredAccount(1, "ad", attrs(1), WHY), DesiredAccount(2, "ad", attrs(2), WHY)])
    rec = RecordedState(
        (
            recorded_account(1, 1, status=AccountStatus.DISABLED),
            recorded_account(2, 2, status=AccountStatus.DELETED, username="jsmith2"),
        ),
        (),
    )
    p = plan(want, rec, TARGETS, {"ad": {"jsmith", "jsmith2"}})
    assert [(op.person_id, op.kind) for op in p.operations] == [
        (1, OperationKind.ENABLE),
        (2, OperationKind.CREATE_ACCOUNT),
    ]
    assert p.operations[1].username == "jsmith2", "a rehired person gets their old name back"
    assert p.operations[1].summary.endswith("again")


def test_people_not_evaluated_are_never_touched() -> None:
    rec = RecordedState((recorded_account(1, 99),), (RecordedGrant(1, 99, "ad", G, "Old"),))
    assert plan(desired([], evaluated=[1]), rec, TARGETS, {}).is_empty


def test_no_rule_for_target_any_more_says_so() -> None:
    rec = RecordedState(
        (recorded_account(1, 1), recorded_account(2, 1, "epr", username="jane.smith")), ()
    )
    p = plan(desired([DesiredAccount(1, "ad", attrs(1), WHY)]), rec, TARGETS, {})
    (op,) = p.operations
    assert (op.target, op.kind) == ("epr", OperationKind.DISABLE)
    assert op.reasons[0].detail == "no rule grants an account on epr any more"


# --- properties ------------------------------------------------------------------------------

NAMES = [("Jane", "Smith"), ("John", "Smith"), ("Siân", "O'Neill"), ("Jo", "Smith")]
VALUES = {"ad": ["All-Staff", "Nursing", "Theatres"], "epr": ["Nurse", "Clinician"]}
KIND = {"ad": G, "epr": R}


@st.composite
def scenarios(draw: st.DrawFn) -> tuple[DesiredState, RecordedState, dict[str, set[str]]]:
    pids = list(range(1, draw(st.integers(1, 8)) + 1))
    evaluated = draw(st.sets(st.sampled_from(pids)))
    names = {pid: draw(st.sampled_from(NAMES)) for pid in pids}
    want_accounts, want_grants = [], []
    for pid in sorted(evaluated):
        first, last = names[pid]
        for target in ("ad", "epr"):
            if draw(st.booleans()):
                dept = draw(st.sampled_from(["Ward 1", "Theatres"]))
                want_accounts.append(
                    DesiredAccount(pid, target, attrs(pid, first, last, dept), WHY)
                )
                for value in draw(st.sets(st.sampled_from(VALUES[target]))):
                    want_grants.append(DesiredGrant(pid, target, KIND[target], value, WHY))
    accounts, grants = [], []
    next_id = 1
    for pid in pids:
        for target in ("ad", "epr"):
            for _ in range(draw(st.integers(0, 2))):
                status = draw(st.sampled_from(list(AccountStatus)))
                dept = draw(st.sampled_from(["Ward 1", "Theatres"]))
                account = recorded_account(
                    next_id, pid, target, status, username=f"u{next_id}", department=dept
                )
                accounts.append(account)
                for value in draw(st.sets(st.sampled_from(VALUES[target]))):
                    grants.append(RecordedGrant(next_id, pid, target, KIND[target], value))
                next_id += 1
    taken = {t: {a.username for a in accounts if a.target == t} for t in ("ad", "epr")}
    taken["ad"] |= draw(st.sets(st.sampled_from(["jsmith", "jsmith2", "soneill", "josmith"])))
    return (
        desired(want_accounts, want_grants, evaluated),
        RecordedState(tuple(accounts), tuple(grants)),
        taken,
    )


def holdings(state: RecordedState, pids: Iterable[int]) -> set[tuple[int, str, str, str]]:
    """What live (non-deleted) accounts of these people hold: accounts and grants."""
    wanted = set(pids)
    live = {
        a.account_id: a
        for a in state.accounts
        if a.person_id in wanted and a.status == AccountStatus.ENABLED
    }
    out = {(a.person_id, a.target, "account", "") for a in live.values()}
    out |= {
        (g.person_id, g.target, g.kind.value, g.value) for g in state.grants if g.account_id in live
    }
    return out


@settings(max_examples=300, deadline=None)
@given(scenarios())
def test_plan_converges_and_holds_exactly_what_is_desired(
    case: tuple[DesiredState, RecordedState, dict[str, set[str]]],
) -> None:
    want, rec, taken = case
    p = plan(want, rec, TARGETS, taken)
    after = apply_to_recorded(rec, p.operations)
    # re-planning after the plan is applied finds nothing to do
    taken_after = {t: {a.username for a in after.accounts if a.target == t} for t in TARGETS}
    assert plan(want, after, TARGETS, taken_after).is_empty
    # evaluated people hold exactly what is desired, and nothing more
    expected = {(a.person_id, a.target, "account", "") for a in want.accounts}
    expected |= {(g.person_id, g.target, g.kind.value, g.value) for g in want.grants}
    assert holdings(after, want.evaluated_person_ids) == expected
    # no disabled account of an evaluated person keeps a grant (deleted ones are gone)
    by_id = {a.account_id: a for a in after.accounts}
    for g in after.grants:
        account = by_id[g.account_id]
        if g.person_id in want.evaluated_person_ids and account.status != AccountStatus.DELETED:
            assert account.status == AccountStatus.ENABLED
    # never two enabled accounts for one person on one target
    enabled = [
        (a.person_id, a.target)
        for a in after.accounts
        if a.status == AccountStatus.ENABLED and a.person_id in want.evaluated_person_ids
    ]
    assert len(enabled) == len(set(enabled))
    # everyone else is untouched
    others = {a.person_id for a in rec.accounts} - want.evaluated_person_ids
    assert holdings(after, others) == holdings(rec, others)
    assert all(op.person_id in want.evaluated_person_ids for op in p.operations)


@settings(max_examples=300, deadline=None)
@given(scenarios())
def test_operations_are_ordered_explained_and_usernames_unique(
    case: tuple[DesiredState, RecordedState, dict[str, set[str]]],
) -> None:
    want, rec, taken = case
    p = plan(want, rec, TARGETS, taken)
    keys = [
        (op.target, op.person_id, PHASE[op.kind], op.kind.value, op.payload.get("value", ""))
        for op in p.operations
    ]
    assert keys == sorted(keys)
    for op in p.operations:
        assert op.reasons and op.summary and op.username
    created: dict[str, list[str]] = {}
    own_deleted = {
        (a.person_id, a.target, a.username)
        for a in rec.accounts
        if a.status == AccountStatus.DELETED
    }
    for op in p.operations:
        if op.kind == OperationKind.CREATE_ACCOUNT:
            created.setdefault(op.target, []).append(op.username)
            if (op.person_id, op.target, op.username) in own_deleted:
                continue  # a rehire gets their own old name back
            assert op.username.lower() not in {t.lower() for t in taken.get(op.target, set())}
    for names in created.values():
        assert len(names) == len(set(names))
    assert p == plan(want, rec, TARGETS, taken)  # deterministic


def test_apply_to_recorded_round_trip_example() -> None:
    op = PlannedOperation(OperationKind.CREATE_ACCOUNT, 1, "ad", "jsmith", {"attributes": {}})
    after = apply_to_recorded(RecordedState((), ()), [op])
    assert after.accounts[0].account_id == 1 and after.accounts[0].status == AccountStatus.ENABLED
