"""Build valid ESR extract rows (as dicts of field name -> text) and write extract files."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from pathlib import Path

from pasa.hr.esr_columns import COLUMNS


def valid_row(n: int = 1, *, org: str = "RXL", **overrides: str) -> dict[str, str]:
    """A valid row for employee number 10000000 + n; keyword overrides replace fields."""
    emp = f"{10_000_000 + n:08d}"
    row = {
        "Org_Code": org,
        "Employee_Number": emp,
        "Assignment_Number": emp,
        "Title": "Dr",
        "First_Name": "Siân",
        "Middle_Names": "",
        "Last_Name": "O'Brien-Nuñez",
        "Known_As": "",
        "Date_Of_Birth": "14/03/1985",
        "NI_Number": f"AB{n % 1_000_000:06d}C",
        "Email_Address": f"person{n}@nhs.net",
        "Primary_Assignment": "Y",
        "Assignment_Category": "Permanent",
        "Assignment_Status": "Active Assignment",
        "Assignment_Start_Date": "01/04/2020",
        "Assignment_End_Date": "",
        "Position_Number": f"P{n % 500:05d}",
        "Position_Title": "Staff Nurse, Ward 7",
        "Staff_Group": "03",
        "Job_Role_Code": "03001",
        "Area_Of_Work": "General Medicine",
        "Occupation_Code": "N0A",
        "Grade_Code": "Band 5",
        "Department_Code": "D100",
        "Department_Name": "Ward 7 (Acute Medicine)",
        "Cost_Centre": "CC100",
        "Location_Code": "VIC",
        "Location_Name": "Blackpool Victoria Hospital",
        "Supervisor_Assignment_Number": "",
        "WTE": "1.00",
        "Registration_Body": "NMC",
        "Registration_Number": f"{n % 100:02d}A{n % 10000:04d}E",
    }
    unknown = set(overrides) - set(COLUMNS)
    assert not unknown, unknown
    row.update(overrides)
    return row


def extract_bytes(
    rows: Iterable[dict[str, str] | list[str] | bytes], *, bom: bool = False
) -> bytes:
    """CSV bytes: header plus rows (dicts in column order, raw lists, or raw line bytes)."""
    out = io.BytesIO()
    if bom:
        out.write(b"\xef\xbb\xbf")
    text = io.StringIO()
    csv.writer(text, lineterminator="\r\n").writerow(COLUMNS)
    out.write(text.getvalue().encode())
    for row in rows:
        if isinstance(row, bytes):
            out.write(row + b"\r\n")
            continue
        text = io.StringIO()
        values = [row.get(c, "") for c in COLUMNS] if isinstance(row, dict) else row
        csv.writer(text, lineterminator="\r\n").writerow(values)
        out.write(text.getvalue().encode("utf-8", "surrogateescape"))
    return out.getvalue()


def write_extract(
    path: Path, rows: Iterable[dict[str, str] | list[str] | bytes], *, bom: bool = False
) -> Path:
    path.write_bytes(extract_bytes(rows, bom=bom))
    return path


AS_OF = "2026-01-10"

# (row, expected problems [(field, reason substring)]); row None = a good row. Raw rows are
# lists (wrong field count) or bytes (written as-is, e.g. invalid UTF-8).
BadCase = tuple[dict[str, str] | list[str] | bytes, list[tuple[str | None, str]]]


def _bytes_row(marker: str, raw: bytes, **overrides: str) -> bytes:
    text = io.StringIO()
    row = valid_row(**overrides)
    csv.writer(text, lineterminator="").writerow([row[c] for c in COLUMNS])
    return text.getvalue().encode().replace(marker.encode(), raw)


def bad_row_cases() -> list[BadCase]:
    """At least 20 distinct kinds of bad row (plus two warnings), each with its expectation."""
    stray = [valid_row(900)[c] for c in COLUMNS]
    stray.insert(6, "Smith")  # an unquoted comma in "Smith, John"
    short = [valid_row(901)[c] for c in COLUMNS][:20]
    r = valid_row
    return [
        (stray, [(None, "has 33 fields, expected 32")]),
        (short, [(None, "has 20 fields, expected 32")]),
        (r(902, First_Name=""), [("First_Name", "is required but blank")]),
        (r(903, Date_Of_Birth="1985-3-14"), [("Date_Of_Birth", "DD/MM/YYYY")]),
        (r(904, Assignment_Start_Date="31/02/2026"), [("Assignment_Start_Date", "real calendar")]),
        (r(905, Assignment_End_Date="01/01/2019"), [("Assignment_End_Date", "before the start")]),
        (r(906, Date_Of_Birth="01/01/2030"), [("Date_Of_Birth", "in the future")]),
        (r(907, Date_Of_Birth="01/06/2012"), [("Date_Of_Birth", "younger than 16")]),
        (r(908, Date_Of_Birth="01/01/1901"), [("Date_Of_Birth", "older than 100")]),
        (
            r(909, Employee_Number="1234567", Assignment_Number="1234567"),
            [("Employee_Number", "8-digit"), ("Assignment_Number", "not an assignment number")],
        ),
        (r(910, Assignment_Number="20000001"), [("Assignment_Number", "not derived from")]),
        (r(1), [("Assignment_Number", "more than once")]),  # duplicate of good row 1
        (
            r(2, Assignment_Number="10000002-2", Date_Of_Birth="01/01/1970"),
            [("Date_Of_Birth", "differs from another row")],
        ),
        (r(911, Staff_Group="11"), [("Staff_Group", "not a national staff group")]),
        (r(912, Job_Role_Code="03999"), [("Job_Role_Code", "not a national job role")]),
        (r(913, Job_Role_Code="01005"), [("Job_Role_Code", "does not belong to staff group 03")]),
        (r(914, Grade_Code="Band 10"), [("Grade_Code", "not a known grade")]),
        (r(915, Assignment_Category="Casual"), [("Assignment_Category", "not a known")]),
        (r(916, Assignment_Status="Dismissed"), [("Assignment_Status", "not a known")]),
        (r(917, Occupation_Code="N0"), [("Occupation_Code", "not an occupation code")]),
        (r(918, Org_Code="rx"), [("Org_Code", "not an ODS code")]),
        (r(919, WTE="1.5"), [("WTE", "0.01 to 1.00")]),
        (r(920, WTE="full"), [("WTE", "0.01 to 1.00")]),
        (r(921, Email_Address="not-an-email"), [("Email_Address", "not a valid email")]),
        (r(922, NI_Number="DA123456C"), [("NI_Number", "National Insurance")]),
        (r(923, Registration_Number="1234567"), [("Registration_Number", "not a valid NMC")]),
        (r(924, Registration_Body=""), [("Registration_Body", "blank but a registration")]),
        (
            r(925, Registration_Body="GMC", Registration_Number=""),
            [("Registration_Number", "blank")],
        ),
        (r(926, Primary_Assignment="X"), [("Primary_Assignment", "must be Y or N")]),
        (r(927, First_Name="J0hn"), [("First_Name", "not letters")]),
        (
            r(928, Position_Title='=HYPERLINK("http://evil.example","click")'),
            [("Position_Title", "formula")],
        ),
        (r(929, Position_Title="@SUM(A1)"), [("Position_Title", "formula")]),
        (r(930, Department_Name="Ward\x07 7"), [("Department_Name", "control character")]),
        (r(931, Location_Name="A\x00B"), [("Location_Name", "NUL")]),
        (r(932, Known_As="<script>alert(1)</script>"), [("Known_As", "markup")]),
        (r(933, Position_Title="x" * 201), [("Position_Title", "limit is 200")]),
        (
            r(934, Supervisor_Assignment_Number="10000934"),
            [("Supervisor_Assignment_Number", "own assignment number")],
        ),
        (
            r(935, Supervisor_Assignment_Number="ABC"),
            [("Supervisor_Assignment_Number", "not an assignment number")],
        ),
        (
            _bytes_row("MARKER", b"Caf\xe9", n=936, Last_Name="MARKER"),
            [("Last_Name", "not valid UTF-8")],
        ),
        (r(937, Area_Of_Work="Underwater Basketry"), [("Area_Of_Work", "not a known area")]),
        (r(938, Title="Dr" * 11), [("Title", "limit is 20")]),
    ]


WARNING_CASES: list[tuple[dict[str, str], str, str]] = [
    # (row, field, reason substring): accepted with a warning
    (
        valid_row(950, Supervisor_Assignment_Number="19999999"),
        "Supervisor_Assignment_Number",
        "not in this extract",
    ),
    (
        valid_row(3, Assignment_Number="10000003-2", Position_Number="P99999"),
        "Primary_Assignment",
        "already has a primary",
    ),
]


def bad_rows_file() -> tuple[bytes, set[int], dict[int, list[tuple[str | None, str]]]]:
    """The esr_bad_rows.csv fixture: BOM, good rows between bad ones, and the expectations.

    Returns (file bytes, good row numbers, {bad row number: [(field, reason substring)]}).
    Warning rows count as good (they are accepted).
    """
    rows: list[dict[str, str] | list[str] | bytes] = []
    good: set[int] = set()
    bad: dict[int, list[tuple[str | None, str]]] = {}
    row_number = 1
    for n in range(1, 6):  # good rows 1..5 first (duplicates/conflicts refer to them)
        rows.append(valid_row(n))
        row_number += 1
        good.add(row_number)
    for k, (row, expected) in enumerate(bad_row_cases()):
        rows.append(row)
        row_number += 1
        bad[row_number] = expected
        if k % 3 == 0:
            rows.append(valid_row(100 + k, First_Name="Zoë", Last_Name="Smith-Jones"))
            row_number += 1
            good.add(row_number)
    for row, _, _ in WARNING_CASES:
        rows.append(row)
        row_number += 1
        good.add(row_number)
    return extract_bytes(rows, bom=True), good, bad
