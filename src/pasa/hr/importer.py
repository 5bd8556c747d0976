"""Import an ESR-style full extract into the identity hub.

Pipeline: parse and validate (streaming) -> bulk-load accepted rows into ``hr_staging``
(COPY on PostgreSQL, chunked ``executemany`` on SQLite) -> set-based SQL for the delta against
the ``assignment`` table -> upsert organisations, sites, departments, positions, persons and
identifiers, assignments and their history -> ``hr_event`` rows -> audit.

Every problem goes to ``hr_quarantine``. The ``hr_import`` row and the quarantine are committed
before the hub is changed, so a crash still leaves evidence; the hub changes, the events, the
import's final status and the audit entry commit together in one transaction.

Mass-termination guard: when the assignments absent from this full extract would end more than
``guard_threshold`` of the active assignments of the file's organisations (a truncated file),
the import is *held*: new and changed rows are applied, the ended events are stored with state
``held`` and nothing is ended until :func:`approve_import`.

A *partial* (delta) file (``partial=True``, e.g. a rotation batch) only adds and changes:
absence from it ends nothing, the guard does not apply, it never supersedes held imports, and
a supervisor missing from the file but already in the hub is kept.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from pasa.audit import log as audit
from pasa.clock import now as _clock_now
from pasa.domain.errors import InputFileError, NotFoundError, PasaError
from pasa.hr import passport_link
from pasa.hr.esr import (
    SUPERVISOR_FIELD,
    ExtractReader,
    ExtractRow,
    RowProblem,
    cleared_supervisor_hash,
    extract_values,
)
from pasa.store import schema
from pasa.store.schema import Json, Timestamp, hr_import, hr_quarantine, hr_staging

CHUNK = 20_000
EMPLOYEE_SCHEME = "esr_employee_number"

_STAGING_COLUMNS = (
    "import_id",
    "row_number",
    "row_hash",
    "org_code",
    "employee_number",
    "assignment_number",
    "title",
    "first_name",
    "middle_names",
    "last_name",
    "known_as",
    "date_of_birth",
    "ni_number",
    "email",
    "is_primary",
    "category",
    "status",
    "start_date",
    "end_date",
    "position_number",
    "position_title",
    "staff_group",
    "job_role_code",
    "area_of_work",
    "occupation_code",
    "grade_code",
    "department_code",
    "department_name",
    "cost_centre",
    "location_code",
    "location_name",
    "supervisor_assignment_number",
    "wte",
    "registration_body",
    "registration_number",
    "organisation_id",
)

# ESR field name -> staging column expression, for the JSON kept in assignment_history.
_DATA_FIELDS: tuple[tuple[str, str], ...] = (
    ("Org_Code", "s.org_code"),
    ("Employee_Number", "s.employee_number"),
    ("Assignment_Number", "s.assignment_number"),
    ("Title", "s.title"),
    ("First_Name", "s.first_name"),
    ("Middle_Names", "s.middle_names"),
    ("Last_Name", "s.last_name"),
    ("Known_As", "s.known_as"),
    ("Date_Of_Birth", "s.date_of_birth"),
    ("NI_Number", "s.ni_number"),
    ("Email_Address", "s.email"),
    ("Primary_Assignment", "CASE WHEN s.is_primary THEN 'Y' ELSE 'N' END"),
    ("Assignment_Category", "s.category"),
    ("Assignment_Status", "s.status"),
    ("Assignment_Start_Date", "s.start_date"),
    ("Assignment_End_Date", "s.end_date"),
    ("Position_Number", "s.position_number"),
    ("Position_Title", "s.position_title"),
    ("Staff_Group", "s.staff_group"),
    ("Job_Role_Code", "s.job_role_code"),
    ("Area_Of_Work", "s.area_of_work"),
    ("Occupation_Code", "s.occupation_code"),
    ("Grade_Code", "s.grade_code"),
    ("Department_Code", "s.department_code"),
    ("Department_Name", "s.department_name"),
    ("Cost_Centre", "s.cost_centre"),
    ("Location_Code", "s.location_code"),
    ("Location_Name", "s.location_name"),
    ("Supervisor_Assignment_Number", "s.supervisor_assignment_number"),
    ("WTE", "s.wte"),
    ("Registration_Body", "s.registration_body"),
    ("Registration_Number", "s.registration_number"),
)

_POSITION_JOIN = (
    "JOIN position p ON p.organisation_id = s.organisation_id "
    "AND p.position_number = s.position_number"
)

# A random version-4 UUID in SQL, for staging rows that need a new person.
_UUID_SQL = {
    "postgresql": "CAST(gen_random_uuid() AS VARCHAR(36))",
    "sqlite": (
        "lower(hex(randomblob(4))) || '-' || lower(hex(randomblob(2))) || '-4' || "
        "substr(lower(hex(randomblob(2))), 2) || '-' || "
        "substr('89ab', 1 + (abs(random()) % 4), 1) || "
        "substr(lower(hex(randomblob(2))), 2) || '-' || lower(hex(randomblob(6)))"
    ),
}


@dataclass(frozen=True, slots=True)
class ImportResult:
    """The outcome of an import, approval or rejection (counts as recorded in hr_import)."""

    import_id: int
    status: str
    filename: str
    sha256: str
    rows_total: int
    rows_accepted: int
    rows_rejected: int
    rows_warned: int
    events_new: int
    events_changed: int
    events_ended: int
    active_before: int
    guard_reason: str | None

    def summary(self) -> str:
        text = (
            f"import {self.import_id} {self.status}: {self.rows_total:,} rows, "
            f"{self.rows_accepted:,} accepted, {self.rows_rejected:,} rejected, "
            f"{self.rows_warned:,} with warnings; {self.events_new:,} new, "
            f"{self.events_changed:,} changed, {self.events_ended:,} ended"
        )
        if self.guard_reason:
            text += f". {self.guard_reason}"
        return text


class NoValidRows(InputFileError):
    """Every row was rejected: nothing imported; the rows are in the quarantine of
    ``import_id``."""

    def __init__(self, message: str, import_id: int) -> None:
        super().__init__(message)
        self.import_id = import_id


class QuarantineEntry(NamedTuple):
    """One quarantine report line (``_asdict()`` gives a JSON-ready mapping)."""

    row_number: int
    severity: str
    field: str | None
    reason: str
    value: str | None
    assignment_number: str | None


# --- small helpers --------------------------------------------------------------------------

_TYPED_PARAMS: dict[str, sa.types.TypeEngine[Any]] = {
    "now": Timestamp,
    "as_of": sa.Date(),
    "prev_day": sa.Date(),
}


def _sql(statement: str) -> sa.TextClause:
    """A text() statement whose date/time parameters are typed (so SQLite gets ISO text)."""
    clause = sa.text(statement)
    typed = [sa.bindparam(n, type_=t) for n, t in _TYPED_PARAMS.items() if f":{n}" in statement]
    return clause.bindparams(*typed) if typed else clause


def _file_sha256(path: Path) -> str:
    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


def _now() -> dt.datetime:
    return _clock_now()


def _json_fn(conn: Connection) -> str:
    return "jsonb_build_object" if conn.dialect.name == "postgresql" else "json_object"


def _data_json(conn: Connection) -> str:
    args = ", ".join(f"'{name}', {expr}" for name, expr in _DATA_FIELDS)
    return f"{_json_fn(conn)}({args})"


def _load_json(value: Any) -> dict[str, Any] | None:
    if value is None:
        return None
    if isinstance(value, str | bytes):
        loaded = json.loads(value)
        return loaded if isinstance(loaded, dict) else None
    return dict(value)


def _norm(value: Any) -> Any:
    """Compare JSON values from either backend (numbers as 2-dp text, dates as ISO)."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return f"{float(value):.2f}"
    return value


def _result(conn: Connection, import_id: int) -> ImportResult:
    row = conn.execute(sa.select(hr_import).where(hr_import.c.id == import_id)).one()
    return ImportResult(
        import_id=row.id,
        status=row.status,
        filename=row.filename,
        sha256=row.sha256,
        rows_total=row.rows_total,
        rows_accepted=row.rows_accepted,
        rows_rejected=row.rows_rejected,
        rows_warned=row.rows_warned,
        events_new=row.events_new,
        events_changed=row.events_changed,
        events_ended=row.events_ended,
        active_before=row.active_before,
        guard_reason=row.guard_reason,
    )


# --- staging ----------------------------------------------------------------------------------


def _staging_tuple(import_id: int, r: ExtractRow, org_id: int | None) -> tuple[Any, ...]:
    return (import_id, r.row_number, r.row_hash, *extract_values(r), org_id)


def _copy_line(import_id: int, r: ExtractRow, org_id: int | None) -> str:
    """One line of COPY text format; NULL is the empty string (see :func:`_flush_staging`).

    The parser guarantees accepted values hold no control characters (so no tab or line
    break) and that required values are not blank; optional blanks are ``None``.
    """
    end = r.end_date
    line = (
        f"{import_id}\t{r.row_number}\t{r.row_hash}\t{r.org_code}\t{r.employee_number}\t"
        f"{r.assignment_number}\t{r.title or ''}\t{r.first_name}\t{r.middle_names or ''}\t"
        f"{r.last_name}\t{r.known_as or ''}\t{r.date_of_birth.isoformat()}\t"
        f"{r.ni_number or ''}\t{r.email or ''}\t{'t' if r.primary else 'f'}\t{r.category}\t"
        f"{r.status}\t{r.start_date.isoformat()}\t{'' if end is None else end.isoformat()}\t"
        f"{r.position_number}\t{r.position_title}\t{r.staff_group}\t{r.job_role_code}\t"
        f"{r.area_of_work}\t{r.occupation_code}\t{r.grade_code}\t{r.department_code}\t"
        f"{r.department_name}\t{r.cost_centre}\t{r.location_code}\t{r.location_name}\t"
        f"{r.supervisor_assignment_number or ''}\t{r.wte:.2f}\t{r.registration_body or ''}\t"
        f"{r.registration_number or ''}\t{'' if org_id is None else org_id}\n"
    )
    if "\\" in line:  # free text (titles, names of places) may hold a backslash
        line = line.replace("\\", "\\\\")
    return line


def _flush_copy(conn: Connection, lines: list[str]) -> None:
    if not lines:
        return
    raw: Any = conn.connection.driver_connection
    cols = ", ".join(_STAGING_COLUMNS)
    with raw.cursor() as cur, cur.copy(f"COPY hr_staging ({cols}) FROM STDIN (NULL '')") as cp:
        cp.write("".join(lines))
    lines.clear()


def _flush_staging(conn: Connection, rows: list[tuple[Any, ...]]) -> None:
    """SQLite: chunked executemany (PostgreSQL stages through :func:`_flush_copy`)."""
    if not rows:
        return
    raw: Any = conn.connection.driver_connection
    cols = ", ".join(_STAGING_COLUMNS)

    # sqlite3: dates as ISO text (what SQLAlchemy's Date type stores and reads back).
    def iso(d: dt.date | None) -> str | None:
        return None if d is None else d.isoformat()

    converted = [(*r[:11], iso(r[11]), *r[12:17], iso(r[17]), iso(r[18]), *r[19:]) for r in rows]
    marks = ", ".join("?" for _ in _STAGING_COLUMNS)
    raw.executemany(f"INSERT INTO hr_staging ({cols}) VALUES ({marks})", converted)
    rows.clear()


def _flush_quarantine(conn: Connection, problems: list[dict[str, Any]]) -> None:
    if problems:
        conn.execute(hr_quarantine.insert(), problems)
        problems.clear()


def _stage(
    conn: Connection,
    import_id: int,
    path: Path,
    as_of: dt.date,
    progress: Callable[[int], None] | None,
    partial: bool = False,
) -> _Staged:
    reader = ExtractReader(path, today=as_of, progress=progress)
    staged: list[tuple[Any, ...]] = []
    lines: list[str] = []
    problems: list[dict[str, Any]] = []
    cleared: list[int] = []
    copy = conn.dialect.name == "postgresql"

    def flush() -> None:
        if copy:
            _flush_copy(conn, lines)
        else:
            _flush_staging(conn, staged)

    # Known organisations resolved here (read-only); new ones are created when applying.
    hub_orgs: dict[str, int] = {
        code: oid for oid, code in conn.execute(sa.text("SELECT id, ods_code FROM organisation"))
    }
    file_orgs: dict[str, int | None] = {}
    # Partial files: supervisor warnings wait until the hub has been asked (see below).
    row_orgs: dict[int, str] = {}
    sup_warnings: list[RowProblem] = []
    for item in reader:
        if type(item) is ExtractRow:
            code = item.org_code
            if partial:
                row_orgs[item.row_number] = code
            try:
                org_id = file_orgs[code]
            except KeyError:
                org_id = file_orgs[code] = hub_orgs.get(code)
            if copy:
                lines.append(_copy_line(import_id, item, org_id))
                n = len(lines)
            else:
                staged.append(_staging_tuple(import_id, item, org_id))
                n = len(staged)
            if n >= CHUNK:
                _flush_quarantine(conn, problems)
                flush()
        else:
            assert isinstance(item, RowProblem)
            if partial and item.severity == "warning" and item.field == SUPERVISOR_FIELD:
                sup_warnings.append(item)
                continue
            problems.append(
                {
                    "import_id": import_id,
                    "row_number": item.row_number,
                    "severity": item.severity,
                    "field": item.field,
                    "reason": item.reason,
                    "value": item.value,
                    "assignment_number": item.assignment_number,
                }
            )
            if item.severity == "warning" and item.field == SUPERVISOR_FIELD:
                cleared.append(item.row_number)
            if len(problems) >= CHUNK:
                flush()
                _flush_quarantine(conn, problems)
    flush()
    if sup_warnings:
        cleared += _partial_supervisors(conn, import_id, reader, sup_warnings, row_orgs, problems)
    _flush_quarantine(conn, problems)
    # Supervisors not in the file: clear them (never lose a person for a missing manager).
    if cleared:
        _analyze(conn, "hr_staging", quick=True)
    for start in range(0, len(cleared), 500):
        chunk = cleared[start : start + 500]
        hashes = conn.execute(
            sa.text(
                "SELECT row_number, row_hash FROM hr_staging "
                "WHERE import_id = :i AND row_number IN :rows"
            ).bindparams(sa.bindparam("rows", expanding=True)),
            {"i": import_id, "rows": chunk},
        ).all()
        if hashes:
            conn.execute(
                sa.text(
                    "UPDATE hr_staging SET supervisor_assignment_number = NULL, row_hash = :h "
                    "WHERE import_id = :i AND row_number = :rn"
                ),
                [{"h": cleared_supervisor_hash(h), "i": import_id, "rn": rn} for rn, h in hashes],
            )
    new_orgs = sorted(code for code, oid in file_orgs.items() if oid is None)
    return _Staged(reader, sorted(file_orgs), new_orgs)


def _partial_supervisors(
    conn: Connection,
    import_id: int,
    reader: ExtractReader,
    warnings: list[RowProblem],
    row_orgs: dict[int, str],
    problems: list[dict[str, Any]],
) -> list[int]:
    """A partial file's rows whose supervisor is not in the file: a supervisor already in the
    hub (same organisation) is kept silently; the others are warned about and cleared.
    Returns the row numbers to clear."""
    wanted = sorted({w.value or "" for w in warnings})
    known: set[tuple[str, str]] = set()
    for start in range(0, len(wanted), 500):
        known.update(
            (str(code), str(number))
            for code, number in conn.execute(
                sa.text(
                    "SELECT o.ods_code, a.assignment_number FROM assignment a "
                    "JOIN organisation o ON o.id = a.organisation_id "
                    "WHERE a.assignment_number IN :numbers"
                ).bindparams(sa.bindparam("numbers", expanding=True)),
                {"numbers": wanted[start : start + 500]},
            )
        )
    other_warned = {p["row_number"] for p in problems if p["severity"] == "warning"}
    kept: set[int] = set()
    cleared: list[int] = []
    for w in warnings:
        if (row_orgs.get(w.row_number, ""), w.value or "") in known:
            kept.add(w.row_number)
            continue
        cleared.append(w.row_number)
        problems.append(
            {
                "import_id": import_id,
                "row_number": w.row_number,
                "severity": w.severity,
                "field": w.field,
                "reason": w.reason,
                "value": w.value,
                "assignment_number": w.assignment_number,
            }
        )
    reader.rows_warned -= len(kept - other_warned - set(cleared))
    return cleared


class _Staged(NamedTuple):
    reader: ExtractReader
    org_codes: list[str]  # organisations of the accepted rows
    new_orgs: list[str]  # ... of which not in the hub when staged (organisation_id NULL)


# --- the import -------------------------------------------------------------------------------


def import_extract(
    engine: Engine,
    path: str | Path,
    *,
    actor: str,
    as_of: dt.date,
    guard_threshold: float = 0.05,
    source: str = "esr-extract",
    progress: Callable[[int], None] | None = None,
    partial: bool = False,
) -> ImportResult:
    """Import one full extract file; see the module docstring for the pipeline.

    ``partial=True``: a delta file (only the rows that change) which adds and changes but
    never ends by absence, is not guarded and supersedes no held import.
    """
    path = Path(path)
    if not path.is_file():
        raise InputFileError(f"{path}: no such file")
    digest = _file_sha256(path)
    with engine.begin() as conn:
        import_id: int = conn.execute(
            hr_import.insert()
            .values(
                source=source,
                filename=path.name,
                sha256=digest,
                as_of=as_of,
                status="received",
                started_at=_now(),
                guard_threshold=guard_threshold,
                actor=actor,
            )
            .returning(hr_import.c.id)
        ).scalar_one()

    try:
        with engine.begin() as conn:
            staged = _stage(conn, import_id, path, as_of, progress, partial)
            reader = staged.reader
            conn.execute(
                hr_import.update()
                .where(hr_import.c.id == import_id)
                .values(
                    rows_total=reader.rows_total,
                    rows_accepted=reader.rows_accepted,
                    rows_rejected=reader.rows_rejected,
                    rows_warned=reader.rows_warned,
                )
            )
            if reader.rows_accepted == 0:
                conn.execute(
                    hr_import.update()
                    .where(hr_import.c.id == import_id)
                    .values(status="failed", finished_at=_now())
                )
    except PasaError as exc:
        with engine.begin() as conn:
            conn.execute(
                hr_import.update()
                .where(hr_import.c.id == import_id)
                .values(status="failed", finished_at=_now(), guard_reason=str(exc))
            )
        raise InputFileError(f"{path.name}: {exc}") from exc
    if reader.rows_total == 0:
        raise InputFileError(f"{path.name}: has a header but no data rows; nothing was imported")
    if reader.rows_accepted == 0:
        raise NoValidRows(
            f"{path.name}: no valid rows; nothing was imported ({reader.rows_rejected:,} "
            f"rows rejected, listed in the quarantine of import {import_id})",
            import_id,
        )

    with engine.begin() as conn:
        _apply(
            conn,
            import_id,
            staged,
            as_of=as_of,
            threshold=guard_threshold,
            actor=actor,
            partial=partial,
        )
        result = _result(conn, import_id)
        audit.append(
            conn,
            actor=actor,
            action="hr.import",
            subject_type="hr_import",
            subject_id=import_id,
            details={
                "filename": path.name,
                "sha256": digest,
                "status": result.status,
                "rows_total": result.rows_total,
                "rows_accepted": result.rows_accepted,
                "rows_rejected": result.rows_rejected,
                "rows_warned": result.rows_warned,
                "events_new": result.events_new,
                "events_changed": result.events_changed,
                "events_ended": result.events_ended,
                "active_before": result.active_before,
                **({"partial": True} if partial else {}),
            },
        )
    return result


def _analyze(conn: Connection, *tables: str, quick: bool = False) -> None:
    if conn.dialect.name == "postgresql":
        for table in tables:
            if quick and table == "hr_staging":
                # A small sample (300 x 20 rows) is plenty for the row count and the join
                # of the delta, and costs a tenth of the default one on a big extract.
                conn.exec_driver_sql("SET LOCAL default_statistics_target = 20")
                conn.exec_driver_sql("ANALYZE hr_staging")
                conn.exec_driver_sql("SET LOCAL default_statistics_target TO DEFAULT")
            else:
                conn.exec_driver_sql(f"ANALYZE {table}")


def _exec(conn: Connection, statement: str, **params: Any) -> int:
    return conn.execute(_sql(statement), params).rowcount


def _scalar(conn: Connection, statement: str, **params: Any) -> int:
    return int(conn.execute(_sql(statement), params).scalar_one() or 0)


def _apply(
    conn: Connection,
    i: int,
    staged: _Staged,
    *,
    as_of: dt.date,
    threshold: float,
    actor: str,
    partial: bool = False,
) -> None:
    now = _now()
    prev_day = as_of - dt.timedelta(days=1)
    dialect = conn.dialect.name
    json_fn = _json_fn(conn)

    if dialect == "postgresql":
        # Room for the hash joins, aggregates and window sorts over a whole extract.
        conn.exec_driver_sql("SET LOCAL work_mem = '64MB'")
    # Fresh planner statistics for the bulk-loaded rows: the old ones describe the previous
    # import_id, so the planner would expect one row and pick nested loops over all of them.
    _analyze(conn, "hr_staging", quick=True)

    # Organisations not in the hub when the file was staged (name defaults to the ODS code
    # until someone names it). Rows of an organisation created here are all new; one pass
    # fills in organisation_id and the kind together.
    if staged.new_orgs:
        created = [
            int(r[0])
            for r in conn.execute(
                _sql(
                    "INSERT INTO organisation (ods_code, name, created_at) "
                    "SELECT o.code, o.code, :now FROM (SELECT DISTINCT org_code AS code "
                    "FROM hr_staging WHERE import_id = :i AND organisation_id IS NULL) o "
                    "WHERE NOT EXISTS (SELECT 1 FROM organisation x WHERE x.ods_code = o.code) "
                    "RETURNING id"
                ),
                {"i": i, "now": now},
            )
        ]
        conn.execute(
            sa.text(
                "UPDATE hr_staging SET organisation_id = o.id, kind = CASE WHEN o.id IN :created "
                "THEN 'new' END FROM organisation o WHERE hr_staging.import_id = :i "
                "AND hr_staging.organisation_id IS NULL AND o.ods_code = hr_staging.org_code"
            ).bindparams(sa.bindparam("created", expanding=True)),
            {"i": i, "created": created or [0]},
        )
    org_ids = [
        int(r[0])
        for r in conn.execute(
            sa.text("SELECT id FROM organisation WHERE ods_code IN :codes").bindparams(
                sa.bindparam("codes", expanding=True)
            ),
            {"codes": staged.org_codes},
        )
    ]
    # Integers from the database, so safe to inline (one IN list instead of a staging scan).
    file_orgs = "(" + ", ".join(str(o) for o in org_ids) + ")"

    # A newer full extract supersedes any held import of the same organisations (a partial
    # file never does: it says nothing about who is absent).
    held = (
        []
        if partial
        else [
            r[0]
            for r in conn.execute(
                _sql(
                    "SELECT DISTINCT import_id FROM hr_event WHERE state = 'held' "
                    f"AND import_id <> :i AND organisation_id IN {file_orgs}"
                ),
                {"i": i},
            )
        ]
    )
    if held:
        for old in held:
            _exec(
                conn,
                "UPDATE hr_event SET state = 'discarded' WHERE import_id = :o AND state = 'held'",
                o=old,
            )
            _exec(
                conn,
                "UPDATE hr_import SET status = 'superseded', decided_at = :now, "
                "decided_by = :actor WHERE id = :o",
                o=old,
                now=now,
                actor=f"{actor} (superseded by import {i})",
            )

    # Before the delta: a new ESR record that is a passport pre-hire person takes over their
    # provisional assignment, so the row updates that person instead of adding a duplicate.
    _link_pre_hires(conn, i, org_ids, actor=actor, now=now)

    active = "a.in_extract AND (a.end_date IS NULL OR a.end_date >= :as_of)"
    active_before = _scalar(
        conn,
        f"SELECT COUNT(*) FROM assignment a WHERE a.organisation_id IN {file_orgs} AND {active}",
        as_of=as_of,
    )

    # Delta, one join of the staged rows with the assignments: new (not present), changed
    # (hash differs, or back after being ended by absence), and how many active assignments
    # the file still lists (the rest are ended by absence). Unchanged rows are never written,
    # so an identical file costs this one join.
    counts = conn.execute(
        _sql(
            "SELECT COALESCE(SUM(CASE WHEN a.id IS NULL THEN 1 ELSE 0 END), 0), "
            "COALESCE(SUM(CASE WHEN a.id IS NOT NULL AND (NOT a.in_extract "
            "OR a.row_hash <> s.row_hash) THEN 1 ELSE 0 END), 0), "
            f"COALESCE(SUM(CASE WHEN {active} THEN 1 ELSE 0 END), 0) "
            "FROM hr_staging s LEFT JOIN assignment a ON a.organisation_id = s.organisation_id "
            "AND a.assignment_number = s.assignment_number "
            "WHERE s.import_id = :i AND s.kind IS NULL"
        ),
        {"i": i, "as_of": as_of},
    ).one()
    new_known, changed, listed = (int(c) for c in counts)
    if changed:
        _exec(
            conn,
            "UPDATE hr_staging SET assignment_id = a.id, person_id = a.person_id, "
            "kind = 'changed' FROM assignment a WHERE hr_staging.import_id = :i "
            "AND a.organisation_id = hr_staging.organisation_id "
            "AND a.assignment_number = hr_staging.assignment_number "
            "AND (NOT a.in_extract OR a.row_hash <> hr_staging.row_hash)",
            i=i,
        )
    if new_known:
        _exec(
            conn,
            "UPDATE hr_staging SET kind = 'new' WHERE import_id = :i AND kind IS NULL "
            "AND NOT EXISTS (SELECT 1 FROM assignment a "
            "WHERE a.organisation_id = hr_staging.organisation_id "
            "AND a.assignment_number = hr_staging.assignment_number)",
            i=i,
        )
    if staged.new_orgs or new_known or changed:
        _analyze(conn, "hr_staging")  # the kinds just set
    events_new = (
        _scalar(conn, "SELECT COUNT(*) FROM hr_staging WHERE import_id = :i AND kind = 'new'", i=i)
        if staged.new_orgs
        else new_known
    )
    changed_events: list[dict[str, Any]] = []
    if events_new or changed:
        _apply_delta(conn, i, now=now, dialect=dialect)
        if changed:
            changed_events = _changed_events(conn, i, as_of=as_of, now=now)
        _apply_rows(conn, i, as_of=as_of, now=now, prev_day=prev_day)

    # Ended by absence from this full extract: effective the day before as_of. A partial
    # file ends nothing by absence, so the guard has nothing to count.
    ending = 0 if partial else active_before - listed
    share = ending / active_before if active_before else 0.0
    is_held = active_before > 0 and share > threshold
    state = "held" if is_held else "applied"
    guard_reason: str | None = None
    if is_held:
        guard_reason = (
            f"would end {ending:,} of {active_before:,} active assignments "
            f"({share * 100:.1f}%), above the {threshold * 100:.1f}% guard; nothing was "
            f"ended; approve with `pasa hr approve {i}`"
        )
    if ending:
        _exec(
            conn,
            "INSERT INTO hr_event (import_id, organisation_id, assignment_number, person_id, "
            "kind, effective_date, state, changes, recorded_at) "
            f"SELECT :i, a.organisation_id, a.assignment_number, a.person_id, 'ended', "
            f":prev_day, :state, {json_fn}('reason', 'absent from the full extract'), :now "
            f"FROM assignment a WHERE a.organisation_id IN {file_orgs} AND {active} "
            "AND NOT EXISTS (SELECT 1 FROM hr_staging s WHERE s.import_id = :i "
            "AND s.organisation_id = a.organisation_id "
            "AND s.assignment_number = a.assignment_number)",
            i=i,
            as_of=as_of,
            prev_day=prev_day,
            state=state,
            now=now,
        )
        if not is_held:
            _end_from_events(conn, i, state="applied", now=now)

    if changed_events:
        conn.execute(
            _sql(
                "INSERT INTO hr_event (import_id, organisation_id, assignment_number, "
                "person_id, kind, effective_date, state, changes, recorded_at) "
                "VALUES (:i, :org, :asg, :person, :kind, :eff, 'applied', :changes, :now)"
            ).bindparams(
                sa.bindparam("eff", type_=sa.Date()),
                sa.bindparam("changes", type_=Json),
            ),
            [{**e, "i": i, "now": now} for e in changed_events],
        )
    ended_changes = sum(1 for e in changed_events if e["kind"] == "ended")

    _exec(conn, "DELETE FROM hr_staging WHERE import_id = :i", i=i)
    conn.execute(
        hr_import.update()
        .where(hr_import.c.id == i)
        .values(
            status="held" if is_held else "applied",
            finished_at=now,
            events_new=events_new,
            events_changed=len(changed_events) - ended_changes,
            events_ended=ending + ended_changes,
            active_before=active_before,
            guard_reason=guard_reason,
        )
    )


def _link_pre_hires(
    conn: Connection, i: int, org_ids: list[int], *, actor: str, now: dt.datetime
) -> None:
    """Link passport pre-hire people to their new ESR rows (exactly one candidate each way);
    report ambiguous matches as quarantine warnings for the identity team, linking nothing."""
    pre_hires = passport_link.unlinked_pre_hires(conn, org_ids)
    if not pre_hires:
        return
    st, a, pi = hr_staging, schema.assignment, schema.person_identifier
    rows = conn.execute(
        sa.select(st).where(
            st.c.import_id == i,
            st.c.organisation_id.in_(sorted({p.organisation_id for p in pre_hires})),
            ~sa.exists().where(
                a.c.organisation_id == st.c.organisation_id,
                a.c.assignment_number == st.c.assignment_number,
            ),
            # A new record: an employee number the organisation has not seen.
            ~sa.exists().where(
                pi.c.scheme == EMPLOYEE_SCHEME,
                pi.c.issuer == st.c.org_code,
                pi.c.value == st.c.employee_number,
            ),
        )
    ).all()
    links, ambiguous = passport_link.match(
        pre_hires,
        [
            passport_link.NewRow(
                row_number=r.row_number,
                organisation_id=r.organisation_id,
                employee_number=r.employee_number,
                assignment_number=r.assignment_number,
                is_primary=bool(r.is_primary),
                family_name=r.last_name,
                birth_date=r.date_of_birth,
                start_date=r.start_date,
                registration=(r.registration_body.lower(), r.registration_number)
                if r.registration_body and r.registration_number
                else None,
            )
            for r in rows
        ],
    )
    for link in links:
        passport_link.link_provisional(
            conn,
            state=link.pre_hire.state,
            organisation_id=link.pre_hire.organisation_id,
            person_id=link.pre_hire.person_id,
            employee_number=link.row.employee_number,
            assignment_number=link.row.assignment_number,
            matched_on=link.matched_on,
            actor=f"{actor} (import {i})",
            now=now,
        )
    warned: set[int] = set()
    for amb in ambiguous:
        on = (
            "registration number"
            if amb.matched_on == passport_link.BY_REGISTRATION
            else "family name, birth date and start date"
        )
        states = ", ".join(p.state[:12] for p in amb.pre_hires)
        for row in amb.rows:
            warned.add(row.row_number)
            conn.execute(
                hr_quarantine.insert().values(
                    import_id=i,
                    row_number=row.row_number,
                    severity="warning",
                    field="Registration_Number"
                    if amb.matched_on == passport_link.BY_REGISTRATION
                    else "Last_Name",
                    reason=(
                        f"ambiguous passport pre-hire match on {on} "
                        f"({len(amb.pre_hires)} pre-hire, {len(amb.rows)} ESR rows; "
                        f"verification {states}): not linked; link the right one with "
                        "`pasa passport link STATE --employee-number N`"
                    )[:1000],
                    assignment_number=row.assignment_number,
                )
            )
    if warned:
        conn.execute(
            hr_import.update()
            .where(hr_import.c.id == i)
            .values(rows_warned=hr_import.c.rows_warned + len(warned))
        )


def _apply_delta(conn: Connection, i: int, *, now: dt.datetime, dialect: str) -> None:
    """Persons, identifiers, sites, departments and positions of the new and changed rows."""
    _resolve_persons(conn, i, now=now, dialect=dialect)
    _analyze(conn, "hr_staging", "person", "person_identifier")
    _upsert_identifiers(conn, i, now=now)
    _upsert_places(conn, i)
    _analyze(conn, "site", "department", "position")


def _apply_rows(
    conn: Connection, i: int, *, as_of: dt.date, now: dt.datetime, prev_day: dt.date
) -> None:
    """hr_event rows for new assignments; insert new and update changed assignments and
    their history versions."""
    _exec(
        conn,
        "INSERT INTO hr_event (import_id, organisation_id, assignment_number, person_id, kind, "
        "effective_date, state, changes, recorded_at) "
        "SELECT :i, organisation_id, assignment_number, person_id, 'new', start_date, "
        "'applied', NULL, :now FROM hr_staging WHERE import_id = :i AND kind = 'new'",
        i=i,
        now=now,
    )

    # Assignments: insert new, update changed, then the history versions.
    _exec(
        conn,
        "INSERT INTO assignment (organisation_id, assignment_number, person_id, "
        "employee_number, position_id, category, status, is_primary, start_date, end_date, "
        "supervisor_assignment_number, wte, in_extract, row_hash, last_import_id, updated_at) "
        "SELECT s.organisation_id, s.assignment_number, s.person_id, s.employee_number, p.id, "
        "s.category, s.status, s.is_primary, s.start_date, s.end_date, "
        "s.supervisor_assignment_number, s.wte, TRUE, s.row_hash, :i, :now "
        f"FROM hr_staging s {_POSITION_JOIN} WHERE s.import_id = :i AND s.kind = 'new'",
        i=i,
        now=now,
    )
    _exec(
        conn,
        "UPDATE assignment SET employee_number = s.employee_number, "
        "position_id = s.pos_id, category = s.category, status = s.status, "
        "is_primary = s.is_primary, start_date = s.start_date, end_date = s.end_date, "
        "supervisor_assignment_number = s.supervisor_assignment_number, wte = s.wte, "
        "in_extract = TRUE, row_hash = s.row_hash, last_import_id = :i, updated_at = :now "
        f"FROM (SELECT s.*, p.id AS pos_id FROM hr_staging s {_POSITION_JOIN} "
        "WHERE s.import_id = :i AND s.kind = 'changed') s WHERE assignment.id = s.assignment_id",
        i=i,
        now=now,
    )
    _analyze(conn, "assignment", "position")
    _exec(
        conn,
        "UPDATE assignment_history SET valid_to = :prev_day WHERE valid_to IS NULL "
        "AND assignment_id IN (SELECT assignment_id FROM hr_staging "
        "WHERE import_id = :i AND kind = 'changed')",
        i=i,
        prev_day=prev_day,
    )
    _exec(
        conn,
        "INSERT INTO assignment_history (assignment_id, valid_from, valid_to, recorded_at, "
        "import_id, row_hash, data) "
        "SELECT a.id, CASE WHEN s.kind = 'new' THEN s.start_date ELSE :as_of END, "
        f"NULL, :now, :i, s.row_hash, {_data_json(conn)} "
        "FROM hr_staging s JOIN assignment a ON a.organisation_id = s.organisation_id "
        "AND a.assignment_number = s.assignment_number "
        "WHERE s.import_id = :i AND s.kind IS NOT NULL",
        i=i,
        now=now,
        as_of=as_of,
    )


def _resolve_persons(conn: Connection, i: int, *, now: dt.datetime, dialect: str) -> None:
    """person_id for every staged row: existing assignment, ESR identifier, NI+DOB, or new."""
    _exec(
        conn,
        "UPDATE hr_staging SET person_id = pi.person_id FROM person_identifier pi "
        "WHERE hr_staging.import_id = :i AND hr_staging.kind = 'new' "
        "AND hr_staging.person_id IS NULL "
        f"AND pi.scheme = '{EMPLOYEE_SCHEME}' AND pi.issuer = hr_staging.org_code "
        "AND pi.value = hr_staging.employee_number",
        i=i,
    )
    # The same human employed by another organisation: same NI number and date of birth.
    _exec(
        conn,
        "UPDATE hr_staging SET person_id = (SELECT MIN(p.id) FROM person p "
        "WHERE p.ni_number = hr_staging.ni_number "
        "AND p.date_of_birth = hr_staging.date_of_birth AND NOT EXISTS "
        "(SELECT 1 FROM person_identifier pi WHERE pi.person_id = p.id "
        f"AND pi.scheme = '{EMPLOYEE_SCHEME}' AND pi.issuer = hr_staging.org_code)) "
        "WHERE import_id = :i AND kind = 'new' AND person_id IS NULL "
        "AND ni_number IS NOT NULL AND EXISTS (SELECT 1 FROM person p "
        "WHERE p.ni_number = hr_staging.ni_number)",
        i=i,
    )
    # One new person per human in this file: by NI number + DOB, else by employee number;
    # the uid is the smallest of random UUIDs drawn for the group's rows.
    unmatched = _exec(
        conn,
        # MATERIALIZED: the random draw happens once, even if the planner rescans g.
        "WITH g AS MATERIALIZED (SELECT row_number AS rn, "
        f"MIN({_UUID_SQL[dialect]}) OVER (PARTITION BY "
        "CASE WHEN ni_number IS NULL THEN org_code ELSE ni_number END, "
        "CASE WHEN ni_number IS NULL THEN employee_number "
        "ELSE CAST(date_of_birth AS VARCHAR(10)) END) AS uid "
        "FROM hr_staging WHERE import_id = :i AND kind = 'new' AND person_id IS NULL) "
        "UPDATE hr_staging SET new_uid = g.uid FROM g "
        "WHERE hr_staging.import_id = :i AND hr_staging.row_number = g.rn",
        i=i,
    )
    if not unmatched:
        _update_persons(conn, i, now=now)
        return
    _exec(
        conn,
        "INSERT INTO person (uid, title, first_name, middle_names, last_name, known_as, "
        "date_of_birth, ni_number, email, created_at, updated_at) "
        "SELECT new_uid, title, first_name, middle_names, last_name, known_as, "
        "date_of_birth, ni_number, email, :now, :now FROM (SELECT s.*, ROW_NUMBER() OVER "
        "(PARTITION BY new_uid ORDER BY is_primary DESC, row_number) AS rk "
        "FROM hr_staging s WHERE import_id = :i AND new_uid IS NOT NULL "
        "AND person_id IS NULL) x WHERE x.rk = 1",
        i=i,
        now=now,
    )
    _exec(
        conn,
        "UPDATE hr_staging SET person_id = p.id FROM person p "
        "WHERE hr_staging.import_id = :i AND hr_staging.person_id IS NULL "
        "AND p.uid = hr_staging.new_uid",
        i=i,
    )
    _update_persons(conn, i, now=now)


def _update_persons(conn: Connection, i: int, *, now: dt.datetime) -> None:
    # Existing persons: take names and contact details from their (primary) changed row.
    _exec(
        conn,
        "UPDATE person SET title = x.title, first_name = x.first_name, "
        "middle_names = x.middle_names, last_name = x.last_name, known_as = x.known_as, "
        "date_of_birth = x.date_of_birth, ni_number = x.ni_number, email = x.email, "
        "updated_at = :now FROM (SELECT s.*, ROW_NUMBER() OVER (PARTITION BY person_id "
        "ORDER BY is_primary DESC, row_number) AS rk FROM hr_staging s "
        "WHERE import_id = :i AND kind IS NOT NULL) x "
        "WHERE x.rk = 1 AND person.id = x.person_id AND ("
        "person.title IS DISTINCT FROM x.title OR person.first_name <> x.first_name "
        "OR person.middle_names IS DISTINCT FROM x.middle_names "
        "OR person.last_name <> x.last_name OR person.known_as IS DISTINCT FROM x.known_as "
        "OR person.date_of_birth IS DISTINCT FROM x.date_of_birth "
        "OR person.ni_number IS DISTINCT FROM x.ni_number "
        "OR person.email IS DISTINCT FROM x.email)",
        i=i,
        now=now,
    )


def _upsert_identifiers(conn: Connection, i: int, *, now: dt.datetime) -> None:
    _exec(
        conn,
        "INSERT INTO person_identifier (person_id, scheme, value, issuer, created_at) "
        f"SELECT MIN(s.person_id), '{EMPLOYEE_SCHEME}', s.employee_number, s.org_code, :now "
        "FROM hr_staging s WHERE s.import_id = :i AND s.kind IS NOT NULL AND NOT EXISTS "
        "(SELECT 1 FROM person_identifier pi WHERE pi.scheme = "
        f"'{EMPLOYEE_SCHEME}' AND pi.issuer = s.org_code AND pi.value = s.employee_number) "
        "GROUP BY s.org_code, s.employee_number",
        i=i,
        now=now,
    )
    _exec(
        conn,
        "INSERT INTO person_identifier (person_id, scheme, value, issuer, created_at) "
        "SELECT MIN(s.person_id), LOWER(s.registration_body), s.registration_number, '', "
        ":now FROM hr_staging s WHERE s.import_id = :i AND s.kind IS NOT NULL "
        "AND s.registration_number IS NOT NULL AND NOT EXISTS "
        "(SELECT 1 FROM person_identifier pi WHERE pi.scheme = LOWER(s.registration_body) "
        "AND pi.issuer = '' AND pi.value = s.registration_number) "
        "GROUP BY LOWER(s.registration_body), s.registration_number",
        i=i,
        now=now,
    )


def _upsert_places(conn: Connection, i: int) -> None:
    """Sites, departments and positions named by new or changed rows."""
    delta = "FROM hr_staging WHERE import_id = :i AND kind IS NOT NULL"
    _exec(
        conn,
        "INSERT INTO site (organisation_id, code, name) "
        "SELECT s.organisation_id, s.location_code, MAX(s.location_name) FROM hr_staging s "
        "WHERE s.import_id = :i AND s.kind IS NOT NULL AND NOT EXISTS (SELECT 1 FROM site x "
        "WHERE x.organisation_id = s.organisation_id AND x.code = s.location_code) "
        "GROUP BY s.organisation_id, s.location_code",
        i=i,
    )
    _exec(
        conn,
        "UPDATE site SET name = x.name FROM (SELECT organisation_id, location_code, "
        f"MAX(location_name) AS name {delta} GROUP BY organisation_id, location_code) x "
        "WHERE site.organisation_id = x.organisation_id AND site.code = x.location_code "
        "AND site.name <> x.name",
        i=i,
    )
    _exec(
        conn,
        "INSERT INTO department (organisation_id, code, name, cost_centre) "
        "SELECT s.organisation_id, s.department_code, MAX(s.department_name), "
        "MAX(s.cost_centre) FROM hr_staging s WHERE s.import_id = :i AND s.kind IS NOT NULL "
        "AND NOT EXISTS (SELECT 1 FROM department x WHERE x.organisation_id = "
        "s.organisation_id AND x.code = s.department_code) "
        "GROUP BY s.organisation_id, s.department_code",
        i=i,
    )
    _exec(
        conn,
        "UPDATE department SET name = x.name, cost_centre = x.cost_centre FROM "
        "(SELECT organisation_id, department_code, MAX(department_name) AS name, "
        f"MAX(cost_centre) AS cost_centre {delta} GROUP BY organisation_id, department_code) x "
        "WHERE department.organisation_id = x.organisation_id "
        "AND department.code = x.department_code "
        "AND (department.name <> x.name OR department.cost_centre <> x.cost_centre)",
        i=i,
    )
    latest = (
        "(SELECT x.*, d.id AS department_id, st.id AS site_id FROM (SELECT s.*, "
        "ROW_NUMBER() OVER (PARTITION BY s.organisation_id, s.position_number "
        "ORDER BY s.row_number DESC) AS rk FROM hr_staging s "
        "WHERE s.import_id = :i AND s.kind IS NOT NULL) x "
        "JOIN department d ON d.organisation_id = x.organisation_id "
        "AND d.code = x.department_code "
        "JOIN site st ON st.organisation_id = x.organisation_id AND st.code = x.location_code "
        "WHERE x.rk = 1)"
    )
    _exec(
        conn,
        "INSERT INTO position (organisation_id, position_number, title, staff_group, "
        "job_role_code, area_of_work, occupation_code, grade_code, department_id, site_id) "
        "SELECT y.organisation_id, y.position_number, y.position_title, y.staff_group, "
        "y.job_role_code, y.area_of_work, y.occupation_code, y.grade_code, y.department_id, "
        f"y.site_id FROM {latest} y WHERE NOT EXISTS (SELECT 1 FROM position p "
        "WHERE p.organisation_id = y.organisation_id "
        "AND p.position_number = y.position_number)",
        i=i,
    )
    _exec(
        conn,
        "UPDATE position SET title = y.position_title, staff_group = y.staff_group, "
        "job_role_code = y.job_role_code, area_of_work = y.area_of_work, "
        "occupation_code = y.occupation_code, grade_code = y.grade_code, "
        f"department_id = y.department_id, site_id = y.site_id FROM {latest} y "
        "WHERE position.organisation_id = y.organisation_id "
        "AND position.position_number = y.position_number AND ("
        "position.title <> y.position_title OR position.staff_group <> y.staff_group "
        "OR position.job_role_code <> y.job_role_code "
        "OR position.area_of_work <> y.area_of_work "
        "OR position.occupation_code <> y.occupation_code "
        "OR position.grade_code <> y.grade_code OR position.department_id <> y.department_id "
        "OR position.site_id <> y.site_id)",
        i=i,
    )


def _changed_events(
    conn: Connection, i: int, *, as_of: dt.date, now: dt.datetime
) -> list[dict[str, Any]]:
    """One event per changed row with the fields that changed ({field: [old, new]}).

    An end date newly set or brought forward makes the event ``ended`` effective on that
    date; an end date moved later is ``changed``.
    """
    rows = conn.execute(
        _sql(
            "SELECT s.organisation_id, s.assignment_number, s.person_id, "
            f"{_data_json(conn)} AS new_data, h.data AS old_data, a.in_extract "
            "FROM hr_staging s JOIN assignment a ON a.id = s.assignment_id "
            # The last recorded version: the one with no later version. (A MAX subquery in
            # the join condition, or a join with a grouped subquery, can be planned as a
            # loop over the whole history per changed row: quadratic.)
            "LEFT JOIN assignment_history h ON h.assignment_id = s.assignment_id "
            "AND NOT EXISTS (SELECT 1 FROM assignment_history h2 "
            "WHERE h2.assignment_id = h.assignment_id AND h2.id > h.id) "
            "WHERE s.import_id = :i AND s.kind = 'changed' ORDER BY s.row_number"
        ),
        {"i": i},
    )
    events: list[dict[str, Any]] = []
    for org_id, asg, person_id, new_raw, old_raw, in_extract in rows:
        new = _load_json(new_raw) or {}
        old = _load_json(old_raw) or {}
        changes: dict[str, Any] = {
            k: [old.get(k), v] for k, v in new.items() if _norm(old.get(k)) != _norm(v)
        }
        if not in_extract:
            changes["reinstated"] = True
        end_new = new.get("Assignment_End_Date")
        kind, effective = "changed", as_of
        end_old = old.get("Assignment_End_Date")
        # A new end date, or one brought forward, ends the assignment on that date; one
        # moved later (an extension, a trainee's next rotation) is an ordinary change.
        if end_new and (not end_old or str(end_new)[:10] < str(end_old)[:10]):
            kind, effective = "ended", dt.date.fromisoformat(str(end_new)[:10])
        events.append(
            {
                "org": org_id,
                "asg": asg,
                "person": person_id,
                "kind": kind,
                "eff": effective,
                "changes": changes,
            }
        )
    return events


def _end_from_events(conn: Connection, i: int, *, state: str, now: dt.datetime) -> None:
    """End the assignments named by the import's absence-ended events in ``state``."""
    events = (
        "SELECT e.organisation_id, e.assignment_number, e.effective_date FROM hr_event e "
        "WHERE e.import_id = :i AND e.kind = 'ended' AND e.state = :state"
    )
    _exec(
        conn,
        "UPDATE assignment_history SET valid_to = e.effective_date "
        f"FROM assignment a, ({events}) e WHERE assignment_history.assignment_id = a.id "
        "AND assignment_history.valid_to IS NULL AND a.organisation_id = e.organisation_id "
        "AND a.assignment_number = e.assignment_number AND a.in_extract",
        i=i,
        state=state,
    )
    _exec(
        conn,
        "UPDATE assignment SET end_date = e.effective_date, in_extract = FALSE, "
        f"last_import_id = :i, updated_at = :now FROM ({events}) e "
        "WHERE assignment.organisation_id = e.organisation_id "
        "AND assignment.assignment_number = e.assignment_number AND assignment.in_extract",
        i=i,
        state=state,
        now=now,
    )


# --- guard decisions ----------------------------------------------------------------------


def _held_import(conn: Connection, import_id: int) -> Any:
    row = conn.execute(sa.select(hr_import).where(hr_import.c.id == import_id)).first()
    if row is None:
        raise NotFoundError(f"HR import {import_id} does not exist")
    if row.status != "held":
        raise PasaError(
            f"HR import {import_id} is {row.status}, not held; only a held import can be "
            "approved or rejected"
        )
    return row


def approve_import(engine: Engine, import_id: int, *, actor: str) -> ImportResult:
    """Apply the ended events a held import is waiting on, and record who approved it."""
    now = _now()
    with engine.begin() as conn:
        row = _held_import(conn, import_id)
        # Changed-row "ended" events were applied with the import; only held ones remain.
        _end_from_events(conn, import_id, state="held", now=now)
        applied = _exec(
            conn,
            "UPDATE hr_event SET state = 'applied' WHERE import_id = :i AND state = 'held'",
            i=import_id,
        )
        conn.execute(
            hr_import.update()
            .where(hr_import.c.id == import_id)
            .values(status="approved", decided_by=actor, decided_at=now)
        )
        audit.append(
            conn,
            actor=actor,
            action="hr.approve",
            subject_type="hr_import",
            subject_id=import_id,
            details={"ended": applied, "filename": row.filename, "sha256": row.sha256},
        )
        return _result(conn, import_id)


def reject_import(engine: Engine, import_id: int, *, actor: str, reason: str) -> ImportResult:
    """Discard the ended events a held import is waiting on (new and changed stay applied)."""
    now = _now()
    with engine.begin() as conn:
        row = _held_import(conn, import_id)
        discarded = _exec(
            conn,
            "UPDATE hr_event SET state = 'discarded' WHERE import_id = :i AND state = 'held'",
            i=import_id,
        )
        conn.execute(
            hr_import.update()
            .where(hr_import.c.id == import_id)
            .values(status="rejected", decided_by=actor, decided_at=now)
        )
        audit.append(
            conn,
            actor=actor,
            action="hr.reject",
            subject_type="hr_import",
            subject_id=import_id,
            details={
                "discarded": discarded,
                "reason": reason,
                "filename": row.filename,
                "sha256": row.sha256,
            },
        )
        return _result(conn, import_id)


def quarantine(engine: Engine, import_id: int) -> list[QuarantineEntry]:
    """Every problem an import recorded, in row order."""
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(hr_quarantine)
            .where(hr_quarantine.c.import_id == import_id)
            .order_by(hr_quarantine.c.row_number, hr_quarantine.c.id)
        )
        return [
            QuarantineEntry(
                row_number=r.row_number,
                severity=r.severity,
                field=r.field,
                reason=r.reason,
                value=r.value,
                assignment_number=r.assignment_number,
            )
            for r in rows
        ]


def events(engine: Engine, import_id: int) -> list[dict[str, Any]]:
    """The events an import found (for reports and tests)."""
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text(
                "SELECT e.id, o.ods_code, e.assignment_number, e.person_id, e.kind, "
                "e.effective_date, e.state, e.changes FROM hr_event e "
                "JOIN organisation o ON o.id = e.organisation_id "
                "WHERE e.import_id = :i ORDER BY e.id"
            ).columns(effective_date=sa.Date(), changes=Json),
            {"i": import_id},
        )
        return [dict(r._mapping) for r in rows]
