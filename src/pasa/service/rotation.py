"""Rotation batches: many movers on one date (the August rotation of doctors in training).

A batch is imported from a rotation extract (a full extract as at the rotation date, or just
the rows that change), previewed as a diff of people x targets, approved once by someone
other than the importer, and executed on its date by the scheduler (:func:`execute_due`, a
``pasa.service.scheduler.PRE_STEPS`` step): the kept rows are imported as a *partial* extract
(absence ends nothing) and the batch's people are planned and applied. Until the date it can
be amended (approval is then needed again) or cancelled; afterwards :func:`report` shows how
its operations went.

A batch is all or nothing: a file with any rejected row is refused whole. Only rows that
differ from the hub are kept (``rows_csv``), so an unchanged row never travels.
"""

from __future__ import annotations

import csv
import dataclasses
import datetime as dt
import hashlib
import io
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from pasa import clock
from pasa.audit import log as audit
from pasa.config import get_settings
from pasa.domain.errors import InputFileError, NotFoundError, PasaError
from pasa.domain.model import (
    Assignment,
    AssignmentCategory,
    AssignmentStatus,
    PersonView,
    Position,
)
from pasa.domain.operations import OperationKind, PlannedOperation
from pasa.hr.esr import (
    ExtractReader,
    ExtractRow,
    RowProblem,
    cleared_supervisor_hash,
    extract_values,
)
from pasa.hr.esr_columns import COLUMNS
from pasa.hr.importer import EMPLOYEE_SCHEME, import_extract
from pasa.service import provisioning
from pasa.store import schema as s

OPEN = ("imported", "approved")
SOURCE = "rotation-batch"


class BatchRefused(PasaError):
    """A rotation file with rejected rows: the batch is all or nothing."""

    def __init__(self, message: str, problems: list[RowProblem]) -> None:
        super().__init__(message)
        self.problems = problems


@dataclass(frozen=True, slots=True)
class Batch:
    id: int
    name: str
    effective_date: dt.date
    status: str
    filename: str
    sha256: str
    rows: int
    movers: int
    version: int
    created_by: str
    created_at: dt.datetime
    approved_by: str | None = None
    approved_at: dt.datetime | None = None
    cancelled_by: str | None = None
    cancelled_at: dt.datetime | None = None
    cancel_reason: str | None = None
    executed_at: dt.datetime | None = None
    import_id: int | None = None
    plan_id: str | None = None
    new_people: int = 0
    warnings: tuple[str, ...] = ()

    def summary(self) -> str:
        text = (
            f"rotation batch {self.id} '{self.name}' (version {self.version}) {self.status}: "
            f"{self.movers:,} people, {self.rows:,} changed rows, effective "
            f"{self.effective_date.isoformat()}"
        )
        if self.new_people:
            text += f", {self.new_people:,} new people (created on the date)"
        return text


@dataclass(slots=True)
class TargetCounts:
    accounts_created: int = 0
    grants_added: int = 0
    grants_removed: int = 0
    attribute_updates: int = 0
    other: int = 0  # enable, disable, rename, delete

    @property
    def total(self) -> int:
        return (
            self.accounts_created
            + self.grants_added
            + self.grants_removed
            + self.attribute_updates
            + self.other
        )


@dataclass(frozen=True, slots=True)
class PersonDiff:
    person_id: int
    name: str
    adds: tuple[str, ...]  # "target: group GG-X", "target: account"
    removes: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class BatchPreview:
    batch_id: int
    name: str
    effective_date: dt.date
    version: int
    movers: int
    new_people: int
    operations: int
    by_target: Mapping[str, TargetCounts]
    people: tuple[PersonDiff, ...]

    def counts(self) -> dict[str, Any]:
        """The JSON kept in ``rotation_batch.preview``."""
        return {
            "version": self.version,
            "movers": self.movers,
            "new_people": self.new_people,
            "operations": self.operations,
            "people_changed": len(self.people),
            "by_target": {k: dataclasses.asdict(v) for k, v in sorted(self.by_target.items())},
        }

    def render_text(self, limit: int = 20) -> str:
        lines = [
            f"Rotation batch {self.batch_id} '{self.name}' (version {self.version}), effective "
            f"{self.effective_date.isoformat()}: {self.movers:,} people, "
            f"{len(self.people):,} with access changes, {self.operations:,} operations"
        ]
        if self.new_people:
            lines.append(
                f"  {self.new_people:,} new people (created on the date; not in this diff)"
            )
        for key, c in sorted(self.by_target.items()):
            lines.append(
                f"  {key}: {c.accounts_created:,} accounts created, +{c.grants_added:,} grants, "
                f"-{c.grants_removed:,} grants, {c.attribute_updates:,} attribute updates"
                + (f", {c.other:,} other" if c.other else "")
            )
        return "\n".join(lines + self.people_lines(limit))

    def people_lines(self, limit: int = 20) -> list[str]:
        """Per person, what is added (+) and removed (-), for the first ``limit`` people."""
        lines = []
        for person in self.people[:limit]:
            lines.append(f"  {person.name} (person {person.person_id})")
            lines += [f"    + {a}" for a in person.adds]
            lines += [f"    - {r}" for r in person.removes]
        if len(self.people) > limit:
            lines.append(f"  ... and {len(self.people) - limit:,} more people")
        return lines


@dataclass(frozen=True, slots=True)
class Failure:
    person_id: int
    target: str
    kind: str
    summary: str
    status: str
    last_error: str | None


@dataclass(frozen=True, slots=True)
class BatchReport:
    batch_id: int
    name: str
    effective_date: dt.date
    executed_at: dt.datetime | None
    people: int
    people_done: int
    operations: int
    by_target: Mapping[str, Mapping[str, int]]  # target -> status -> count
    failures: tuple[Failure, ...] = field(default=())

    def counts(self) -> dict[str, Any]:
        return {
            "people": self.people,
            "people_done": self.people_done,
            "operations": self.operations,
            "by_target": {k: dict(v) for k, v in sorted(self.by_target.items())},
            "failures": len(self.failures),
        }

    def render_text(self, limit: int = 20) -> str:
        when = self.executed_at.isoformat(timespec="minutes") if self.executed_at else "?"
        lines = [
            f"Rotation batch {self.batch_id} '{self.name}' executed {when} (effective "
            f"{self.effective_date.isoformat()}): {self.people_done:,} of {self.people:,} "
            f"people fully done, {self.operations:,} operations"
        ]
        for key, counts in sorted(self.by_target.items()):
            parts = ", ".join(f"{status} {n:,}" for status, n in sorted(counts.items()))
            lines.append(f"  {key}: {parts}")
        for f in self.failures[:limit]:
            lines.append(
                f"  FAILED person {f.person_id} {f.target} {f.kind} ({f.status}): "
                f"{f.last_error or 'no error recorded'}"
            )
        if len(self.failures) > limit:
            lines.append(f"  ... and {len(self.failures) - limit:,} more failures")
        return "\n".join(lines)


# --- parsing and the diff with the hub --------------------------------------------------------


def _as_text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "Y" if value else "N"
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, float):
        return f"{value:.2f}"
    return str(value)


def _row_values(r: ExtractRow) -> list[str]:
    """An accepted row as extract text, in column order (ISO dates; same row hash)."""
    return [_as_text(v) for v in extract_values(r)]


def _to_csv(rows: Iterable[ExtractRow]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(COLUMNS)
    for r in rows:
        writer.writerow(_row_values(r))
    return out.getvalue()


def _read(source: Path | bytes, label: str, as_of: dt.date) -> tuple[list[ExtractRow], list[str]]:
    """Every row, or :class:`BatchRefused` if any is rejected; warnings as sentences."""
    reader = ExtractReader(source if isinstance(source, Path) else io.BytesIO(source), today=as_of)
    rows: list[ExtractRow] = []
    rejected: list[RowProblem] = []
    warnings: list[str] = []
    for item in reader:
        if isinstance(item, ExtractRow):
            rows.append(item)
        elif item.severity == "rejected":
            rejected.append(item)
        else:
            warnings.append(item.describe())
    if rejected:
        first = "; ".join(p.describe() for p in rejected[:3])
        more = f" (and {len(rejected) - 3:,} more)" if len(rejected) > 3 else ""
        raise BatchRefused(
            f"{label}: {len(rejected):,} rows rejected, so the batch was refused (a batch is "
            f"all or nothing): {first}{more}",
            rejected,
        )
    if not rows:
        raise InputFileError(f"{label}: has no data rows; nothing was imported")
    return rows, warnings


def _rows_of(csv_text: str, as_of: dt.date) -> list[ExtractRow]:
    return _read(csv_text.encode("utf-8"), "rotation batch", as_of)[0]


_Key = tuple[str, str]  # (ODS code, assignment number)


def _hub_assignments(conn: Connection, rows: list[ExtractRow]) -> dict[_Key, Any]:
    """The hub's assignments named by ``rows``: key -> (person_id, row_hash, in_extract)."""
    a, o = s.assignment, s.organisation
    numbers = sorted({r.assignment_number for r in rows})
    out: dict[_Key, Any] = {}
    for start in range(0, len(numbers), 1000):
        query = (
            sa.select(
                o.c.ods_code, a.c.assignment_number, a.c.person_id, a.c.row_hash, a.c.in_extract
            )
            .select_from(a.join(o, o.c.id == a.c.organisation_id))
            .where(a.c.assignment_number.in_(numbers[start : start + 1000]))
        )
        for r in conn.execute(query):
            out[(r.ods_code, r.assignment_number)] = r
    return out


def _changed(rows: list[ExtractRow], hub_rows: Mapping[_Key, Any]) -> list[ExtractRow]:
    kept = []
    for r in rows:
        held = hub_rows.get((r.org_code, r.assignment_number))
        if (
            held is None
            or not held.in_extract
            or held.row_hash not in (r.row_hash, cleared_supervisor_hash(r.row_hash))
        ):
            kept.append(r)
    return kept


def _people_of(
    conn: Connection, rows: list[ExtractRow], hub_rows: Mapping[_Key, Any] | None = None
) -> tuple[dict[int, list[ExtractRow]], int]:
    """The hub person of each row (holder of the assignment, ESR employee number, NI number
    and date of birth), and how many distinct new people the other rows are."""
    if hub_rows is None:
        hub_rows = _hub_assignments(conn, rows)
    by_person: dict[int, list[ExtractRow]] = {}
    unknown: list[ExtractRow] = []
    for r in rows:
        held = hub_rows.get((r.org_code, r.assignment_number))
        if held is not None:
            by_person.setdefault(int(held.person_id), []).append(r)
        else:
            unknown.append(r)
    if not unknown:
        return by_person, 0
    pi, p = s.person_identifier, s.person
    employees = sorted({r.employee_number for r in unknown})
    by_employee: dict[_Key, int] = {}
    for start in range(0, len(employees), 1000):
        for pid, issuer, value in conn.execute(
            sa.select(pi.c.person_id, pi.c.issuer, pi.c.value).where(
                pi.c.scheme == EMPLOYEE_SCHEME, pi.c.value.in_(employees[start : start + 1000])
            )
        ):
            by_employee[(issuer, value)] = pid
    nis = sorted({r.ni_number for r in unknown if r.ni_number})
    by_ni: dict[tuple[str, dt.date], int] = {}
    for start in range(0, len(nis), 1000):
        for pid, ni, dob in conn.execute(
            sa.select(p.c.id, p.c.ni_number, p.c.date_of_birth).where(
                p.c.ni_number.in_(nis[start : start + 1000])
            )
        ):
            by_ni.setdefault((ni, dob), pid)
    new: set[tuple[str, str]] = set()
    for r in unknown:
        pid = by_employee.get((r.org_code, r.employee_number))
        if pid is None and r.ni_number:
            pid = by_ni.get((r.ni_number, r.date_of_birth))
        if pid is None:
            # One new person per human, as the importer groups them.
            if r.ni_number:
                new.add((r.ni_number, r.date_of_birth.isoformat()))
            else:
                new.add((r.org_code, r.employee_number))
        else:
            by_person.setdefault(pid, []).append(r)
    return by_person, len(new)


def _assignment(r: ExtractRow) -> Assignment:
    return Assignment(
        assignment_number=r.assignment_number,
        organisation=r.org_code,
        employee_number=r.employee_number,
        position=Position(
            organisation=r.org_code,
            position_number=r.position_number,
            title=r.position_title,
            staff_group=r.staff_group,
            job_role_code=r.job_role_code,
            area_of_work=r.area_of_work,
            occupation_code=r.occupation_code,
            grade_code=r.grade_code,
            department_code=r.department_code,
            department_name=r.department_name,
            cost_centre=r.cost_centre,
            site_code=r.location_code,
            site_name=r.location_name,
        ),
        category=AssignmentCategory(r.category),
        status=AssignmentStatus(r.status),
        primary=r.primary,
        start_date=r.start_date,
        end_date=r.end_date,
        supervisor_assignment_number=r.supervisor_assignment_number,
        wte=r.wte,
    )


def overlay_for(
    by_person: Mapping[int, list[ExtractRow]], effective: dt.date
) -> provisioning.PeopleOverlay:
    """The hub's people as they will be once the batch is imported on ``effective``: each
    batch assignment replaces the hub's version (which becomes a superseded ``previous``
    version ending the day before, as the importer records it) or is added."""
    last_day = effective - dt.timedelta(days=1)

    def overlay(people: list[PersonView]) -> list[PersonView]:
        out = []
        for person in people:
            rows = by_person.get(person.person_id)
            if not rows:
                out.append(person)
                continue
            batch = {(r.org_code, r.assignment_number): _assignment(r) for r in rows}
            assignments: list[Assignment] = []
            previous = list(person.previous)
            for a in person.assignments:
                new = batch.pop((a.organisation, a.assignment_number), None)
                if new is None:
                    assignments.append(a)
                    continue
                assignments.append(new)
                if new != a:
                    previous.append(
                        dataclasses.replace(
                            a, start_date=min(a.start_date, last_day), end_date=last_day
                        )
                    )
            assignments += batch.values()
            out.append(
                dataclasses.replace(
                    person, assignments=tuple(assignments), previous=tuple(previous)
                )
            )
        return out

    return overlay


# --- storage helpers --------------------------------------------------------------------------


def _now() -> dt.datetime:
    return clock.now()


def _today() -> dt.date:
    return clock.today(get_settings().timezone)


def _load(conn: Connection, batch_id: int, *, lock: bool = False) -> Any:
    query = sa.select(s.rotation_batch).where(s.rotation_batch.c.id == batch_id)
    if lock and conn.dialect.name == "postgresql":
        query = query.with_for_update()
    row = conn.execute(query).first()
    if row is None:
        raise NotFoundError(f"rotation batch {batch_id} does not exist (see `pasa rotation list`)")
    return row


def _batch(row: Any, new_people: int = 0, warnings: Iterable[str] = ()) -> Batch:
    preview = row.preview or {}
    return Batch(
        id=row.id,
        name=row.name,
        effective_date=row.effective_date,
        status=row.status,
        filename=row.filename,
        sha256=row.sha256,
        rows=max(row.rows_csv.count("\n") - 1, 0),
        movers=row.movers,
        version=row.version,
        created_by=row.created_by,
        created_at=row.created_at,
        approved_by=row.approved_by,
        approved_at=row.approved_at,
        cancelled_by=row.cancelled_by,
        cancelled_at=row.cancelled_at,
        cancel_reason=row.cancel_reason,
        executed_at=row.executed_at,
        import_id=row.import_id,
        plan_id=row.plan_id,
        new_people=new_people or int(preview.get("new_people", 0)),
        warnings=tuple(warnings),
    )


def _require(row: Any, statuses: tuple[str, ...], doing: str) -> None:
    if row.status not in statuses:
        allowed = " or ".join(statuses)
        raise PasaError(
            f"rotation batch {row.id} is {row.status}; only a batch that is {allowed} can be "
            f"{doing}"
        )


class _Parsed:
    def __init__(self, conn: Connection, path: Path, effective: dt.date) -> None:
        if not path.is_file():
            raise InputFileError(f"{path}: no such file")
        rows, self.warnings = _read(path, path.name, effective)
        hub_rows = _hub_assignments(conn, rows)
        self.kept = _changed(rows, hub_rows)
        by_person, self.new_people = _people_of(conn, self.kept, hub_rows)
        self.movers = len(by_person) + self.new_people
        self.csv = _to_csv(self.kept)
        with open(path, "rb") as fh:
            self.sha256 = hashlib.file_digest(fh, "sha256").hexdigest()


# --- the batch life cycle ---------------------------------------------------------------------


def import_batch(
    engine: Engine,
    path: str | Path,
    *,
    name: str,
    effective_date: dt.date,
    actor: str,
    today: dt.date | None = None,
) -> Batch:
    """Read a rotation file and keep the rows that change as a new batch (status imported)."""
    path = Path(path)
    name = name.strip()
    if not name:
        raise PasaError("a rotation batch needs a name (--name)")
    today = today or _today()
    if effective_date < today:
        raise PasaError(
            f"the effective date {effective_date.isoformat()} has passed (today is "
            f"{today.isoformat()}); a rotation batch must take effect today or later"
        )
    rb = s.rotation_batch
    with engine.begin() as conn:
        clash = conn.execute(
            sa.select(rb.c.id, rb.c.status).where(rb.c.name == name, rb.c.status.in_(OPEN))
        ).first()
        if clash is not None:
            raise PasaError(
                f"rotation batch {clash.id} is already called '{name}' and is {clash.status}; "
                f"amend it (`pasa rotation amend {clash.id} FILE`) or cancel it first"
            )
        parsed = _Parsed(conn, path, effective_date)
        now = _now()
        batch_id = conn.execute(
            rb.insert()
            .values(
                name=name,
                effective_date=effective_date,
                status="imported",
                filename=path.name,
                sha256=parsed.sha256,
                rows_csv=parsed.csv,
                movers=parsed.movers,
                version=1,
                created_by=actor,
                created_at=now,
            )
            .returning(rb.c.id)
        ).scalar_one()
        audit.append(
            conn,
            actor=actor,
            action="rotation.import",
            subject_type="rotation_batch",
            subject_id=batch_id,
            details={
                "name": name,
                "effective_date": effective_date.isoformat(),
                "filename": path.name,
                "sha256": parsed.sha256,
                "rows": len(parsed.kept),
                "movers": parsed.movers,
                "new_people": parsed.new_people,
            },
            at=now,
        )
        return _batch(_load(conn, batch_id), parsed.new_people, parsed.warnings)


def list_batches(engine: Engine) -> list[Batch]:
    with engine.connect() as conn:
        rows = conn.execute(sa.select(s.rotation_batch).order_by(s.rotation_batch.c.id))
        return [_batch(r) for r in rows]


def get_batch(engine: Engine, batch_id: int) -> Batch:
    with engine.connect() as conn:
        return _batch(_load(conn, batch_id))


def preview(engine: Engine, batch_id: int) -> BatchPreview:
    """What the batch changes on its date, per target and per person; writes nothing but the
    counts in ``rotation_batch.preview``."""
    with engine.connect() as conn:
        row = _load(conn, batch_id)
        rows = _rows_of(row.rows_csv, row.effective_date)
        by_person, new_people = _people_of(conn, rows)
    operations: list[PlannedOperation] = []
    names: dict[int, str] = {}
    if by_person:
        result = provisioning.what_if(
            engine,
            row.effective_date,
            overlay=overlay_for(by_person, row.effective_date),
            person_ids=sorted(by_person),
        )
        # What happens to these people on the date anyway (e.g. a trainee's contract ending
        # the day before the rotation), then what the batch adds on top: together, the net
        # change from their access today.
        baseline = getattr(result, "baseline", None)
        if baseline is not None:
            operations += [op for op in baseline.operations if op.person_id in by_person]
        operations += result.operations
        names = {pid: p.display_name for pid, p in result.people.items()}
    by_target, adds, removes, total = _net(operations)
    people = tuple(
        PersonDiff(
            person_id=pid,
            name=names.get(pid, f"person {pid}"),
            adds=tuple(adds.get(pid, ())),
            removes=tuple(removes.get(pid, ())),
        )
        for pid in sorted(set(adds) | set(removes), key=lambda p: (names.get(p, ""), p))
    )
    result_preview = BatchPreview(
        batch_id=row.id,
        name=row.name,
        effective_date=row.effective_date,
        version=row.version,
        movers=row.movers,
        new_people=new_people,
        operations=total,
        by_target=by_target,
        people=people,
    )
    with engine.begin() as conn:
        conn.execute(
            s.rotation_batch.update()
            .where(s.rotation_batch.c.id == batch_id, s.rotation_batch.c.version == row.version)
            .values(preview=result_preview.counts())
        )
    return result_preview


def _net(
    operations: Iterable[PlannedOperation],
) -> tuple[dict[str, TargetCounts], dict[int, list[str]], dict[int, list[str]], int]:
    """Net effect of operations in order: a grant removed then added back, or an account
    disabled then enabled again, is no change. Returns counts per target, the additions and
    removals per person, and the number of net operations."""
    grants: dict[tuple[int, str, str, str], int] = {}
    status: dict[tuple[int, str], int] = {}
    created: dict[tuple[int, str], str] = {}
    updated: set[tuple[int, str]] = set()
    other: dict[tuple[int, str], str] = {}
    for op in operations:
        account = (op.person_id, op.target)
        if op.kind in (OperationKind.ADD_MEMBERSHIP, OperationKind.REMOVE_MEMBERSHIP):
            key = (
                op.person_id,
                op.target,
                str(op.payload.get("kind", "")),
                str(op.payload.get("value", "")),
            )
            step = 1 if op.kind is OperationKind.ADD_MEMBERSHIP else -1
            grants[key] = max(-1, min(1, grants.get(key, 0) + step))
        elif op.kind is OperationKind.CREATE_ACCOUNT:
            created[account] = op.username
        elif op.kind is OperationKind.ENABLE:
            status[account] = min(1, status.get(account, 0) + 1)
        elif op.kind is OperationKind.DISABLE:
            status[account] = max(-1, status.get(account, 0) - 1)
        elif op.kind is OperationKind.UPDATE_ATTRIBUTES:
            updated.add(account)
        else:  # rename, delete
            other[account] = f"account {op.username} ({op.kind.value})"
    by_target: dict[str, TargetCounts] = {}
    adds: dict[int, list[str]] = {}
    removes: dict[int, list[str]] = {}
    total = 0

    def counts(target: str) -> TargetCounts:
        nonlocal total
        total += 1
        return by_target.setdefault(target, TargetCounts())

    for (pid, target), username in created.items():
        counts(target).accounts_created += 1
        adds.setdefault(pid, []).append(f"{target}: account {username}")
    for (pid, target), net in status.items():
        if net and (pid, target) not in created:
            counts(target).other += 1
            word = "enabled" if net > 0 else "disabled"
            (adds if net > 0 else removes).setdefault(pid, []).append(f"{target}: account {word}")
    for (pid, target, kind, value), net in grants.items():
        if net > 0:
            counts(target).grants_added += 1
            adds.setdefault(pid, []).append(f"{target}: {kind.replace('_', ' ')} {value}")
        elif net < 0:
            counts(target).grants_removed += 1
            removes.setdefault(pid, []).append(f"{target}: {kind.replace('_', ' ')} {value}")
    for _pid, target in updated:
        counts(target).attribute_updates += 1
    for (pid, target), text in other.items():
        counts(target).other += 1
        removes.setdefault(pid, []).append(f"{target}: {text}")
    return by_target, adds, removes, total


def _last_importer(conn: Connection, row: Any) -> str:
    """Who imported the batch's current version (the creator, or the last amender)."""
    al = s.audit_log
    amender = conn.execute(
        sa.select(al.c.actor)
        .where(
            al.c.subject_type == "rotation_batch",
            al.c.subject_id == str(row.id),
            al.c.action == "rotation.amend",
        )
        .order_by(al.c.seq.desc())
        .limit(1)
    ).scalar()
    return str(amender or row.created_by)


def approve(engine: Engine, batch_id: int, *, actor: str) -> Batch:
    """Approve an imported batch (once); the approver must not be who imported it."""
    with engine.begin() as conn:
        row = _load(conn, batch_id, lock=True)
        if row.status == "approved":
            raise PasaError(
                f"rotation batch {batch_id} was already approved by {row.approved_by}; "
                "a batch is approved once"
            )
        _require(row, ("imported",), "approved")
        importer = _last_importer(conn, row)
        if actor == importer:
            raise PasaError(
                f"{actor} imported rotation batch {batch_id}, so someone else must approve it "
                "(separation of duties)"
            )
        now = _now()
        conn.execute(
            s.rotation_batch.update()
            .where(s.rotation_batch.c.id == batch_id)
            .values(status="approved", approved_by=actor, approved_at=now)
        )
        audit.append(
            conn,
            actor=actor,
            action="rotation.approve",
            subject_type="rotation_batch",
            subject_id=batch_id,
            details={"version": row.version, "movers": row.movers, "imported_by": importer},
            at=now,
        )
        return _batch(_load(conn, batch_id))


def amend(
    engine: Engine, batch_id: int, path: str | Path, *, actor: str, today: dt.date | None = None
) -> Batch:
    """Replace the batch's rows from a new file before its date; it must be approved again."""
    path = Path(path)
    today = today or _today()
    with engine.begin() as conn:
        row = _load(conn, batch_id, lock=True)
        _require(row, OPEN, "amended")
        if today >= row.effective_date:
            raise PasaError(
                f"rotation batch {batch_id} takes effect on {row.effective_date.isoformat()}; "
                "it can only be amended before that date"
            )
        parsed = _Parsed(conn, path, row.effective_date)
        now = _now()
        conn.execute(
            s.rotation_batch.update()
            .where(s.rotation_batch.c.id == batch_id)
            .values(
                status="imported",
                version=row.version + 1,
                filename=path.name,
                sha256=parsed.sha256,
                rows_csv=parsed.csv,
                movers=parsed.movers,
                approved_by=None,
                approved_at=None,
                preview=None,
            )
        )
        audit.append(
            conn,
            actor=actor,
            action="rotation.amend",
            subject_type="rotation_batch",
            subject_id=batch_id,
            details={
                "version": row.version + 1,
                "filename": path.name,
                "sha256": parsed.sha256,
                "movers_before": row.movers,
                "movers_after": parsed.movers,
                "approval_withdrawn": row.status == "approved",
            },
            at=now,
        )
        return _batch(_load(conn, batch_id), parsed.new_people, parsed.warnings)


def cancel(engine: Engine, batch_id: int, *, actor: str, reason: str) -> Batch:
    """Cancel a batch that has not been executed."""
    reason = reason.strip()
    if not reason:
        raise PasaError("cancelling a rotation batch needs a reason (--reason)")
    with engine.begin() as conn:
        row = _load(conn, batch_id, lock=True)
        _require(row, OPEN, "cancelled")
        now = _now()
        conn.execute(
            s.rotation_batch.update()
            .where(s.rotation_batch.c.id == batch_id)
            .values(status="cancelled", cancelled_by=actor, cancelled_at=now, cancel_reason=reason)
        )
        audit.append(
            conn,
            actor=actor,
            action="rotation.cancel",
            subject_type="rotation_batch",
            subject_id=batch_id,
            details={"reason": reason, "was": row.status, "version": row.version},
            at=now,
        )
        return _batch(_load(conn, batch_id))


def _execute_one(engine: Engine, row: Any, at: dt.date, actor: str) -> str:
    rb = s.rotation_batch
    # Claim the batch first, so two schedulers never import it twice.
    with engine.begin() as conn:
        claimed = conn.execute(
            rb.update()
            .where(rb.c.id == row.id, rb.c.status == "approved", rb.c.version == row.version)
            .values(status="executed", executed_at=_now())
        ).rowcount
    if not claimed:
        return f"rotation batch {row.id} was taken by another run"
    try:
        with tempfile.TemporaryDirectory(prefix="pasa-rotation-") as tmp:
            path = Path(tmp) / f"rotation-batch-{row.id}-v{row.version}.csv"
            path.write_text(row.rows_csv, encoding="utf-8")
            imported = import_extract(
                engine,
                path,
                actor=actor,
                as_of=row.effective_date,
                source=SOURCE,
                partial=True,
            )
        with engine.connect() as conn:
            rows = _rows_of(row.rows_csv, row.effective_date)
            person_ids = sorted({int(h.person_id) for h in _hub_assignments(conn, rows).values()})
        applied = provisioning.apply(engine, at, actor=actor, person_ids=person_ids)
    except Exception:
        with engine.begin() as conn:
            conn.execute(
                rb.update().where(rb.c.id == row.id).values(status="approved", executed_at=None)
            )
        raise
    now = _now()
    with engine.begin() as conn:
        conn.execute(
            rb.update()
            .where(rb.c.id == row.id)
            .values(import_id=imported.import_id, plan_id=applied.plan_id, executed_at=now)
        )
        audit.append(
            conn,
            actor=actor,
            action="rotation.execute",
            subject_type="rotation_batch",
            subject_id=row.id,
            details={
                "version": row.version,
                "at": at.isoformat(),
                "import_id": imported.import_id,
                "plan_id": applied.plan_id,
                "people": len(person_ids),
                "operations": applied.operations,
                "events_new": imported.events_new,
                "events_changed": imported.events_changed,
            },
            at=now,
        )
    return (
        f"batch {row.id} '{row.name}' executed: {len(person_ids):,} people, "
        f"{applied.operations:,} operations"
    )


def execute_due(engine: Engine, at: dt.date, actor: str = "scheduler") -> str | None:
    """Execute every approved batch whose date has come (a scheduler pre-step)."""
    rb = s.rotation_batch
    with engine.connect() as conn:
        due = conn.execute(
            sa.select(rb)
            .where(rb.c.status == "approved", rb.c.effective_date <= at)
            .order_by(rb.c.effective_date, rb.c.id)
        ).all()
    if not due:
        return None
    return "rotation: " + "; ".join(_execute_one(engine, row, at, actor) for row in due)


def report(engine: Engine, batch_id: int) -> BatchReport:
    """How an executed batch's operations went, per target and status, with the failures."""
    op, t = s.operation, s.target
    with engine.connect() as conn:
        row = _load(conn, batch_id)
        if row.status != "executed":
            raise PasaError(
                f"rotation batch {batch_id} is {row.status}; a report exists once it has been "
                "executed"
            )
        by_target: dict[str, dict[str, int]] = {}
        open_people: set[int] = set()
        people: set[int] = set()
        failures: list[Failure] = []
        total = 0
        if row.plan_id:
            query = (
                sa.select(
                    t.c.key, op.c.person_id, op.c.kind, op.c.summary, op.c.status, op.c.last_error
                )
                .select_from(op.join(t, t.c.id == op.c.target_id))
                .where(op.c.plan_id == row.plan_id)
                .order_by(op.c.id)
            )
            for r in conn.execute(query):
                total += 1
                people.add(r.person_id)
                counts = by_target.setdefault(r.key, {})
                counts[r.status] = counts.get(r.status, 0) + 1
                if r.status != "succeeded":
                    open_people.add(r.person_id)
                if r.status == "parked" or (r.last_error and r.status != "succeeded"):
                    failures.append(
                        Failure(r.person_id, r.key, r.kind, r.summary, r.status, r.last_error)
                    )
        mover_count = max(row.movers, len(people))
    result = BatchReport(
        batch_id=row.id,
        name=row.name,
        effective_date=row.effective_date,
        executed_at=row.executed_at,
        people=mover_count,
        people_done=mover_count - len(open_people),
        operations=total,
        by_target=by_target,
        failures=tuple(failures),
    )
    with engine.begin() as conn:
        conn.execute(
            s.rotation_batch.update()
            .where(s.rotation_batch.c.id == batch_id)
            .values(report=result.counts())
        )
    return result


def rotation_batches(engine: Engine, at: dt.date, actor: str) -> str | None:
    """The scheduler pre-step (``pasa.service.scheduler.PRE_STEPS``): batches due at ``at``."""
    return execute_due(engine, at, actor)
