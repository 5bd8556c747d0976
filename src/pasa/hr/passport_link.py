"""Linking a passport pre-hire person to the ESR record that arrives later (issue 7 item 5).

An accepted passport presentation at the receiving organisation creates a pre-hire person
with a *provisional* assignment (``PP`` + 10 hex characters of SHA-256 of the session state)
until HR enters the starter in ESR. The link gives that assignment the ESR numbers, so the
importer updates the person instead of creating a duplicate. Two callers share it:
:func:`pasa.service.passport_verifier.link_esr_record` (explicit, by the identity team) and
the importer (automatic, when a new employee record matches exactly one pre-hire person).

:func:`match` is pure: the importer feeds it the provisional assignments and the file's new
rows, and it says which to link and which are ambiguous (never linked: reported instead).
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from pasa.audit.log import append
from pasa.store import schema as s

EMPLOYEE_SCHEME = "esr_employee_number"  # the importer's; repeated to avoid an import cycle
REGISTRATION_SCHEMES = ("gmc", "nmc", "hcpc")
BY_REGISTRATION = "registration_number"
BY_NAME_BIRTH_START = "family_name_birth_date_start_date"
EXPLICIT = "explicit"


def provisional_number(state: str) -> str:
    """The provisional ESR assignment (and employee) number of a verification session."""
    return "PP" + hashlib.sha256(state.encode()).hexdigest()[:10].upper()


@dataclass(frozen=True, slots=True)
class PreHire:
    """A passport pre-hire person's unlinked provisional assignment."""

    state: str
    organisation_id: int
    person_id: int
    provisional: str
    start_date: dt.date
    family_name: str
    birth_date: dt.date | None
    registrations: frozenset[tuple[str, str]] = field(default_factory=frozenset)


@dataclass(frozen=True, slots=True)
class NewRow:
    """One new-employee row of an ESR extract, as far as matching needs it."""

    row_number: int
    organisation_id: int
    employee_number: str
    assignment_number: str
    is_primary: bool
    family_name: str
    birth_date: dt.date
    start_date: dt.date
    registration: tuple[str, str] | None


@dataclass(frozen=True, slots=True)
class Link:
    pre_hire: PreHire
    row: NewRow
    matched_on: str


@dataclass(frozen=True, slots=True)
class Ambiguity:
    """A pre-hire person and the new rows that could be theirs (or a row more than one
    pre-hire person could be): nothing is linked."""

    pre_hires: tuple[PreHire, ...]
    rows: tuple[NewRow, ...]
    matched_on: str


def _fold(name: str) -> str:
    return " ".join(name.split()).casefold()


def match(
    pre_hires: Sequence[PreHire], rows: Iterable[NewRow]
) -> tuple[list[Link], list[Ambiguity]]:
    """Links (exactly one candidate employee each way) and ambiguities.

    A pre-hire matches an employee (org + employee number) by professional registration
    number; failing any such match, by the same family name, birth date and start date. An
    employee with several rows links through their primary (else first) row.
    """
    by_employee: dict[tuple[int, str], list[NewRow]] = defaultdict(list)
    for row in rows:
        by_employee[(row.organisation_id, row.employee_number)].append(row)
    tentative: dict[tuple[int, str], list[tuple[PreHire, str]]] = defaultdict(list)
    ambiguous: list[Ambiguity] = []
    for pre in pre_hires:
        same_org = [k for k in by_employee if k[0] == pre.organisation_id]
        matched_on = BY_REGISTRATION
        found = [
            k
            for k in same_org
            if any(r.registration in pre.registrations for r in by_employee[k] if r.registration)
        ]
        if not found and pre.birth_date is not None:
            matched_on = BY_NAME_BIRTH_START
            found = [
                k
                for k in same_org
                if any(
                    _fold(r.family_name) == _fold(pre.family_name)
                    and r.birth_date == pre.birth_date
                    and r.start_date == pre.start_date
                    for r in by_employee[k]
                )
            ]
        if len(found) == 1:
            tentative[found[0]].append((pre, matched_on))
        elif found:
            ambiguous.append(
                Ambiguity((pre,), tuple(r for k in found for r in by_employee[k]), matched_on)
            )
    links: list[Link] = []
    for key, claimants in tentative.items():
        if len(claimants) == 1:
            pre, matched_on = claimants[0]
            row = min(by_employee[key], key=lambda r: (not r.is_primary, r.row_number))
            links.append(Link(pre, row, matched_on))
        else:
            ambiguous.append(
                Ambiguity(tuple(p for p, _ in claimants), tuple(by_employee[key]), claimants[0][1])
            )
    return links, ambiguous


def unlinked_pre_hires(conn: Connection, organisation_ids: Sequence[int]) -> list[PreHire]:
    """Accepted sessions of these organisations whose provisional assignment still exists."""
    if not organisation_ids:
        return []
    vs, a, p, pi = s.passport_verifier_session, s.assignment, s.person, s.person_identifier
    sessions = conn.execute(
        sa.select(vs.c.state, vs.c.organisation_id, vs.c.person_id).where(
            vs.c.status == "accepted",
            vs.c.person_id.is_not(None),
            vs.c.organisation_id.in_(organisation_ids),
        )
    ).all()
    if not sessions:
        return []
    wanted = {(r.organisation_id, provisional_number(r.state)): r for r in sessions}
    found = conn.execute(
        sa.select(
            a.c.organisation_id,
            a.c.assignment_number,
            a.c.start_date,
            p.c.last_name,
            p.c.date_of_birth,
            p.c.id,
        )
        .join(p, p.c.id == a.c.person_id)
        .where(a.c.assignment_number.in_(sorted({n for _, n in wanted})))
    ).all()
    result: list[PreHire] = []
    for row in found:
        session = wanted.get((row.organisation_id, row.assignment_number))
        if session is None:
            continue
        registrations = frozenset(
            (str(r.scheme), str(r.value))
            for r in conn.execute(
                sa.select(pi.c.scheme, pi.c.value).where(
                    pi.c.person_id == row.id, pi.c.scheme.in_(REGISTRATION_SCHEMES)
                )
            )
        )
        result.append(
            PreHire(
                state=session.state,
                organisation_id=int(row.organisation_id),
                person_id=int(row.id),
                provisional=row.assignment_number,
                start_date=row.start_date,
                family_name=row.last_name,
                birth_date=row.date_of_birth,
                registrations=registrations,
            )
        )
    return result


def link_provisional(
    conn: Connection,
    *,
    state: str,
    organisation_id: int,
    person_id: int,
    employee_number: str,
    assignment_number: str,
    matched_on: str,
    actor: str,
    now: dt.datetime,
) -> bool:
    """Give the provisional assignment its ESR numbers; False when it is already linked or
    gone. Records the ESR employee number identifier and audits what the link relied on."""
    a, o, ls = s.assignment, s.organisation, s.lifecycle_state
    provisional = provisional_number(state)
    changed = conn.execute(
        a.update()
        .where(a.c.organisation_id == organisation_id, a.c.assignment_number == provisional)
        .values(
            assignment_number=assignment_number,
            employee_number=employee_number,
            updated_at=now,
        )
    ).rowcount
    if changed != 1:
        return False
    ods = str(conn.scalar(sa.select(o.c.ods_code).where(o.c.id == organisation_id)))
    pi = s.person_identifier
    known = conn.scalar(
        sa.select(pi.c.person_id).where(
            pi.c.scheme == EMPLOYEE_SCHEME, pi.c.issuer == ods, pi.c.value == employee_number
        )
    )
    if known is None:
        conn.execute(
            pi.insert().values(
                person_id=person_id,
                scheme=EMPLOYEE_SCHEME,
                issuer=ods,
                value=employee_number,
                created_at=now,
            )
        )
    # The assignment's lifecycle scope is named after its number.
    conn.execute(
        ls.update()
        .where(ls.c.person_id == person_id, ls.c.scope == f"{ods}/{provisional}")
        .values(scope=f"{ods}/{assignment_number}", updated_at=now)
    )
    append(
        conn,
        actor=actor,
        action="passport.verification.linked",
        subject_type="person",
        subject_id=person_id,
        details={
            "state": state,
            "employee_number": employee_number,
            "assignment_number": assignment_number,
            "matched_on": matched_on,
        },
        at=now,
    )
    return True
