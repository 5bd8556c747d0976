"""National code tables used to validate the ESR-style extract.

Staff groups are the National Workforce Data Set (NWD) codes. Job role codes are five digits:
the two-digit staff group followed by a three-digit sequence. A handful of the job roles are
the real NWD codes quoted in ``notes/nhs-domain.md``; the remaining sequences are plausible
synthetic codes that follow the same rule. Grades are Agenda for Change bands and medical
grades as ESR carries them in ``Grade_Code``.
"""

from __future__ import annotations

import re
from typing import Final

from pasa.domain.model import AssignmentCategory, AssignmentStatus

STAFF_GROUPS: Final[dict[str, str]] = {
    "01": "Medical and Dental",
    "02": "Students",
    "03": "Nursing and Midwifery Registered",
    "04": "Allied Health Professionals",
    "05": "Additional Professional Scientific and Technical",
    "06": "Healthcare Scientists",
    "07": "Additional Clinical Services",
    "08": "Administrative and Clerical",
    "09": "Estates and Ancillary",
    "10": "Supplementary Roles",
}

JOB_ROLES: Final[dict[str, str]] = {
    # 01 Medical and Dental (01001, 01002, 01005, 01019, 01020, 01026 are real NWD codes)
    "01001": "Medical Director",
    "01002": "Clinical Director - Medical",
    "01005": "Consultant",
    "01010": "Specialty Doctor",
    "01014": "Foundation Year 1",
    "01015": "Foundation Year 2",
    "01016": "Specialty Registrar",
    "01017": "Core Training",
    "01019": "Trust Grade Doctor - Career Grade level",
    "01020": "Director of Public Health",
    "01026": "Salaried GP",
    # 02 Students
    "02001": "Student Nurse",
    "02002": "Student Midwife",
    "02003": "Student Allied Health Professional",
    "02004": "Apprentice",
    # 03 Nursing and Midwifery Registered (03022 is a real NWD code)
    "03001": "Staff Nurse",
    "03002": "Sister/Charge Nurse",
    "03003": "Ward Manager",
    "03004": "Midwife",
    "03005": "Nurse Consultant",
    "03006": "Modern Matron",
    "03007": "Director of Nursing",
    "03010": "Community Nurse",
    "03022": "Surgical Care Practitioner",
    # 04 Allied Health Professionals
    "04001": "Physiotherapist",
    "04002": "Occupational Therapist",
    "04003": "Dietitian",
    "04004": "Radiographer - Diagnostic",
    "04005": "Speech and Language Therapist",
    "04006": "Paramedic",
    # 05 Additional Professional Scientific and Technical
    "05001": "Pharmacist",
    "05002": "Chaplain",
    "05003": "Social Worker",
    "05004": "Pharmacy Technician",
    "05005": "Clinical Psychologist",
    # 06 Healthcare Scientists
    "06001": "Biomedical Scientist",
    "06002": "Clinical Scientist",
    "06003": "Healthcare Science Practitioner",
    # 07 Additional Clinical Services
    "07001": "Healthcare Assistant",
    "07002": "Call Operator",
    "07003": "Nursery Nurse",
    "07004": "Maternity Support Worker",
    "07005": "Theatre Support Worker",
    "07006": "Phlebotomist",
    # 08 Administrative and Clerical
    "08001": "Chief Executive",
    "08002": "Accountant",
    "08003": "Clerical Worker",
    "08004": "Receptionist",
    "08005": "Medical Secretary",
    "08006": "IT Analyst",
    "08007": "Manager",
    "08008": "HR Adviser",
    # 09 Estates and Ancillary
    "09001": "Electrician",
    "09002": "Housekeeper",
    "09003": "Porter",
    "09004": "Domestic",
    "09005": "Security Officer",
    "09006": "Catering Assistant",
    # 10 Supplementary Roles
    "10001": "Volunteer",
    "10002": "Non-Executive Director",
    "10003": "Chair",
}

AFC_GRADES: Final[frozenset[str]] = frozenset(
    {f"Band {n}" for n in range(2, 10) if n != 8} | {"Band 8A", "Band 8B", "Band 8C", "Band 8D"}
)
MEDICAL_GRADES: Final[frozenset[str]] = frozenset(
    {"FY1", "FY2", "CT1", "CT2", "CT3", "Specialty Doctor", "Consultant"}
    | {f"ST{n}" for n in range(1, 9)}
)
OTHER_GRADES: Final[frozenset[str]] = frozenset({"Bank", "Honorary"})
GRADES: Final[frozenset[str]] = AFC_GRADES | MEDICAL_GRADES | OTHER_GRADES

AREAS_OF_WORK: Final[frozenset[str]] = frozenset(
    {
        "Emergency Medicine",
        "General Medicine",
        "General Surgery",
        "Trauma and Orthopaedics",
        "Paediatrics",
        "Anaesthetics",
        "Critical Care",
        "Cardiology",
        "Oncology",
        "Theatres",
        "Maternity",
        "Radiology",
        "Pathology",
        "Pharmacy",
        "Outpatients",
        "Community Nursing",
        "Mental Health",
        "Therapies",
        "Estates",
        "Facilities",
        "Finance",
        "Human Resources",
        "Information Technology",
        "Corporate Services",
        "Medical Education",
        "Health Records",
    }
)

CATEGORIES: Final[frozenset[str]] = frozenset(c.value for c in AssignmentCategory)
STATUSES: Final[frozenset[str]] = frozenset(s.value for s in AssignmentStatus)

REGISTRATION_BODIES: Final[dict[str, re.Pattern[str]]] = {
    "GMC": re.compile(r"[0-9]{7}"),
    "NMC": re.compile(r"[0-9]{2}[A-Z][0-9]{4}[A-Z]"),
    "HCPC": re.compile(r"[A-Z]{2}[0-9]{5,6}"),
    "GPhC": re.compile(r"[0-9]{7}"),
}
"""Registration body -> full-match pattern for its registration number."""

REGISTRATION_SCHEMES: Final[dict[str, str]] = {
    "GMC": "gmc",
    "NMC": "nmc",
    "HCPC": "hcpc",
    "GPhC": "gphc",
}
"""Registration body -> person_identifier scheme."""

OCCUPATION_CODE_RE: Final[re.Pattern[str]] = re.compile(r"[0-9A-Z]{3}")
"""Occupation code: three upper-case alphanumerics (an3)."""

ODS_CODE_RE: Final[re.Pattern[str]] = re.compile(r"[0-9A-Z]{3,5}")
"""ODS organisation code: three to five upper-case alphanumerics."""


def staff_group_of(job_role_code: str) -> str:
    """The staff group a job role belongs to (its first two digits)."""
    return job_role_code[:2]
