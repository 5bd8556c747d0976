"""HR changes pushed by API go through the same import as a file.

The pushed records (:mod:`pasa.hr.push`) are written as a delta extract and imported with
:func:`pasa.hr.importer.import_extract` (``partial=True``, source ``hr-push``): the same field
validation and quarantine, the same change detection and effective-dated events, the same
audit. Absence from a push ends nothing (only an explicit ``Assignment_End_Date`` does). A
sender may only push records of its own organisation; a record of another one refuses the
whole request before anything is stored. Each quarantined row is reported with the sender's
own reference (record number or SCIM ``bulkId``), so nothing is lost silently.
"""

from __future__ import annotations

import datetime as dt
import tempfile
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.engine import Engine

from pasa.domain.errors import PasaError
from pasa.hr.importer import ImportResult, NoValidRows, import_extract, quarantine
from pasa.hr.push import PushRows

SOURCE = "hr-push"


@dataclass(frozen=True, slots=True)
class PushProblem:
    reference: str  # the sender's: "record 3" or a SCIM bulkId
    row_number: int  # the row of the import's file (record n is row n + 1)
    severity: str  # rejected | warning
    field: str | None
    reason: str


class PushRefused(PasaError):
    """The push as a whole is refused (nothing imported); ``problems`` says why per record
    when the records themselves were at fault."""

    def __init__(self, message: str, problems: tuple[PushProblem, ...] = ()) -> None:
        super().__init__(message)
        self.problems = problems


@dataclass(frozen=True, slots=True)
class PushResult:
    result: ImportResult
    problems: tuple[PushProblem, ...]


def push(
    engine: Engine,
    rows: PushRows,
    *,
    organisation: str,
    actor: str,
    as_of: dt.date,
) -> PushResult:
    """Import pushed rows for ``organisation`` (the sender's), as at ``as_of``."""
    org = organisation.upper()
    foreign = sorted(code or "(none)" for code in rows.organisations - {org})
    if foreign:
        raise PushRefused(
            f"records for organisation(s) {', '.join(foreign)}: this sender may only push "
            f"records of {org} (nothing was imported)"
        )
    with tempfile.TemporaryDirectory(prefix="pasa-push-") as tmp:
        path = Path(tmp) / f"hr-push-{org}-{dt.datetime.now(dt.UTC):%Y%m%dT%H%M%S%f}.csv"
        path.write_text(rows.csv_text, encoding="utf-8")
        try:
            result = import_extract(
                engine, path, actor=actor, as_of=as_of, source=SOURCE, partial=True
            )
        except NoValidRows as exc:
            problems = _problems(engine, rows, exc.import_id)
            raise PushRefused(
                f"no valid record among {len(rows.references):,}; nothing was imported "
                f"(import {exc.import_id} holds them in its quarantine)",
                problems,
            ) from None
    return PushResult(result, _problems(engine, rows, result.import_id))


def _problems(engine: Engine, rows: PushRows, import_id: int) -> tuple[PushProblem, ...]:
    return tuple(
        PushProblem(
            reference=rows.reference_of_row(q.row_number) or f"row {q.row_number}",
            row_number=q.row_number,
            severity=q.severity,
            field=q.field,
            reason=q.reason,
        )
        for q in quarantine(engine, import_id)
    )
