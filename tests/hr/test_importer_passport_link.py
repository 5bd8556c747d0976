"""The ESR record of a passport pre-hire person arrives: the importer links it (issue 7 item 5).

Each case seeds pre-hire people as the verifier's receiving-organisation flow leaves them (a
person, their registration identifier, an accepted session and a provisional ``PP…``
assignment), imports an ESR file, and checks who the new record belongs to.
"""

from __future__ import annotations

import datetime as dt
import json
import sys
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from pasa.hr.importer import import_extract, quarantine
from pasa.hr.passport_link import provisional_number
from pasa.store import schema as s
from support.hub_world import add_assignment, add_organisation, add_person, add_position

sys.path.insert(0, str(Path(__file__).parent))
from esr_builder import valid_row, write_extract

AS_OF = dt.date(2026, 7, 20)
START = dt.date(2026, 8, 5)
NOW = dt.datetime(2026, 7, 20, 9, tzinfo=dt.UTC)
DOB = dt.date(1990, 12, 10)


@dataclass(frozen=True)
class PreHireSeed:
    last: str
    dob: dt.date | None = DOB
    start: dt.date = START
    registration: tuple[str, str] | None = None


@dataclass(frozen=True)
class Case:
    pre_hires: list[PreHireSeed]
    rows: list[dict[str, str]]
    linked: dict[int, int] = field(default_factory=dict)  # row index -> pre-hire index
    matched_on: str | None = None
    warned: int = 0  # quarantine warnings about an ambiguous match


def _row(n: int, **overrides: str) -> dict[str, str]:
    base = {
        "Last_Name": "Lovelace",
        "Date_Of_Birth": DOB.strftime("%d/%m/%Y"),
        "Assignment_Start_Date": START.strftime("%d/%m/%Y"),
        "Registration_Body": "",
        "Registration_Number": "",
        "NI_Number": "",
    }
    return valid_row(n, org="RYJ", **{**base, **overrides})


CASES = {
    # A new surname in ESR (married), but the same NMC PIN: the registration decides.
    "registration number": Case(
        [PreHireSeed("Lovelace", registration=("nmc", "12A3456B"))],
        [_row(1, Last_Name="Byron", Registration_Body="NMC", Registration_Number="12A3456B")],
        linked={0: 0},
        matched_on="registration_number",
    ),
    "family name + birth date + start date": Case(
        [PreHireSeed("Lovelace")],
        [_row(1, Last_Name="LOVELACE")],
        linked={0: 0},
        matched_on="family_name_birth_date_start_date",
    ),
    "no match: another birth date is a new person": Case(
        [PreHireSeed("Lovelace")],
        [_row(1, Date_Of_Birth="11/12/1990")],
    ),
    "two pre-hire candidates: not linked, reported": Case(
        [PreHireSeed("Lovelace"), PreHireSeed("Lovelace")],
        [_row(1)],
        warned=1,
    ),
    "two ESR candidates: not linked, reported": Case(
        [PreHireSeed("Lovelace")],
        [_row(1), _row(2)],
        warned=2,
    ),
}


def _seed(engine: Engine, pre_hires: list[PreHireSeed]) -> list[tuple[int, str]]:
    """(person id, session state) per pre-hire person, as the verifier flow creates them."""
    seeded = []
    with engine.begin() as conn:
        org = add_organisation(conn, "RYJ", at=NOW)
        position = add_position(conn, org, number="P00001")
        for n, pre in enumerate(pre_hires):
            person = add_person(
                conn,
                uid=str(uuid.uuid4()),
                first="Ada",
                last=pre.last,
                at=NOW,
                date_of_birth=pre.dob,
            )
            if pre.registration:
                conn.execute(
                    s.person_identifier.insert().values(
                        person_id=person,
                        scheme=pre.registration[0],
                        issuer="",
                        value=pre.registration[1],
                        created_at=NOW,
                    )
                )
            state = f"state-{n}-{uuid.uuid4().hex}"
            conn.execute(
                s.passport_verifier_session.insert().values(
                    state=state,
                    nonce_hash="0" * 64,
                    organisation_id=org,
                    query_ids=["employment", "identity"],
                    given_name="Ada",
                    family_name=pre.last,
                    start_date=pre.start,
                    position_id=position,
                    requested_by="idteam",
                    created_at=NOW,
                    expires_at=NOW + dt.timedelta(minutes=10),
                    status="accepted",
                    completed_at=NOW,
                    person_id=person,
                )
            )
            add_assignment(
                conn,
                organisation_id=org,
                position_id=position,
                person_id=person,
                number=provisional_number(state),
                employee_number=provisional_number(state),
                start=pre.start,
                at=NOW,
            )
            seeded.append((person, state))
    return seeded


@pytest.mark.parametrize("case", CASES.values(), ids=list(CASES))
def test_new_esr_record_links_to_the_passport_pre_hire_person(
    engine: Engine, tmp_path: Path, case: Case
) -> None:
    seeded = _seed(engine, case.pre_hires)
    extract = write_extract(tmp_path / "ryj.csv", case.rows)
    result = import_extract(engine, extract, actor="hr", as_of=AS_OF, partial=True)
    assert result.status == "applied"

    with engine.connect() as conn:
        owner = {
            r.assignment_number: r.person_id
            for r in conn.execute(
                sa.select(s.assignment.c.assignment_number, s.assignment.c.person_id)
            )
        }
        linked_audit = [
            d if isinstance(d, dict) else json.loads(d)
            for d in conn.execute(
                sa.select(s.audit_log.c.details).where(
                    s.audit_log.c.action == "passport.verification.linked"
                )
            ).scalars()
        ]
        people = conn.scalar(sa.select(sa.func.count()).select_from(s.person))
    pre_people = {p for p, _ in seeded}
    for index, row in enumerate(case.rows):
        number = row["Assignment_Number"]
        if index in case.linked:
            person, state = seeded[case.linked[index]]
            assert owner[number] == person  # the ESR row is the pre-hire person's
            assert provisional_number(state) not in owner  # the provisional took its number
        else:
            assert owner[number] not in pre_people  # a new person, no link
    # One person per human: linked rows add nobody.
    assert people == len(case.pre_hires) + len(case.rows) - len(case.linked)
    assert [d["matched_on"] for d in linked_audit] == [case.matched_on] * len(case.linked)
    warnings = [q for q in quarantine(engine, result.import_id) if "pre-hire" in q.reason]
    assert len(warnings) == case.warned
    assert result.rows_warned >= case.warned
    if case.warned:
        assert all("not linked" in w.reason and w.severity == "warning" for w in warnings)
        for _, state in seeded:
            assert provisional_number(state) in owner  # still waiting for a decision


def test_a_linked_pre_hire_is_updated_not_duplicated_by_the_next_extract(
    engine: Engine, tmp_path: Path
) -> None:
    [(person, _)] = _seed(engine, [PreHireSeed("Lovelace")])
    extract = write_extract(tmp_path / "ryj.csv", [_row(1)])
    import_extract(engine, extract, actor="hr", as_of=AS_OF, partial=True)
    again = write_extract(tmp_path / "ryj2.csv", [_row(1, Email_Address="ada@nhs.net")])
    second = import_extract(engine, again, actor="hr", as_of=AS_OF, partial=True)
    assert (second.events_new, second.events_changed) == (0, 1)
    with engine.connect() as conn:
        email = conn.scalar(sa.select(s.person.c.email).where(s.person.c.id == person))
        count = conn.scalar(sa.select(sa.func.count()).select_from(s.person))
    assert (email, count) == ("ada@nhs.net", 1)
