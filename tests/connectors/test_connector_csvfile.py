"""The CSV export connector passes the conformance kit; its file is written atomically."""

from __future__ import annotations

import csv
import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pasa.connectors import build_connector
from pasa.connectors.base import Connector, PermanentError, TransientError
from pasa.connectors.csvfile import ATTRIBUTE_NAMES, CsvFileConnector, CsvFileSettings
from pasa.connectors.kit import ConnectorContract, sample_attributes
from pasa.domain.errors import ConfigurationError


def _connector(directory: Path, **options: Any) -> CsvFileConnector:
    return CsvFileConnector(
        CsvFileSettings(directory=str(directory), filename="pacs-accounts.csv", **options),
        name="pacs",
    )


def _rows(path: Path, delimiter: str = ",") -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle, delimiter=delimiter))


class TestCsvFileConnector(ConnectorContract):
    @pytest.fixture
    def connector(self, tmp_path: Path) -> Iterator[Connector]:
        yield _connector(tmp_path)


class TestCsvFileConnectorSemicolonsAndJournal(ConnectorContract):
    @pytest.fixture
    def connector(self, tmp_path: Path) -> Iterator[Connector]:
        yield _connector(tmp_path, delimiter=";", journal=True, membership_column="roles")


def test_file_layout_is_deterministic(tmp_path: Path) -> None:
    connector = _connector(tmp_path)
    connector.create("zoe", sample_attributes("22222222", first_name="Zoe"))
    connector.create("adam", sample_attributes("11111111", first_name="Adam, Jr"))
    connector.add_member("adam", "group", "radiology")
    connector.add_member("adam", "app_role", "pacs-reporter")
    connector.disable("zoe")
    path = tmp_path / "pacs-accounts.csv"
    rows = _rows(path)
    assert list(rows[0]) == [
        "username",
        "external_id",
        "enabled",
        *ATTRIBUTE_NAMES,
        "memberships",
    ]
    assert [r["username"] for r in rows] == ["adam", "zoe"]
    assert rows[0]["first_name"] == "Adam, Jr"
    assert rows[0]["memberships"] == "app_role:pacs-reporter;group:radiology"
    assert rows[0]["enabled"] == "true"
    assert rows[1]["enabled"] == "false"
    assert rows[1]["manager_employee_number"] == ""
    before = path.read_bytes()
    connector.add_member("adam", "group", "radiology")  # no change: same bytes
    connector.disable("zoe")
    assert path.read_bytes() == before
    assert oct(path.stat().st_mode & 0o777) == "0o644"
    # no temporary files left behind
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.endswith(".lock")) == [
        "pacs-accounts.csv"
    ]


def test_selected_columns_and_custom_membership_column(tmp_path: Path) -> None:
    connector = _connector(
        tmp_path, columns=("employee_number", "email"), membership_column="roles"
    )
    external_id = connector.create("jsmith", sample_attributes())
    assert connector.create("jsmith", sample_attributes()) == external_id
    connector.add_member("jsmith", "group", "radiology")
    rows = _rows(tmp_path / "pacs-accounts.csv")
    assert list(rows[0]) == [
        "username",
        "external_id",
        "enabled",
        "employee_number",
        "email",
        "roles",
    ]
    account = connector.read("jsmith")
    assert account is not None
    assert account.attributes == {"employee_number": "12345678", "email": "jane.smith@nhs.net"}
    assert account.memberships == {("group", "radiology")}


def test_journal_records_each_change_once(tmp_path: Path) -> None:
    connector = _connector(tmp_path, journal=True)
    connector.create("jsmith", sample_attributes())
    connector.create("jsmith", sample_attributes())  # idempotent repeat: no line
    connector.update("jsmith", {"last_name": "Jones"})
    connector.add_member("jsmith", "group", "radiology")
    connector.disable("jsmith")
    connector.disable("jsmith")
    connector.rename("jsmith", "jjones")
    connector.delete("jjones")
    connector.delete("jjones")
    journal = _rows(tmp_path / "pacs-accounts.changes.csv")
    assert [(r["operation"], r["username"], r["detail"]) for r in journal] == [
        ("create", "jsmith", ""),
        ("update", "jsmith", "last_name"),
        ("add_member", "jsmith", "group:radiology"),
        ("disable", "jsmith", ""),
        ("rename", "jsmith", "jjones"),
        ("delete", "jjones", ""),
    ]
    assert all(r["timestamp"].endswith("+00:00") for r in journal)


def test_a_reader_never_sees_half_a_file(tmp_path: Path) -> None:
    connector = _connector(tmp_path)
    for i in range(50):
        connector.create(f"user{i:02d}", sample_attributes(f"1{i:07d}"))
    path = tmp_path / "pacs-accounts.csv"
    stop = threading.Event()
    seen: list[int] = []

    def reader() -> None:
        while not stop.is_set():
            data = path.read_text(encoding="utf-8")
            seen.append(len(_parse(data)))

    def _parse(data: str) -> list[list[str]]:
        lines = list(csv.reader(data.splitlines()))
        assert lines[0][0] == "username"
        assert all(len(line) == len(lines[0]) for line in lines)
        return lines

    thread = threading.Thread(target=reader)
    thread.start()
    try:
        for i in range(30):
            connector.add_member(f"user{i:02d}", "group", "g" * 200)
            connector.update(f"user{i:02d}", {"job_title": "x" * (i * 50)})
    finally:
        stop.set()
        thread.join()
    assert seen and all(n == 51 for n in seen)


def test_concurrent_writers_lose_nothing(tmp_path: Path) -> None:
    first, second = _connector(tmp_path), _connector(tmp_path)

    def work(connector: CsvFileConnector, prefix: str) -> None:
        for i in range(15):
            connector.create(f"{prefix}{i:02d}", sample_attributes(f"{prefix}{i}"))

    threads = [
        threading.Thread(target=work, args=(first, "a")),
        threading.Thread(target=work, args=(second, "b")),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(list(first.list())) == 30


def test_missing_directory_is_transient(tmp_path: Path) -> None:
    connector = _connector(tmp_path / "not-mounted")
    with pytest.raises(TransientError, match="not available"):
        connector.create("jsmith", sample_attributes())
    with pytest.raises(TransientError):
        connector.read("jsmith")


def test_refused_write_is_permanent_and_leaves_no_temp_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    connector = _connector(tmp_path)
    connector.create("jsmith", sample_attributes())

    def refuse(src: str, dst: object) -> None:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(os, "replace", refuse)
    with pytest.raises(PermanentError, match="PermissionError"):
        connector.update("jsmith", {"last_name": "Jones"})
    monkeypatch.undo()
    account = connector.read("jsmith")
    assert account is not None and account.attributes["last_name"] == "Smith"
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_failed_write_is_transient(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    connector = _connector(tmp_path)

    def full(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", full)
    with pytest.raises(TransientError, match="No space left"):
        connector.create("jsmith", sample_attributes())
    monkeypatch.undo()
    assert connector.read("jsmith") is None
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_unexportable_membership_is_refused(tmp_path: Path) -> None:
    connector = _connector(tmp_path)
    connector.create("jsmith", sample_attributes())
    with pytest.raises(PermanentError, match="cannot be exported"):
        connector.add_member("jsmith", "group", "a;b")


def test_file_without_username_column_is_permanent(tmp_path: Path) -> None:
    (tmp_path / "pacs-accounts.csv").write_text("login,enabled\r\nx,true\r\n")
    with pytest.raises(PermanentError, match="no 'username' column"):
        list(_connector(tmp_path).list())


def test_registry_builds_csv_file_from_settings(tmp_path: Path) -> None:
    connector = build_connector("pacs", "csv_file", {"directory": str(tmp_path)})
    assert isinstance(connector, CsvFileConnector)
    connector.create("jsmith", sample_attributes())
    assert (tmp_path / "pacs-accounts.csv").exists()
    with pytest.raises(ConfigurationError, match="unknown setting"):
        build_connector("pacs", "csv_file", {"directory": str(tmp_path), "dir": "x"})
    with pytest.raises(ConfigurationError, match="needs a 'directory'"):
        build_connector("pacs", "csv_file", {})
    with pytest.raises(ConfigurationError, match="shoe_size"):
        build_connector("pacs", "csv_file", {"directory": "x", "columns": ["shoe_size"]})
    with pytest.raises(ConfigurationError, match="delimiter"):
        build_connector("pacs", "csv_file", {"directory": "x", "delimiter": "::"})
    with pytest.raises(ConfigurationError, match="plain file name"):
        build_connector("pacs", "csv_file", {"directory": "x", "filename": "../etc/x.csv"})
