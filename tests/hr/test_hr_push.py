"""HR push: JSON records and SCIM bulk become extract rows and go through the file import."""

from __future__ import annotations

import csv
import datetime as dt
import io
from typing import Any

import pytest
import sqlalchemy as sa
from esr_builder import valid_row
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy.engine import Engine

from pasa.hr.esr_columns import COLUMNS
from pasa.hr.importer import events
from pasa.hr.push import (
    BULK_REQUEST,
    ENTERPRISE_EXTENSION,
    ESR_EXTENSION,
    MAX_RECORDS,
    USER_SCHEMA,
    PushShapeError,
    from_records,
    from_scim_bulk,
)
from pasa.service.hr_push import PushRefused, push
from pasa.store import schema as s

AS_OF = dt.date(2026, 11, 24)


def _parsed(csv_text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(csv_text, newline="")))


def scim_user(n: int, **esr: str) -> dict[str, Any]:
    row = valid_row(n)
    extension = {
        k: row[k]
        for k in COLUMNS
        if k
        not in (
            "Org_Code",
            "Employee_Number",
            "First_Name",
            "Last_Name",
            "Email_Address",
            "Department_Name",
            "Cost_Centre",
            "Position_Title",
        )
    }
    extension.update(esr)
    return {
        "schemas": [USER_SCHEMA, ENTERPRISE_EXTENSION, ESR_EXTENSION],
        "userName": row["Email_Address"],
        "name": {"givenName": row["First_Name"], "familyName": row["Last_Name"]},
        "emails": [{"value": row["Email_Address"], "type": "work", "primary": True}],
        "title": row["Position_Title"],
        ENTERPRISE_EXTENSION: {
            "employeeNumber": row["Employee_Number"],
            "organization": row["Org_Code"],
            "department": row["Department_Name"],
            "costCenter": row["Cost_Centre"],
        },
        ESR_EXTENSION: extension,
    }


def bulk(*users: dict[str, Any]) -> dict[str, Any]:
    return {
        "schemas": [BULK_REQUEST],
        "Operations": [
            {"method": "POST", "path": "/Users", "bulkId": f"hr-{i}", "data": u}
            for i, u in enumerate(users, start=1)
        ],
    }


# --- shapes (pure) ------------------------------------------------------------------------


def test_a_scim_user_maps_to_the_same_row_as_the_json_record() -> None:
    from_json = _parsed(from_records({"records": [valid_row(7)]}).csv_text)
    from_scim = _parsed(from_scim_bulk(bulk(scim_user(7))).csv_text)
    assert from_scim == from_json
    assert from_scim[0]["Employee_Number"] == "10000007"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"records": "x"}, "a list of assignment records"),
        ({"records": []}, "no records"),
        ({"records": [1]}, "record 1: must be an object"),
        ({"records": [{"Org_Code": "RXL", "Salary": "1"}]}, "record 1: unknown field.*Salary"),
        ({"records": [{"Org_Code": {"nested": 1}}]}, "record 1: Org_Code must be text"),
        ({"records": [{}] * (MAX_RECORDS + 1)}, "at most 10,000"),
    ],
)
def test_a_misshapen_json_push_is_refused_with_the_record_named(body: Any, message: str) -> None:
    with pytest.raises(PushShapeError, match=message):
        from_records(body)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"Operations": []}, "expected a SCIM BulkRequest"),
        ({"schemas": [BULK_REQUEST]}, "needs an 'Operations' list"),
        (
            {"schemas": [BULK_REQUEST], "Operations": [{"method": "DELETE", "path": "/Users/1"}]},
            "only POST or PUT of /Users.*not DELETE /Users/1",
        ),
        (
            {
                "schemas": [BULK_REQUEST],
                "Operations": [{"method": "POST", "path": "/Users", "bulkId": "b1", "data": {}}],
            },
            "b1: data must be a SCIM User",
        ),
    ],
)
def test_a_misshapen_bulk_request_is_refused_with_the_operation_named(
    body: Any, message: str
) -> None:
    with pytest.raises(PushShapeError, match=message):
        from_scim_bulk(body)


def test_inactive_without_an_end_date_is_refused() -> None:
    user = scim_user(1)
    user["active"] = False
    with pytest.raises(PushShapeError, match="hr-1: active=false needs the last working day"):
        from_scim_bulk(bulk(user))


cells = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**6), 10**6),
    st.text(st.characters(blacklist_categories=("Cs",)), max_size=30),
)


@given(st.lists(st.dictionaries(st.sampled_from(COLUMNS), cells), min_size=1, max_size=20))
def test_any_records_survive_the_trip_into_extract_rows_cell_for_cell(
    records: list[dict[str, Any]],
) -> None:
    rows = _parsed(from_records(records).csv_text)
    assert len(rows) == len(records)
    for record, row in zip(records, rows, strict=True):
        for column in COLUMNS:
            value = record.get(column)
            expected = (
                ""
                if value is None
                else ("Y" if value else "N")
                if isinstance(value, bool)
                else str(value)
            )
            assert row[column] == expected


# --- through the import (SQLite and PostgreSQL) ------------------------------------------


def test_pushed_records_are_imported_and_bad_ones_quarantined_by_reference(
    engine: Engine,
) -> None:
    records = [valid_row(1), valid_row(2, Assignment_Start_Date="31/02/2024"), valid_row(3)]
    outcome = push(engine, from_records(records), organisation="rxl", actor="esr", as_of=AS_OF)
    assert outcome.result.rows_accepted == 2 and outcome.result.rows_rejected == 1
    [problem] = outcome.problems
    assert problem.reference == "record 2" and problem.field == "Assignment_Start_Date"
    assert problem.severity == "rejected"
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(s.person)).scalar() == 2
        source = conn.execute(sa.select(s.hr_import.c.source)).scalar()
    assert source == "hr-push"

    again = push(engine, from_records(records[:1]), organisation="RXL", actor="esr", as_of=AS_OF)
    assert again.result.events_new == again.result.events_changed == 0

    moved = valid_row(1, Position_Number="P09999", Position_Title="Sister, Ward 9")
    changed = push(
        engine,
        from_scim_bulk(bulk(scim_user(1, **moved))),
        organisation="RXL",
        actor="entra",
        as_of=AS_OF,
    )
    assert changed.result.events_changed == 1 and not changed.problems
    assert events(engine, changed.result.import_id)[0]["kind"] == "changed"


def test_a_push_with_another_organisations_record_stores_nothing(engine: Engine) -> None:
    rows = from_records([valid_row(1), valid_row(2, org="RYJ")])
    with pytest.raises(PushRefused, match=r"organisation\(s\) RYJ.*only push records of RXL"):
        push(engine, rows, organisation="RXL", actor="esr", as_of=AS_OF)
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(s.hr_import)).scalar() == 0
