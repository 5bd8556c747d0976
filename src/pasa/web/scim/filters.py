"""SCIM filters (RFC 7644 §3.4.2.2) translated to SQL WHERE clauses — never evaluated in Python.

The filter text is parsed by scim2-models (:class:`scim2_models.ScimFilter`); this module walks
the tree and builds a SQLAlchemy expression from an attribute map that the resource type
supplies (``userName`` -> a column or SQL expression, ``emails`` -> an ``EXISTS`` over the
e-mail rows). An attribute outside the map, an operator its type cannot take, or a value of
the wrong type is refused with ``400 invalidFilter`` and a sentence naming the problem.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from scim2_models import ScimFilter
from scim2_models.path.expressions import (
    AttrPath,
    CompareOperator,
    Comparison,
    FilterNode,
    LogicalExpr,
    LogicalOperator,
    Not,
    Present,
    ValuePath,
)
from sqlalchemy.sql.elements import ColumnElement

from pasa.web.scim.errors import ScimError, invalid_filter

MAX_FILTER_LENGTH = 2000

Clause = ColumnElement[bool]


@dataclass(frozen=True, slots=True)
class Field:
    """A filterable (and sortable) attribute: its SQL expression and type."""

    expr: ColumnElement[Any]
    kind: str = "string"  # string | boolean | datetime
    case_exact: bool = False


@dataclass(frozen=True, slots=True)
class MultiValued:
    """A multi-valued complex attribute: ``where(compile)`` builds an ``EXISTS`` (or more)
    from a compiler of the value filter over the sub-attribute map it is given."""

    where: Callable[[Callable[[Mapping[str, Field]], Clause]], Clause]
    default_sub: str = "value"


Attribute = Field | MultiValued


def _key(path: AttrPath, core_schema: str) -> str:
    name = path.attr if path.sub_attr is None else f"{path.attr}.{path.sub_attr}"
    if path.uri and path.uri.lower() != core_schema.lower():
        return f"{path.uri}:{name}".lower()
    return name.lower()


def _escape_like(value: str) -> str:
    return value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _compare(field: Field, op: CompareOperator, value: Any, name: str) -> Clause:
    expr = field.expr
    if value is None:
        if op is CompareOperator.eq:
            return expr.is_(None)
        if op is CompareOperator.ne:
            return expr.is_not(None)
        raise invalid_filter(f"'{name} {op.value} null': null only compares with eq or ne")
    if field.kind == "boolean":
        if not isinstance(value, bool):
            raise invalid_filter(f"'{name}' is a boolean: compare it with true or false")
        if op is CompareOperator.eq:
            return expr == sa.true() if value else sa.or_(expr == sa.false(), expr.is_(None))
        if op is CompareOperator.ne:
            return expr == sa.false() if value else expr == sa.true()
        raise invalid_filter(f"'{name}' is a boolean: only eq and ne apply, not {op.value}")
    if field.kind == "datetime":
        if not isinstance(value, str):
            raise invalid_filter(f"'{name}' is a dateTime: compare it with a quoted date")
        try:
            when = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise invalid_filter(
                f"'{value}' is not a dateTime (e.g. 2026-01-31T08:00:00Z)"
            ) from None
        if when.tzinfo is None:
            when = when.replace(tzinfo=dt.UTC)
        ops: dict[CompareOperator, Callable[[], Clause]] = {
            CompareOperator.eq: lambda: expr == when,
            CompareOperator.ne: lambda: expr != when,
            CompareOperator.gt: lambda: expr > when,
            CompareOperator.ge: lambda: expr >= when,
            CompareOperator.lt: lambda: expr < when,
            CompareOperator.le: lambda: expr <= when,
        }
        if op not in ops:
            raise invalid_filter(f"'{name}' is a dateTime: {op.value} does not apply to it")
        return ops[op]()
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise invalid_filter(f"'{name}' is a string: compare it with a quoted value")
    text = str(value)
    if not field.case_exact:
        expr, text = sa.func.lower(expr), text.lower()
    like = _escape_like(text)
    if op is CompareOperator.eq:
        return expr == text
    if op is CompareOperator.ne:
        return sa.or_(field.expr.is_(None), expr != text)
    if op is CompareOperator.co:
        return expr.like(f"%{like}%", escape="\\")
    if op is CompareOperator.sw:
        return expr.like(f"{like}%", escape="\\")
    if op is CompareOperator.ew:
        return expr.like(f"%{like}", escape="\\")
    if op is CompareOperator.gt:
        return expr > text
    if op is CompareOperator.ge:
        return expr >= text
    if op is CompareOperator.lt:
        return expr < text
    return expr <= text


def _present(field: Field) -> Clause:
    if field.kind == "string":
        return sa.and_(field.expr.is_not(None), field.expr != "")
    return field.expr.is_not(None)


class Compiler:
    """Compiles filters of one resource type against its attribute map."""

    def __init__(
        self,
        attributes: Mapping[str, Attribute],
        core_schema: str,
        what: str,
        lookups: Mapping[str, Callable[[str], Clause]] | None = None,
    ):
        """``lookups``: per attribute path, an index-friendly clause given the lower-cased
        value of a top-level ``eq``, matching at least every resource the comparison
        matches; it is ANDed with the comparison so the database can start from an index."""
        self.attributes = {k.lower(): v for k, v in attributes.items()}
        self.core_schema = core_schema
        self.what = what
        self.lookups = {k.lower(): v for k, v in (lookups or {}).items()}

    def _unknown(self, name: str) -> ScimError:
        known = ", ".join(sorted(self.attributes))
        return invalid_filter(
            f"'{name}' cannot be used in a filter on {self.what} (filterable: {known})"
        )

    def _field(self, path: AttrPath, scope: Mapping[str, Field] | None) -> Field | MultiValued:
        if scope is not None:
            found = scope.get(path.attr.lower()) if path.sub_attr is None else None
            if found is None:
                known = ", ".join(sorted(scope))
                raise invalid_filter(
                    f"'{path}' is not a sub-attribute that can be filtered on (use: {known})"
                )
            return found
        key = _key(path, self.core_schema)
        if key in self.attributes:
            return self.attributes[key]
        # "emails.value" / "emails" -> the multi-valued attribute and its sub-attribute
        head = _key(AttrPath(path.attr, None, path.uri), self.core_schema)
        if head in self.attributes and isinstance(self.attributes[head], MultiValued):
            return self.attributes[head]
        raise self._unknown(str(path))

    def compile(self, node: FilterNode, scope: Mapping[str, Field] | None = None) -> Clause:
        if isinstance(node, LogicalExpr):
            parts = [self.compile(t, scope) for t in node.terms]
            return sa.and_(*parts) if node.op is LogicalOperator.and_ else sa.or_(*parts)
        if isinstance(node, Not):
            return sa.not_(self.compile(node.expr, scope))
        if isinstance(node, ValuePath):
            if scope is not None:
                raise invalid_filter("a filter in brackets cannot contain another one")
            target = self._field(AttrPath(node.attr_path.attr, None, node.attr_path.uri), None)
            if not isinstance(target, MultiValued):
                raise invalid_filter(f"'{node.attr_path}' is not multi-valued: drop the brackets")
            inner = node.val_filter
            return target.where(lambda sub: self.compile(inner, sub))
        if isinstance(node, Comparison | Present):
            clause = self._leaf(node, scope)
            lookup = self.lookups.get(_key(node.attr_path, self.core_schema))
            if (
                scope is None
                and lookup is not None
                and isinstance(node, Comparison)
                and node.op is CompareOperator.eq
                and isinstance(node.value, str)
            ):
                return sa.and_(lookup(node.value.lower()), clause)
            return clause
        raise invalid_filter(f"unsupported filter expression: {node}")

    def _leaf(self, node: Comparison | Present, scope: Mapping[str, Field] | None) -> Clause:
        path = node.attr_path
        found = self._field(path, scope)
        if isinstance(found, MultiValued):
            sub = AttrPath(path.sub_attr or found.default_sub)
            leaf: FilterNode = (
                Comparison(sub, node.op, node.value)
                if isinstance(node, Comparison)
                else Present(sub)
            )
            return found.where(lambda m: self.compile(leaf, m))
        if isinstance(node, Present):
            return _present(found)
        return _compare(found, node.op, node.value, str(path))

    def where(self, text: str) -> Clause:
        if len(text) > MAX_FILTER_LENGTH:
            raise invalid_filter(f"the filter is longer than {MAX_FILTER_LENGTH} characters")
        try:
            parsed: ScimFilter[Any] = ScimFilter(text)
        except Exception as exc:
            raise invalid_filter(
                f"the filter '{text}' is not valid SCIM filter syntax: {exc}"
            ) from None
        return self.compile(parsed.ast)

    def sort_key(self, name: str) -> ColumnElement[Any]:
        try:
            path = ScimFilter(f"{name} pr").ast
        except Exception:
            raise ScimError(
                400, f"sortBy '{name}' is not an attribute path", "invalidValue"
            ) from None
        assert isinstance(path, Present)
        found = self.attributes.get(_key(path.attr_path, self.core_schema))
        if not isinstance(found, Field):
            known = ", ".join(sorted(k for k, v in self.attributes.items() if isinstance(v, Field)))
            raise ScimError(
                400, f"cannot sort {self.what} by '{name}' (sortable: {known})", "invalidValue"
            )
        return sa.func.lower(found.expr) if found.kind == "string" else found.expr
