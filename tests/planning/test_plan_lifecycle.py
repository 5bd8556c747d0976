"""Evaluate + plan through a joiner -> mover -> leaver story with the example policy."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from pasa.domain.grants import RecordedState
from pasa.domain.model import (
    Assignment,
    AssignmentCategory,
    AssignmentStatus,
    PersonView,
    Position,
)
from pasa.domain.operations import OperationKind
from pasa.planning import Plan, apply_to_recorded, plan
from pasa.policy import compile_policy, evaluate, load_policy_file

POLICY = compile_policy(
    load_policy_file(Path(__file__).resolve().parents[2] / "examples" / "policy.yaml")
)
START, MOVE, LEAVE = dt.date(2026, 8, 5), dt.date(2027, 2, 3), dt.date(2027, 7, 31)


def post(number: str, staff_group: str, job_role: str, area: str, grade: str) -> Position:
    return Position(
        "RXL", number, "Post " + number, staff_group, job_role, area, "C10", grade,
        "D1", "Department 1", "CC1", "VIC", "Victoria",
    )  # fmt: skip


def doctor() -> PersonView:
    ed = Assignment(
        "10000001", "RXL", "10000001",
        post("P1", "01", "01016", "Emergency Medicine", "ST3"),
        AssignmentCategory.LEAD_EMPLOYER, AssignmentStatus.ACTIVE, True,
        START, MOVE - dt.timedelta(days=1), None, 1.0,
    )  # fmt: skip
    radiology = Assignment(
        "10000001-2", "RXL", "10000001",
        post("P2", "01", "01016", "Radiology", "ST4"),
        AssignmentCategory.LEAD_EMPLOYER, AssignmentStatus.ACTIVE, True,
        MOVE, LEAVE, None, 1.0,
    )  # fmt: skip
    return PersonView(1, "u1", "Siân", "Nuñez", None, "sian.nunez@nhs.net", (ed, radiology))


def step(recorded: RecordedState, on: dt.date) -> tuple[Plan, RecordedState]:
    desired = evaluate([doctor()], POLICY, on)
    taken = {t: {a.username for a in recorded.accounts if a.target == t} for t in POLICY.targets}
    p = plan(desired, recorded, POLICY.targets, taken)
    after = apply_to_recorded(recorded, p.operations)
    replan = plan(desired, after, POLICY.targets, taken)
    assert replan.is_empty
    return p, after


def values(p: Plan, kind: OperationKind) -> set[str]:
    return {op.payload.get("value", op.target) for op in p.operations if op.kind == kind}


def test_joiner_mover_leaver() -> None:
    joined, state = step(RecordedState((), ()), START)
    creates = {op.target: op.username for op in joined.operations if op.kind == "create_account"}
    assert creates == {"ad": "snunez", "epr": "sian.nunez", "doors": "10000001"}
    assert {"ED-Tracking-Board", "Prescriber", "emergency-department"} <= values(
        joined, OperationKind.ADD_MEMBERSHIP
    )

    moved, state = step(state, MOVE)
    # the rotation only changes what the ED post alone justified; PACS is new. The EPR keeps
    # the old clinical role for its 7-day handover; the door zone goes on the day.
    assert values(moved, OperationKind.REMOVE_MEMBERSHIP) == {"emergency-department"}
    assert values(moved, OperationKind.ADD_MEMBERSHIP) == {"Radiologist", "radiology"}
    assert values(moved, OperationKind.CREATE_ACCOUNT) == {"pacs"}
    assert not values(moved, OperationKind.DISABLE)
    kinds = [op.kind for op in moved.operations if op.target == "doors"]
    assert kinds.index(OperationKind.ADD_MEMBERSHIP) < kinds.index(OperationKind.REMOVE_MEMBERSHIP)
    kept, state = step(state, MOVE + dt.timedelta(days=6))  # old post ended MOVE - 1
    assert kept.is_empty, "still within the EPR handover window"
    handed_over, state = step(state, MOVE + dt.timedelta(days=7))
    assert values(handed_over, OperationKind.REMOVE_MEMBERSHIP) == {"ED-Tracking-Board"}

    left, state = step(state, LEAVE + dt.timedelta(days=1))
    assert values(left, OperationKind.DISABLE) == {"ad", "epr", "doors", "pacs"}
    assert not values(left, OperationKind.ADD_MEMBERSHIP)
    for op in left.operations:
        assert op.reasons[0].detail == "no active assignment on 2027-08-01 justifies it"
    for target in POLICY.targets:
        ops = [op.kind for op in left.operations if op.target == target]
        assert ops[-1] == OperationKind.DISABLE  # removals come first
