"""HR records pushed by API, turned into extract rows (pure; no I/O).

Two shapes arrive at ``/api/v1/hr``:

* **JSON records**: a list of objects keyed by the extract's column names
  (``Org_Code``, ``Employee_Number``, … as in ``docs/hr-feed.md``), one object per assignment.
* **SCIM bulk** (as Entra ID's API-driven inbound provisioning sends): a
  ``BulkRequest`` of ``POST``/``PUT``/``PATCH``-less ``/Users`` operations, each a SCIM User
  with the enterprise extension and PASA's ESR extension
  (:data:`ESR_EXTENSION`) carrying the assignment fields SCIM has no attribute for.

Both become the rows of an extract file (header + one row per record, in order), so they pass
through exactly the validation, quarantine and import of a file: record ``n`` (from 1) is
row ``n + 1`` of that file, as a spreadsheet would number it. Only the *shape* is checked
here — values are the validator's business, and a bad value is quarantined like a bad cell.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from pasa.hr.esr_columns import COLUMNS

MAX_RECORDS: Final = 10_000
BULK_REQUEST = "urn:ietf:params:scim:api:messages:2.0:BulkRequest"
USER_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:User"
ENTERPRISE_EXTENSION = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
ESR_EXTENSION = "urn:nhs:pasa:scim:schemas:extension:esr:1.0:User"

_KNOWN = frozenset(COLUMNS)


class PushShapeError(ValueError):
    """The request is not the documented shape; nothing of it is imported."""


@dataclass(frozen=True, slots=True)
class PushRows:
    """Extract rows built from pushed records: ``csv_text`` (with header) and, per row, the
    reference the sender used (record index, or SCIM ``bulkId``)."""

    csv_text: str
    references: tuple[str, ...]
    organisations: frozenset[str]

    def reference_of_row(self, row_number: int) -> str | None:
        """The sender's reference for extract row ``row_number`` (the header is row 1)."""
        index = row_number - 2
        return self.references[index] if 0 <= index < len(self.references) else None


def _cell(value: Any, where: str, column: str) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "Y" if value else "N"
    if isinstance(value, str | int | float):
        return str(value)
    raise PushShapeError(f"{where}: {column} must be text, a number or true/false")


def _rows(records: Sequence[Mapping[str, Any]], references: Sequence[str]) -> PushRows:
    out = io.StringIO()
    # RFC 4180 line ends: a value holding a lone CR or LF is then quoted, never a row break.
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(COLUMNS)
    orgs = set()
    for record, ref in zip(records, references, strict=True):
        writer.writerow([_cell(record.get(c), ref, c) for c in COLUMNS])
        orgs.add(str(record.get("Org_Code") or "").strip().upper())
    return PushRows(out.getvalue(), tuple(references), frozenset(orgs))


def _check_count(n: int) -> None:
    if n == 0:
        raise PushShapeError("no records: send at least one")
    if n > MAX_RECORDS:
        raise PushShapeError(f"{n:,} records in one request; at most {MAX_RECORDS:,}")


def from_records(body: Any) -> PushRows:
    """``{"records": [{"Org_Code": ..., ...}, ...]}`` (or the bare list) as extract rows."""
    records = body.get("records") if isinstance(body, Mapping) else body
    if not isinstance(records, list):
        raise PushShapeError("expected {'records': [ ... ]}: a list of assignment records")
    _check_count(len(records))
    refs = []
    for n, record in enumerate(records, start=1):
        where = f"record {n}"
        if not isinstance(record, Mapping):
            raise PushShapeError(f"{where}: must be an object keyed by extract column names")
        unknown = sorted(set(record) - _KNOWN)
        if unknown:
            raise PushShapeError(
                f"{where}: unknown field(s) {', '.join(unknown)} "
                "(fields are the extract's column names, e.g. Org_Code, Employee_Number)"
            )
        refs.append(where)
    return _rows(records, refs)


# SCIM User attribute → extract column (core and enterprise extension).
def _user_record(user: Mapping[str, Any], where: str) -> dict[str, Any]:
    schemas = user.get("schemas") or []
    if not isinstance(schemas, list) or USER_SCHEMA not in schemas:
        raise PushShapeError(f"{where}: data must be a SCIM User (schemas lists {USER_SCHEMA})")
    name = user.get("name") or {}
    enterprise = user.get(ENTERPRISE_EXTENSION) or {}
    esr = user.get(ESR_EXTENSION) or {}
    for part, label in ((name, "name"), (enterprise, "enterprise"), (esr, "ESR extension")):
        if not isinstance(part, Mapping):
            raise PushShapeError(f"{where}: the {label} attribute must be an object")
    unknown = sorted(set(esr) - _KNOWN)
    if unknown:
        raise PushShapeError(f"{where}: unknown ESR extension field(s) {', '.join(unknown)}")
    emails = user.get("emails") or []
    email = None
    if isinstance(emails, list):
        chosen = [e for e in emails if isinstance(e, Mapping) and e.get("primary")] or [
            e for e in emails if isinstance(e, Mapping)
        ]
        email = chosen[0].get("value") if chosen else None
    manager = enterprise.get("manager")
    record: dict[str, Any] = {
        "Org_Code": enterprise.get("organization"),
        "Employee_Number": enterprise.get("employeeNumber"),
        "Title": name.get("honorificPrefix"),
        "First_Name": name.get("givenName"),
        "Middle_Names": name.get("middleName"),
        "Last_Name": name.get("familyName"),
        "Known_As": user.get("nickName"),
        "Email_Address": email,
        "Position_Title": user.get("title"),
        "Department_Name": enterprise.get("department"),
        "Cost_Centre": enterprise.get("costCenter"),
        "Supervisor_Assignment_Number": (
            manager.get("value") if isinstance(manager, Mapping) else manager
        ),
    }
    # The ESR extension wins where both say something: it is the HR system's own field.
    record.update({k: v for k, v in esr.items()})
    if not record.get("Assignment_Number"):
        record["Assignment_Number"] = record.get("Employee_Number")
    if user.get("active") is False and not record.get("Assignment_End_Date"):
        raise PushShapeError(
            f"{where}: active=false needs the last working day in the ESR extension's "
            "Assignment_End_Date (PASA ends access on a date, not on a flag)"
        )
    return record


def from_scim_bulk(body: Any) -> PushRows:
    """A SCIM ``BulkRequest`` of User operations as extract rows (one per operation)."""
    if not isinstance(body, Mapping) or BULK_REQUEST not in (body.get("schemas") or []):
        raise PushShapeError(f"expected a SCIM BulkRequest (schemas: [{BULK_REQUEST}])")
    operations = body.get("Operations")
    if not isinstance(operations, list):
        raise PushShapeError("a BulkRequest needs an 'Operations' list")
    _check_count(len(operations))
    records, refs = [], []
    for n, op in enumerate(operations, start=1):
        if not isinstance(op, Mapping):
            raise PushShapeError(f"operation {n}: must be an object")
        ref = str(op.get("bulkId") or f"operation {n}")
        method = str(op.get("method") or "").upper()
        path = str(op.get("path") or "")
        if method not in ("POST", "PUT") or not path.startswith("/Users"):
            raise PushShapeError(
                f"{ref}: only POST or PUT of /Users is accepted (HR records create and "
                f"change people), not {method or 'no method'} {path or '(no path)'}"
            )
        data = op.get("data")
        if not isinstance(data, Mapping):
            raise PushShapeError(f"{ref}: 'data' must be a SCIM User object")
        records.append(_user_record(data, ref))
        refs.append(ref)
    return _rows(records, refs)
