"""Usernames: ASCII, lower case, within length, unique per target, never empty."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pasa.planning.usernames import UsernameAllocator, fold

ALLOWED = re.compile(r"^[a-z0-9._-]+$")


def fields(
    first: str, last: str, number: str = "12345678", known_as: str | None = None
) -> dict[str, str | None]:
    return {"first_name": first, "last_name": last, "employee_number": number, "known_as": known_as}


@pytest.mark.parametrize(
    ("template", "first", "last", "expected"),
    [
        ("{first_initial}{last_name}", "Jane", "Smith", "jsmith"),
        ("{first_initial}{last_name}", "Siân", "O'Neill", "soneill"),
        ("{first_name}.{last_name}", "Ana", "Nuñez", "ana.nunez"),
        ("{first_name}.{last_name}", "Björn", "Øster-Straße", "bjorn.oster-strasse"),
        ("{first_name}.{last_name}", "Mary Jane", "Smith", "maryjane.smith"),
        ("{employee_number}", "Jane", "Smith", "12345678"),
        ("{first_name}.{last_name}", "", "", "12345678"),  # never empty
        ("{first_name}.{last_name}", "李", "王", "12345678"),  # nothing ASCII survives
        (
            "{first_initial}{last_name}",
            "Jane",
            "Featherstonehaugh-Cholmondeley",
            "jfeatherstonehaugh-c",
        ),
    ],
)
def test_examples(template: str, first: str, last: str, expected: str) -> None:
    assert UsernameAllocator(template, 20).allocate(fields(first, last)) == expected


def test_known_as_falls_back_to_first_name() -> None:
    alloc = UsernameAllocator("{known_as}.{last_name}", 20)
    assert alloc.allocate(fields("Robert", "Smith", known_as="Bob")) == "bob.smith"
    assert alloc.allocate(fields("Robert", "Jones")) == "robert.jones"


def test_collisions_get_numeric_suffixes_within_length() -> None:
    alloc = UsernameAllocator("{first_initial}{last_name}", 8, taken={"JSmith", "jsmith3"})
    names = [alloc.allocate(fields("Jane", "Smith")) for _ in range(3)]
    assert names == ["jsmith2", "jsmith4", "jsmith5"]
    long = UsernameAllocator("{last_name}", 8, taken={"abcdefgh"})
    assert long.allocate(fields("x", "Abcdefghij")) == "abcdefg2"


def test_fold() -> None:
    assert fold("Siân Ñúñez-O'Brien") == "siannunez-obrien"


@settings(max_examples=200, deadline=None)
@given(
    people=st.lists(
        st.tuples(
            st.sampled_from(["Jane", "Jan", "Siân", "Zoë", "", "Ōmi"]),
            st.sampled_from(["Smith", "Smyth", "Nuñez", "", "O'Neill", "Smith-Jones"]),
        ),
        max_size=40,
    ),
    taken=st.sets(st.sampled_from(["jsmith", "jsmith2", "ssmith", "zsmith", "12345678"])),
    template=st.sampled_from(["{first_initial}{last_name}", "{first_name}.{last_name}"]),
    max_length=st.integers(4, 12),
)
def test_allocated_names_are_unique_valid_and_within_length(
    people: list[tuple[str, str]], taken: set[str], template: str, max_length: int
) -> None:
    alloc = UsernameAllocator(template, max_length, taken)
    names = [alloc.allocate(fields(first, last)) for first, last in people]
    assert len(names) == len(set(names))
    assert not set(names) & taken
    for name in names:
        assert ALLOWED.match(name) and len(name) <= max_length
