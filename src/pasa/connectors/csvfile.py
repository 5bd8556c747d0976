"""A connector for systems that only import files: the accounts live in one CSV file.

The exported file *is* the connector's state. Every change reads the file, changes one row
and writes the whole file again **atomically** (a temporary file in the same directory,
flushed and ``fsync``-ed, then ``os.replace``-d over the old one), so a consumer that picks
the file up at any moment reads either the previous or the next complete export, never half
of one. ``read`` and ``list`` parse the file back.

Layout
    ``username``, ``external_id``, ``enabled`` (``true`` / ``false``), one column per
    attribute in ``columns`` (default every account attribute), then the membership column
    (``memberships``): ``kind:value`` pairs joined with ``;``, sorted. Rows are sorted by
    username, so the same accounts always give the same bytes. Values are text: an empty
    cell reads back as ``None``. Attributes outside ``columns`` are not exported.
Journal
    With ``journal`` on, each change that altered the file is also appended to
    ``<name>.changes.csv`` next to it (``timestamp``, ``operation``, ``username``,
    ``detail``) for systems that import deltas. The line is written before the export is
    replaced, so a crash in between gives a repeated line on retry, never a lost one.
Concurrency
    Writers take an exclusive ``flock`` on ``<filename>.lock`` in the same directory (and a
    thread lock), so several workers never lose each other's changes.
Errors
    a missing directory or any other I/O failure → :class:`TransientError` (a share that is
    not mounted comes back); permission denied → :class:`PermanentError`; a file that cannot
    be parsed → :class:`PermanentError`.
"""

from __future__ import annotations

import csv
import fcntl
import io
import os
import tempfile
import threading
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

from pasa.connectors.base import (
    ALL_CAPABILITIES,
    OWNER_ATTRIBUTE,
    Attributes,
    ConflictError,
    Connector,
    Membership,
    NotFoundError,
    PermanentError,
    RemoteAccount,
    TransientError,
    check_owner,
    reject_unknown_settings,
)
from pasa.domain.errors import ConfigurationError
from pasa.domain.grants import ACCOUNT_ATTRIBUTE_NAMES

ATTRIBUTE_NAMES = ACCOUNT_ATTRIBUTE_NAMES
FIXED_COLUMNS: Final[tuple[str, ...]] = ("username", "external_id", "enabled")
JOURNAL_COLUMNS: Final[tuple[str, ...]] = ("timestamp", "operation", "username", "detail")


@dataclass(frozen=True, slots=True)
class CsvFileSettings:
    """Where the export goes and what it holds."""

    directory: str
    filename: str
    columns: tuple[str, ...] = ATTRIBUTE_NAMES
    membership_column: str = "memberships"
    delimiter: str = ","
    journal: bool = False


@dataclass
class _Row:
    external_id: str
    enabled: bool
    attributes: dict[str, Any]
    memberships: set[Membership] = field(default_factory=set)


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


class CsvFileConnector(Connector):
    """Accounts kept as rows of one CSV export, rewritten atomically on every change."""

    capabilities = ALL_CAPABILITIES

    def __init__(self, settings: CsvFileSettings, *, name: str = "csv") -> None:
        self.settings = settings
        self.name = name
        self._check_settings()
        self.directory = Path(settings.directory)
        self.path = self.directory / settings.filename
        stem = settings.filename[:-4] if settings.filename.endswith(".csv") else settings.filename
        self.journal_path = self.directory / f"{stem}.changes.csv"
        self._lock_path = self.directory / f".{settings.filename}.lock"
        self._thread_lock = threading.Lock()

    def _check_settings(self) -> None:
        s, where = self.settings, f"target '{self.name}' (csv_file)"
        if len(s.delimiter) != 1 or s.delimiter in '\r\n"':
            raise ConfigurationError(f"{where}: delimiter must be one character (not a quote)")
        if not s.filename or "/" in s.filename or "\\" in s.filename or s.filename in (".", ".."):
            raise ConfigurationError(f"{where}: filename must be a plain file name")
        names = [*FIXED_COLUMNS, *s.columns, s.membership_column]
        clashes = sorted({n for n in names if names.count(n) > 1})
        if clashes:
            raise ConfigurationError(f"{where}: column(s) {', '.join(clashes)} appear twice")
        if not all(names):
            raise ConfigurationError(f"{where}: column names must not be empty")

    @property
    def header(self) -> list[str]:
        return [*FIXED_COLUMNS, *self.settings.columns, self.settings.membership_column]

    # -- file plumbing ---------------------------------------------------------------------

    def _io_error(self, exc: OSError, doing: str) -> Exception:
        text = f"{self.name}: cannot {doing} {self.path} ({type(exc).__name__}: {exc.strerror})"
        if isinstance(exc, PermissionError):
            return PermanentError(text)
        return TransientError(text)

    def _need_directory(self) -> None:
        if not self.directory.is_dir():
            raise TransientError(f"{self.name}: export directory {self.directory} is not available")

    @contextmanager
    def _locked(self) -> Iterator[None]:
        self._need_directory()
        with self._thread_lock:
            try:
                handle = open(self._lock_path, "a+b")  # noqa: SIM115 - held for the block
            except OSError as exc:
                raise self._io_error(exc, "lock") from None
            try:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
                yield
            finally:
                fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
                handle.close()

    def _load(self) -> dict[str, _Row]:
        self._need_directory()
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return {}
        except OSError as exc:
            raise self._io_error(exc, "read") from None
        return self._parse(text)

    def _parse(self, text: str) -> dict[str, _Row]:
        reader = csv.DictReader(io.StringIO(text, newline=""), delimiter=self.settings.delimiter)
        if reader.fieldnames is None:
            return {}
        if "username" not in reader.fieldnames:
            raise PermanentError(f"{self.name}: {self.path} has no 'username' column")
        rows: dict[str, _Row] = {}
        try:
            for record in reader:
                username = record.get("username") or ""
                if not username:
                    continue
                attributes = {
                    column: (record.get(column) or None) for column in self.settings.columns
                }
                memberships: set[Membership] = set()
                for item in (record.get(self.settings.membership_column) or "").split(";"):
                    if item:
                        kind, sep, value = item.partition(":")
                        if not sep:
                            raise PermanentError(
                                f"{self.name}: membership '{item}' of '{username}' in "
                                f"{self.path} is not kind:value"
                            )
                        memberships.add((kind, value))
                rows[username] = _Row(
                    external_id=record.get("external_id") or username,
                    enabled=(record.get("enabled") or "").strip().lower() in ("true", "1", "yes"),
                    attributes=attributes,
                    memberships=memberships,
                )
        except csv.Error as exc:
            raise PermanentError(f"{self.name}: {self.path} is not valid CSV: {exc}") from None
        return rows

    def _render(self, rows: Mapping[str, _Row]) -> str:
        buffer = io.StringIO(newline="")
        writer = csv.writer(buffer, delimiter=self.settings.delimiter, lineterminator="\r\n")
        writer.writerow(self.header)
        for username in sorted(rows):
            row = rows[username]
            writer.writerow(
                [
                    username,
                    row.external_id,
                    _text(row.enabled),
                    *(_text(row.attributes.get(c)) for c in self.settings.columns),
                    ";".join(f"{k}:{v}" for k, v in sorted(row.memberships)),
                ]
            )
        return buffer.getvalue()

    def _write(self, rows: Mapping[str, _Row]) -> None:
        """Replace the export atomically: temp file in the same directory, fsync, rename."""
        data = self._render(rows).encode("utf-8")
        temp_name: str | None = None
        try:
            fd, temp_name = tempfile.mkstemp(
                dir=self.directory, prefix=f".{self.settings.filename}.", suffix=".tmp"
            )
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            os.chmod(temp_name, 0o644)  # mkstemp's 0600 would hide the file from the importer
            os.replace(temp_name, self.path)
            temp_name = None
            self._fsync_directory()
        except OSError as exc:
            raise self._io_error(exc, "write") from None
        finally:
            if temp_name is not None:
                with suppress(OSError):
                    os.unlink(temp_name)

    def _fsync_directory(self) -> None:
        try:
            fd = os.open(self.directory, os.O_RDONLY)
        except OSError:
            return
        try:
            os.fsync(fd)
        except OSError:
            pass  # not every filesystem allows fsync of a directory
        finally:
            os.close(fd)

    def _journal(self, operation: str, username: str, detail: str) -> None:
        if not self.settings.journal:
            return
        new = not self.journal_path.exists()
        buffer = io.StringIO(newline="")
        writer = csv.writer(buffer, delimiter=self.settings.delimiter, lineterminator="\r\n")
        if new:
            writer.writerow(JOURNAL_COLUMNS)
        stamp = datetime.now(UTC).isoformat(timespec="microseconds")
        writer.writerow([stamp, operation, username, detail])
        try:
            with open(self.journal_path, "ab") as handle:
                handle.write(buffer.getvalue().encode("utf-8"))
                handle.flush()
                os.fsync(handle.fileno())
        except OSError as exc:
            raise self._io_error(exc, "append to the journal next to") from None

    def _change(
        self,
        operation: str,
        username: str,
        apply: Callable[[dict[str, _Row]], str | None],
    ) -> None:
        """Load, apply (returns a journal detail, or ``None`` when nothing changed), save."""
        with self._locked():
            rows = self._load()
            detail = apply(rows)
            if detail is None:
                return
            self._journal(operation, username, detail)
            self._write(rows)

    def _kept(self, attributes: Attributes) -> dict[str, Any]:
        return {k: v for k, v in attributes.items() if k in self.settings.columns}

    def _need(self, rows: Mapping[str, _Row], username: str) -> _Row:
        row = rows.get(username)
        if row is None:
            raise NotFoundError(f"account '{username}' is not in {self.name}'s export")
        return row

    def _changed(self, row: _Row, values: Mapping[str, Any]) -> bool:
        return any(_text(row.attributes.get(k)) != _text(v) for k, v in values.items())

    # -- the protocol ----------------------------------------------------------------------

    def create(self, username: str, attributes: Attributes) -> str:
        wanted = self._kept(attributes)
        result: list[str] = []

        def apply(rows: dict[str, _Row]) -> str | None:
            existing = rows.get(username)
            if existing is not None:
                if OWNER_ATTRIBUTE in self.settings.columns:
                    check_owner(username, existing.attributes, wanted)
                result.append(existing.external_id)
                if not self._changed(existing, wanted):
                    return None
                existing.attributes.update(wanted)
                return "attributes"
            external_id = uuid.uuid4().hex
            rows[username] = _Row(external_id, True, dict(wanted))
            result.append(external_id)
            return ""

        self._change("create", username, apply)
        return result[0]

    def update(self, username: str, changes: Attributes) -> None:
        wanted = self._kept(changes)

        def apply(rows: dict[str, _Row]) -> str | None:
            row = self._need(rows, username)
            if not self._changed(row, wanted):
                return None
            row.attributes.update(wanted)
            return ",".join(sorted(wanted))

        self._change("update", username, apply)

    def rename(self, username: str, new_username: str) -> None:
        def apply(rows: dict[str, _Row]) -> str | None:
            if username == new_username:
                self._need(rows, username)
                return None
            if new_username in rows:
                if username not in rows:
                    return None  # already renamed
                raise ConflictError(f"username '{new_username}' already exists in {self.name}")
            rows[new_username] = self._need(rows, username)
            del rows[username]
            return new_username

        self._change("rename", username, apply)

    def _set_enabled(self, username: str, enabled: bool) -> None:
        def apply(rows: dict[str, _Row]) -> str | None:
            row = self._need(rows, username)
            if row.enabled is enabled:
                return None
            row.enabled = enabled
            return ""

        self._change("enable" if enabled else "disable", username, apply)

    def enable(self, username: str) -> None:
        self._set_enabled(username, True)

    def disable(self, username: str) -> None:
        self._set_enabled(username, False)

    def delete(self, username: str) -> None:
        def apply(rows: dict[str, _Row]) -> str | None:
            return None if rows.pop(username, None) is None else ""

        self._change("delete", username, apply)

    def add_member(self, username: str, kind: str, value: str, **_: object) -> None:
        if not kind or ":" in kind or ";" in kind or ";" in value:
            raise PermanentError(
                f"{self.name}: membership {kind}:{value} cannot be exported "
                "(kind must not contain ':' or ';', value must not contain ';')"
            )

        def apply(rows: dict[str, _Row]) -> str | None:
            row = self._need(rows, username)
            if (kind, value) in row.memberships:
                return None
            row.memberships.add((kind, value))
            return f"{kind}:{value}"

        self._change("add_member", username, apply)

    def remove_member(self, username: str, kind: str, value: str) -> None:
        def apply(rows: dict[str, _Row]) -> str | None:
            row = rows.get(username)
            if row is None or (kind, value) not in row.memberships:
                return None
            row.memberships.discard((kind, value))
            return f"{kind}:{value}"

        self._change("remove_member", username, apply)

    def read(self, username: str) -> RemoteAccount | None:
        row = self._load().get(username)
        return None if row is None else _remote(username, row)

    def list(self) -> Iterator[RemoteAccount]:
        rows = self._load()
        return iter([_remote(u, rows[u]) for u in sorted(rows)])


def _remote(username: str, row: _Row) -> RemoteAccount:
    return RemoteAccount(
        username=username,
        external_id=row.external_id,
        enabled=row.enabled,
        attributes=dict(row.attributes),
        memberships=frozenset(row.memberships),
    )


def build_csv_file(target_key: str, settings: Mapping[str, Any]) -> Connector:
    """Registry factory for ``connector: csv_file``."""
    allowed = {"directory", "filename", "columns", "membership_column", "delimiter", "journal"}
    reject_unknown_settings(target_key, settings, allowed)
    directory = settings.get("directory")
    if not directory or not isinstance(directory, str):
        raise ConfigurationError(f"target '{target_key}' (csv_file) needs a 'directory' setting")
    columns: Sequence[Any] = settings.get("columns") or ATTRIBUTE_NAMES
    if isinstance(columns, str) or not isinstance(columns, Sequence):
        raise ConfigurationError(f"target '{target_key}': 'columns' must be a list of names")
    unknown = sorted(str(c) for c in columns if c not in ATTRIBUTE_NAMES)
    if unknown:
        raise ConfigurationError(
            f"target '{target_key}': unknown attribute column(s) {', '.join(unknown)}; "
            f"known: {', '.join(ATTRIBUTE_NAMES)}"
        )
    journal = settings.get("journal", False)
    if not isinstance(journal, bool):
        raise ConfigurationError(f"target '{target_key}': 'journal' must be true or false")
    return CsvFileConnector(
        CsvFileSettings(
            directory=directory,
            filename=str(settings.get("filename") or f"{target_key}-accounts.csv"),
            columns=tuple(str(c) for c in columns),
            membership_column=str(settings.get("membership_column", "memberships")),
            delimiter=str(settings.get("delimiter", ",")),
            journal=journal,
        ),
        name=target_key,
    )
