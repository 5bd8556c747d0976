"""Streaming parser and validator for the ESR-style full extract.

One pass, constant memory apart from a compact set of assignment keys (for duplicate and
supervisor checks). Every record yields either an :class:`ExtractRow` (accepted) or one or more
:class:`RowProblem` (rejected, or accepted with a warning). One bad row never stops the file;
only an unusable header raises :class:`~pasa.domain.errors.InputFileError`.

Row numbers are record numbers as a spreadsheet shows them: the header is row 1.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import operator
import re
from array import array
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Final, Literal

from pasa.domain.errors import InputFileError
from pasa.hr.codes import (
    AREAS_OF_WORK,
    CATEGORIES,
    GRADES,
    JOB_ROLES,
    OCCUPATION_CODE_RE,
    ODS_CODE_RE,
    REGISTRATION_BODIES,
    STAFF_GROUPS,
    STATUSES,
)
from pasa.hr.esr_columns import COLUMNS

Severity = Literal["rejected", "warning"]

NCOLS: Final = len(COLUMNS)
MAX_FIELD: Final = 200
MAX_NAME: Final = 100
MAX_VALUE_SHOWN: Final = 80
SUPERVISOR_FIELD: Final = "Supervisor_Assignment_Number"
PRIMARY_FIELD: Final = "Primary_Assignment"


@dataclass(slots=True)
class ExtractRow:
    """One accepted extract row, typed. Optional text fields are ``None`` when blank."""

    row_number: int
    row_hash: str
    org_code: str
    employee_number: str
    assignment_number: str
    title: str | None
    first_name: str
    middle_names: str | None
    last_name: str
    known_as: str | None
    date_of_birth: dt.date
    ni_number: str | None
    email: str | None
    primary: bool
    category: str
    status: str
    start_date: dt.date
    end_date: dt.date | None
    position_number: str
    position_title: str
    staff_group: str
    job_role_code: str
    area_of_work: str
    occupation_code: str
    grade_code: str
    department_code: str
    department_name: str
    cost_centre: str
    location_code: str
    location_name: str
    supervisor_assignment_number: str | None
    wte: float
    registration_body: str | None
    registration_number: str | None


#: An :class:`ExtractRow`'s extract fields in column order (all but its row number and hash).
EXTRACT_FIELDS: Final = tuple(
    name for name in ExtractRow.__dataclass_fields__ if name not in ("row_number", "row_hash")
)
_EXTRACT_VALUES = operator.attrgetter(*EXTRACT_FIELDS)


def extract_values(row: ExtractRow) -> tuple[Any, ...]:
    """The row's typed values in column order (``None`` for a blank optional field)."""
    values: tuple[Any, ...] = _EXTRACT_VALUES(row)
    return values


@dataclass(frozen=True, slots=True)
class RowProblem:
    """A rejected row (or an accepted row with a warning): where, which field, why."""

    row_number: int
    field: str | None
    reason: str
    value: str | None
    severity: Severity
    assignment_number: str | None

    def describe(self) -> str:
        where = f"row {self.row_number}"
        if self.field:
            where += f", {self.field}"
        return f"{where}: {self.reason}"


def safe_value(value: str | None) -> str | None:
    """A value made safe to show anywhere: printable, at most 80 characters, no formula."""
    if value is None:
        return None
    text = value.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    if not text.isprintable():
        text = "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)
    if len(text) > MAX_VALUE_SHOWN:
        text = text[: MAX_VALUE_SHOWN - 3] + "..."
    if text[:1] in ("=", "+", "-", "@"):
        text = "'" + text
    return text


def cleared_supervisor_hash(row_hash: str) -> str:
    """Row hash of a row whose supervisor was cleared because it is not in the extract.

    Distinct from the hash of the row as written, so the row counts as changed once the
    supervisor appears in a later extract; identical across re-imports of the same file.
    """
    return hashlib.sha256(f"{row_hash}|supervisor-cleared".encode()).hexdigest()


# --- patterns --------------------------------------------------------------------------------

# A record needs a closer look (the per-field generic checks) when its text is not all
# printable (control characters, C1, undecodable bytes as surrogate escapes), contains '<',
# a field starts with a formula character or a space, or a field ends with a space.
_SEP: Final = "\x1e"
_LEADING: Final = ("=", "+", "-", "@", " ")
_LEAD: Final = re.compile("\x1e[=+\\-@ ]")  # a later field starts with a formula char/space
_TRAIL: Final = re.compile(" \x1e")  # a field ends with a space
_CONTROL: Final = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_SURROGATE: Final = re.compile("[\udc80-\udcff]")
_MARKUP: Final = re.compile(r"<\s*[A-Za-z/!?]")
_NAME: Final = re.compile(r"[^\W\d_](?:[^\W\d_]|[ '\u2019.\-]){0,99}")
_CODE: Final = re.compile(r"[0-9A-Za-z][0-9A-Za-z/_.\-]{0,39}")
_EMPLOYEE: Final = re.compile(r"[0-9]{8}")
_ASSIGNMENT: Final = re.compile(r"([0-9]{8})(?:-([1-9][0-9]?))?")
_EMAIL: Final = re.compile(
    r"[A-Za-z0-9._%+'\-]+@[A-Za-z0-9](?:[A-Za-z0-9\-]*[A-Za-z0-9])?"
    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9\-]*[A-Za-z0-9])?)+"
)
# UK National Insurance number: no D F I Q U V in either prefix letter, no O second, and
# not the never-issued prefixes BG GB KN NK NT TN ZZ; suffix A-D.
_NI: Final = re.compile(r"(?!BG|GB|KN|NK|NT|TN|ZZ)[A-CEGHJ-PR-TW-Z][A-CEGHJ-NPR-TW-Z][0-9]{6}[A-D]")
_DATE_UK: Final = re.compile(r"([0-9]{2})/([0-9]{2})/([0-9]{4})")
_DATE_ISO: Final = re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2})")
_WTE: Final = re.compile(r"[0-9]{0,2}(?:\.[0-9]{1,4})?")

_OPTIONAL: Final = frozenset(
    {
        "Title",
        "Middle_Names",
        "Known_As",
        "NI_Number",
        "Email_Address",
        "Assignment_End_Date",
        "Supervisor_Assignment_Number",
        "Registration_Body",
        "Registration_Number",
    }
)
_REQUIRED_IDX: Final = tuple(i for i, c in enumerate(COLUMNS) if c not in _OPTIONAL)


def _assignment_key(employee: str, suffix: str | None) -> int:
    return int(employee) * 100 + (int(suffix) if suffix else 0)


def _key_text(key: int) -> str:
    emp, n = divmod(key, 100)
    return f"{emp:08d}-{n}" if n else f"{emp:08d}"


def _parse_date(text: str) -> dt.date | str:
    """A date, or the reason the text is not one."""
    m = _DATE_UK.fullmatch(text)
    if m:
        d, mo, y = int(m[1]), int(m[2]), int(m[3])
    else:
        m = _DATE_ISO.fullmatch(text)
        if not m:
            return "is not a date in DD/MM/YYYY format"
        y, mo, d = int(m[1]), int(m[2]), int(m[3])
    try:
        return dt.date(y, mo, d)
    except ValueError:
        return "is not a real calendar date"


_CACHE_LIMIT: Final = 200_000


def _ok(cache: set[str], match: Callable[[str], re.Match[str] | None], value: str) -> bool:
    """``match(value)``, remembering valid values (bounded) so repeats cost a set lookup."""
    if match(value) is None:
        return False
    if len(cache) < _CACHE_LIMIT:
        cache.add(value)
    return True


def _iso(cache: dict[dt.date, str], day: dt.date) -> str:
    text = cache[day] = day.isoformat()
    return text


def _name_reason(value: str) -> str:
    if len(value) > MAX_NAME:
        return f"is {len(value)} characters long; the limit is {MAX_NAME}"
    return "contains characters that are not letters"


def _years_before(day: dt.date, years: int) -> dt.date:
    try:
        return day.replace(year=day.year - years)
    except ValueError:  # 29 February
        return day.replace(year=day.year - years, day=28)


def _generic_problems(rec: list[str]) -> list[tuple[int, str]]:
    """Field-independent problems: (column index, reason)."""
    out: list[tuple[int, str]] = []
    for i, v in enumerate(rec):
        if not v:
            continue
        if _SURROGATE.search(v):
            out.append((i, "is not valid UTF-8 (save the file as UTF-8)"))
        elif "\x00" in v:
            out.append((i, "contains a NUL byte"))
        elif _CONTROL.search(v) or _SEP in v:
            out.append((i, "contains a control character (tab, line break or similar)"))
        elif v[0] in "=+-@":
            out.append((i, f"starts with '{v[0]}', which a spreadsheet would run as a formula"))
        elif _MARKUP.search(v):
            out.append((i, "contains HTML or script markup ('<')"))
        elif len(v) > MAX_FIELD:
            out.append((i, f"is {len(v)} characters long; the limit is {MAX_FIELD}"))
    return out


class ExtractReader:
    """Iterate over an extract: yields :class:`ExtractRow` and :class:`RowProblem`.

    Counters (``rows_total``, ``rows_accepted``, ``rows_rejected``, ``rows_warned``) are
    final once iteration ends. Cross-row warnings (supervisor not in the file) come last.
    """

    def __init__(
        self,
        source: str | Path | BinaryIO,
        *,
        today: dt.date | None = None,
        progress: Callable[[int], None] | None = None,
        progress_every: int = 10_000,
    ) -> None:
        self.source = source
        self.today = today or dt.date.today()
        self.progress = progress
        self.progress_every = progress_every
        self.rows_total = 0
        self.rows_accepted = 0
        self.rows_rejected = 0
        self.rows_warned = 0

    def __iter__(self) -> Iterator[ExtractRow | RowProblem]:
        if isinstance(self.source, str | Path):
            with open(self.source, "rb") as fh:
                yield from self._decoded(fh)
        else:
            yield from self._decoded(self.source)

    def _decoded(self, binary: BinaryIO) -> Iterator[ExtractRow | RowProblem]:
        # surrogateescape: undecodable bytes survive as lone surrogates, so the one field
        # holding them is rejected ("not valid UTF-8") and the rest of the file imports.
        _refuse_known_binary(binary)
        text = io.TextIOWrapper(binary, encoding="utf-8-sig", errors="surrogateescape", newline="")
        try:
            yield from self._read(text)
        finally:
            text.detach()  # leave the caller's stream open

    # The hot loop: locals bound once, caches for repeated values, one regex on the
    # joined record decides whether the per-field generic checks are needed at all.
    def _read(self, text: io.TextIOWrapper) -> Iterator[ExtractRow | RowProblem]:
        reader = csv.reader(text, strict=False)
        try:
            header = next(reader)
        except StopIteration:
            raise InputFileError("the file is empty; expected a header row") from None
        except csv.Error as exc:
            raise InputFileError(f"the header row could not be read as CSV: {exc}") from None
        reorder = _check_header(header)

        today = self.today
        max_dob = _years_before(today, 16)
        min_dob = _years_before(today, 100)
        progress = self.progress
        every = self.progress_every
        columns = COLUMNS
        required_idx = _REQUIRED_IDX
        required = operator.itemgetter(*required_idx)
        ods_match = ODS_CODE_RE.fullmatch
        emp_match = _EMPLOYEE.fullmatch
        asg_match = _ASSIGNMENT.fullmatch
        name_match = _NAME.fullmatch
        code_match = _CODE.fullmatch
        email_match = _EMAIL.fullmatch
        ni_match = _NI.fullmatch
        occ_match = OCCUPATION_CODE_RE.fullmatch
        wte_match = _WTE.fullmatch
        staff_groups = STAFF_GROUPS
        job_roles = JOB_ROLES
        grades = GRADES
        areas = AREAS_OF_WORK
        categories = CATEGORIES
        statuses = STATUSES
        bodies = REGISTRATION_BODIES
        sha256 = hashlib.sha256
        date_cache: dict[str, dt.date] = {}
        iso_cache: dict[dt.date, str] = {}
        ok_names: set[str] = set()
        ok_codes: set[str] = set()
        wte_cache: dict[str, float] = {}
        parse_date = _parse_date
        sep = _SEP
        leading = _LEADING
        lead_search = _LEAD.search
        trail_search = _TRAIL.search

        # Within-file state, kept compact: per organisation, assignment keys seen, the
        # identity (DOB, NI) of each employee number, employees with a primary assignment.
        seen: dict[str, set[int]] = {}
        identity: dict[str, dict[int, int]] = {}
        primaries: dict[str, set[int]] = {}
        org_index: dict[str, int] = {}
        orgs: list[str] = []
        sup_rows = array("q")
        sup_org = array("l")
        sup_own = array("q")
        sup_key = array("q")

        row_number = 1
        while True:
            try:
                rec = next(reader)
            except StopIteration:
                break
            except csv.Error as exc:
                row_number += 1
                self.rows_total += 1
                self.rows_rejected += 1
                yield RowProblem(
                    row_number, None, f"could not be read as CSV: {exc}", None, "rejected", None
                )
                continue
            row_number += 1
            if progress is not None and (row_number - 1) % every == 0:
                progress(row_number - 1)
            if not rec:
                continue  # a blank line is not a record
            self.rows_total += 1
            if len(rec) != NCOLS:
                self.rows_rejected += 1
                hint = (
                    "a stray delimiter or an unquoted comma?"
                    if len(rec) > NCOLS
                    else "a missing delimiter or a truncated line?"
                )
                yield RowProblem(
                    row_number,
                    None,
                    f"has {len(rec)} fields, expected {NCOLS} ({hint})",
                    safe_value(",".join(rec)),
                    "rejected",
                    None,
                )
                continue
            if reorder is not None:
                rec = list(reorder(rec))
            joined = sep.join(rec)
            errs: list[tuple[int, str, str | None]] = []
            if (
                not "".join(rec).isprintable()
                or "<" in joined
                or lead_search(joined) is not None
                or trail_search(joined) is not None
                or joined[:1] in leading
                or joined[-1:] == " "
                or joined.count(sep) != NCOLS - 1
            ):
                if " " in joined:
                    rec = [v.strip(" ") for v in rec]
                for i, why in _generic_problems(rec):
                    errs.append((i, why, rec[i]))
                if errs:
                    self.rows_rejected += 1
                    asg_text = rec[2] if not any(i == 2 for i, _, _ in errs) else None
                    for i, why, v in errs:
                        yield RowProblem(
                            row_number,
                            columns[i],
                            f"{columns[i]} {why}",
                            safe_value(v),
                            "rejected",
                            asg_text or None,
                        )
                    continue

            if "" in required(rec):
                for i in required_idx:
                    if not rec[i]:
                        errs.append((i, "is required but blank", None))
            (
                org,
                emp,
                asg,
                title,
                first,
                middle,
                last,
                known,
                dob_s,
                ni,
                email,
                prim,
                cat,
                stat,
                sd_s,
                ed_s,
                posn,
                post,
                sg,
                jr,
                aow,
                occ,
                grade,
                dept,
                dept_name,
                cc,
                loc,
                loc_name,
                sup,
                wte_s,
                body,
                regno,
            ) = rec

            if org and not ods_match(org):
                errs.append((0, "is not an ODS code (3 to 5 capital letters or digits)", org))
            if emp and not emp_match(emp):
                errs.append((1, "is not an 8-digit employee number", emp))
            asg_m = asg_match(asg) if asg else None
            if asg and asg_m is None:
                errs.append(
                    (2, "is not an assignment number (employee number, or employee-N)", asg)
                )
            elif asg_m is not None and emp and asg_m[1] != emp:
                errs.append(
                    (2, f"is not derived from employee number {emp} ({emp} or {emp}-N)", asg)
                )
            # The name pattern also caps the length, so the common case is one set lookup.
            if title and title not in ok_names and not _ok(ok_names, name_match, title):
                errs.append((3, _name_reason(title), title))
            elif len(title) > 20:
                errs.append((3, f"is {len(title)} characters long; the limit is 20", title))
            if first and first not in ok_names and not _ok(ok_names, name_match, first):
                errs.append((4, _name_reason(first), first))
            if middle and middle not in ok_names and not _ok(ok_names, name_match, middle):
                errs.append((5, _name_reason(middle), middle))
            if last and last not in ok_names and not _ok(ok_names, name_match, last):
                errs.append((6, _name_reason(last), last))
            if known and known not in ok_names and not _ok(ok_names, name_match, known):
                errs.append((7, _name_reason(known), known))
            if len(post) > MAX_FIELD or len(dept_name) > MAX_FIELD or len(loc_name) > MAX_FIELD:
                for i in (17, 24, 27):
                    if len(rec[i]) > MAX_FIELD:
                        errs.append(
                            (
                                i,
                                f"is {len(rec[i])} characters long; the limit is {MAX_FIELD}",
                                rec[i],
                            )
                        )
            dob: dt.date | None = None
            if dob_s:
                d = date_cache.get(dob_s)
                if d is None:
                    r = parse_date(dob_s)
                    if isinstance(r, str):
                        errs.append((8, r, dob_s))
                    else:
                        d = date_cache[dob_s] = r
                if d is not None:
                    if d > today:
                        errs.append((8, "is in the future", dob_s))
                    elif d > max_dob:
                        errs.append((8, "makes the person younger than 16", dob_s))
                    elif d < min_dob:
                        errs.append((8, "makes the person older than 100", dob_s))
                    else:
                        dob = d
            if ni:
                if " " in ni or ni.islower():
                    ni = ni.replace(" ", "").upper()
                if not ni_match(ni):
                    errs.append((9, "is not a valid National Insurance number", rec[9]))
            if email and (len(email) > 254 or not email_match(email)):
                errs.append((10, "is not a valid email address", email))
            if prim and prim != "Y" and prim != "N":
                errs.append((11, "must be Y or N", prim))
            if cat and cat not in categories:
                errs.append((12, "is not a known assignment category", cat))
            if stat and stat not in statuses:
                errs.append((13, "is not a known assignment status", stat))

            start: dt.date | None = None
            if sd_s:
                start = date_cache.get(sd_s)
                if start is None:
                    r = parse_date(sd_s)
                    if isinstance(r, str):
                        errs.append((14, r, sd_s))
                    else:
                        start = date_cache[sd_s] = r
            end: dt.date | None = None
            if ed_s:
                end = date_cache.get(ed_s)
                if end is None:
                    r = parse_date(ed_s)
                    if isinstance(r, str):
                        errs.append((15, r, ed_s))
                    else:
                        end = date_cache[ed_s] = r
                if end is not None and start is not None and end < start:
                    errs.append((15, f"is before the start date {sd_s}", ed_s))

            if posn and posn not in ok_codes and not _ok(ok_codes, code_match, posn):
                errs.append((16, "is not a code (letters, digits, / _ . -; up to 40)", posn))
            if sg and sg not in staff_groups:
                errs.append((18, "is not a national staff group code (01 to 10)", sg))
            if jr:
                if jr not in job_roles:
                    errs.append((19, "is not a national job role code", jr))
                elif sg in staff_groups and jr[:2] != sg:
                    errs.append((19, f"does not belong to staff group {sg}", jr))
            if aow and aow not in areas:
                errs.append((20, "is not a known area of work", aow))
            if occ and not occ_match(occ):
                errs.append((21, "is not an occupation code (3 capital letters or digits)", occ))
            if grade and grade not in grades:
                errs.append((22, "is not a known grade code", grade))
            if dept and dept not in ok_codes and not _ok(ok_codes, code_match, dept):
                errs.append((23, "is not a code (letters, digits, / _ . -; up to 40)", dept))
            if cc and cc not in ok_codes and not _ok(ok_codes, code_match, cc):
                errs.append((25, "is not a code (letters, digits, / _ . -; up to 40)", cc))
            if loc and loc not in ok_codes and not _ok(ok_codes, code_match, loc):
                errs.append((26, "is not a code (letters, digits, / _ . -; up to 40)", loc))
            sup_m = None
            if sup:
                sup_m = asg_match(sup)
                if sup_m is None:
                    errs.append((28, "is not an assignment number", sup))
                elif sup == asg:
                    errs.append((28, "is the row's own assignment number", sup))
            wte = 0.0
            if wte_s:
                w = wte_cache.get(wte_s)
                if w is None:
                    if wte_match(wte_s) and wte_s != ".":
                        w = round(float(wte_s), 2)
                        if 0.01 <= w <= 1.0:
                            wte_cache[wte_s] = w
                        else:
                            w = None
                    if w is None:
                        errs.append((29, "is not a number from 0.01 to 1.00", wte_s))
                if w is not None:
                    wte = w
            if regno:
                if not body:
                    errs.append((30, f"is blank but a registration number {regno} is given", None))
                else:
                    pat = bodies.get(body)
                    if pat is None:
                        errs.append((30, "is not a known body (GMC, NMC, HCPC, GPhC)", body))
                    elif not pat.fullmatch(regno):
                        errs.append((31, f"is not a valid {body} registration number", regno))
            elif body:
                if body not in bodies:
                    errs.append((30, "is not a known body (GMC, NMC, HCPC, GPhC)", body))
                else:
                    errs.append((31, f"is blank but the registration body is {body}", None))

            asg_key = 0
            if not errs and asg_m is not None:
                asg_key = _assignment_key(asg_m[1], asg_m[2])
                org_seen = seen.get(org)
                if org_seen is None:
                    org_seen = seen[org] = set()
                    identity[org] = {}
                    primaries[org] = set()
                    org_index[org] = len(orgs)
                    orgs.append(org)
                if asg_key in org_seen:
                    errs.append(
                        (2, "appears more than once in this file; the first row was kept", asg)
                    )
                else:
                    emp_int = asg_key // 100
                    ident = hash((dob, ni))
                    known_ident = identity[org].get(emp_int)
                    if known_ident is None:
                        identity[org][emp_int] = ident
                    elif known_ident != ident:
                        errs.append(
                            (
                                8,
                                f"or NI_Number differs from another row of employee {emp}",
                                dob_s,
                            )
                        )
            if errs:
                self.rows_rejected += 1
                asg_text = asg or None
                for i, why, v in errs:
                    yield RowProblem(
                        row_number,
                        columns[i],
                        f"{columns[i]} {why}" + (f": {safe_value(v)}" if v else ""),
                        safe_value(v),
                        "rejected",
                        asg_text,
                    )
                continue

            seen[org].add(asg_key)
            primary = prim == "Y"
            if primary:
                org_prim = primaries[org]
                emp_int = asg_key // 100
                if emp_int in org_prim:
                    self.rows_warned += 1
                    yield RowProblem(
                        row_number,
                        PRIMARY_FIELD,
                        f"{PRIMARY_FIELD}: employee {emp} already has a primary assignment "
                        "in this file; both were accepted",
                        prim,
                        "warning",
                        asg,
                    )
                else:
                    org_prim.add(emp_int)
            if sup_m is not None:
                sup_rows.append(row_number)
                sup_org.append(org_index[org])
                sup_own.append(asg_key)
                sup_key.append(_assignment_key(sup_m[1], sup_m[2]))

            assert dob is not None and start is not None
            norm = rec.copy()
            norm[8] = iso_cache.get(dob) or _iso(iso_cache, dob)
            norm[9] = ni
            norm[14] = iso_cache.get(start) or _iso(iso_cache, start)
            norm[15] = (iso_cache.get(end) or _iso(iso_cache, end)) if end is not None else ""
            norm[29] = f"{wte:.2f}"
            row_hash = sha256(sep.join(norm).encode("utf-8")).hexdigest()
            self.rows_accepted += 1
            yield ExtractRow(
                row_number,
                row_hash,
                org,
                emp,
                asg,
                title or None,
                first,
                middle or None,
                last,
                known or None,
                dob,
                ni or None,
                email or None,
                primary,
                cat,
                stat,
                start,
                end,
                posn,
                post,
                sg,
                jr,
                aow,
                occ,
                grade,
                dept,
                dept_name,
                cc,
                loc,
                loc_name,
                sup or None,
                wte,
                body or None,
                regno or None,
            )

        if progress is not None:
            progress(row_number - 1)
        # Cross-row: a supervisor missing from the file is a warning; the row is kept.
        warned_rows: set[int] = set()
        for j in range(len(sup_rows)):
            org = orgs[sup_org[j]]
            if sup_key[j] not in seen[org]:
                rn = sup_rows[j]
                sup_text = _key_text(sup_key[j])
                if rn not in warned_rows:
                    warned_rows.add(rn)
                    self.rows_warned += 1
                yield RowProblem(
                    rn,
                    SUPERVISOR_FIELD,
                    f"{SUPERVISOR_FIELD} {sup_text} is not in this extract; the row was "
                    "accepted without a supervisor",
                    sup_text,
                    "warning",
                    _key_text(sup_own[j]),
                )


# Files people send instead of the CSV extract, recognised by their first bytes.
_BINARY_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"\x1f\x8b", "gzip-compressed; decompress it first"),
    (b"PK\x03\x04", "a ZIP archive or an Excel workbook; export the extract as CSV"),
    (b"\xd0\xcf\x11\xe0", "an old-style Excel workbook; export the extract as CSV"),
    (b"%PDF", "a PDF document, not a CSV extract"),
    (b"\x7fELF", "a program, not a CSV extract"),
)


def _refuse_known_binary(binary: BinaryIO) -> None:
    peek = getattr(binary, "peek", None)
    if peek is None:
        return
    head = bytes(peek(8)[:8])
    for magic, what in _BINARY_MAGIC:
        if head.startswith(magic):
            raise InputFileError(f"the file is {what}")


def _names(items: list[str], limit: int = 4) -> str:
    """'A, B' or 'A, B, C, D and 5 more' (column names in one short sentence)."""
    word = "column" if len(items) == 1 else "columns"
    if len(items) <= limit:
        return f"{word} " + ", ".join(items)
    return f"{word} " + ", ".join(items[:limit]) + f" and {len(items) - limit} more"


def _check_header(header: list[str]) -> Callable[[list[str]], tuple[str, ...]] | None:
    """Validate the header; return a reordering function when columns are out of order."""
    names = [safe_value(h.strip()) or "" for h in header]
    expected = set(COLUMNS)
    dupes = sorted({n for n in names if names.count(n) > 1})
    missing = [c for c in COLUMNS if c not in names]
    unknown = [n for n in names if n not in expected]
    if not expected & set(names):
        raise InputFileError(
            f"the header row ({_names([repr(n) for n in names])}) has none of the "
            f"{NCOLS} ESR extract columns; is this an ESR full extract?"
        )
    problems = []
    if missing:
        problems.append("missing " + _names(missing))
    if unknown:
        problems.append("unknown " + _names([repr(u) for u in unknown]))
    if dupes:
        problems.append("duplicated " + _names(dupes))
    if problems:
        raise InputFileError("the header row has " + "; ".join(problems) + ".")
    if tuple(names) == COLUMNS:
        return None
    order = [names.index(c) for c in COLUMNS]
    getter = operator.itemgetter(*order)
    return getter


def read_extract(
    source: str | Path | BinaryIO,
    *,
    today: dt.date | None = None,
    progress: Callable[[int], None] | None = None,
) -> Iterator[ExtractRow | RowProblem]:
    """Stream an extract file (path or binary stream): accepted rows and problems."""
    return iter(ExtractReader(source, today=today, progress=progress))


def format_row(values: dict[str, str]) -> list[str]:
    """A record in column order from a mapping of ESR field name to text (for writers)."""
    return [values.get(c, "") for c in COLUMNS]
