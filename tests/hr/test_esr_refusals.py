"""Files that are not an ESR extract are refused with one specific sentence; nothing imported."""

from __future__ import annotations

import datetime as dt
import gzip
import io
import zipfile
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from pasa.domain.errors import InputFileError
from pasa.hr.esr import read_extract
from pasa.hr.esr_columns import COLUMNS
from pasa.hr.importer import import_extract
from pasa.store import schema as s

HEADER = ",".join(COLUMNS) + "\n"


def _zip_bytes() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("extract.csv", HEADER)
    return buf.getvalue()


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (gzip.compress(HEADER.encode()), "gzip-compressed; decompress it first"),
        (_zip_bytes(), "ZIP archive or an Excel workbook"),
        (b"%PDF-1.7\n%binary", "a PDF document"),
        (b"", "the file is empty"),
    ],
    ids=["gzip", "zip-or-xlsx", "pdf", "empty"],
)
def test_not_an_extract_is_refused_with_a_reason(
    tmp_path: Path, content: bytes, message: str
) -> None:
    path = tmp_path / "extract.csv"
    path.write_bytes(content)
    with pytest.raises(InputFileError, match=message):
        list(read_extract(path))


def test_header_only_file_imports_nothing_and_says_so(engine: Engine, tmp_path: Path) -> None:
    path = tmp_path / "header.csv"
    path.write_text(HEADER, encoding="utf-8")
    with pytest.raises(InputFileError, match="has a header but no data rows"):
        import_extract(engine, path, actor="t", as_of=dt.date(2026, 11, 24))
    with engine.connect() as conn:
        assert conn.scalar(sa.select(sa.func.count()).select_from(s.assignment)) == 0
        assert conn.scalar(sa.select(sa.func.count()).select_from(s.audit_log)) == 0
