"""Pre-employment checks: the recorded facts behind the passport's check credentials (issue 7).

A check is what an employer attested about a person (right to work, DBS, occupational health,
Core Skills Training, professional registration, a doctor in training's placement). Its
attributes are exactly the claims of the matching credential type in :mod:`pasa.passport.vc`
without the names (those come from the person's HR record), so a recorded check always
yields a valid credential. A newer check of the same kind supersedes the older one; Core
Skills Training merges subject by subject (an e-learning export names one subject a row).

Professional registration is also read from ESR (``Registration_Body``/``Registration_Number``,
kept as GMC/NMC/HCPC ``person_identifier`` rows) when no newer check was recorded.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import random
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from pydantic import ValidationError
from sqlalchemy.engine import Connection, Engine

from pasa.audit.log import append
from pasa.clock import local_date
from pasa.domain.errors import InputFileError, NotFoundError, PasaError
from pasa.passport.vc import (
    ClaimSet,
    CoreSkillsTrainingCredential,
    CstfSubject,
    DbsCredential,
    OccupationalHealthCredential,
    ProfessionalRegistrationCredential,
    Regulator,
    RightToWorkCredential,
    TrainingPlacementCredential,
)
from pasa.store import schema as s

RIGHT_TO_WORK = "right_to_work"
DBS = "dbs"
OCCUPATIONAL_HEALTH = "occupational_health"
CORE_SKILLS_TRAINING = "core_skills_training"
PROFESSIONAL_REGISTRATION = "professional_registration"
TRAINING_PLACEMENT = "training_placement"
# The field holding the date a check was made, for errors about it.
DATE_FIELDS = {
    RIGHT_TO_WORK: "checked_on",
    DBS: "issued_on",
    OCCUPATIONAL_HEALTH: "assessed_on",
    CORE_SKILLS_TRAINING: "completed_on",
    PROFESSIONAL_REGISTRATION: "checked_on",
}

KINDS: dict[str, type[ClaimSet]] = {
    RIGHT_TO_WORK: RightToWorkCredential,
    DBS: DbsCredential,
    OCCUPATIONAL_HEALTH: OccupationalHealthCredential,
    CORE_SKILLS_TRAINING: CoreSkillsTrainingCredential,
    PROFESSIONAL_REGISTRATION: ProfessionalRegistrationCredential,
    TRAINING_PLACEMENT: TrainingPlacementCredential,
}

# The field a model-level rule (one spanning two fields) is reported against.
_MODEL_FIELD = {
    RIGHT_TO_WORK: "expires_on",
    PROFESSIONAL_REGISTRATION: "registration_number",
    TRAINING_PLACEMENT: "end_date",
    CORE_SKILLS_TRAINING: "expires_on",
}
_NAMES = {"given_name": "-", "family_name": "-"}  # placeholders: names come from the person
_TRAINING_FIELDS = ("subject", "level", "completed_on", "expires_on")
_REGISTRATION_SCHEMES = {r.value.lower(): r for r in Regulator}
_UK_DATE = re.compile(r"^(\d{2})/(\d{2})/(\d{4})$")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
MAX_CELL = 500


class CheckError(PasaError):
    """A check's attributes are invalid: ``field`` names the attribute, ``reason`` says why."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


class CheckFileError(InputFileError):
    """A whole checks CSV is unusable (no header, missing or unknown columns, not UTF-8)."""


def _pydantic_error(kind: str, exc: ValidationError) -> CheckError:
    first = exc.errors()[0]
    names = [str(part) for part in first["loc"] if isinstance(part, str) and part != "training"]
    where = names[-1] if names else _MODEL_FIELD.get(kind, "attributes")
    reason = str(first["msg"]).removeprefix("Value error, ")
    if first["type"] == "extra_forbidden":
        reason = f"is not an attribute of a {kind} check"
    elif first["type"] == "missing":
        reason = "is required"
    return CheckError(where, reason)


def validate(kind: str, attributes: Mapping[str, Any]) -> ClaimSet:
    """The claim set ``attributes`` make for ``kind`` (with placeholder names), or CheckError."""
    if kind not in KINDS:
        raise CheckError("kind", f"{kind!r} is not one of {', '.join(KINDS)}")
    for name in _NAMES:
        if name in attributes:
            raise CheckError(name, "names come from the person's HR record, not the check")
    try:
        return KINDS[kind].model_validate({**attributes, **_NAMES})
    except ValidationError as exc:
        raise _pydantic_error(kind, exc) from None


def _attributes(claims: ClaimSet) -> dict[str, Any]:
    return claims.model_dump(mode="json", exclude_none=True, exclude=set(_NAMES))


def check_dates(claims: ClaimSet) -> tuple[dt.date, dt.date | None]:
    """(checked_on, expires_on) of a check: when the fact was established and when it ends."""
    if isinstance(claims, RightToWorkCredential):
        return claims.checked_on, claims.expires_on
    if isinstance(claims, DbsCredential):
        return claims.issued_on, None  # a certificate does not expire; policy re-checks it
    if isinstance(claims, ProfessionalRegistrationCredential):
        return claims.checked_on, claims.renewal_due
    if isinstance(claims, CoreSkillsTrainingCredential):
        # Current while any subject is: each subject's own expiry is applied at issue.
        return (
            max(r.completed_on for r in claims.training),
            max(r.expires_on for r in claims.training),
        )
    if isinstance(claims, OccupationalHealthCredential):
        return claims.assessed_on, claims.review_due
    if isinstance(claims, TrainingPlacementCredential):
        return claims.start_date, claims.end_date
    raise CheckError("kind", f"{type(claims).__name__} is not a check")  # pragma: no cover


@dataclass(frozen=True, slots=True)
class Check:
    id: int
    person_id: int
    organisation_code: str
    kind: str
    attributes: dict[str, Any]
    checked_on: dt.date
    expires_on: dt.date | None
    recorded_by: str
    recorded_at: dt.datetime

    def expired(self, today: dt.date) -> bool:
        return self.expires_on is not None and self.expires_on < today


def _current_row(conn: Connection, person_id: int, kind: str) -> Any:
    c = s.pre_employment_check
    return conn.execute(
        sa.select(c)
        .where(c.c.person_id == person_id, c.c.kind == kind, c.c.superseded_at.is_(None))
        .order_by(c.c.id.desc())
        .limit(1)
    ).first()


def record_check(
    conn: Connection,
    *,
    person_id: int,
    organisation_id: int,
    kind: str,
    attributes: Mapping[str, Any],
    actor: str,
    now: dt.datetime,
) -> int:
    """Validate and record one check in the caller's transaction; return its id.

    It supersedes the current check of the same kind unless that one was checked later
    (then the new one is kept as history, already superseded). Audited without the values:
    they are personal data (certificate and registration numbers).
    """
    claims = validate(kind, attributes)
    current = _current_row(conn, person_id, kind)
    if kind == CORE_SKILLS_TRAINING and current is not None:
        # Merge subject by subject: a newer completion of a subject replaces the older one.
        assert isinstance(claims, CoreSkillsTrainingCredential)
        merged = {(r["subject"], r.get("level")): r for r in current.attributes["training"]}
        for record in _attributes(claims)["training"]:
            key = (record["subject"], record.get("level"))
            if key not in merged or merged[key]["completed_on"] <= record["completed_on"]:
                merged[key] = record
        claims = validate(kind, {"training": list(merged.values())})
    checked_on, expires_on = check_dates(claims)
    # A check is something that happened; a placement may start later, nothing else may.
    if kind != TRAINING_PLACEMENT and checked_on > local_date(now):
        field_name = DATE_FIELDS.get(kind, "checked_on")
        raise CheckError(field_name, f"{checked_on} is in the future: a check records a past event")
    c = s.pre_employment_check
    older = current is not None and current.checked_on > checked_on
    check_id = conn.execute(
        c.insert()
        .values(
            person_id=person_id,
            organisation_id=organisation_id,
            kind=kind,
            attributes=_attributes(claims),
            checked_on=checked_on,
            expires_on=expires_on,
            recorded_by=actor,
            recorded_at=now,
            superseded_at=now if older else None,
        )
        .returning(c.c.id)
    ).scalar_one()
    superseded = None
    if current is not None and not older:
        conn.execute(c.update().where(c.c.id == current.id).values(superseded_at=now))
        superseded = int(current.id)
    append(
        conn,
        actor=actor,
        action="check.recorded",
        subject_type="person",
        subject_id=person_id,
        details={
            "check": int(check_id),
            "kind": kind,
            "checked_on": checked_on.isoformat(),
            "expires_on": expires_on.isoformat() if expires_on else None,
            "superseded": superseded,
            "current": not older,
        },
        at=now,
    )
    return int(check_id)


def find_employee(conn: Connection, employee_number: str) -> tuple[int, int]:
    """(person id, organisation id) of an ESR employee number."""
    a = s.assignment
    row = conn.execute(
        sa.select(a.c.person_id, a.c.organisation_id)
        .where(a.c.employee_number == employee_number)
        .order_by(a.c.is_primary.desc(), a.c.start_date.desc())
        .limit(1)
    ).first()
    if row is None:
        raise NotFoundError(f"No person has employee number {employee_number}.")
    return int(row.person_id), int(row.organisation_id)


def record(
    engine: Engine,
    employee_number: str,
    kind: str,
    attributes: Mapping[str, Any],
    *,
    actor: str,
    now: dt.datetime,
) -> int:
    """:func:`record_check` for an ESR employee number, in its own transaction."""
    with engine.begin() as conn:
        person_id, org_id = find_employee(conn, employee_number)
        return record_check(
            conn,
            person_id=person_id,
            organisation_id=org_id,
            kind=kind,
            attributes=attributes,
            actor=actor,
            now=now,
        )


def _check(row: Any) -> Check:
    return Check(
        id=int(row.id),
        person_id=int(row.person_id),
        organisation_code=str(row.ods_code),
        kind=str(row.kind),
        attributes=dict(row.attributes),
        checked_on=row.checked_on,
        expires_on=row.expires_on,
        recorded_by=str(row.recorded_by),
        recorded_at=row.recorded_at,
    )


def current_checks(
    conn: Connection, person_id: int, *, today: dt.date | None = None
) -> list[Check]:
    """The person's current (not superseded) checks; with ``today``, the unexpired ones only."""
    c, o = s.pre_employment_check, s.organisation
    query = (
        sa.select(c, o.c.ods_code)
        .join(o, o.c.id == c.c.organisation_id)
        .where(c.c.person_id == person_id, c.c.superseded_at.is_(None))
        .order_by(c.c.kind, c.c.id)
    )
    if today is not None:
        query = query.where(sa.or_(c.c.expires_on.is_(None), c.c.expires_on >= today))
    return [_check(row) for row in conn.execute(query).all()]


# --- what the issuer attests ----------------------------------------------------------------


def _claims_of(check: Check, names: Mapping[str, str], today: dt.date) -> ClaimSet | None:
    attributes = dict(check.attributes)
    if check.kind == CORE_SKILLS_TRAINING:
        # An expired subject is not attested; the others still are.
        attributes["training"] = [
            r for r in attributes["training"] if dt.date.fromisoformat(r["expires_on"]) >= today
        ]
        if not attributes["training"]:
            return None
    return KINDS[check.kind].model_validate({**attributes, **names})


def _esr_registration(
    conn: Connection, person_id: int, names: Mapping[str, str]
) -> tuple[dt.date, ClaimSet] | None:
    pi = s.person_identifier
    rows = conn.execute(
        sa.select(pi.c.scheme, pi.c.value, pi.c.created_at)
        .where(pi.c.person_id == person_id, pi.c.scheme.in_(list(_REGISTRATION_SCHEMES)))
        .order_by(pi.c.created_at.desc(), pi.c.id.desc())
    ).all()
    for row in rows:
        regulator = _REGISTRATION_SCHEMES[row.scheme]
        seen = row.created_at.date()
        try:
            claims = ProfessionalRegistrationCredential(
                **names,
                regulator=regulator,
                registration_number=row.value.strip().upper(),
                register_name=f"{regulator.value} register (recorded in ESR)",
                checked_on=seen,
            )
        except ValidationError:
            continue  # not well-formed for its regulator: nothing to attest
        return seen, claims
    return None


def credential_claims(conn: Connection, person: Any, today: dt.date) -> dict[str, list[ClaimSet]]:
    """Claim sets to issue per check kind today: current, unexpired checks, plus the
    professional registration from ESR unless a recorded one is as new or newer."""
    names = {"given_name": person.first_name, "family_name": person.last_name}
    out: dict[str, list[ClaimSet]] = {}
    recorded_registration: dt.date | None = None
    for check in current_checks(conn, person.id, today=today):
        claims = _claims_of(check, names, today)
        if claims is None:
            continue
        if check.kind == PROFESSIONAL_REGISTRATION:
            recorded_registration = check.checked_on
        out.setdefault(check.kind, []).append(claims)
    esr = _esr_registration(conn, person.id, names)
    if esr is not None and (recorded_registration is None or esr[0] > recorded_registration):
        out[PROFESSIONAL_REGISTRATION] = [esr[1]]
    return out


# --- CSV import ------------------------------------------------------------------------------

# CSV columns (docs/passport.md): Employee_Number, Check_Type, then one column per attribute,
# named after it in Title_Case (Checked_On, Certificate_Number, ...). Core Skills Training is
# one subject a row: Subject, Level, Completed_On, Expires_On.
_ATTRIBUTE_COLUMNS = sorted(
    {name for cls in KINDS.values() for name in cls.model_fields if name not in _NAMES}
    - {"training"}
    | set(_TRAINING_FIELDS)
)
COLUMNS: tuple[str, ...] = (
    "Employee_Number",
    "Check_Type",
    *(name.title() for name in _ATTRIBUTE_COLUMNS),
)
_BY_LOWER = {c.lower(): c for c in COLUMNS}


@dataclass(frozen=True, slots=True)
class RowProblem:
    row: int  # the CSV line's row number, the header being row 1
    field: str
    reason: str


@dataclass(slots=True)
class ImportReport:
    recorded: int = 0
    problems: list[RowProblem] = field(default_factory=list)


def _cell(value: str) -> str:
    # DD/MM/YYYY (as ESR writes dates) becomes ISO; ISO passes through.
    text = value.strip()
    match = _UK_DATE.fullmatch(text)
    return f"{match[3]}-{match[2]}-{match[1]}" if match else text


def _row_attributes(kind: str, cells: Mapping[str, str]) -> dict[str, Any]:
    values = {k.lower(): _cell(v) for k, v in cells.items() if v.strip()}
    values.pop("employee_number", None)
    values.pop("check_type", None)
    if kind == CORE_SKILLS_TRAINING:
        record = {k: values.pop(k) for k in _TRAINING_FIELDS if k in values}
        return {**values, "training": [record]}
    return values


def _column(name: str) -> str:
    return _BY_LOWER.get(name, name.title())


def parse_rows(text: str) -> Iterable[tuple[int, dict[str, str] | RowProblem]]:
    """Each data row as ``(row number, cells)`` or a problem; CheckFileError if no header."""
    reader = csv.reader(io.StringIO(text.removeprefix("\ufeff"), newline=""))
    try:
        header = next(reader, None)
    except csv.Error as exc:
        raise CheckFileError(f"The header row is not readable CSV: {exc}.") from None
    if not header or not any(h.strip() for h in header):
        raise CheckFileError("The file has no header row.")
    names = [h.strip() for h in header]
    lowered = [n.lower() for n in names]
    unknown = [n for n in names if n.lower() not in _BY_LOWER]
    if unknown:
        raise CheckFileError(
            f"Unknown column(s) {', '.join(repr(u[:40]) for u in unknown[:5])}; the columns "
            "are listed in docs/passport.md."
        )
    if len(set(lowered)) != len(lowered):
        raise CheckFileError("A column appears twice in the header.")
    for needed in ("Employee_Number", "Check_Type"):
        if needed.lower() not in lowered:
            raise CheckFileError(f"The header has no {needed} column.")
    number = 1
    while True:
        number += 1
        try:
            values = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            yield number, RowProblem(number, "row", f"not readable CSV ({exc})")
            continue
        if not any(v.strip() for v in values):
            continue
        if len(values) > len(names):
            yield (
                number,
                RowProblem(number, "row", f"{len(values)} fields; the header has {len(names)}"),
            )
            continue
        bad = next(
            (i for i, v in enumerate(values) if _CONTROL.search(v) or len(v) > MAX_CELL), None
        )
        if bad is not None:
            yield (
                number,
                RowProblem(
                    number,
                    names[bad],
                    f"contains a control character or is over {MAX_CELL} characters",
                ),
            )
            continue
        yield number, {_column(lowered[i]): v for i, v in enumerate(values)}


def import_checks(engine: Engine, text: str, *, actor: str, now: dt.datetime) -> ImportReport:
    """Record every good row of a checks CSV; report each bad one (row, field, reason).

    One bad row never stops the import; only an unusable file (:class:`CheckFileError`) does,
    before anything is recorded.
    """
    rows = list(parse_rows(text))
    report = ImportReport()
    with engine.begin() as conn:
        for number, item in rows:
            if isinstance(item, RowProblem):
                report.problems.append(item)
                continue
            employee = item.get("Employee_Number", "").strip()
            kind = item.get("Check_Type", "").strip().lower()
            try:
                if not employee:
                    raise CheckError("Employee_Number", "is required")
                if kind not in KINDS:
                    raise CheckError("Check_Type", f"must be one of {', '.join(KINDS)}")
                attributes = _row_attributes(kind, item)
                validate(kind, attributes)  # before the lookup: a specific field error first
                try:
                    person_id, org_id = find_employee(conn, employee)
                except NotFoundError:
                    raise CheckError("Employee_Number", "no person has this number") from None
                record_check(
                    conn,
                    person_id=person_id,
                    organisation_id=org_id,
                    kind=kind,
                    attributes=attributes,
                    actor=actor,
                    now=now,
                )
                report.recorded += 1
            except CheckError as exc:
                report.problems.append(RowProblem(number, _column(exc.field), exc.reason))
        append(
            conn,
            actor=actor,
            action="check.imported",
            subject_type="check_import",
            subject_id=now.isoformat(),
            details={"recorded": report.recorded, "rejected": len(report.problems)},
            at=now,
        )
    return report


# --- synthetic checks for the demo --------------------------------------------------------

_CLINICAL_GROUPS = frozenset({"01", "03", "04", "05", "06", "07"})
_CSTF_YEARS = {  # usual refresher periods (Skills for Health); resuscitation yearly
    CstfSubject.CONFLICT_RESOLUTION: 3,
    CstfSubject.EQUALITY_DIVERSITY_HUMAN_RIGHTS: 3,
    CstfSubject.FIRE_SAFETY: 2,
    CstfSubject.HEALTH_SAFETY_WELFARE: 3,
    CstfSubject.INFECTION_PREVENTION_CONTROL: 1,
    CstfSubject.INFORMATION_GOVERNANCE: 1,
    CstfSubject.MOVING_HANDLING: 2,
    CstfSubject.PREVENTING_RADICALISATION: 3,
    CstfSubject.RESUSCITATION: 1,
    CstfSubject.SAFEGUARDING_ADULTS: 3,
    CstfSubject.SAFEGUARDING_CHILDREN: 3,
}
_GRADE = re.compile(r"\b(FY[12]|CT[1-3]|ST[1-8]|IMT[1-3]|CST[12]|GPST[1-4])\b")


def _years(day: dt.date, years: int) -> dt.date:
    return (
        day.replace(year=day.year + years)
        if (day.month, day.day) != (2, 29)
        else (day + dt.timedelta(days=365 * years))
    )


def _synthetic(
    rng: random.Random, staff: Any, gmc: str | None, org_code: str, today: dt.date
) -> list[tuple[str, dict[str, Any]]]:
    start = min(staff.start_date, today)
    out: list[tuple[str, dict[str, Any]]] = []
    checked = start - dt.timedelta(days=rng.randint(14, 60))
    if rng.random() < 0.9:
        out.append(
            (
                RIGHT_TO_WORK,
                {
                    "right_to_work": "unlimited",
                    "check_method": "idsp_digital",
                    "checked_on": checked.isoformat(),
                },
            )
        )
    else:
        out.append(
            (
                RIGHT_TO_WORK,
                {
                    "right_to_work": "time_limited",
                    "check_method": "home_office_share_code",
                    "checked_on": checked.isoformat(),
                    "expires_on": (today + dt.timedelta(days=rng.randint(120, 1100))).isoformat(),
                },
            )
        )
    clinical = staff.staff_group in _CLINICAL_GROUPS
    out.append(
        (
            DBS,
            {
                "level": "enhanced_with_barred_lists" if clinical else "basic",
                "workforce": "adult_and_child" if clinical else "other",
                "certificate_number": f"{rng.randrange(10**11, 10**12):012d}",
                "issued_on": checked.isoformat(),
                "update_service": rng.random() < 0.6,
            },
        )
    )
    out.append(
        (
            OCCUPATIONAL_HEALTH,
            {
                "clearance": "fit" if rng.random() < 0.93 else "fit_with_adjustments",
                "assessed_on": checked.isoformat(),
                "epp_cleared": staff.staff_group == "01" and rng.random() < 0.5,
                "immunisations_complete": clinical,
            },
        )
    )
    training = []
    for subject, years in _CSTF_YEARS.items():
        # Most completions are in date; about one in twelve has lapsed.
        done = today - dt.timedelta(
            days=rng.randint(10, 365 * years + (30 if rng.random() < 0.08 else 0))
        )
        level = (
            2
            if clinical
            and subject
            in {
                CstfSubject.RESUSCITATION,
                CstfSubject.SAFEGUARDING_ADULTS,
                CstfSubject.SAFEGUARDING_CHILDREN,
                CstfSubject.INFORMATION_GOVERNANCE,
            }
            else 1
        )
        training.append(
            {
                "subject": subject.value,
                "level": level,
                "completed_on": done.isoformat(),
                "expires_on": _years(done, years).isoformat(),
            }
        )
    out.append((CORE_SKILLS_TRAINING, {"training": training}))
    grade = _GRADE.search(f"{staff.grade_code} {staff.title}")
    if staff.staff_group == "01" and grade and gmc:
        begin = staff.start_date
        out.append(
            (
                TRAINING_PLACEMENT,
                {
                    "gmc_number": gmc,
                    "programme": staff.area_of_work or "Foundation Programme",
                    "grade": grade[1],
                    "local_office": "NHS England North West",
                    "lead_employer_code": org_code,
                    "host_organisation_code": org_code,
                    "start_date": begin.isoformat(),
                    "end_date": max(_years(begin, 1), today + dt.timedelta(days=30)).isoformat(),
                },
            )
        )
    return out


def synthetic_checks(engine: Engine, org: str, today: dt.date, seed: int) -> int:
    """Record plausible checks for every current member of staff at ``org`` (ODS code).

    For the demo's synthetic workforce: right to work (mostly unlimited), DBS (enhanced with
    barred lists for clinical staff groups), occupational health clearance, all 11 CSTF
    subjects and a training placement for doctors in training with a GMC number. One audit
    entry in all (thousands of people); returns how many checks were recorded.
    """
    rng = random.Random(seed)
    a, p, o, pi = s.assignment, s.position, s.organisation, s.person_identifier
    now = dt.datetime.combine(today, dt.time(9), tzinfo=dt.UTC)
    rows: list[dict[str, Any]] = []
    with engine.begin() as conn:
        org_row = conn.execute(sa.select(o.c.id, o.c.ods_code).where(o.c.ods_code == org)).first()
        if org_row is None:
            raise NotFoundError(f"No organisation {org}.")
        staff_rows = conn.execute(
            sa.select(
                a.c.person_id,
                a.c.start_date,
                p.c.staff_group,
                p.c.grade_code,
                p.c.title,
                p.c.area_of_work,
            )
            .join(p, p.c.id == a.c.position_id)
            .where(
                a.c.organisation_id == org_row.id,
                a.c.is_primary.is_(True),
                a.c.start_date <= today,
                sa.or_(a.c.end_date.is_(None), a.c.end_date >= today),
            )
            .order_by(a.c.person_id)
        ).all()
        gmc = dict(
            conn.execute(sa.select(pi.c.person_id, pi.c.value).where(pi.c.scheme == "gmc")).all()
        )
        seen: set[int] = set()
        for staff in staff_rows:
            if staff.person_id in seen:
                continue
            seen.add(staff.person_id)
            for kind, attributes in _synthetic(
                rng, staff, gmc.get(staff.person_id), org_row.ods_code, today
            ):
                claims = validate(kind, attributes)
                checked_on, expires_on = check_dates(claims)
                rows.append(
                    {
                        "person_id": staff.person_id,
                        "organisation_id": org_row.id,
                        "kind": kind,
                        "attributes": _attributes(claims),
                        "checked_on": checked_on,
                        "expires_on": expires_on,
                        "recorded_by": "demo",
                        "recorded_at": now,
                        "superseded_at": None,
                    }
                )
        c = s.pre_employment_check
        if seen:  # re-seeding replaces the previous synthetic (or real) checks as history
            conn.execute(
                c.update()
                .where(c.c.person_id.in_(seen), c.c.superseded_at.is_(None))
                .values(superseded_at=now)
            )
        for chunk in range(0, len(rows), 2000):
            conn.execute(c.insert(), rows[chunk : chunk + 2000])
        append(
            conn,
            actor="demo",
            action="check.synthetic_recorded",
            subject_type="organisation",
            subject_id=org,
            details={"checks": len(rows), "people": len(seen)},
            at=now,
        )
    return len(rows)
