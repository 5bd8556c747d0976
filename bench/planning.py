"""Planning throughput: policy evaluation + planning, pure and in memory.

People are built straight from a synthetic extract (no database), so the figures are those
of the pure core: ``evaluate`` (policy -> desired state) and ``plan`` (desired vs recorded ->
operations). Two scenarios:

- a 7,000-staff trust's first full plan from empty (every account and grant is created);
- a rotation of N movers (doctors in training first): their recorded state is what the
  first plan would have created the day before, and the plan moves them.
"""

from __future__ import annotations

import csv
import datetime as dt
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from pasa.clock import parse_date
from pasa.domain.model import (
    Assignment,
    AssignmentCategory,
    AssignmentStatus,
    PersonView,
    Position,
)
from pasa.hr.esr_columns import COLUMNS

POLICY = Path(__file__).resolve().parent.parent / "examples" / "policy.yaml"
_I = {name: i for i, name in enumerate(COLUMNS)}
_CATEGORIES = {c.value: c for c in AssignmentCategory}
_STATUSES = {s.value: s for s in AssignmentStatus}


def planning_available() -> str | None:
    """None when the policy and planning modules import, else the reason."""
    try:
        from pasa.planning.plan import apply_to_recorded, plan  # noqa: F401
        from pasa.policy.document import load_policy_file  # noqa: F401
        from pasa.policy.evaluate import compile_policy, evaluate  # noqa: F401
    except ImportError as exc:
        return f"policy/planning modules are not importable yet ({exc})"
    if not POLICY.exists():
        return f"{POLICY} is missing"
    return None


def _date(text: str) -> dt.date | None:
    return parse_date(text) if text else None


def people_from_extract(path: Path, only: set[str] | None = None) -> list[PersonView]:
    """PersonView objects from an extract (optionally only the given employee numbers)."""
    by_employee: dict[str, list[list[str]]] = {}
    with path.open(encoding="utf-8-sig", newline="") as handle:
        reader = csv.reader(handle)
        next(reader)
        emp_i = _I["Employee_Number"]
        for row in reader:
            emp = row[emp_i]
            if only is not None and emp not in only:
                continue
            by_employee.setdefault(emp, []).append(row)
    people: list[PersonView] = []
    for emp, rows in by_employee.items():
        first = rows[0]
        people.append(
            PersonView(
                person_id=int(emp),
                uid=f"bench-{emp}",
                first_name=first[_I["First_Name"]],
                last_name=first[_I["Last_Name"]],
                known_as=first[_I["Known_As"]] or None,
                email=first[_I["Email_Address"]] or None,
                assignments=tuple(_assignment(r) for r in rows),
                identifiers=(("esr", emp),),
            )
        )
    return people


def _assignment(r: list[str]) -> Assignment:
    org = r[_I["Org_Code"]]
    position = Position(
        organisation=org,
        position_number=r[_I["Position_Number"]],
        title=r[_I["Position_Title"]],
        staff_group=r[_I["Staff_Group"]],
        job_role_code=r[_I["Job_Role_Code"]],
        area_of_work=r[_I["Area_Of_Work"]],
        occupation_code=r[_I["Occupation_Code"]],
        grade_code=r[_I["Grade_Code"]],
        department_code=r[_I["Department_Code"]],
        department_name=r[_I["Department_Name"]],
        cost_centre=r[_I["Cost_Centre"]],
        site_code=r[_I["Location_Code"]],
        site_name=r[_I["Location_Name"]],
    )
    start = _date(r[_I["Assignment_Start_Date"]])
    assert start is not None
    return Assignment(
        assignment_number=r[_I["Assignment_Number"]],
        organisation=org,
        employee_number=r[_I["Employee_Number"]],
        position=position,
        category=_CATEGORIES[r[_I["Assignment_Category"]]],
        status=_STATUSES[r[_I["Assignment_Status"]]],
        primary=r[_I["Primary_Assignment"]] == "Y",
        start_date=start,
        end_date=_date(r[_I["Assignment_End_Date"]]),
        supervisor_assignment_number=r[_I["Supervisor_Assignment_Number"]] or None,
        wte=float(r[_I["WTE"]]),
    )


def _policy() -> tuple[Any, dict[str, Any]]:
    from pasa.policy.document import load_policy_file
    from pasa.policy.evaluate import compile_policy

    doc = load_policy_file(POLICY)
    return compile_policy(doc), {t.key: t for t in doc.targets}


def _taken(recorded: Any) -> dict[str, set[str]]:
    taken: dict[str, set[str]] = {}
    for account in recorded.accounts:
        taken.setdefault(account.target, set()).add(account.username)
    return taken


def _timed_plan(
    people: Iterable[PersonView], at: dt.date, recorded: Any, taken: dict[str, set[str]]
) -> tuple[Any, float, float]:
    from pasa.planning.plan import plan
    from pasa.policy.evaluate import evaluate

    policy, targets = _policy()
    started = time.perf_counter()
    desired = evaluate(people, policy, at)
    evaluated = time.perf_counter()
    result = plan(desired, recorded, targets, taken)
    planned = time.perf_counter()
    return result, evaluated - started, planned - evaluated


def first_full_plan(extract: str, as_of: dt.date) -> dict[str, Any]:
    """Timed: evaluate + plan for every person of a trust, from empty recorded state."""
    from pasa.domain.grants import RecordedState

    people = people_from_extract(Path(extract))
    result, eval_s, plan_s = _timed_plan(people, as_of, RecordedState((), ()), {})
    ops = len(result.operations)
    seconds = eval_s + plan_s
    return {
        "seconds": seconds,
        "people": len(people),
        "operations": ops,
        "evaluate_s": round(eval_s, 3),
        "plan_s": round(plan_s, 3),
        "ops_per_s": round(ops / seconds) if seconds else 0,
        "people_per_s": round(len(people) / seconds) if seconds else 0,
    }


def rotation_plan(before: str, after: str, movers: list[str], when: dt.date) -> dict[str, Any]:
    """Timed: evaluate + plan for the movers on the rotation date against what they hold."""
    from pasa.domain.grants import RecordedState
    from pasa.planning.plan import apply_to_recorded

    employees = {m.split("-")[0] for m in movers}
    old = people_from_extract(Path(before), employees)
    new = people_from_extract(Path(after), employees)
    # Untimed set-up: what the first plan created for them the day before, all applied.
    day_before = when - dt.timedelta(days=1)
    first, _, _ = _timed_plan(old, day_before, RecordedState((), ()), {})
    recorded = apply_to_recorded(RecordedState((), ()), first.operations)
    del old, first
    result, eval_s, plan_s = _timed_plan(new, when, recorded, _taken(recorded))
    ops = len(result.operations)
    kinds: dict[str, int] = {}
    for op in result.operations:
        kinds[str(op.kind)] = kinds.get(str(op.kind), 0) + 1
    seconds = eval_s + plan_s
    return {
        "seconds": seconds,
        "people": len(new),
        "operations": ops,
        "evaluate_s": round(eval_s, 3),
        "plan_s": round(plan_s, 3),
        "ops_per_s": round(ops / seconds) if seconds else 0,
        "people_per_s": round(len(new) / seconds) if seconds else 0,
        "kinds": kinds,
    }


def make_rotation(extract: str, out: str, movers: int, when: dt.date, seed: int) -> dict[str, Any]:
    """Untimed set-up step: the rotation file; returns the moved assignment numbers."""
    from pasa.hr.synthetic import generate_rotation

    started = time.perf_counter()
    summary = generate_rotation(
        Path(extract), Path(out), movers=movers, rotation_date=when, seed=seed
    )
    seconds = time.perf_counter() - started
    return {
        "seconds": seconds,
        "rows": summary.rows,
        "movers": summary.movers,
        "doctors_in_training_moved": summary.doctors_in_training_moved,
        "rows_per_s": round(summary.rows / seconds),
        "moved": summary.moved_assignments,
    }
