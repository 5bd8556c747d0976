"""The predicate language agrees with a naive reference evaluator, and explains failures."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from policy_factories import assignment, assignments, raw_predicates, reference_holds

from pasa.domain.model import AssignmentCategory
from pasa.policy.predicates import (
    PredicateError,
    compile_predicate,
    dump_predicate,
    first_failure,
    index_key,
    parse_predicate,
)


@settings(max_examples=300, deadline=None)
@given(raw=raw_predicates(), a=assignments())
def test_compiled_predicate_agrees_with_reference(raw: dict[str, Any], a: Any) -> None:
    pred = parse_predicate(raw)
    expected = reference_holds(raw, a)
    assert compile_predicate(pred)(a) is expected
    # explain says "no failure" exactly when the predicate holds
    assert (first_failure(pred, a) is None) is expected


@settings(max_examples=200, deadline=None)
@given(raw=raw_predicates(), a=assignments())
def test_dumped_predicate_reads_back_to_the_same_meaning(raw: dict[str, Any], a: Any) -> None:
    pred = parse_predicate(raw)
    again = parse_predicate(dump_predicate(pred))
    assert again == pred
    assert compile_predicate(again)(a) is compile_predicate(pred)(a)


@settings(max_examples=200, deadline=None)
@given(raw=raw_predicates(), a=assignments())
def test_index_key_never_excludes_a_matching_assignment(raw: dict[str, Any], a: Any) -> None:
    pred = parse_predicate(raw)
    key = index_key(pred)
    if key is not None and compile_predicate(pred)(a):
        from policy_factories import attribute_value

        attribute, values = key
        assert attribute_value(a, attribute) in values


@pytest.mark.parametrize(
    ("raw", "holds"),
    [
        ({"staff_group": "03"}, True),
        ({"staff_group": {"in": ["01", "03"]}}, True),
        ({"staff_group": {"not_in": ["03"]}}, False),
        ({"job_role_code": {"prefix": "03"}}, True),
        ({"job_role_code": {"prefix": ["01", "02"]}}, False),
        ({"all": [{"staff_group": "03"}, {"primary": True}]}, True),
        ({"any": [{"staff_group": "01"}, {"category": "Bank"}]}, False),
        ({"not": {"category": "Bank"}}, True),
        ({"category": {"equals": "Permanent"}}, True),
    ],
)
def test_examples(raw: dict[str, Any], holds: bool) -> None:
    assert compile_predicate(parse_predicate(raw))(assignment()) is holds


def test_first_failure_names_the_attribute_value_and_need() -> None:
    pred = parse_predicate({"all": [{"primary": True}, {"staff_group": {"in": ["03"]}}]})
    a = assignment(pos={"staff_group": "08"})
    assert first_failure(pred, a) == "staff_group is '08', rule needs one of ['03']"


def test_first_failure_for_not_and_any() -> None:
    bank = assignment(category=AssignmentCategory.BANK)
    assert "excludes" in (first_failure(parse_predicate({"not": {"category": "Bank"}}), bank) or "")
    msg = first_failure(parse_predicate({"any": [{"staff_group": "01"}, {"primary": False}]}), bank)
    assert msg is not None and "staff_group is '03'" in msg and "primary is True" in msg


@pytest.mark.parametrize(
    ("raw", "fragment"),
    [
        ({"staf_group": "03"}, "unknown attribute 'staf_group'"),
        ({"staff_group": {"like": "03"}}, "unknown operator 'like'"),
        ({"staff_group": 3}, "quoted strings"),
        ({"staff_group": {"in": "03"}}, "needs a list"),
        ({"staff_group": {"in": []}}, "at least one value"),
        ({"staff_group": ["03"]}, "needs an operator"),
        ({"primary": "yes"}, "true or false"),
        ({"primary": {"prefix": True}}, "prefix does not apply"),
        ({"category": "Banks"}, "is not one of"),
        ({"all": []}, "non-empty list"),
        ({"staff_group": "03", "primary": True}, "one key per predicate"),
        ({"all": [{"any": [{"grade": "FY1"}]}]}, "all[0].any[0]: unknown attribute 'grade'"),
        ("staff_group", "a predicate is a mapping"),
    ],
)
def test_bad_predicates_are_named_precisely(raw: Any, fragment: str) -> None:
    with pytest.raises(PredicateError, match=None) as info:
        parse_predicate(raw)
    assert fragment in str(info.value)


@given(st.sampled_from(["01", "03"]))
def test_duplicate_values_are_collapsed(code: str) -> None:
    pred = parse_predicate({"staff_group": {"in": [code, code]}})
    assert dump_predicate(pred) == {"staff_group": {"in": [code]}}
