"""The ESR extract parser and validator (pure: no database)."""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
import sys
from collections import defaultdict
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pasa.domain.errors import InputFileError
from pasa.hr import codes
from pasa.hr.esr import ExtractReader, ExtractRow, RowProblem, read_extract, safe_value
from pasa.hr.esr_columns import COLUMNS

sys.path.insert(0, str(Path(__file__).parent))
from esr_builder import (
    WARNING_CASES,
    bad_row_cases,
    bad_rows_file,
    extract_bytes,
    valid_row,
)

TODAY = dt.date(2026, 1, 10)
FIXTURE = Path(__file__).parent.parent / "fixtures" / "esr_bad_rows.csv"


def parse(data: bytes) -> tuple[list[ExtractRow], list[RowProblem]]:
    rows: list[ExtractRow] = []
    problems: list[RowProblem] = []
    for item in read_extract(io.BytesIO(data), today=TODAY):
        (rows if isinstance(item, ExtractRow) else problems).append(item)  # type: ignore[arg-type]
    return rows, problems


def test_fixture_file_is_current() -> None:
    data, _, _ = bad_rows_file()
    assert FIXTURE.read_bytes() == data, "regenerate tests/fixtures/esr_bad_rows.csv"
    assert data.startswith(b"\xef\xbb\xbf")
    assert b"Caf\xe9" in data


def test_bad_rows_fixture_every_good_row_accepted_every_bad_row_reported() -> None:
    _, good, bad = bad_rows_file()
    rows, problems = parse(FIXTURE.read_bytes())
    assert {r.row_number for r in rows} == good
    rejected = defaultdict(list)
    for p in problems:
        if p.severity == "rejected":
            rejected[p.row_number].append(p)
    assert set(rejected) == set(bad)
    for row_number, expected in bad.items():
        for field, reason in expected:
            assert any(p.field == field and reason in p.reason for p in rejected[row_number]), (
                row_number,
                field,
                reason,
                [(p.field, p.reason) for p in rejected[row_number]],
            )
    kinds = {(f, r) for exp in bad.values() for f, r in exp}
    assert len(kinds) >= 20


def test_warnings_keep_the_row() -> None:
    _, good, _ = bad_rows_file()
    _rows, problems = parse(FIXTURE.read_bytes())
    warnings = [p for p in problems if p.severity == "warning"]
    assert len(warnings) == len(WARNING_CASES)
    for (_, field, reason), p in zip(WARNING_CASES, sorted(warnings, key=lambda p: p.row_number)):
        assert p.field == field and reason in p.reason
        assert p.row_number in good


def test_counters() -> None:
    reader = ExtractReader(io.BytesIO(FIXTURE.read_bytes()), today=TODAY)
    items = list(reader)
    _, good, bad = bad_rows_file()
    assert reader.rows_accepted == len(good)
    assert reader.rows_rejected == len(bad)
    assert reader.rows_total == len(good) + len(bad)
    assert reader.rows_warned == len(WARNING_CASES)
    assert sum(isinstance(i, ExtractRow) for i in items) == len(good)


def test_problem_values_are_safe() -> None:
    _, problems = parse(FIXTURE.read_bytes())
    for p in problems:
        if p.value is not None:
            assert p.value.isprintable()
            assert len(p.value) <= 81
            assert p.value[0] not in "=+-@"
    assert safe_value("=HYPERLINK(1)") == "'=HYPERLINK(1)"
    assert safe_value("a\x00b") == "a\\x00b"
    assert safe_value("Caf\udce9") == "Caf\\xe9"


def test_row_numbers_count_records_not_lines() -> None:
    # A quoted field spanning two lines is one record (and rejected: line break in a name).
    row = valid_row(1, Position_Title="Two\nlines")
    rows, problems = parse(extract_bytes([row, valid_row(2)]))
    assert [r.row_number for r in rows] == [3]
    assert problems[0].row_number == 2 and problems[0].field == "Position_Title"


@pytest.mark.parametrize(
    ("header", "message"),
    [
        (list(COLUMNS[:-1]), "header row has missing column Registration_Number."),
        ([*COLUMNS, "Shoe_Size"], "unknown column 'Shoe_Size'"),
        ([*COLUMNS, "WTE"], "duplicated column WTE"),
        (list(COLUMNS[5:]), "missing columns Org_Code, Employee_Number, Assignment_Number"),
        (["just", "some"], "has none of the 32 ESR extract columns"),
    ],
)
def test_header_problems_raise_one_sentence(header: list[str], message: str) -> None:
    text = io.StringIO()
    csv.writer(text).writerow(header)
    with pytest.raises(InputFileError, match=re.escape(message)):
        list(read_extract(io.BytesIO(text.getvalue().encode()), today=TODAY))


def test_empty_file() -> None:
    with pytest.raises(InputFileError, match="empty"):
        list(read_extract(io.BytesIO(b""), today=TODAY))


def test_columns_in_another_order_are_accepted() -> None:
    order = list(reversed(COLUMNS))
    text = io.StringIO()
    w = csv.writer(text)
    w.writerow(order)
    row = valid_row(7)
    w.writerow([row[c] for c in order])
    rows, problems = parse(text.getvalue().encode())
    assert not problems
    assert rows[0].assignment_number == "10000007"


def test_hash_is_stable_and_sensitive() -> None:
    (a,), _ = parse(extract_bytes([valid_row(1)]))
    (b,), _ = parse(extract_bytes([valid_row(1, Date_Of_Birth="1985-03-14")]))
    (c,), _ = parse(extract_bytes([valid_row(1, Grade_Code="Band 6")]))
    assert a.row_hash == b.row_hash  # same value in another accepted date format
    assert a.row_hash != c.row_hash


# --- property tests --------------------------------------------------------------------------

LETTERS = "abcdefghijklmnopqrstuvwxyzâêîôûñéèçäöüßł"
name = st.builds(
    lambda first, rest, sep, tail: first.upper() + rest + (sep + tail.capitalize() if tail else ""),
    st.sampled_from(LETTERS),
    st.text(LETTERS, max_size=12),
    st.sampled_from(["-", "'", " ", ". "]),
    st.text(LETTERS, max_size=8),
)
day = st.dates(dt.date(1930, 1, 1), dt.date(2005, 12, 31))
work_day = st.dates(dt.date(1990, 1, 1), dt.date(2030, 12, 31))
job_role = st.sampled_from(sorted(codes.JOB_ROLES))


@st.composite
def valid_rows(draw: st.DrawFn) -> dict[str, str]:
    n = draw(st.integers(1, 89_999_999))
    role = draw(job_role)
    start = draw(work_day)
    end = draw(st.none() | st.dates(start, dt.date(2035, 1, 1)))
    body = draw(st.sampled_from(["", *codes.REGISTRATION_BODIES]))
    regno = {"": "", "GMC": "1234567", "GPhC": "7654321", "NMC": "12A3456E", "HCPC": "PA12345"}
    return valid_row(
        n,
        Title=draw(st.sampled_from(["", "Dr", "Mrs", "Mx"])),
        First_Name=draw(name),
        Middle_Names=draw(st.just("") | name),
        Last_Name=draw(name),
        Known_As=draw(st.just("") | name),
        Date_Of_Birth=draw(day).strftime("%d/%m/%Y"),
        Primary_Assignment=draw(st.sampled_from("YN")),
        Assignment_Category=draw(st.sampled_from(sorted(codes.CATEGORIES))),
        Assignment_Status=draw(st.sampled_from(sorted(codes.STATUSES))),
        Assignment_Start_Date=start.strftime("%d/%m/%Y"),
        Assignment_End_Date=end.strftime("%d/%m/%Y") if end else "",
        Staff_Group=role[:2],
        Job_Role_Code=role,
        Area_Of_Work=draw(st.sampled_from(sorted(codes.AREAS_OF_WORK))),
        Grade_Code=draw(st.sampled_from(sorted(codes.GRADES))),
        Position_Title=draw(st.text(LETTERS + " ,()&/", min_size=1, max_size=60)).strip(" ")
        or "Post",
        WTE=f"{draw(st.integers(1, 100)) / 100:.2f}",
        Registration_Body=body,
        Registration_Number=regno[body],
    )


@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow])
@given(valid_rows())
def test_valid_row_round_trips(row: dict[str, str]) -> None:
    rows, problems = parse(extract_bytes([row]))
    assert problems == []
    (r,) = rows
    assert r.first_name == row["First_Name"] and r.last_name == row["Last_Name"]
    assert (r.middle_names or "") == row["Middle_Names"]
    assert (r.known_as or "") == row["Known_As"]
    assert r.date_of_birth.strftime("%d/%m/%Y") == row["Date_Of_Birth"]
    assert r.start_date.strftime("%d/%m/%Y") == row["Assignment_Start_Date"]
    assert (r.end_date.strftime("%d/%m/%Y") if r.end_date else "") == row["Assignment_End_Date"]
    assert r.primary == (row["Primary_Assignment"] == "Y")
    assert f"{r.wte:.2f}" == row["WTE"]
    assert r.job_role_code == row["Job_Role_Code"] and r.grade_code == row["Grade_Code"]
    assert r.position_title == row["Position_Title"]
    assert (r.registration_number or "") == row["Registration_Number"]
    assert r.row_number == 2 and len(r.row_hash) == 64


@settings(max_examples=300)
@given(st.binary(max_size=2000))
def test_arbitrary_bytes_never_raise(junk: bytes) -> None:
    data = extract_bytes([]) + junk
    reader = ExtractReader(io.BytesIO(data), today=TODAY)
    for item in reader:
        assert isinstance(item, ExtractRow | RowProblem)
        if isinstance(item, RowProblem) and item.value is not None:
            assert item.value.isprintable()
    assert reader.rows_total == reader.rows_accepted + reader.rows_rejected


CORRUPTIONS: list[tuple[str, str]] = [
    ("Org_Code", "R-X"),
    ("Employee_Number", "ABCDEFGH"),
    ("Assignment_Number", "99999999"),
    ("First_Name", "R2D2"),
    ("Last_Name", ""),
    ("Date_Of_Birth", "32/01/1980"),
    ("Date_Of_Birth", "yesterday"),
    ("NI_Number", "QQ123456C"),
    ("Email_Address", "a@b"),
    ("Primary_Assignment", "Yes"),
    ("Assignment_Category", "Locum"),
    ("Assignment_Status", "Gone"),
    ("Assignment_Start_Date", "2020-13-01"),
    ("Staff_Group", "00"),
    ("Job_Role_Code", "1234"),
    ("Occupation_Code", "n0a"),
    ("Grade_Code", "ST9"),
    ("Area_Of_Work", "Nowhere"),
    ("WTE", "0"),
    ("WTE", "-0.5"),
    ("Registration_Number", "XX"),
    ("Position_Title", "+cmd|' /C calc'!A0"),
    ("Department_Name", "<img src=x onerror=alert(1)>"),
    ("Location_Name", "tab\there"),
    ("Cost_Centre", "CC 1 2"),
    ("Supervisor_Assignment_Number", "1-2"),
]


# n stops one short of the top: employee 99999999 would own assignment 99999999, which is then
# no corruption at all.
@settings(max_examples=200)
@given(st.integers(1, 89_999_998), st.sampled_from(CORRUPTIONS))
def test_single_field_corruption_is_rejected_naming_the_field(
    n: int, corruption: tuple[str, str]
) -> None:
    field, value = corruption
    rows, problems = parse(extract_bytes([valid_row(n, **{field: value})]))
    assert rows == []
    assert any(p.field == field and p.severity == "rejected" for p in problems), problems
    assert all(p.row_number == 2 for p in problems)


def test_progress_callback() -> None:
    seen: list[int] = []
    data = extract_bytes([valid_row(n) for n in range(1, 26)])
    list(ExtractReader(io.BytesIO(data), today=TODAY, progress=seen.append, progress_every=10))
    assert seen == [10, 20, 25]


def test_bad_cases_are_distinct() -> None:
    reasons = {(f, r) for _, exp in bad_row_cases() for f, r in exp}
    assert len(reasons) >= 20
