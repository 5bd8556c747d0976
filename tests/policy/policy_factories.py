"""Builders and hypothesis strategies for people, assignments and predicates."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace
from typing import Any

from hypothesis import strategies as st

from pasa.domain.model import (
    Assignment,
    AssignmentCategory,
    AssignmentStatus,
    PersonView,
    Position,
)

D = dt.date
TODAY = D(2026, 11, 24)


def position(**kw: Any) -> Position:
    base = Position(
        organisation="RXL",
        position_number="P0001",
        title="Staff Nurse",
        staff_group="03",
        job_role_code="03001",
        area_of_work="General Medicine",
        occupation_code="N1A",
        grade_code="Band 5",
        department_code="W12",
        department_name="Ward 12",
        cost_centre="CC100",
        site_code="VIC",
        site_name="Victoria Hospital",
    )
    return replace(base, **kw)


def assignment(number: str = "10000001", **kw: Any) -> Assignment:
    pos = kw.pop("position", None) or position(**kw.pop("pos", {}))
    base = Assignment(
        assignment_number=number,
        organisation=pos.organisation,
        employee_number=number.split("-")[0],
        position=pos,
        category=AssignmentCategory.PERMANENT,
        status=AssignmentStatus.ACTIVE,
        primary=True,
        start_date=D(2020, 1, 1),
        end_date=None,
        supervisor_assignment_number=None,
        wte=1.0,
    )
    return replace(base, **kw)


def person(person_id: int = 1, *assignments: Assignment, **kw: Any) -> PersonView:
    base = PersonView(
        person_id=person_id,
        uid=f"u{person_id}",
        first_name="Jane",
        last_name="Smith",
        known_as=None,
        email=f"jane.smith{person_id}@nhs.net",
        assignments=tuple(assignments) or (assignment(f"{10000000 + person_id}"),),
    )
    return replace(base, **kw)


# --- hypothesis ------------------------------------------------------------------------------

VOCAB: dict[str, list[Any]] = {
    "organisation": ["RXL", "RHW", "R1A"],
    "staff_group": ["01", "03", "07", "08", "09"],
    "job_role_code": ["01005", "03001", "03004", "07001", "08006"],
    "area_of_work": ["Emergency Medicine", "Theatres", "Pharmacy", "Radiology", "Finance"],
    "occupation_code": ["N1A", "C10", "S10"],
    "grade_code": ["Band 5", "Band 6", "FY1", "ST3", "Consultant"],
    "department_code": ["W12", "ED1", "TH2"],
    "site_code": ["VIC", "CLI"],
    "cost_centre": ["CC100", "CC200"],
    "position_number": ["P0001", "P0002", "P0003"],
    "category": [c.value for c in AssignmentCategory],
    "status": [s.value for s in AssignmentStatus],
    "primary": [True, False],
}
POSITION_FIELDS = {
    "staff_group",
    "job_role_code",
    "area_of_work",
    "occupation_code",
    "grade_code",
    "department_code",
    "site_code",
    "cost_centre",
    "position_number",
}


@st.composite
def assignments(draw: st.DrawFn, number: str = "10000001") -> Assignment:
    values = {name: draw(st.sampled_from(options)) for name, options in VOCAB.items()}
    pos = position(organisation=values["organisation"], **{k: values[k] for k in POSITION_FIELDS})
    return assignment(
        number,
        position=pos,
        organisation=values["organisation"],
        category=AssignmentCategory(values["category"]),
        status=AssignmentStatus(values["status"]),
        primary=values["primary"],
    )


@st.composite
def leaves(draw: st.DrawFn) -> dict[str, Any]:
    name = draw(st.sampled_from(sorted(VOCAB)))
    options = VOCAB[name]
    if name == "primary":
        value = draw(st.sampled_from(options))
        return {name: draw(st.sampled_from([value, {"equals": value}]))}
    op = draw(st.sampled_from(["scalar", "equals", "in", "not_in", "prefix"]))
    if op == "scalar":
        return {name: draw(st.sampled_from(options))}
    if op == "equals":
        return {name: {"equals": draw(st.sampled_from(options))}}
    if op == "prefix":
        word = draw(st.sampled_from(options))
        return {name: {"prefix": word[: draw(st.integers(1, len(word)))]}}
    picked = draw(st.lists(st.sampled_from(options), min_size=1, max_size=3))
    return {name: {op: picked}}


def raw_predicates() -> st.SearchStrategy[dict[str, Any]]:
    return st.recursive(
        leaves(),
        lambda inner: st.one_of(
            st.lists(inner, min_size=1, max_size=3).map(lambda ps: {"all": ps}),
            st.lists(inner, min_size=1, max_size=3).map(lambda ps: {"any": ps}),
            inner.map(lambda p: {"not": p}),
        ),
        max_leaves=6,
    )


def attribute_value(a: Assignment, name: str) -> Any:
    """Naive reference: read an attribute by name without using pasa's getters."""
    if name in POSITION_FIELDS:
        return getattr(a.position, name)
    return {
        "organisation": a.organisation,
        "category": a.category.value,
        "status": a.status.value,
        "primary": a.primary,
    }[name]


def reference_holds(raw: dict[str, Any], a: Assignment) -> bool:
    """A deliberately simple evaluator of the YAML predicate form."""
    ((key, value),) = raw.items()
    if key == "all":
        return all(reference_holds(p, a) for p in value)
    if key == "any":
        return any(reference_holds(p, a) for p in value)
    if key == "not":
        return not reference_holds(value, a)
    actual = attribute_value(a, key)
    if not isinstance(value, dict):
        return bool(actual == value)
    ((op, operand),) = value.items()
    if op == "equals":
        return bool(actual == operand)
    if op == "in":
        return actual in operand
    if op == "not_in":
        return actual not in operand
    prefixes = operand if isinstance(operand, list) else [operand]
    return any(str(actual).startswith(p) for p in prefixes)
