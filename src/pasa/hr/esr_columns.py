"""The ESR-style full extract: one row per assignment, columns in this order.

Column names follow ESR's field names; codes are the national NWD codes. Documented column by
column in ``docs/hr-feed.md``. Dates are ``DD/MM/YYYY`` as ESR writes them (ISO ``YYYY-MM-DD``
is also accepted). UTF-8, comma-separated, header row required, optional BOM.
"""

from __future__ import annotations

from typing import Final

COLUMNS: Final[tuple[str, ...]] = (
    "Org_Code",  # ODS code of the employing organisation, e.g. RXL
    "Employee_Number",  # 8 digits, unique within the organisation
    "Assignment_Number",  # Employee_Number, or Employee_Number-N for further assignments
    "Title",
    "First_Name",
    "Middle_Names",
    "Last_Name",
    "Known_As",
    "Date_Of_Birth",
    "NI_Number",
    "Email_Address",
    "Primary_Assignment",  # Y | N
    "Assignment_Category",  # Permanent | Fixed Term Temp | Bank | Honorary | Lead Employer Trainee
    # Active Assignment | Suspend Assignment | Acting Up | Out on External Secondment
    "Assignment_Status",
    "Assignment_Start_Date",
    "Assignment_End_Date",  # blank when open-ended; the last working day when set
    "Position_Number",
    "Position_Title",
    "Staff_Group",  # NWD staff group code 01..10
    "Job_Role_Code",  # 5-digit NWD job role code; first two digits = staff group
    "Area_Of_Work",
    "Occupation_Code",  # an3 NHS occupation code
    "Grade_Code",  # AfC band (e.g. "Band 5", "Band 8A") or medical grade (FY1, ST3, Consultant)
    "Department_Code",  # ESR organisation (ward/department)
    "Department_Name",
    "Cost_Centre",
    "Location_Code",
    "Location_Name",
    "Supervisor_Assignment_Number",  # the line manager's assignment number (not person)
    "WTE",  # whole-time equivalent 0.01..1.00
    "Registration_Body",  # GMC | NMC | HCPC | GPhC | blank
    "Registration_Number",
)

# The columns that describe the post rather than the person: a mover changes these together.
POSITION_COLUMNS: Final[tuple[str, ...]] = (
    "Position_Number",
    "Position_Title",
    "Staff_Group",
    "Job_Role_Code",
    "Area_Of_Work",
    "Occupation_Code",
    "Grade_Code",
    "Department_Code",
    "Department_Name",
    "Cost_Centre",
    "Location_Code",
    "Location_Name",
)
