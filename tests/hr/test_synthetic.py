"""The synthetic ESR extract: reproducible, realistic in shape, and valid by construction."""

from __future__ import annotations

import csv
import datetime as dt
import importlib
import io
import re
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from pasa.hr import codes
from pasa.hr.esr_columns import COLUMNS
from pasa.hr.synthetic import (
    MOVE_COLUMNS,
    first_wednesday,
    generate_rotation,
    generate_workforce,
    next_rotation_date,
)

AS_OF = dt.date(2026, 7, 1)
STAFF = 3000
COL = {name: i for i, name in enumerate(COLUMNS)}
DIT_GRADES = {"FY1", "FY2", "CT1", "CT2", "CT3"} | {f"ST{n}" for n in range(1, 9)}
NI_RE = re.compile(r"(?!BG|GB|KN|NK|NT|TN|ZZ)[A-CEGHJ-PR-TW-Z][A-CEGHJ-NPR-TW-Z][0-9]{6}[A-D]")


def _rows(path: Path) -> list[list[str]]:
    with path.open(encoding="utf-8", newline="") as handle:
        reader = csv.reader(handle)
        assert tuple(next(reader)) == COLUMNS
        return list(reader)


def _date(text: str) -> dt.date:
    d, m, y = text.split("/")
    return dt.date(int(y), int(m), int(d))


@pytest.fixture(scope="module")
def extract(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("synthetic") / "rxl.csv"
    generate_workforce(path, staff=STAFF, org="RXL", seed=42, as_of=AS_OF)
    return path


@pytest.fixture(scope="module")
def rows(extract: Path) -> list[list[str]]:
    return _rows(extract)


def test_same_seed_same_bytes_and_other_seed_differs(extract: Path) -> None:
    again = io.StringIO()
    generate_workforce(again, staff=STAFF, org="RXL", seed=42, as_of=AS_OF)
    assert again.getvalue().encode("utf-8") == extract.read_bytes()
    other = io.StringIO()
    generate_workforce(other, staff=STAFF, org="RXL", seed=43, as_of=AS_OF)
    assert other.getvalue() != again.getvalue()


def test_summary_matches_file_and_progress_is_reported(tmp_path: Path) -> None:
    seen: list[int] = []
    path = tmp_path / "x.csv"
    summary = generate_workforce(
        path, staff=500, org="RHW", seed=1, as_of=AS_OF, progress=seen.append
    )
    written = _rows(path)
    assert summary.people == 500
    assert summary.assignments == len(written)
    assert seen and seen[-1] == len(written)
    assert {r[COL["Org_Code"]] for r in written} == {"RHW"}
    assert 3 <= summary.sites <= 5


def test_too_few_staff_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="at least"):
        generate_workforce(tmp_path / "x.csv", staff=10, org="RXL", seed=1, as_of=AS_OF)


def test_staff_group_mix_is_that_of_an_acute_trust(rows: list[list[str]]) -> None:
    primary = [r for r in rows if r[COL["Primary_Assignment"]] == "Y"]
    assert len(primary) == STAFF
    mix = Counter(r[COL["Staff_Group"]] for r in primary)
    share = {g: n / STAFF for g, n in mix.items()}
    assert 0.10 <= share["01"] <= 0.16
    assert 0.26 <= share["03"] <= 0.33
    assert 0.17 <= share["07"] <= 0.23
    assert 0.17 <= share["08"] <= 0.23
    rest = sum(share.get(g, 0.0) for g in ("04", "05", "06", "09"))
    assert 0.13 <= rest <= 0.22
    dits = [r for r in primary if r[COL["Grade_Code"]] in DIT_GRADES]
    assert 0.08 <= len(dits) / STAFF <= 0.12
    assert 1.05 <= len(rows) / STAFF <= 1.09


def test_every_person_has_exactly_one_primary_and_consistent_person_fields(
    rows: list[list[str]],
) -> None:
    by_person: dict[str, list[list[str]]] = {}
    for r in rows:
        by_person.setdefault(r[COL["Employee_Number"]], []).append(r)
    assert len(by_person) == STAFF
    person_cols = [COL[c] for c in ("First_Name", "Last_Name", "Date_Of_Birth", "NI_Number")]
    for emp, assignments in by_person.items():
        assert re.fullmatch(r"[0-9]{8}", emp)
        assert sum(a[COL["Primary_Assignment"]] == "Y" for a in assignments) == 1
        numbers = sorted(a[COL["Assignment_Number"]] for a in assignments)
        assert numbers[0] == emp
        assert numbers[1:] == [f"{emp}-{n}" for n in range(2, len(numbers) + 1)]
        assert len({tuple(a[i] for i in person_cols) for a in assignments}) == 1


def test_every_value_uses_the_national_codes_and_formats(rows: list[list[str]]) -> None:
    emails: set[str] = set()
    nis: set[str] = set()
    registrations: set[tuple[str, str]] = set()
    for r in rows:
        assert len(r) == len(COLUMNS)
        job_role = r[COL["Job_Role_Code"]]
        assert job_role in codes.JOB_ROLES
        assert r[COL["Staff_Group"]] == codes.staff_group_of(job_role)
        assert r[COL["Grade_Code"]] in codes.GRADES
        assert r[COL["Area_Of_Work"]] in codes.AREAS_OF_WORK
        assert r[COL["Assignment_Category"]] in codes.CATEGORIES
        assert r[COL["Assignment_Status"]] in codes.STATUSES
        assert codes.OCCUPATION_CODE_RE.fullmatch(r[COL["Occupation_Code"]])
        assert NI_RE.fullmatch(r[COL["NI_Number"]]), r[COL["NI_Number"]]
        assert 0.4 <= float(r[COL["WTE"]]) <= 1.0
        dob = _date(r[COL["Date_Of_Birth"]])
        assert 18 <= (AS_OF - dob).days / 365.25 <= 69
        assert re.fullmatch(r"[a-z-]+\.[a-z-]+[0-9]*@nhs\.net", r[COL["Email_Address"]])
        body, number = r[COL["Registration_Body"]], r[COL["Registration_Number"]]
        if body:
            assert codes.REGISTRATION_BODIES[body].fullmatch(number), (body, number)
        if r[COL["Primary_Assignment"]] == "Y":
            emails.add(r[COL["Email_Address"]])
            nis.add(r[COL["NI_Number"]])
            if body:
                assert (body, number) not in registrations
                registrations.add((body, number))
        if r[COL["Staff_Group"]] == "01" and r[COL["Primary_Assignment"]] == "Y":
            assert body == "GMC"
        end = r[COL["Assignment_End_Date"]]
        if end:
            assert _date(end) >= _date(r[COL["Assignment_Start_Date"]])
    assert len(emails) == STAFF
    assert len(nis) == STAFF


def test_names_include_apostrophes_hyphens_and_accents(tmp_path: Path) -> None:
    path = tmp_path / "big.csv"
    generate_workforce(path, staff=20_000, org="RXL", seed=7, as_of=AS_OF)
    text = path.read_text(encoding="utf-8")
    assert "O'" in text
    assert re.search(r",[A-Z][a-z]+-[A-Z][a-z]+,", text)
    assert any(ch in text for ch in "âéíóúÉñüłô")


def test_hierarchy_points_at_assignments_in_the_file(rows: list[list[str]]) -> None:
    numbers = {r[COL["Assignment_Number"]] for r in rows}
    no_supervisor = 0
    supervisors: Counter[str] = Counter()
    for r in rows:
        sup = r[COL["Supervisor_Assignment_Number"]]
        if not sup:
            no_supervisor += 1
            continue
        assert sup in numbers
        assert sup != r[COL["Assignment_Number"]]
        supervisors[sup] += 1
    assert 1 <= no_supervisor <= 10  # chief executive, chair, non-executive directors
    # The chain climbs to the top without a cycle.
    boss = {r[COL["Assignment_Number"]]: r[COL["Supervisor_Assignment_Number"]] for r in rows}
    for start in list(boss)[:: max(1, len(boss) // 300)]:
        seen = {start}
        node = boss[start]
        while node:
            assert node not in seen
            seen.add(node)
            node = boss[node]
        assert len(seen) <= 6
    titles = {r[COL["Assignment_Number"]]: r[COL["Position_Title"]] for r in rows}
    ward_managers = [a for a, t in titles.items() if t.startswith("Ward Manager - Ward")]
    assert ward_managers
    for manager in ward_managers:
        assert titles[boss[manager]].startswith("Modern Matron")
        assert titles[boss[boss[manager]]].startswith("Director of Nursing")


def test_positions_are_shared_and_grouped_in_departments_across_sites(
    rows: list[list[str]],
) -> None:
    incumbents = Counter(r[COL["Position_Number"]] for r in rows)
    assert max(incumbents.values()) >= 10
    assert sum(1 for n in incumbents.values() if n > 1) >= 50
    for r in rows:
        if r[COL["Position_Title"]].startswith("Staff Nurse - Ward"):
            assert r[COL["Grade_Code"]] == "Band 5"
            assert r[COL["Registration_Body"]] == "NMC"
    sites = {(r[COL["Location_Code"]], r[COL["Location_Name"]]) for r in rows}
    assert {name for _, name in sites} == {
        "Blackpool Victoria Hospital",
        "Clifton Hospital",
        "Fleetwood Hospital",
    }
    # A position lives in one department and one site.
    where: dict[str, tuple[str, ...]] = {}
    for r in rows:
        cols = COLUMNS.index("Position_Title"), COLUMNS.index("Location_Name") + 1
        where.setdefault(r[COL["Position_Number"]], tuple(r[cols[0] : cols[1]]))
        assert where[r[COL["Position_Number"]]] == tuple(r[cols[0] : cols[1]])


def test_categories_starters_leavers_and_trainees(rows: list[list[str]]) -> None:
    category = Counter(r[COL["Assignment_Category"]] for r in rows)
    assert 0.04 <= category["Bank"] / STAFF <= 0.09
    assert 0.005 <= category["Honorary"] / STAFF <= 0.03
    assert category["Lead Employer Trainee"] > 0
    primary = [r for r in rows if r[COL["Primary_Assignment"]] == "Y"]
    future = [r for r in primary if _date(r[COL["Assignment_Start_Date"]]) > AS_OF]
    assert 0.003 <= len(future) / STAFF <= 0.02
    month = AS_OF + dt.timedelta(days=31)
    leavers = [
        r
        for r in primary
        if r[COL["Assignment_End_Date"]]
        and r[COL["Grade_Code"]] not in DIT_GRADES
        and _date(r[COL["Assignment_End_Date"]]) <= month
    ]
    assert 0.003 <= len(leavers) / STAFF <= 0.02
    rotation = next_rotation_date(AS_OF, (8,))
    february = next_rotation_date(AS_OF, (2,))
    for r in primary:
        if r[COL["Grade_Code"]] in DIT_GRADES:
            assert r[COL["Assignment_Category"]] in {"Lead Employer Trainee", "Fixed Term Temp"}
            end = _date(r[COL["Assignment_End_Date"]])
            assert end + dt.timedelta(days=1) in {rotation, february}
    bank = [r for r in rows if r[COL["Assignment_Category"]] == "Bank"]
    assert all(r[COL["Primary_Assignment"]] == "N" for r in bank)


def test_first_wednesday() -> None:
    assert first_wednesday(2026, 8) == dt.date(2026, 8, 5)
    assert first_wednesday(2027, 2) == dt.date(2027, 2, 3)
    assert next_rotation_date(dt.date(2026, 8, 5)) == dt.date(2027, 8, 4)
    assert next_rotation_date(dt.date(2026, 8, 4)) == dt.date(2026, 8, 5)


@pytest.mark.parametrize("movers", [0, 50, 400])
def test_rotation_moves_exactly_n_people_and_only_position_columns(
    extract: Path, rows: list[list[str]], tmp_path: Path, movers: int
) -> None:
    out = tmp_path / "rotation.csv"
    when = first_wednesday(2026, 8)
    summary = generate_rotation(extract, out, movers=movers, rotation_date=when, seed=3)
    after = _rows(out)
    assert len(after) == len(rows)
    assert summary.movers == movers
    changed = [(a, b) for a, b in zip(rows, after, strict=True) if a != b]
    assert len(changed) == movers
    assert sorted(b[COL["Assignment_Number"]] for _, b in changed) == sorted(
        summary.moved_assignments
    )
    numbers = {r[COL["Assignment_Number"]] for r in after}
    dits = sum(1 for r in rows if r[COL["Grade_Code"]] in DIT_GRADES)
    for before, now in changed:
        diff = {COLUMNS[i] for i, (x, y) in enumerate(zip(before, now, strict=True)) if x != y}
        assert diff <= MOVE_COLUMNS
        assert "Position_Number" in diff
        assert before[COL["Department_Code"]] != now[COL["Department_Code"]]
        assert now[COL["Primary_Assignment"]] == "Y"
        assert now[COL["Staff_Group"]] == codes.staff_group_of(now[COL["Job_Role_Code"]])
        assert now[COL["Job_Role_Code"]] in codes.JOB_ROLES
        sup = now[COL["Supervisor_Assignment_Number"]]
        assert sup in numbers and sup != now[COL["Assignment_Number"]]
        if before[COL["Grade_Code"]] in DIT_GRADES:
            progression = {"FY1": "FY2", "FY2": "CT1", "CT1": "CT2", "ST3": "ST4"}
            if before[COL["Grade_Code"]] in progression:
                assert now[COL["Grade_Code"]] == progression[before[COL["Grade_Code"]]]
            assert _date(now[COL["Assignment_End_Date"]]) == dt.date(2027, 8, 3)
    if movers <= dits:
        assert summary.doctors_in_training_moved == movers


def test_rotation_beyond_trainees_moves_other_staff_too(
    extract: Path, rows: list[list[str]], tmp_path: Path
) -> None:
    when = first_wednesday(2026, 8)
    dits = sum(
        1
        for r in rows
        if r[COL["Grade_Code"]] in DIT_GRADES
        and r[COL["Primary_Assignment"]] == "Y"
        and r[COL["Assignment_Status"]] == "Active Assignment"
        and _date(r[COL["Assignment_Start_Date"]]) <= when
    )
    out = tmp_path / "rotation.csv"
    summary = generate_rotation(extract, out, movers=dits + 100, rotation_date=when, seed=3)
    assert summary.doctors_in_training_moved == dits
    assert summary.other_staff_moved == 100
    after = _rows(out)
    changed = [(a, b) for a, b in zip(rows, after, strict=True) if a != b]
    assert len(changed) == dits + 100
    for before, now in changed:
        if before[COL["Grade_Code"]] not in DIT_GRADES:
            assert now[COL["Job_Role_Code"]] == before[COL["Job_Role_Code"]]
            assert now[COL["Grade_Code"]] == before[COL["Grade_Code"]]
            assert now[COL["Assignment_End_Date"]] == before[COL["Assignment_End_Date"]]
    with pytest.raises(ValueError, match="movers requested"):
        generate_rotation(extract, out, movers=10 * STAFF, rotation_date=when, seed=3)


def test_rotation_is_reproducible(extract: Path, tmp_path: Path) -> None:
    when = first_wednesday(2026, 8)
    generate_rotation(extract, tmp_path / "a.csv", movers=120, rotation_date=when, seed=9)
    generate_rotation(extract, tmp_path / "b.csv", movers=120, rotation_date=when, seed=9)
    assert (tmp_path / "a.csv").read_bytes() == (tmp_path / "b.csv").read_bytes()


def _esr_module() -> Any:
    try:
        return importlib.import_module("pasa.hr.esr")
    except ImportError:
        pytest.skip("pasa.hr.esr (the extract parser) is not there yet")


def test_generated_file_parses_with_zero_problems(extract: Path, tmp_path: Path) -> None:
    esr = _esr_module()
    rotation = tmp_path / "rotation.csv"
    when = first_wednesday(2026, 8)
    generate_rotation(extract, rotation, movers=400, rotation_date=when, seed=1)
    for path, today in ((extract, AS_OF), (rotation, when)):
        reader = esr.ExtractReader(path, today=today)
        items = list(reader)
        problems = [p.describe() for p in items if isinstance(p, esr.RowProblem)]
        assert problems == [], problems[:10]
        assert reader.rows_accepted == len(_rows(path))
        assert reader.rows_rejected == 0
        assert reader.rows_warned == 0


def test_importing_the_rotation_gives_exactly_n_changed_events(tmp_path: Path) -> None:
    try:
        importer = importlib.import_module("pasa.hr.importer")
    except ImportError:
        pytest.skip("pasa.hr.importer is not there yet")
    from pasa.store.db import make_engine, migrate

    engine = make_engine(f"sqlite:///{tmp_path / 'pasa.db'}")
    migrate(engine)
    original, rotation = tmp_path / "original.csv", tmp_path / "rotation.csv"
    when = first_wednesday(2026, 8)
    generate_workforce(original, staff=400, org="RXL", seed=5, as_of=AS_OF)
    generate_rotation(original, rotation, movers=25, rotation_date=when, seed=5)
    first = importer.import_extract(engine, original, actor="test", as_of=AS_OF)
    assert first.rows_rejected == 0
    second = importer.import_extract(engine, rotation, actor="test", as_of=when)
    assert (second.events_new, second.events_changed, second.events_ended) == (0, 25, 0)
    engine.dispose()
