"""The predicate language of policy rules: parse, compile to closures, explain failures.

A predicate is a tree read from YAML::

    {all: [p, ...]}      every part holds
    {any: [p, ...]}      at least one part holds
    {not: p}             the part does not hold
    {ATTRIBUTE: CONDITION}

where ``CONDITION`` is a scalar (equality) or one of ``{equals: x}``, ``{in: [..]}``,
``{not_in: [..]}``, ``{prefix: "..." | [..]}``. Attributes are read from one assignment and
its position (see ``ATTRIBUTES``). Parsing validates attribute names, operators and value
types; compiling turns the tree into nested closures so evaluation does no dictionary look-ups.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final, TypeAlias

from pasa.domain.model import Assignment, AssignmentCategory, AssignmentStatus

Value: TypeAlias = str | bool
Matcher: TypeAlias = Callable[[Assignment], bool]


@dataclass(frozen=True, slots=True)
class Attribute:
    """One attribute a condition can test: where it is read from and what values it takes."""

    name: str
    getter: Callable[[Assignment], Value]
    is_bool: bool = False
    allowed: frozenset[str] | None = None  # closed vocabulary (category, status)
    description: str = ""


def _attr(path: str) -> Callable[[Assignment], Value]:
    getter: Callable[[Assignment], Value] = operator.attrgetter(path)
    return getter


ATTRIBUTES: Final[dict[str, Attribute]] = {
    a.name: a
    for a in (
        Attribute("organisation", _attr("organisation"), description="ODS code of the employer"),
        Attribute("staff_group", _attr("position.staff_group"), description="NWD code 01..10"),
        Attribute("job_role_code", _attr("position.job_role_code"), description="5-digit NWD"),
        Attribute("area_of_work", _attr("position.area_of_work"), description="NWD area"),
        Attribute("occupation_code", _attr("position.occupation_code"), description="an3"),
        Attribute("grade_code", _attr("position.grade_code"), description="AfC band or grade"),
        Attribute("department_code", _attr("position.department_code"), description="ward"),
        Attribute("site_code", _attr("position.site_code"), description="location code"),
        Attribute("cost_centre", _attr("position.cost_centre"), description="cost centre"),
        Attribute("position_number", _attr("position.position_number"), description="post"),
        Attribute(
            "category",
            lambda a: str(a.category),  # the plain ESR text, whether enum or str
            allowed=frozenset(c.value for c in AssignmentCategory),
            description="assignment category",
        ),
        Attribute(
            "status",
            lambda a: str(a.status),
            allowed=frozenset(s.value for s in AssignmentStatus),
            description="assignment status",
        ),
        Attribute("primary", _attr("primary"), is_bool=True, description="primary assignment"),
    )
}
"""Every attribute a rule may test, in documentation order."""

OPERATORS: Final[tuple[str, ...]] = ("equals", "in", "not_in", "prefix")
COMBINATORS: Final[tuple[str, ...]] = ("all", "any", "not")


class PredicateError(ValueError):
    """A predicate is malformed; the message names the place inside the predicate."""


# --------------------------------------------------------------------------------------------
# Syntax tree


@dataclass(frozen=True, slots=True)
class Condition:
    """``attribute`` compared with ``values`` by ``op`` (equals/in/not_in/prefix)."""

    attribute: str
    op: str
    values: tuple[Value, ...]

    def test(self, value: Value) -> bool:
        if self.op in ("equals", "in"):
            return value in self.values
        if self.op == "not_in":
            return value not in self.values
        return isinstance(value, str) and value.startswith(tuple(str(v) for v in self.values))

    def describe_need(self) -> str:
        shown = [v for v in self.values]
        if self.op == "equals":
            return f"rule needs {shown[0]!r}"
        if self.op == "in":
            return f"rule needs one of {shown!r}"
        if self.op == "not_in":
            return f"rule needs none of {shown!r}"
        if len(shown) == 1:
            return f"rule needs it to start with {shown[0]!r}"
        return f"rule needs it to start with one of {shown!r}"

    def describe(self) -> str:
        if self.op == "equals":
            return f"{self.attribute} is {self.values[0]!r}"
        if self.op == "in":
            return f"{self.attribute} in {list(self.values)!r}"
        if self.op == "not_in":
            return f"{self.attribute} not in {list(self.values)!r}"
        return f"{self.attribute} starts with {' or '.join(repr(v) for v in self.values)}"


@dataclass(frozen=True, slots=True)
class AllOf:
    parts: tuple[Predicate, ...]


@dataclass(frozen=True, slots=True)
class AnyOf:
    parts: tuple[Predicate, ...]


@dataclass(frozen=True, slots=True)
class Not:
    part: Predicate


Predicate: TypeAlias = Condition | AllOf | AnyOf | Not


# --------------------------------------------------------------------------------------------
# Parsing


def _where(path: str) -> str:
    return f"{path}: " if path else ""


def _parse_value(attribute: Attribute, raw: Any, path: str, *, closed: bool = True) -> Value:
    if attribute.is_bool:
        if not isinstance(raw, bool):
            raise PredicateError(f"{_where(path)}{attribute.name} takes true or false, not {raw!r}")
        return raw
    if isinstance(raw, bool) or not isinstance(raw, str):
        hint = ""
        if isinstance(raw, int | float):
            hint = " (quote codes such as '03': YAML reads 03 as a number)"
        raise PredicateError(
            f"{_where(path)}{attribute.name} values must be quoted strings, not {raw!r}{hint}"
        )
    if closed and attribute.allowed is not None and raw not in attribute.allowed:
        raise PredicateError(
            f"{_where(path)}{attribute.name} value {raw!r} is not one of "
            f"{', '.join(sorted(attribute.allowed))}"
        )
    return raw


def _parse_condition(name: str, raw: Any, path: str) -> Condition:
    attribute = ATTRIBUTES.get(name)
    if attribute is None:
        raise PredicateError(
            f"{_where(path)}unknown attribute {name!r} (known: {', '.join(ATTRIBUTES)})"
        )
    here = f"{path}.{name}" if path else name
    if not isinstance(raw, Mapping):
        if isinstance(raw, list):
            raise PredicateError(f"{here}: a list needs an operator, e.g. {{in: [...]}}")
        return Condition(name, "equals", (_parse_value(attribute, raw, here),))
    if len(raw) != 1:
        raise PredicateError(
            f"{here}: a condition has exactly one operator ({', '.join(OPERATORS)}), got {len(raw)}"
        )
    ((op, operand),) = raw.items()
    if op not in OPERATORS:
        raise PredicateError(f"{here}: unknown operator {op!r} (known: {', '.join(OPERATORS)})")
    where = f"{here}.{op}"
    if op == "equals":
        return Condition(name, op, (_parse_value(attribute, operand, where),))
    if op == "prefix":
        if attribute.is_bool:
            raise PredicateError(f"{where}: prefix does not apply to true/false attribute {name}")
        items = operand if isinstance(operand, list) else [operand]
    else:
        if not isinstance(operand, list):
            raise PredicateError(f"{where}: needs a list of values, e.g. [{operand!r}]")
        items = operand
    if not items:
        raise PredicateError(f"{where}: needs at least one value")
    closed = op != "prefix"
    values = tuple(dict.fromkeys(_parse_value(attribute, v, where, closed=closed) for v in items))
    return Condition(name, op, values)


def parse_predicate(raw: Any, path: str = "") -> Predicate:
    """Turn the YAML form of a predicate into a tree; ``PredicateError`` names the bad place."""
    if isinstance(raw, Condition | AllOf | AnyOf | Not):
        return raw
    if not isinstance(raw, Mapping) or not raw:
        raise PredicateError(
            f"{_where(path)}a predicate is a mapping such as {{staff_group: '03'}} "
            f"or {{all: [...]}}, not {raw!r}"
        )
    if len(raw) != 1:
        keys = ", ".join(str(k) for k in raw)
        raise PredicateError(
            f"{_where(path)}one key per predicate (got {keys}); combine them with all: [...]"
        )
    ((key, value),) = raw.items()
    key = str(key)
    here = f"{path}.{key}" if path else key
    if key in ("all", "any"):
        if not isinstance(value, list) or not value:
            raise PredicateError(f"{here}: needs a non-empty list of predicates")
        parts = tuple(parse_predicate(p, f"{here}[{i}]") for i, p in enumerate(value))
        return AllOf(parts) if key == "all" else AnyOf(parts)
    if key == "not":
        return Not(parse_predicate(value, here))
    return _parse_condition(key, value, path)


def dump_predicate(pred: Predicate) -> dict[str, Any]:
    """The canonical YAML/JSON form of a predicate (``parse_predicate`` reads it back)."""
    if isinstance(pred, AllOf):
        return {"all": [dump_predicate(p) for p in pred.parts]}
    if isinstance(pred, AnyOf):
        return {"any": [dump_predicate(p) for p in pred.parts]}
    if isinstance(pred, Not):
        return {"not": dump_predicate(pred.part)}
    if pred.op == "equals":
        return {pred.attribute: pred.values[0]}
    if pred.op == "prefix" and len(pred.values) == 1:
        return {pred.attribute: {"prefix": pred.values[0]}}
    return {pred.attribute: {pred.op: list(pred.values)}}


def conditions(pred: Predicate) -> tuple[Condition, ...]:
    """Every leaf condition of a predicate, in order."""
    if isinstance(pred, Condition):
        return (pred,)
    if isinstance(pred, Not):
        return conditions(pred.part)
    return tuple(c for p in pred.parts for c in conditions(p))


# --------------------------------------------------------------------------------------------
# Compiling


def _compile_condition(cond: Condition) -> Matcher:
    get = ATTRIBUTES[cond.attribute].getter
    if cond.op == "equals":
        wanted = cond.values[0]
        return lambda a: get(a) == wanted
    if cond.op == "in":
        members = frozenset(cond.values)
        return lambda a: get(a) in members
    if cond.op == "not_in":
        excluded = frozenset(cond.values)
        return lambda a: get(a) not in excluded
    prefixes = tuple(str(v) for v in cond.values)
    return lambda a: str(get(a)).startswith(prefixes)


def compile_predicate(pred: Predicate) -> Matcher:
    """A closure answering ``pred`` for one assignment."""
    if isinstance(pred, Condition):
        return _compile_condition(pred)
    if isinstance(pred, Not):
        inner = compile_predicate(pred.part)
        return lambda a: not inner(a)
    parts = tuple(compile_predicate(p) for p in pred.parts)
    if len(parts) == 1:
        return parts[0]
    if isinstance(pred, AllOf):
        return lambda a: all(p(a) for p in parts)
    return lambda a: any(p(a) for p in parts)


def index_key(pred: Predicate) -> tuple[str, frozenset[Value]] | None:
    """An (attribute, values) pair the predicate *requires* — used to index rules.

    When an assignment's attribute value is not among ``values`` the predicate cannot hold,
    so the rule need not be tried. ``None`` when no such top-level condition exists.
    """
    candidates: list[Condition] = []
    if isinstance(pred, Condition):
        candidates = [pred]
    elif isinstance(pred, AllOf):
        candidates = [p for p in pred.parts if isinstance(p, Condition)]
    usable = [c for c in candidates if c.op in ("equals", "in")]
    if not usable:
        return None
    best = min(usable, key=lambda c: len(c.values))
    return best.attribute, frozenset(best.values)


# --------------------------------------------------------------------------------------------
# Explaining


def first_failure(pred: Predicate, assignment: Assignment) -> str | None:
    """``None`` when ``pred`` holds, else the first reason it does not, in plain words.

    e.g. ``staff_group is '08', rule needs one of ['03']``.
    """
    if isinstance(pred, Condition):
        value = ATTRIBUTES[pred.attribute].getter(assignment)
        if pred.test(value):
            return None
        return f"{pred.attribute} is {value!r}, {pred.describe_need()}"
    if isinstance(pred, Not):
        if first_failure(pred.part, assignment) is not None:
            return None
        return f"rule excludes it: {describe(pred.part)}"
    if isinstance(pred, AllOf):
        for part in pred.parts:
            failure = first_failure(part, assignment)
            if failure is not None:
                return failure
        return None
    failures: list[str] = []
    for part in pred.parts:
        failure = first_failure(part, assignment)
        if failure is None:
            return None
        failures.append(failure)
    return "none of the alternatives hold: " + "; ".join(failures)


def describe(pred: Predicate) -> str:
    """A compact one-line rendering, e.g. ``all(staff_group is '03', primary is True)``."""
    if isinstance(pred, Condition):
        return pred.describe()
    if isinstance(pred, Not):
        return f"not {describe(pred.part)}"
    name = "all" if isinstance(pred, AllOf) else "any"
    return f"{name}(" + ", ".join(describe(p) for p in pred.parts) + ")"
