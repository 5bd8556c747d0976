"""Synthetic ESR-style workforce extracts: a realistic trust, and a rotation of it.

``generate_workforce`` writes a full extract (one row per assignment, ``esr_columns.COLUMNS``)
for one organisation. The shape follows ``notes/nhs-domain.md`` section 7:

- staff-group mix of an acute trust (about 13% Medical and Dental, 29% Nursing and Midwifery
  Registered, 20% Additional Clinical Services, 20% Administrative and Clerical, the rest AHP,
  ST&T, Healthcare Scientists and Estates);
- positions are *shared*: every incumbent of "Staff Nurse - Ward 12" holds the same position,
  and positions belong to departments (wards, specialties, services) spread over 3-5 sites;
- a management hierarchy by assignment number: staff -> department manager -> matron /
  clinical director / head of service -> executive director -> chief executive; the chair and
  non-executive directors (and the chief executive) have no supervisor;
- about 10% doctors in training (FY1/FY2/CT/ST) on Lead Employer Trainee or fixed-term
  assignments that end the day before the next rotation (first Wednesday of August, or of
  February for a minority);
- about 6.5% hold a second Bank assignment and about 1.5% an Honorary one (``-2`` suffix);
  about 1% are future starters and about 1% leave within the next month.

Every code used comes from :mod:`pasa.hr.codes`, so a generated file validates cleanly. The same
seed always gives a byte-identical file. Names, NI numbers and registration numbers are
synthetic: NI numbers have a valid format, registration numbers the body's format.

``generate_rotation`` reads an extract and writes the same extract as at a rotation date with
``movers`` people moved (doctors in training first): same assignment number, a new position
(department, site, supervisor; for trainees the next grade and the next rotation's end date),
every other row byte-for-byte unchanged.

Both functions stream: memory grows with the number of positions, not of rows, except for the
rotation's list of candidate movers.
"""

from __future__ import annotations

import csv
import datetime as dt
import gc
import random
import unicodedata
from array import array
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from pasa.hr.codes import (
    AREAS_OF_WORK,
    CATEGORIES,
    GRADES,
    JOB_ROLES,
    REGISTRATION_BODIES,
    STAFF_GROUPS,
    STATUSES,
)
from pasa.hr.esr_columns import COLUMNS, POSITION_COLUMNS

__all__ = [
    "RotationSummary",
    "WorkforceSummary",
    "first_wednesday",
    "generate_rotation",
    "generate_workforce",
    "next_rotation_date",
]

MIN_STAFF = 100

_PERMANENT = "Permanent"
_FIXED_TERM = "Fixed Term Temp"
_BANK = "Bank"
_HONORARY = "Honorary"
_LEAD_EMPLOYER = "Lead Employer Trainee"
_ACTIVE = "Active Assignment"

# --- dates ------------------------------------------------------------------------------------


def first_wednesday(year: int, month: int) -> dt.date:
    """The first Wednesday of a month (doctors in training rotate on it)."""
    first = dt.date(year, month, 1)
    return first + dt.timedelta(days=(2 - first.weekday()) % 7)


def next_rotation_date(after: dt.date, months: tuple[int, ...] = (8,)) -> dt.date:
    """The first rotation date (first Wednesday of one of ``months``) strictly after ``after``."""
    candidates = [
        first_wednesday(year, month)
        for year in (after.year, after.year + 1)
        for month in months
        if first_wednesday(year, month) > after
    ]
    return min(candidates)


def _previous_rotation_date(on_or_before: dt.date, month: int) -> dt.date:
    this_year = first_wednesday(on_or_before.year, month)
    return this_year if this_year <= on_or_before else first_wednesday(on_or_before.year - 1, month)


def _default_rotation_date(today: dt.date) -> dt.date:
    return next_rotation_date(today - dt.timedelta(days=1))


# --- national codes used (validated against pasa.hr.codes at import time) ---------------------


@dataclass(frozen=True, slots=True)
class _Role:
    """A kind of post: becomes one shared position per department that has incumbents."""

    title: str
    job_role: str
    grade: str
    occupation: str
    registration: str = ""  # registration body, "" when none
    hcpc_prefix: str = ""  # HCPC register prefix (PH, OT, ...)
    area: str = ""  # fixed area of work; "" = the department's
    category: str = _PERMANENT

    @property
    def staff_group(self) -> str:
        return self.job_role[:2]


@dataclass(frozen=True, slots=True)
class _Kind:
    """A kind of department, with its manager role and the roles staffed in it."""

    key: str
    names: tuple[str, ...]  # base names, cycled; a number is appended when reused
    areas: tuple[str, ...]  # area of work, cycled over departments of this kind
    manager: _Role
    reports_to: str  # key of a middle-manager pool or of an executive
    size: int  # typical headcount, sets how many departments of this kind exist
    site_pref: str = "main"  # main | community | any
    roles: tuple[tuple[_Role, float], ...] = ()  # (role, weight within its staff group)


_DIT_GRADES: tuple[str, ...] = (
    "FY1",
    "FY2",
    "CT1",
    "CT2",
    "CT3",
    "ST1",
    "ST2",
    "ST3",
    "ST4",
    "ST5",
    "ST6",
    "ST7",
    "ST8",
)
_DIT_WEIGHTS: tuple[float, ...] = (16, 16, 12, 12, 4, 5, 5, 6, 6, 5, 5, 4, 4)
_DIT_NEXT: dict[str, str] = {
    "FY1": "FY2",
    "FY2": "CT1",
    "CT1": "CT2",
    "CT2": "ST3",
    "CT3": "ST4",
    **{f"ST{n}": f"ST{min(n + 1, 8)}" for n in range(1, 9)},
}


def _dit_role(grade: str) -> _Role:
    if grade.startswith("FY"):
        title, job_role, occ = (
            f"Foundation Year {grade[2]} Doctor",
            f"0101{3 + int(grade[2])}",
            "C03",
        )
    elif grade.startswith("CT"):
        title, job_role, occ = "Core Trainee", "01017", "C04"
    else:
        title, job_role, occ = "Specialty Registrar", "01016", "C05"
    return _Role(title, job_role, grade, occ, "GMC", category=_LEAD_EMPLOYER)


_DIT_ROLES: dict[str, _Role] = {g: _dit_role(g) for g in _DIT_GRADES}

_MANAGER_BAND7 = "Band 7"


def _r(
    title: str,
    job_role: str,
    grade: str,
    occupation: str,
    registration: str = "",
    hcpc_prefix: str = "",
    area: str = "",
    category: str = _PERMANENT,
) -> _Role:
    return _Role(title, job_role, grade, occupation, registration, hcpc_prefix, area, category)


_NURSE_B5 = _r("Staff Nurse", "03001", "Band 5", "N01", "NMC")
_SISTER = _r("Sister/Charge Nurse", "03002", "Band 6", "N02", "NMC")
_HCA2 = _r("Healthcare Assistant", "07001", "Band 2", "H01")
_HCA3 = _r("Senior Healthcare Assistant", "07001", "Band 3", "H01")
_WARD_CLERK = _r("Ward Clerk", "08003", "Band 2", "G01")
_HOUSEKEEPER = _r("Ward Housekeeper", "09002", "Band 2", "K01")
_CONSULTANT = _r("Consultant", "01005", "Consultant", "C01", "GMC")

_KINDS: tuple[_Kind, ...] = (
    _Kind(
        "ward",
        ("Ward",),
        (
            "General Medicine",
            "General Surgery",
            "Trauma and Orthopaedics",
            "Cardiology",
            "Oncology",
            "Paediatrics",
            "General Medicine",
            "Emergency Medicine",
        ),
        _r("Ward Manager", "03003", _MANAGER_BAND7, "N03", "NMC"),
        "matron",
        45,
        roles=(
            (_NURSE_B5, 52),
            (_SISTER, 12),
            (_HCA2, 38),
            (_HCA3, 14),
            (_WARD_CLERK, 6),
            (_HOUSEKEEPER, 14),
        ),
    ),
    _Kind(
        "critical",
        ("Critical Care Unit", "Emergency Department", "Acute Medical Unit"),
        ("Critical Care", "Emergency Medicine", "General Medicine"),
        _r("Unit Manager", "03003", "Band 8A", "N03", "NMC"),
        "matron",
        70,
        roles=((_NURSE_B5, 14), (_SISTER, 5), (_HCA2, 6), (_WARD_CLERK, 2)),
    ),
    _Kind(
        "maternity",
        ("Maternity Unit", "Delivery Suite", "Antenatal Clinic"),
        ("Maternity",),
        _r("Midwifery Manager", "03004", _MANAGER_BAND7, "N05", "NMC"),
        "matron",
        40,
        roles=(
            (_r("Midwife", "03004", "Band 6", "N04", "NMC"), 8),
            (_r("Maternity Support Worker", "07004", "Band 3", "H02"), 5),
            (_r("Nursery Nurse", "07003", "Band 3", "H03"), 1),
        ),
    ),
    _Kind(
        "theatres",
        ("Main Theatres", "Day Surgery Unit", "Orthopaedic Theatres"),
        ("Theatres",),
        _r("Theatre Manager", "03003", "Band 8A", "N03", "NMC"),
        "matron",
        50,
        roles=(
            (_r("Theatre Staff Nurse", "03001", "Band 5", "N01", "NMC"), 8),
            (_r("Surgical Care Practitioner", "03022", _MANAGER_BAND7, "N06", "NMC"), 1),
            (_r("Theatre Support Worker", "07005", "Band 3", "H04"), 8),
        ),
    ),
    _Kind(
        "community",
        ("Community Nursing Team",),
        ("Community Nursing",),
        _r("Community Team Leader", "03010", _MANAGER_BAND7, "N07", "NMC"),
        "matron",
        30,
        site_pref="community",
        roles=(
            (_r("Community Nurse", "03010", "Band 6", "N07", "NMC"), 5),
            (_r("Community Staff Nurse", "03010", "Band 5", "N07", "NMC"), 4),
            (_r("Community Healthcare Assistant", "07001", "Band 3", "H01"), 4),
        ),
    ),
    _Kind(
        "outpatients",
        ("Outpatients Department",),
        ("Outpatients",),
        _r("Outpatients Manager", "03003", _MANAGER_BAND7, "N03", "NMC"),
        "matron",
        40,
        site_pref="any",
        roles=(
            (_r("Outpatients Staff Nurse", "03001", "Band 5", "N01", "NMC"), 3),
            (_r("Outpatients Healthcare Assistant", "07001", "Band 2", "H01"), 4),
            (_r("Outpatients Receptionist", "08004", "Band 2", "G02"), 8),
            (_r("Phlebotomist", "07006", "Band 2", "H05"), 3),
        ),
    ),
    _Kind(
        "medical",
        (
            "General Medicine",
            "General Surgery",
            "Cardiology",
            "Trauma and Orthopaedics",
            "Anaesthetics",
            "Emergency Medicine",
            "Paediatrics",
            "Oncology",
            "Radiology",
            "Psychiatry",
        ),
        (
            "General Medicine",
            "General Surgery",
            "Cardiology",
            "Trauma and Orthopaedics",
            "Anaesthetics",
            "Emergency Medicine",
            "Paediatrics",
            "Oncology",
            "Radiology",
            "Mental Health",
        ),
        _r("Clinical Director", "01002", "Consultant", "C01", "GMC"),
        "md",
        40,
        roles=(
            (_CONSULTANT, 21),
            (_r("Specialty Doctor", "01010", "Specialty Doctor", "C02", "GMC"), 6),
            (_r("Honorary Consultant", "01005", "Consultant", "C01", "GMC", category=_HONORARY), 3),
            *(
                (_DIT_ROLES[g], w * 70 / sum(_DIT_WEIGHTS))
                for g, w in zip(_DIT_GRADES, _DIT_WEIGHTS, strict=True)
            ),
            (_r("Medical Secretary", "08005", "Band 4", "G03"), 10),
        ),
    ),
    _Kind(
        "therapies",
        ("Physiotherapy", "Occupational Therapy", "Dietetics", "Speech and Language Therapy"),
        ("Therapies",),
        _r("Head of Therapies", "04001", "Band 8A", "S01", "HCPC", "PH"),
        "gm",
        35,
        site_pref="any",
        roles=(
            (_r("Physiotherapist", "04001", "Band 5", "S01", "HCPC", "PH"), 12),
            (_r("Senior Physiotherapist", "04001", "Band 6", "S01", "HCPC", "PH"), 8),
            (_r("Occupational Therapist", "04002", "Band 6", "S02", "HCPC", "OT"), 12),
            (_r("Dietitian", "04003", "Band 6", "S03", "HCPC", "DT"), 5),
            (_r("Speech and Language Therapist", "04005", "Band 6", "S05", "HCPC", "SL"), 4),
            (_r("Paramedic Practitioner", "04006", _MANAGER_BAND7, "S06", "HCPC", "PA"), 2),
            (_r("Therapy Assistant", "07001", "Band 3", "H06"), 5),
        ),
    ),
    _Kind(
        "radiology",
        ("Diagnostic Imaging",),
        ("Radiology",),
        _r("Radiology Services Manager", "04004", "Band 8A", "S04", "HCPC", "RA"),
        "gm",
        45,
        roles=(
            (_r("Diagnostic Radiographer", "04004", "Band 5", "S04", "HCPC", "RA"), 10),
            (_r("Senior Radiographer", "04004", "Band 6", "S04", "HCPC", "RA"), 6),
            (_r("Radiology Assistant", "07001", "Band 3", "H07"), 2),
            (_r("Radiology Clerk", "08003", "Band 3", "G01"), 2),
        ),
    ),
    _Kind(
        "pharmacy",
        ("Pharmacy",),
        ("Pharmacy",),
        _r("Lead Pharmacist", "05001", "Band 8B", "P01", "GPhC"),
        "gm",
        40,
        roles=(
            (_r("Pharmacist", "05001", _MANAGER_BAND7, "P01", "GPhC"), 45),
            (_r("Pharmacy Technician", "05004", "Band 5", "P02"), 35),
        ),
    ),
    _Kind(
        "psychology",
        ("Clinical Psychology", "Social Work and Chaplaincy"),
        ("Mental Health",),
        _r("Consultant Clinical Psychologist", "05005", "Band 8C", "P03"),
        "gm",
        20,
        site_pref="any",
        roles=(
            (_r("Clinical Psychologist", "05005", "Band 8A", "P03"), 10),
            (_r("Social Worker", "05003", "Band 6", "P04"), 8),
            (_r("Chaplain", "05002", "Band 6", "P05"), 2),
        ),
    ),
    _Kind(
        "pathology",
        ("Blood Sciences", "Microbiology", "Cellular Pathology"),
        ("Pathology",),
        _r("Pathology Services Manager", "06001", "Band 8A", "B01", "HCPC", "BS"),
        "gm",
        40,
        roles=(
            (_r("Biomedical Scientist", "06001", "Band 5", "B01", "HCPC", "BS"), 40),
            (_r("Specialist Biomedical Scientist", "06001", "Band 6", "B01", "HCPC", "BS"), 20),
            (_r("Clinical Scientist", "06002", _MANAGER_BAND7, "B02", "HCPC", "CS"), 15),
            (_r("Healthcare Science Assistant", "06003", "Band 3", "B03"), 25),
            (_r("Phlebotomist", "07006", "Band 2", "H05"), 3),
        ),
    ),
    _Kind(
        "admin",
        (
            "Health Records",
            "Patient Access",
            "Finance",
            "Human Resources",
            "Information Technology",
        ),
        ("Health Records", "Outpatients", "Finance", "Human Resources", "Information Technology"),
        _r("Department Manager", "08007", "Band 8A", "G04"),
        "ops",
        35,
        roles=(
            (_r("Clerical Officer", "08003", "Band 2", "G01"), 30),
            (_r("Administrator", "08003", "Band 3", "G01"), 25),
            (_r("Receptionist", "08004", "Band 2", "G02"), 8),
            (_r("Accountant", "08002", "Band 6", "G05", area="Finance"), 5),
            (_r("HR Adviser", "08008", "Band 5", "G06", area="Human Resources"), 5),
            (_r("IT Analyst", "08006", "Band 6", "G07", area="Information Technology"), 7),
            (_r("Team Leader", "08007", "Band 5", "G04"), 6),
        ),
    ),
    _Kind(
        "estates",
        ("Domestic Services", "Portering", "Catering", "Estates Maintenance", "Security"),
        ("Facilities", "Facilities", "Facilities", "Estates", "Facilities"),
        _r("Facilities Supervisor", "09002", "Band 4", "K02"),
        "facilities",
        40,
        site_pref="any",
        roles=(
            (_r("Domestic Assistant", "09004", "Band 2", "K03"), 30),
            (_r("Porter", "09003", "Band 2", "K04"), 15),
            (_r("Catering Assistant", "09006", "Band 2", "K05"), 12),
            (_r("Electrician", "09001", "Band 4", "K06", area="Estates"), 6),
            (_r("Security Officer", "09005", "Band 3", "K07"), 5),
        ),
    ),
)

# Share of staff by staff group (rank and file; managers come on top of these).
_GROUP_SHARE: dict[str, float] = {
    "01": 14.0,
    "03": 28.5,
    "07": 20.0,
    "08": 20.0,
    "04": 6.5,
    "05": 3.5,
    "06": 2.5,
    "09": 5.0,
}

_CORPORATE = "Corporate Services"

# Executives: key -> role; all report to the chief executive.
_CEO = _r("Chief Executive", "08001", "Band 9", "G08", area=_CORPORATE)
_EXECUTIVES: dict[str, _Role] = {
    "md": _r("Medical Director", "01001", "Consultant", "C01", "GMC", area=_CORPORATE),
    "don": _r("Director of Nursing", "03007", "Band 9", "N08", "NMC", area=_CORPORATE),
    "ops": _r("Director of Operations", "08007", "Band 9", "G04", area=_CORPORATE),
    "fin": _r("Director of Finance", "08007", "Band 9", "G04", area="Finance"),
    "hr": _r("Director of Workforce", "08007", "Band 9", "G04", area="Human Resources"),
    "est": _r("Director of Estates and Facilities", "08007", "Band 9", "G04", area="Estates"),
}
_BOARD_NON_EXEC: tuple[_Role, ...] = (
    _r("Chair", "10003", "Band 9", "G09", area=_CORPORATE, category=_FIXED_TERM),
    _r("Non-Executive Director", "10002", "Band 9", "G09", area=_CORPORATE, category=_FIXED_TERM),
)
# Middle-manager pools: key -> (role, executive they report to, departments per manager).
_MIDDLE: dict[str, tuple[_Role, str, int]] = {
    "matron": (_r("Modern Matron", "03006", "Band 8A", "N09", "NMC"), "don", 6),
    "gm": (_r("General Manager - Clinical Support", "08007", "Band 8B", "G04"), "ops", 8),
    "facilities": (
        _r("Head of Facilities", "08007", "Band 8A", "G04", area="Facilities"),
        "est",
        8,
    ),
}
_ADMIN_REPORTS: dict[str, str] = {"Finance": "fin", "Human Resources": "hr"}

_BANK_ROLES: dict[str, _Role] = {
    "01": _r("Bank Specialty Doctor", "01010", "Specialty Doctor", "C02", "GMC", category=_BANK),
    "03": _r("Bank Staff Nurse", "03001", "Band 5", "N01", "NMC", category=_BANK),
    "04": _r("Bank Physiotherapist", "04001", "Band 6", "S01", "HCPC", "PH", category=_BANK),
    "07": _r("Bank Healthcare Assistant", "07001", "Band 2", "H01", category=_BANK),
    "08": _r("Bank Administrator", "08003", "Band 3", "G01", category=_BANK),
    "09": _r("Bank Domestic Assistant", "09004", "Band 2", "K03", category=_BANK),
}
_BANK_MANAGER = _r("Staff Bank Manager", "08007", _MANAGER_BAND7, "G04", area=_CORPORATE)
_RD_MANAGER = _r("Research and Development Manager", "08007", "Band 8A", "G04", area=_CORPORATE)
_HONORARY_GROUPS = ("01", "03", "04", "06")


def _validate_catalogue() -> None:
    roles: list[_Role] = [_CEO, *_EXECUTIVES.values(), *_BOARD_NON_EXEC, _BANK_MANAGER]
    roles += [_RD_MANAGER, *_BANK_ROLES.values(), *(m[0] for m in _MIDDLE.values())]
    roles += _DIT_ROLES.values()
    for kind in _KINDS:
        roles.append(kind.manager)
        roles.extend(role for role, _ in kind.roles)
        for area in kind.areas:
            assert area in AREAS_OF_WORK, area
    for role in roles:
        assert role.job_role in JOB_ROLES, role
        assert role.staff_group in STAFF_GROUPS, role
        assert role.grade in GRADES, role
        assert role.category in CATEGORIES, role
        assert not role.area or role.area in AREAS_OF_WORK, role
        assert not role.registration or role.registration in REGISTRATION_BODIES, role
    assert _ACTIVE in STATUSES
    for status, _ in _STATUS_WEIGHTS:
        assert status in STATUSES, status


# --- names ------------------------------------------------------------------------------------


def _words(text: str) -> list[str]:
    return text.split()


_FEMALE = _words(
    "Olivia Amelia Isla Ava Emily Sophie Grace Mia Poppy Ella Lily Evie Jessica Charlotte Ruby "
    "Sarah Rebecca Laura Emma Claire Helen Katherine Elizabeth Joanne Nicola Rachel Amy Hannah "
    "Lucy Megan Chloe Zoë Siân Niamh Aoife Caoimhe Saoirse Eilidh Mairéad Bronwen Ffion Cerys "
    "Priya Aisha Fatima Zainab Ayesha Anjali Deepa Sunita Noor Maryam Amara Chiamaka Ngozi "
    "Adaeze Folake Abena Grace-Ann Marie-Claire Renée Inês Ana María Agnieszka Katarzyna Anna "
    "Maria Rosa Jasmine Mei Ling Yuki Thi Divya Shreya Kavita Esther Naomi Ruth Bethany Jade "
    "Leah Holly Phoebe Imogen Harriet Eleanor Florence Alice Margaret Susan Patricia Janet "
    "Christine Julie Karen Tracey Michelle Angela Dawn Gemma Kirsty Stacey Hayley Danielle"
)
_MALE = _words(
    "Oliver George Harry Noah Jack Leo Arthur Muhammad Oscar Charlie Jacob Thomas James William "
    "Daniel David Michael Christopher Matthew Andrew Richard Paul Mark Stephen Peter John Robert "
    "Benjamin Samuel Joseph Luke Ryan Adam Liam Connor Callum Rhys Dylan Gareth Iwan Owain Seán "
    "Séamus Ciarán Pádraig Eoin Declan Mohammed Ahmed Ali Omar Hassan Imran Rajesh Sanjay Amit "
    "Arjun Vikram Ravi Anil Chukwuemeka Oluwaseun Kwame Kofi Tunde Emeka Jean-Paul José Luís "
    "João André Piotr Tomasz Krzysztof Łukasz Marek Andrei Mihai Wei Hiroshi Minh Jun Carlos "
    "Mateo Gabriel Elijah Nathan Aaron Jordan Kieran Lewis Jamie Craig Darren Lee Wayne Gary "
    "Keith Nigel Graham Ian Colin Malcolm Trevor Barry Alan Kevin Neil Simon Martin Philip"
)
_LAST = _words(
    "Smith Jones Williams Taylor Brown Davies Evans Wilson Thomas Johnson Roberts Robinson "
    "Thompson Wright Walker White Edwards Hughes Green Hall Lewis Harris Clarke Patel Jackson "
    "Wood Turner Martin Cooper Hill Ward Morris Moore Clark Lee King Baker Harrison Morgan Allen "
    "James Scott Phillips Watson Davis Parker Price Bennett Young Griffiths Mitchell Kelly Cook "
    "Carter Richardson Bailey Collins Bell Shaw Murphy Miller Cox Richards Khan Marshall Anderson "
    "Simpson Ellis Adams Singh Begum Ali Hussain Ahmed Rahman Chowdhury Shah Sharma Kaur Gill "
    "Mistry Desai Joshi Iyer Nair Okafor Okonkwo Adeyemi Mensah Owusu Boateng Nwosu Eze Abiodun "
    "Chen Wang Li Zhang Nguyen Tran Kim Tanaka Santos Reyes Cruz Garcia Fernández Rodríguez "
    "González Silva Pereira Kowalski Nowak Wiśniewski Wójcik Popescu Ionescu Novák Müller "
    "Schmidt Rossi O'Neill O'Brien O'Connor O'Sullivan O'Reilly D'Souza D'Silva McDonald "
    "MacLeod McKenzie McLaughlin Fitzgerald Gallagher Doherty Quinn Byrne Ní Bhriain "
    "Smith-Jones Lloyd-Davies Hamilton-Smith Bowes-Lyon Wynne-Jones Ap Rhys Le Roux Van der Berg "
    "De Souza St John Llewellyn Pritchard Vaughan Rees Powell Jenkins Howells Bevan Protheroe"
)
# Multi-word surnames were split above; put the ones we want back together.
_LAST_FIXED = [n for n in _LAST if n not in {"Ní", "Bhriain", "Ap", "Le", "Roux", "Van"}]
_LAST_FIXED = [n for n in _LAST_FIXED if n not in {"der", "Berg", "De", "Souza", "St", "John"}]
_LAST_FIXED += ["Ní Bhriain", "ap Rhys", "Le Roux", "van der Berg", "De Souza", "St John"]
_LAST_NAMES: tuple[str, ...] = tuple(dict.fromkeys(_LAST_FIXED))
_FEMALE_NAMES: tuple[str, ...] = tuple(dict.fromkeys(_FEMALE))
_MALE_NAMES: tuple[str, ...] = tuple(dict.fromkeys(_MALE))
_KNOWN_AS: dict[str, str] = {
    "Katherine": "Kate",
    "Elizabeth": "Liz",
    "Margaret": "Maggie",
    "Rebecca": "Becky",
    "Patricia": "Trish",
    "Christopher": "Chris",
    "Matthew": "Matt",
    "Benjamin": "Ben",
    "Samuel": "Sam",
    "William": "Will",
    "Richard": "Rich",
    "Michael": "Mike",
    "Robert": "Bob",
    "Oluwaseun": "Seun",
    "Chukwuemeka": "Emeka",
    "Muhammad": "Mo",
    "Krzysztof": "Chris",
    "Chiamaka": "Amaka",
}

# NI prefixes: valid first letters exclude D F I Q U V; second letters also exclude O; some
# pairs (BG GB KN NK NT TN ZZ) are never issued.
_NI_FIRST = "ABCEGHJKLMNOPRSTWXYZ"
_NI_SECOND = "ABCEGHJKLMNPRSTWXYZ"
_NI_PREFIXES: tuple[str, ...] = tuple(
    a + b
    for a in _NI_FIRST
    for b in _NI_SECOND
    if a + b not in {"BG", "GB", "KN", "NK", "NT", "TN", "ZZ"}
)


def _slug(name: str) -> str:
    """NHSmail local-part form of a name: ASCII letters and hyphens, lower case."""
    decomposed = unicodedata.normalize("NFKD", name.replace("Ł", "L").replace("ł", "l"))
    ascii_only = decomposed.encode("ascii", "ignore").decode()
    return "".join(c for c in ascii_only.lower() if c.isalpha() or c == "-").strip("-")


_STATUS_WEIGHTS: tuple[tuple[str, float], ...] = (
    (_ACTIVE, 98.8),
    ("Acting Up", 0.6),
    ("Suspend Assignment", 0.4),
    ("Out on External Secondment", 0.2),
)
_WTE_VALUES: tuple[str, ...] = (
    "1.00",
    "1.00",
    "1.00",
    "1.00",
    "1.00",
    "1.00",
    "0.90",
    "0.80",
    "0.80",
)
_WTE_VALUES += ("0.60", "0.60", "0.50", "0.40", "0.75")

_validate_catalogue()

# --- summaries --------------------------------------------------------------------------------


@dataclass(slots=True)
class WorkforceSummary:
    """What ``generate_workforce`` wrote."""

    org: str
    people: int = 0
    assignments: int = 0
    positions: int = 0
    departments: int = 0
    sites: int = 0
    doctors_in_training: int = 0
    bank_assignments: int = 0
    honorary_assignments: int = 0
    future_starters: int = 0
    leavers: int = 0
    by_staff_group: dict[str, int] = field(default_factory=dict)  # primary assignments


@dataclass(slots=True)
class RotationSummary:
    """What ``generate_rotation`` wrote."""

    rotation_date: dt.date
    rows: int = 0
    movers: int = 0
    doctors_in_training_moved: int = 0
    other_staff_moved: int = 0
    new_positions: int = 0
    moved_assignments: list[str] = field(default_factory=list)


# --- organisation structure -------------------------------------------------------------------

_KNOWN_SITES: dict[str, tuple[str, ...]] = {
    "RXL": ("Blackpool Victoria Hospital", "Clifton Hospital", "Fleetwood Hospital"),
    "RHW": (
        "Royal Berkshire Hospital",
        "West Berkshire Community Hospital",
        "Townlands Memorial Hospital",
        "Bracknell Healthspace",
    ),
}


def _sites(org: str) -> list[tuple[str, str]]:
    names = _KNOWN_SITES.get(org) or (
        f"{org} General Hospital",
        f"{org} Community Hospital",
        f"{org} Treatment Centre",
        f"{org} Health Centre",
    )
    return [(f"{org}{i + 1:02d}", name) for i, name in enumerate(names)]


@dataclass(slots=True)
class _Dept:
    code: str
    name: str
    cost_centre: str
    site_code: str
    site_name: str
    area: str
    manager: str = ""  # assignment number of the department manager


class _Org:
    """Departments, positions and the management chain of one synthetic organisation."""

    def __init__(self, org: str, staff: int, rng: random.Random) -> None:
        self.org = org
        self.rng = rng
        self.sites = _sites(org)
        self.depts: list[_Dept] = []
        self.kind_depts: dict[str, list[int]] = {}
        self.positions: dict[tuple[int, int, str], tuple[str, ...]] = {}
        self._next_position = 100001
        self._dept_width = max(4, len(str(staff // 10)))
        group_totals = sum(_GROUP_SHARE.values())
        expected: dict[str, float] = {}
        for kind in _KINDS:
            heads = 0.0
            for role, weight in kind.roles:
                group_weight = sum(
                    w for k in _KINDS for r, w in k.roles if r.staff_group == role.staff_group
                )
                share = _GROUP_SHARE[role.staff_group] / group_totals
                heads += staff * share * weight / group_weight
            expected[kind.key] = heads
        name_uses: dict[str, int] = {}
        ward_no = 0
        for kind in _KINDS:
            count = max(1, round(expected[kind.key] / kind.size))
            self.kind_depts[kind.key] = []
            for i in range(count):
                base = kind.names[i % len(kind.names)]
                if kind.key == "ward":
                    ward_no += 1
                    name = f"Ward {ward_no}"
                else:
                    uses = name_uses.get(base, 0) + 1
                    name_uses[base] = uses
                    name = base if uses == 1 else f"{base} {uses}"
                self.kind_depts[kind.key].append(
                    self._add_dept(name, kind.areas[i % len(kind.areas)], kind.site_pref, i)
                )
        self.hq = self._add_dept("Trust Headquarters", _CORPORATE, "main", 0)
        self.divisional = self._add_dept("Divisional Management", _CORPORATE, "main", 0)
        self.bank = self._add_dept("Staff Bank", _CORPORATE, "main", 0)
        self.research = self._add_dept("Research and Development", "Medical Education", "main", 0)

    def _add_dept(self, name: str, area: str, site_pref: str, i: int) -> int:
        n = len(self.depts) + 1
        sites = self.sites
        if site_pref == "community":
            site = sites[1 + i % (len(sites) - 1)]
        elif site_pref == "any":
            site = sites[i % len(sites)]
        else:  # main hospital, with one in seven departments on another site
            site = sites[0] if i % 7 != 6 else sites[1 + (i // 7) % (len(sites) - 1)]
        code = f"{self.org}D{n:0{self._dept_width}d}"
        self.depts.append(_Dept(code, name, f"{n * 10 + 100000}", site[0], site[1], area))
        return n - 1

    def position(self, dept_index: int, role: _Role, title: str | None = None) -> tuple[str, ...]:
        """The (shared) position of ``role`` in a department: the 12 position columns."""
        key = (dept_index, id(role), title or "")
        found = self.positions.get(key)
        if found is not None:
            return found
        d = self.depts[dept_index]
        number = str(self._next_position)
        self._next_position += 1
        row = (
            number,
            title or f"{role.title} - {d.name}",
            role.staff_group,
            role.job_role,
            role.area or d.area,
            role.occupation,
            role.grade,
            d.code,
            d.name,
            d.cost_centre,
            d.site_code,
            d.site_name,
        )
        self.positions[key] = row
        return row


# --- the generator ----------------------------------------------------------------------------


@contextmanager
def _open_out(out: Path | TextIO) -> Iterator[TextIO]:
    if isinstance(out, Path):
        with out.open("w", encoding="utf-8", newline="") as handle:
            yield handle
    else:
        yield out


class _People:
    """Draws the person-level columns (names, DOB, NI, email, registration) for each person."""

    def __init__(self, rng: random.Random, as_of: dt.date) -> None:
        self.rng = rng
        self.as_of_ord = as_of.toordinal()
        self._date_cache: dict[int, str] = {}
        self._email_counts: dict[str, int] = {}
        self._female_slugs = [_slug(n) for n in _FEMALE_NAMES]
        self._male_slugs = [_slug(n) for n in _MALE_NAMES]
        self._last_slugs = [_slug(n) for n in _LAST_NAMES]
        ni_space = len(_NI_PREFIXES) * 1_000_000
        self._ni_space = ni_space
        self._ni_mult = 7_919_993  # coprime with the space: index -> unique NI number
        self._ni_offset = rng.randrange(ni_space)
        self._reg_offset = rng.randrange(1_000_000)
        self._reg_counts: dict[str, int] = {}

    def date(self, ordinal: int) -> str:
        text = self._date_cache.get(ordinal)
        if text is None:
            text = dt.date.fromordinal(ordinal).strftime("%d/%m/%Y")
            self._date_cache[ordinal] = text
        return text

    def person(self, index: int, role: _Role, min_age: int, max_age: int) -> tuple[list[str], int]:
        """Columns Title..NI_Number plus email, and the date of birth ordinal."""
        rng = self.rng
        rand = rng.random
        female = rand() < 0.7 if role.staff_group in ("03", "07") else rand() < 0.5
        if female:
            k = int(rand() * len(_FEMALE_NAMES))
            first, first_slug = _FEMALE_NAMES[k], self._female_slugs[k]
            middle = _FEMALE_NAMES[int(rand() * len(_FEMALE_NAMES))] if rand() < 0.4 else ""
        else:
            k = int(rand() * len(_MALE_NAMES))
            first, first_slug = _MALE_NAMES[k], self._male_slugs[k]
            middle = _MALE_NAMES[int(rand() * len(_MALE_NAMES))] if rand() < 0.4 else ""
        j = int(rand() * len(_LAST_NAMES))
        last = _LAST_NAMES[j]
        if role.staff_group == "01":
            title = "Dr"
        elif female:
            u = rand()
            title = "Mrs" if u < 0.4 else "Ms" if u < 0.75 else "Miss" if u < 0.98 else "Mx"
        else:
            title = "Mr" if rand() < 0.98 else "Mx"
        nickname = _KNOWN_AS.get(first)
        known_as = nickname if nickname is not None and rand() < 0.5 else ""
        age_days = int((min_age + rand() * (max_age - min_age)) * 365.25)
        dob = self.as_of_ord - age_days
        base = f"{first_slug}.{self._last_slugs[j]}"
        n = self._email_counts.get(base, 0)
        self._email_counts[base] = n + 1
        email = f"{base}{n}@nhs.net" if n else f"{base}@nhs.net"
        ni = (index * self._ni_mult + self._ni_offset) % self._ni_space
        ni_text = f"{_NI_PREFIXES[ni // 1_000_000]}{ni % 1_000_000:06d}{'ABCD'[index % 4]}"
        return [title, first, middle, last, known_as, self.date(dob), ni_text, email], dob

    def registration(self, role: _Role) -> tuple[str, str]:
        """A registration number of the body's format, unique per body (and HCPC prefix)."""
        body = role.registration
        if not body:
            return "", ""
        key = body + role.hcpc_prefix
        count = self._reg_counts.get(key, 0)
        self._reg_counts[key] = count + 1
        x = (count * 7_919 + self._reg_offset) % 8_000_000  # a permutation of 0..8m
        if body == "GMC":
            return body, str(1_000_000 + x)
        if body == "GPhC":
            return body, str(2_000_000 + x)
        if body == "NMC":
            letters = "ABCDEFGHJKLMNPRSTUVWXYZ"
            return body, (
                f"{x % 100:02d}{letters[(x // 100) % 23]}{(x // 2300) % 10000:04d}{letters[x % 23]}"
            )
        return body, f"{role.hcpc_prefix}{x % 1_000_000:06d}"


def generate_workforce(
    out: Path | TextIO,
    *,
    staff: int,
    org: str,
    seed: int,
    as_of: dt.date,
    progress: Callable[[int], None] | None = None,
) -> WorkforceSummary:
    """Write a realistic ESR-style full extract of ``staff`` people for ``org`` as at ``as_of``.

    Same arguments, same bytes. ``progress`` is called with the number of rows written so far,
    every few thousand rows. Returns counts of what was written.
    """
    if staff < MIN_STAFF:
        raise ValueError(f"staff must be at least {MIN_STAFF} (got {staff})")
    # No reference cycles are made here; the cyclic collector only costs time (about 8%).
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        return _generate(out, staff=staff, org=org, seed=seed, as_of=as_of, progress=progress)
    finally:
        if was_enabled:
            gc.enable()


def _generate(
    out: Path | TextIO,
    *,
    staff: int,
    org: str,
    seed: int,
    as_of: dt.date,
    progress: Callable[[int], None] | None,
) -> WorkforceSummary:
    rng = random.Random(seed)
    rand = rng.random
    structure = _Org(org, staff, rng)
    people = _People(rng, as_of)
    summary = WorkforceSummary(org=org, sites=len(structure.sites))
    as_of_ord = as_of.toordinal()
    date = people.date
    aug_start = _previous_rotation_date(as_of, 8).toordinal()
    feb_start = _previous_rotation_date(as_of, 2).toordinal()
    aug_end = next_rotation_date(as_of, (8,)).toordinal() - 1
    feb_end = next_rotation_date(as_of, (2,)).toordinal() - 1

    # Employee numbers: increasing with a random gap, so unique and 8 digits.
    step = max(2, min(13, 80_000_000 // (staff + 1)))
    emp_base = 10_000_000 + rng.randrange(1_000_000)
    statuses = [s for s, _ in _STATUS_WEIGHTS]
    status_cum: list[float] = []
    total = 0.0
    for _, w in _STATUS_WEIGHTS:
        total += w
        status_cum.append(total)

    writer_rows: list[list[str]] = []
    honorary_roles: dict[int, _Role] = {}

    def honorary_role(role: _Role) -> _Role:
        found = honorary_roles.get(id(role))
        if found is None:
            found = _r(
                f"Honorary {role.title}",
                role.job_role,
                _HONORARY,
                role.occupation,
                category=_HONORARY,
                area="Medical Education",
            )
            honorary_roles[id(role)] = found
        return found

    by_group: dict[str, int] = {}
    person_index = 0

    def emit(
        role: _Role,
        pos: tuple[str, ...],
        supervisor: str,
        *,
        min_age: int = 18,
        max_age: int = 68,
        fixed: bool = False,
    ) -> str:
        """Write one person (and any second assignment); return the primary assignment no."""
        nonlocal person_index
        index = person_index
        person_index += 1
        emp = str(emp_base + index * step + int(rand() * step))
        cols, dob = people.person(index, role, min_age, max_age)
        body, reg_no = people.registration(role)
        category = role.category
        end = ""
        leaving = False
        adult_ord = dob + 6575  # 18th birthday, roughly
        if category == _LEAD_EMPLOYER:
            summary.doctors_in_training += 1
            if rand() < 0.4:
                category = _FIXED_TERM
            if rand() < 0.2:
                start_ord, end = feb_start, date(feb_end)
            else:
                start_ord, end = aug_start, date(aug_end)
            if start_ord < adult_ord:
                start_ord = adult_ord
        else:
            span = as_of_ord - adult_ord
            start_ord = as_of_ord - 1 - int(rand() * rand() * min(span, 12_000))
            u = rand()
            if not fixed and u < 0.01:
                start_ord = as_of_ord + 1 + int(rand() * 60)  # future starter (pre-hire)
                summary.future_starters += 1
            elif not fixed and u < 0.02:
                end = date(as_of_ord + 1 + int(rand() * 31))  # leaver within the month
                summary.leavers += 1
                leaving = True
            elif category == _FIXED_TERM or (not fixed and u < 0.05 and category == _PERMANENT):
                category = _FIXED_TERM
                end = date(as_of_ord + 60 + int(rand() * 480))
        u = rand() * total
        status = _ACTIVE
        if u >= status_cum[0] and not fixed:
            status = (
                statuses[1]
                if u < status_cum[1]
                else statuses[2]
                if u < status_cum[2]
                else statuses[3]
            )
        wte = _WTE_VALUES[int(rand() * len(_WTE_VALUES))] if not fixed else "1.00"
        row = [org, emp, emp, *cols[:6], cols[6], cols[7], "Y", category, status]
        row += [date(start_ord), end, *pos, supervisor, wte, body, reg_no]
        writer_rows.append(row)
        group = role.staff_group
        by_group[group] = by_group.get(group, 0) + 1
        summary.assignments += 1
        # Second assignment: Bank (about 6%) or Honorary (about 1%).
        if not fixed and category != _HONORARY:
            u = rand()
            second: _Role | None = None
            dept = -1
            if u < 0.065:
                second = _BANK_ROLES.get(group, _BANK_ROLES["08"])
                dept = structure.bank
                summary.bank_assignments += 1
            elif u < 0.075 and group in _HONORARY_GROUPS:
                second = honorary_role(role)
                dept = structure.research
                summary.honorary_assignments += 1
            if second is not None:
                d = structure.depts[dept]
                s_pos = structure.position(dept, second)
                s_start = max(start_ord, as_of_ord - 1 - int(rand() * 2000))
                s_wte = _WTE_VALUES[int(rand() * len(_WTE_VALUES))]
                row2 = [org, emp, f"{emp}-2", *cols[:6], cols[6], cols[7], "N", second.category]
                row2 += [
                    _ACTIVE,
                    date(s_start),
                    end if leaving else "",
                    *s_pos,
                    d.manager,
                    s_wte,
                    body,
                    reg_no,
                ]
                writer_rows.append(row2)
                summary.assignments += 1
        if category == _HONORARY:
            summary.honorary_assignments += 1
        summary.people += 1
        if len(writer_rows) >= 4096:
            flush()
        return emp

    with _open_out(out) as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(COLUMNS)
        written = 0

        def flush() -> None:
            nonlocal written
            writer.writerows(writer_rows)
            written += len(writer_rows)
            writer_rows.clear()
            if progress is not None:
                progress(written)

        # Board and executives.
        hq = structure.hq
        ceo = emit(_CEO, structure.position(hq, _CEO), "", min_age=40, fixed=True)
        n_neds = 5 if staff >= 1000 else 2
        for i, role in enumerate((_BOARD_NON_EXEC[0],) + (_BOARD_NON_EXEC[1],) * n_neds):
            title = f"{role.title} {i}" if i else role.title
            emit(role, structure.position(hq, role, title), "", min_age=45, fixed=True)
        execs: dict[str, str] = {}
        for key, role in _EXECUTIVES.items():
            pos = structure.position(hq, role)
            execs[key] = emit(role, pos, ceo, min_age=40, fixed=True)
        structure.depts[hq].manager = ceo
        # Middle managers, then department managers.
        middles: dict[str, list[str]] = {}
        for key, (role, exec_key, per) in _MIDDLE.items():
            n_depts = sum(len(structure.kind_depts[k.key]) for k in _KINDS if k.reports_to == key)
            count = max(1, -(-n_depts // per))
            middles[key] = []
            for i in range(count):
                pos = structure.position(structure.divisional, role, f"{role.title} ({i + 1})")
                middles[key].append(emit(role, pos, execs[exec_key], min_age=30, fixed=True))
        structure.depts[structure.divisional].manager = execs["ops"]
        for kind in _KINDS:
            for i, dept in enumerate(structure.kind_depts[kind.key]):
                if kind.reports_to in middles:
                    pool = middles[kind.reports_to]
                    boss = pool[i * len(pool) // len(structure.kind_depts[kind.key])]
                elif kind.key == "admin":
                    boss = execs[_ADMIN_REPORTS.get(structure.depts[dept].area, "ops")]
                else:
                    boss = execs[kind.reports_to]
                pos = structure.position(dept, kind.manager)
                structure.depts[dept].manager = emit(
                    kind.manager, pos, boss, min_age=28, fixed=True
                )
        bank_pos = structure.position(structure.bank, _BANK_MANAGER)
        structure.depts[structure.bank].manager = emit(
            _BANK_MANAGER, bank_pos, execs["hr"], fixed=True
        )
        rd_pos = structure.position(structure.research, _RD_MANAGER)
        structure.depts[structure.research].manager = emit(
            _RD_MANAGER, rd_pos, execs["md"], fixed=True
        )

        # Rank and file: role by staff-group share and role weight, department at random.
        roles: list[tuple[_Role, list[int]]] = []
        cum: list[float] = []
        acc = 0.0
        group_weight: dict[str, float] = {}
        for kind in _KINDS:
            for role, weight in kind.roles:
                group_weight[role.staff_group] = group_weight.get(role.staff_group, 0.0) + weight
        for kind in _KINDS:
            for role, weight in kind.roles:
                acc += _GROUP_SHARE[role.staff_group] * weight / group_weight[role.staff_group]
                cum.append(acc)
                roles.append((role, structure.kind_depts[kind.key]))
        remaining = staff - person_index
        picks = rng.choices(range(len(roles)), cum_weights=cum, k=max(0, remaining))
        depts = structure.depts
        for pick in picks:
            role, kind_depts = roles[pick]
            dept = kind_depts[int(rand() * len(kind_depts))]
            pos = structure.position(dept, role)
            if role.category == _LEAD_EMPLOYER:
                emit(role, pos, depts[dept].manager, min_age=23, max_age=40)
            elif role.job_role == "01005":
                emit(role, pos, depts[dept].manager, min_age=32, max_age=66)
            else:
                emit(role, pos, depts[dept].manager)
        flush()

    summary.positions = len(structure.positions)
    summary.departments = len(structure.depts)
    summary.by_staff_group = dict(sorted(by_group.items()))
    return summary


# --- rotation ---------------------------------------------------------------------------------

_I = {name: i for i, name in enumerate(COLUMNS)}
_POSITION_COLUMNS = POSITION_COLUMNS
_POS_SLICE = slice(_I["Position_Number"], _I["Location_Name"] + 1)
MOVE_COLUMNS: frozenset[str] = frozenset(
    (*_POSITION_COLUMNS, "Supervisor_Assignment_Number", "Assignment_End_Date")
)
"""The columns a rotation may change on a moved row (end date: doctors in training only)."""


def _parse_date(text: str) -> dt.date | None:
    if not text:
        return None
    if "/" in text:
        d, m, y = text.split("/")
        return dt.date(int(y), int(m), int(d))
    return dt.date.fromisoformat(text)


@dataclass(slots=True)
class _Catalogue:
    """Positions and departments seen in an extract (first pass of a rotation)."""

    positions: dict[str, tuple[str, ...]] = field(default_factory=dict)
    supervisor: dict[str, str] = field(default_factory=dict)  # position -> first supervisor seen
    by_grade: dict[str, list[str]] = field(default_factory=dict)  # grade -> positions
    by_role_grade: dict[tuple[str, str], list[str]] = field(default_factory=dict)
    dept_info: dict[str, tuple[str, ...]] = field(default_factory=dict)
    dept_supervisor: dict[str, str] = field(default_factory=dict)
    supervisors: set[str] = field(default_factory=set)
    max_position: int = 0


def generate_rotation(
    extract: Path,
    out: Path,
    *,
    movers: int,
    rotation_date: dt.date | None = None,
    seed: int,
) -> RotationSummary:
    """Write ``extract`` as at ``rotation_date`` with ``movers`` people moved to new positions.

    Doctors in training move first (next grade, new department and site, end date the day
    before the following August rotation); when more movers are asked for than there are
    trainees, other staff move laterally (same job role and grade, another department). Only
    the columns in :data:`MOVE_COLUMNS` change, and only on the movers' primary assignments;
    every other row is written back unchanged. ``rotation_date`` defaults to the next first
    Wednesday of August.
    """
    if movers < 0:
        raise ValueError("movers must not be negative")
    when = rotation_date or _default_rotation_date(dt.date.today())
    rng = random.Random(seed)
    cat = _Catalogue()
    dits: array[int] = array("q")
    others: array[int] = array("q")
    with extract.open(encoding="utf-8-sig", newline="") as handle:
        reader = csv.reader(handle)
        header = next(reader, None)
        if header is None or tuple(header) != COLUMNS:
            raise ValueError(f"{extract}: header is not the ESR extract header (esr_columns)")
        i_grade, i_sup, i_dept = (
            _I["Grade_Code"],
            _I["Supervisor_Assignment_Number"],
            _I["Department_Code"],
        )
        i_primary, i_status, i_cat = (
            _I["Primary_Assignment"],
            _I["Assignment_Status"],
            _I["Assignment_Category"],
        )
        i_start, i_end, i_pos = (
            _I["Assignment_Start_Date"],
            _I["Assignment_End_Date"],
            _I["Position_Number"],
        )
        i_role = _I["Job_Role_Code"]
        candidates: list[tuple[int, str]] = []
        for n, row in enumerate(reader):
            if len(row) != len(COLUMNS):
                continue
            pos_no = row[i_pos]
            sup = row[i_sup]
            if sup:
                cat.supervisors.add(sup)
            if pos_no not in cat.positions:
                pos = tuple(row[_POS_SLICE])
                cat.positions[pos_no] = pos
                cat.supervisor[pos_no] = sup
                cat.by_grade.setdefault(row[i_grade], []).append(pos_no)
                cat.by_role_grade.setdefault((row[i_role], row[i_grade]), []).append(pos_no)
                if pos_no.isdigit():
                    cat.max_position = max(cat.max_position, int(pos_no))
            dept = row[i_dept]
            if dept not in cat.dept_info:
                cat.dept_info[dept] = tuple(row[_I["Department_Code"] : _I["Location_Name"] + 1])
            if sup and row[i_cat] != _BANK and row[i_cat] != _HONORARY:
                cat.dept_supervisor.setdefault(dept, sup)
            if row[i_primary] != "Y" or row[i_status] != _ACTIVE:
                continue
            start = _parse_date(row[i_start])
            if start is None or start > when:
                continue
            if row[i_grade] in _DIT_NEXT:
                dits.append(n)
            elif not row[i_end] and row[i_cat] in (_PERMANENT, _FIXED_TERM):
                candidates.append((n, row[_I["Assignment_Number"]]))
        for n, number in candidates:
            if number not in cat.supervisors:
                others.append(n)
    del candidates
    if movers > len(dits) + len(others):
        raise ValueError(
            f"{movers} movers requested but the extract has only "
            f"{len(dits) + len(others)} people who can move"
        )
    chosen_dits = rng.sample(list(dits), min(movers, len(dits)))
    chosen_others = rng.sample(list(others), movers - len(chosen_dits))
    moving: dict[int, bool] = dict.fromkeys(chosen_dits, True)
    moving.update(dict.fromkeys(chosen_others, False))
    summary = RotationSummary(rotation_date=when)
    new_end = (next_rotation_date(when, (8,)) - dt.timedelta(days=1)).strftime("%d/%m/%Y")
    medical_depts = sorted(
        {p[7] for p in cat.positions.values() if p[2] == "01" and p[6] in _DIT_NEXT}
    )

    grade_depts: dict[str, list[str]] = {}

    def depts_with_grade(grade: str) -> list[str]:
        found = grade_depts.get(grade)
        if found is None:
            found = sorted({cat.positions[p][7] for p in cat.by_grade.get(grade, [])})
            grade_depts[grade] = found
        return found

    def pick(options: list[str], dept: str, own: str) -> str | None:
        """A random position of ``options`` in another department, not supervised by ``own``."""
        for _ in range(16):  # rejection sampling: almost always done in one or two draws
            if not options:
                return None
            p = options[int(rng.random() * len(options))]
            if cat.positions[p][7] != dept and cat.supervisor.get(p, "") != own:
                return p
        valid = [
            p for p in options if cat.positions[p][7] != dept and cat.supervisor.get(p, "") != own
        ]
        return valid[int(rng.random() * len(valid))] if valid else None

    def synthesise(
        base: tuple[str, ...], role: _Role | None, exclude_dept: str, pool: list[str]
    ) -> tuple[str, str]:
        choices = [d for d in pool if d != exclude_dept] or [
            d for d in cat.dept_info if d != exclude_dept
        ]
        dept = choices[int(rng.random() * len(choices))]
        info = cat.dept_info[dept]
        cat.max_position += 1
        number = str(cat.max_position)
        if role is not None:
            title = f"{role.title} - {info[1]}"
            fields: tuple[str, ...] = (
                role.staff_group,
                role.job_role,
                base[4],
                role.occupation,
                role.grade,
            )
        else:
            stem = base[1].rsplit(" - ", 1)[0]
            title = f"{stem} - {info[1]}"
            fields = base[2:7]
        pos = (number, title, *fields, *info)
        cat.positions[number] = pos
        sup = cat.dept_supervisor.get(dept, "")
        cat.supervisor[number] = sup
        summary.new_positions += 1
        return number, sup

    with (
        extract.open(encoding="utf-8-sig", newline="") as src,
        out.open("w", encoding="utf-8", newline="") as dst,
    ):
        reader = csv.reader(src)
        writer = csv.writer(dst, lineterminator="\n")
        writer.writerow(next(reader))
        batch: list[list[str]] = []
        for n, row in enumerate(reader):
            is_dit = moving.get(n)
            if is_dit is not None:
                current = tuple(row[_POS_SLICE])
                dept = row[i_dept]
                own = row[_I["Assignment_Number"]]
                if is_dit:
                    grade = _DIT_NEXT[row[i_grade]]
                    found = pick(cat.by_grade.get(grade, []), dept, own)
                    role: _Role | None = _DIT_ROLES[grade]
                else:
                    found = pick(cat.by_role_grade.get((row[i_role], row[i_grade]), []), dept, own)
                    role = None
                if found is not None:
                    number = found
                    sup = cat.supervisor[number]
                else:
                    pool = medical_depts if is_dit else depts_with_grade(row[i_grade])
                    number, sup = synthesise(current, role, dept, pool)
                if sup == own:
                    sup = row[i_sup]
                row[_POS_SLICE] = cat.positions[number]
                row[i_sup] = sup
                if is_dit:
                    row[i_end] = new_end
                    summary.doctors_in_training_moved += 1
                else:
                    summary.other_staff_moved += 1
                summary.moved_assignments.append(own)
            batch.append(row)
            if len(batch) >= 4096:
                writer.writerows(batch)
                summary.rows += len(batch)
                batch.clear()
        writer.writerows(batch)
        summary.rows += len(batch)
    summary.movers = len(moving)
    return summary
