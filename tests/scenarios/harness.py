"""A tiny trust that lives through HR life events, day by day, with its target systems.

``Trust`` holds "the current HR extract" as rows (one per assignment), lets a scenario step
change it (hire, move, suspend, end, rename, ...), and ``run(day)`` writes the full extract,
imports it for that day, applies the plan and executes it against the target systems — SQLite
files under ``tmp_path`` that ``target_state`` reads back directly.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from pasa.clock import Clock, local_date
from pasa.hr.esr_columns import COLUMNS
from pasa.hr.importer import import_extract, quarantine
from pasa.policy.document import PolicyDocument, parse_policy
from pasa.service import provisioning, scheduler
from pasa.store import hub
from pasa.store import schema as s
from pasa.store.policy_repo import save_policy

POLICY = """
version: 1
targets:
  - key: ad
    name: Directory
    connector: sql_table
    username_template: "{{first_initial}}{{last_name}}"
    settings: {{url: "sqlite:///{root}/ad.db", table: users, membership_table: user_groups}}
    lifecycle: {{prehire_days: 5, retention_days: 30, rename_on_name_change: true}}
  - key: epr
    name: Patient record
    connector: sql_table
    username_template: "{{first_name}}.{{last_name}}"
    username_max_length: 40
    settings: {{url: "sqlite:///{root}/epr.db", table: users, membership_table: user_roles}}
    lifecycle: {{mover_overlap_days: 7}}
  - key: doors
    name: Door access
    connector: sql_table
    username_template: "{{employee_number}}"
    settings:
      url: "sqlite:///{root}/doors.db"
      table: cardholders
      membership_table: cardholder_zones
birthright: [ad]
roles:
  - key: staff
    entitlements:
      - {{target: ad, groups: [GG-All-Staff]}}
      - {{target: doors, door_zones: [main-entrance]}}
  - key: bank
    entitlements:
      - {{target: ad, groups: [GG-Bank]}}
      - {{target: doors, door_zones: [main-entrance]}}
  - key: nurse
    entitlements:
      - {{target: ad, groups: [GG-Nursing]}}
      - {{target: epr, app_roles: [Nurse]}}
      - {{target: doors, door_zones: [wards]}}
  - key: doctor
    entitlements:
      - {{target: ad, groups: [GG-Medical]}}
      - {{target: epr, app_roles: [Clinician]}}
      - {{target: doors, door_zones: [wards, doctors-mess]}}
  - key: trainee
    entitlements:
      - {{target: ad, groups: [GG-Trainees]}}
  - key: admin
    entitlements:
      - {{target: ad, groups: [GG-Admin]}}
      - {{target: epr, app_roles: [Patient-Admin]}}
  - key: ed
    entitlements:
      - {{target: epr, app_roles: [ED-Board]}}
      - {{target: doors, door_zones: [emergency-dept]}}
  - key: maternity
    entitlements:
      - {{target: epr, app_roles: [Maternity]}}
      - {{target: doors, door_zones: [maternity-unit]}}
rules:
  - key: all-staff
    when: {{category: {{in: [Permanent, Fixed Term Temp, Lead Employer Trainee]}}}}
    grant: [staff]
  - key: bank
    when: {{category: Bank}}
    grant: [bank]
  - key: nurses
    when: {{staff_group: "03"}}
    grant: [nurse]
  - key: doctors
    when: {{staff_group: "01"}}
    grant: [doctor]
  - key: trainees
    when: {{grade_code: {{prefix: [FY, CT, ST]}}}}
    grant: [trainee]
  - key: admin
    when: {{staff_group: "08"}}
    grant: [admin]
  - key: ed
    when: {{department_code: ED1}}
    grant: [ed]
  - key: maternity
    when: {{department_code: MAT}}
    grant: [maternity]
"""

TARGETS = ("ad", "epr", "doors")
_MEMBERSHIP_TABLES = {"ad": "user_groups", "epr": "user_roles", "doors": "cardholder_zones"}
_USER_TABLES = {"ad": "users", "epr": "users", "doors": "cardholders"}

# Position presets: the fields that make someone a nurse, a doctor in training, an admin.
PROFILES: dict[str, dict[str, str]] = {
    "nurse": {
        "Staff_Group": "03",
        "Job_Role_Code": "03001",
        "Grade_Code": "Band 5",
        "Occupation_Code": "N0A",
        "Position_Title": "Staff Nurse",
        "Registration_Body": "NMC",
    },
    "doctor": {
        "Staff_Group": "01",
        "Job_Role_Code": "01014",
        "Grade_Code": "FY1",
        "Occupation_Code": "C03",
        "Position_Title": "Foundation Year 1 Doctor",
        "Assignment_Category": "Lead Employer Trainee",
        "Registration_Body": "GMC",
    },
    "admin": {
        "Staff_Group": "08",
        "Job_Role_Code": "08004",
        "Grade_Code": "Band 2",
        "Occupation_Code": "G02",
        "Position_Title": "Receptionist",
        "Registration_Body": "",
        "Registration_Number": "",
    },
}
DEPARTMENTS = {"D100": "Ward 7", "ED1": "Emergency Department", "MAT": "Maternity Unit"}


def esr(day: dt.date | None) -> str:
    return day.strftime("%d/%m/%Y") if day else ""


def policy_text(root: Path) -> str:
    return POLICY.format(root=root)


def policy_doc(root: Path, extra_rules: str = "") -> PolicyDocument:
    return parse_policy(policy_text(root) + extra_rules, "scenario-policy")


# {target: {username: (enabled, attributes, {membership values})}}
Account = tuple[bool, dict[str, str | None], frozenset[str]]
State = dict[str, dict[str, Account]]


def target_state(root: Path) -> State:
    """Every account in every target, read from the targets' own databases."""
    out: State = {}
    for target in TARGETS:
        path = root / f"{target}.db"
        accounts: dict[str, Account] = {}
        if path.exists():
            db = sqlite3.connect(path)
            db.row_factory = sqlite3.Row
            try:
                tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master")}
                if _USER_TABLES[target] in tables:
                    members: dict[str, set[str]] = {}
                    for row in db.execute(
                        f"SELECT username, value FROM {_MEMBERSHIP_TABLES[target]}"
                    ):
                        members.setdefault(row["username"], set()).add(row["value"])
                    for row in db.execute(f"SELECT * FROM {_USER_TABLES[target]}"):
                        names = [k for k in row.keys() if k not in ("username", "enabled")]  # noqa: SIM118
                        attrs = {k: row[k] for k in names}
                        accounts[row["username"]] = (
                            bool(row["enabled"]),
                            attrs,
                            frozenset(members.get(row["username"], set())),
                        )
            finally:
                db.close()
        out[target] = accounts
    return out


@dataclass
class Trust:
    """A handful of people, their current HR extract, and the days that have been run."""

    engine: Engine
    root: Path
    rows: dict[str, dict[str, str]] = field(default_factory=dict)
    runs: int = 0
    imported: bool = False
    grants: dict[str, int] = field(default_factory=dict)
    memo: dict[str, str] = field(default_factory=dict)

    def install_policy(self) -> None:
        with self.engine.begin() as conn:
            save_policy(conn, policy_doc(self.root), source="scenario", actor="scenario")

    # -- HR changes ------------------------------------------------------------------------

    def hire(
        self,
        n: int,
        start: dt.date,
        profile: str = "nurse",
        *,
        first: str = "Alice",
        last: str = "Nurse",
        org: str = "RXL",
        dept: str = "D100",
        end: dt.date | None = None,
        category: str | None = None,
        number: int = 1,
        employee: int | None = None,
        **overrides: str,
    ) -> str:
        """Add an assignment; returns its key (the assignment number). ``n`` is the human
        (NI number and date of birth), ``employee`` the employee number (default ``n``)."""
        emp = f"{10_000_000 + (employee if employee is not None else n):08d}"
        asg = emp if number == 1 else f"{emp}-{number}"
        row = {
            "Org_Code": org,
            "Employee_Number": emp,
            "Assignment_Number": asg,
            "Title": "Mx",
            "First_Name": first,
            "Middle_Names": "",
            "Last_Name": last,
            "Known_As": "",
            "Date_Of_Birth": "14/03/1985",
            "NI_Number": f"AB{n:06d}C",
            "Email_Address": f"person{n}@nhs.net",
            "Primary_Assignment": "Y" if number == 1 else "N",
            "Assignment_Category": "Permanent",
            "Assignment_Status": "Active Assignment",
            "Assignment_Start_Date": esr(start),
            "Assignment_End_Date": esr(end),
            "Position_Number": f"P{n:03d}{number:02d}",
            "Area_Of_Work": "General Medicine",
            "Cost_Centre": "CC100",
            "Location_Code": "VIC",
            "Location_Name": "Victoria Hospital",
            "Supervisor_Assignment_Number": "",
            "WTE": "1.00",
            "Registration_Number": "",
        }
        row.update(PROFILES[profile])
        if row["Registration_Body"] == "NMC":
            row["Registration_Number"] = f"{n % 100:02d}A{n % 10000:04d}E"
        elif row["Registration_Body"] == "GMC":
            row["Registration_Number"] = f"{7_000_000 + n}"
        if category is not None:
            row["Assignment_Category"] = category
        self._set_dept(row, dept)
        row.update(overrides)
        key = f"{org}/{asg}"
        self.rows[key] = row
        return key

    @staticmethod
    def _set_dept(row: dict[str, str], dept: str) -> None:
        row["Department_Code"] = dept
        row["Department_Name"] = DEPARTMENTS[dept]

    def change(self, key: str, *, profile: str | None = None, dept: str | None = None,
               **fields: str) -> None:  # fmt: skip
        row = self.rows[key]
        if profile is not None:
            category = row["Assignment_Category"]
            row.update(PROFILES[profile])
            if profile != "doctor":
                row["Assignment_Category"] = category
            if row["Registration_Body"] == "NMC":
                row["Registration_Number"] = "01A0001E"
        if dept is not None:
            self._set_dept(row, dept)
        row.update(fields)

    def person_rows(self, n: int) -> list[dict[str, str]]:
        ni = f"AB{n:06d}C"
        return [r for r in self.rows.values() if r["NI_Number"] == ni]

    def rename(self, n: int, *, first: str | None = None, last: str | None = None) -> None:
        for row in self.person_rows(n):
            if first:
                row["First_Name"] = first
            if last:
                row["Last_Name"] = last

    def end(self, key: str, last_day: dt.date) -> None:
        self.rows[key]["Assignment_End_Date"] = esr(last_day)

    def suspend(self, key: str, suspended: bool = True) -> None:
        status = "Suspend Assignment" if suspended else "Active Assignment"
        self.rows[key]["Assignment_Status"] = status

    def drop(self, key: str) -> None:
        """Absent from the next full extract (ended the day before that import)."""
        del self.rows[key]

    # -- running a day ---------------------------------------------------------------------

    def write_extract(self, day: dt.date) -> Path:
        text = io.StringIO()
        writer = csv.writer(text, lineterminator="\r\n")
        writer.writerow(COLUMNS)
        for row in self.rows.values():
            writer.writerow([row.get(c, "") for c in COLUMNS])
        path = self.root / f"extract-{day.isoformat()}-{self.runs}.csv"
        path.write_text(text.getvalue(), encoding="utf-8")
        return path

    def import_day(self, day: dt.date) -> None:
        if not self.rows and not self.imported:
            return  # nothing has ever been keyed: no HR feed yet
        self.imported = True
        result = import_extract(
            self.engine, self.write_extract(day), actor="scenario", as_of=day, guard_threshold=1.0
        )
        assert result.status == "applied", result
        assert result.rows_rejected == 0, quarantine(self.engine, result.import_id)

    def run(self, day: dt.date) -> None:
        """Import today's extract, plan, execute; the targets must then be converged."""
        self.import_day(day)
        provisioning.apply(self.engine, day, actor="scenario")
        report = provisioning.execute(self.engine)
        self.runs += 1
        assert report.parked == 0 and report.retried == 0, report
        self.assert_converged(day)

    def tick(self, clock: Clock) -> dt.date:
        """The scheduler's way: the organisation-local date of the clock decides."""
        day = local_date(clock.now())
        self.import_day(day)
        report = scheduler.tick(self.engine, clock, actor="scenario")
        self.runs += 1
        assert report.at == day
        assert report.worker.parked == 0 and report.worker.retried == 0, report
        self.assert_converged(day)
        return day

    def assert_converged(self, day: dt.date) -> None:
        ops = provisioning.compute_plan(self.engine, day).plan.operations
        assert ops == (), f"not converged on {day}: {ops}"

    # -- reading ---------------------------------------------------------------------------

    def state(self) -> State:
        return target_state(self.root)

    def person_id(self, n: int) -> int:
        with self.engine.connect() as conn:
            ids = hub.find_person_ids(conn, f"{10_000_000 + n:08d}")
        assert len(ids) == 1, ids
        return ids[0]

    def count(self, table: sa.Table) -> int:
        with self.engine.connect() as conn:
            return int(conn.scalar(sa.select(sa.func.count()).select_from(table)) or 0)

    def row_counts(self) -> dict[str, int]:
        return {t.name: self.count(t) for t in s.metadata.sorted_tables}
