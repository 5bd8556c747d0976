"""HR import on PostgreSQL against the limit measured in the same run.

Baseline = what any loader must at least do with the same file on the same server:
``COPY`` of the file into an all-text table, plus a hash-join diff of that data against a
previous snapshot (md5 of each row computed in SQL, FULL OUTER JOIN on the key). PASA's import
(``pasa.hr.importer.import_extract``) additionally validates every field, quarantines bad
rows, maintains the identity hub (people, positions, departments, sites, identifiers) and
writes effective-dated history and events; it is reported as a ratio to the baseline.
"""

from __future__ import annotations

import datetime as dt
import importlib
import time
from pathlib import Path
from typing import Any

import psycopg

from bench.common import libpq_url
from pasa.hr.esr_columns import COLUMNS

_COLUMNS_SQL = ", ".join(f'"{c.lower()}" text' for c in COLUMNS)
_KEY = "org_code, assignment_number"


def generate_extract(path: str, staff: int, seed: int, as_of: dt.date) -> dict[str, Any]:
    """Write the synthetic extract (timed: the generator's own throughput)."""
    from pasa.hr.synthetic import generate_workforce

    started = time.perf_counter()
    summary = generate_workforce(Path(path), staff=staff, org="RXL", seed=seed, as_of=as_of)
    seconds = time.perf_counter() - started
    return {
        "seconds": seconds,
        "people": summary.people,
        "rows": summary.assignments,
        "rows_per_s": round(summary.assignments / seconds),
        "mib": round(Path(path).stat().st_size / 2**20, 1),
    }


def _copy_file(cur: psycopg.Cursor[Any], table: str, path: str) -> None:
    with (
        cur.copy(f"COPY {table} FROM STDIN WITH (FORMAT csv, HEADER true)") as copy,
        open(path, "rb") as handle,
    ):
        while block := handle.read(1 << 20):
            copy.write(block)


def _checkpoint(cur: psycopg.Cursor[Any]) -> None:
    try:
        cur.execute("CHECKPOINT")
    except psycopg.Error:
        cur.connection.rollback()


def prepare_snapshot(db_url: str, path: str) -> dict[str, Any]:
    """Untimed set-up: the 'previous snapshot' table (key + md5 of the row) of the same file."""
    with psycopg.connect(libpq_url(db_url), autocommit=True) as conn, conn.cursor() as cur:
        cur.execute("DROP TABLE IF EXISTS bench_prev, bench_old")
        cur.execute(f"CREATE TABLE bench_prev ({_COLUMNS_SQL})")
        _copy_file(cur, "bench_prev", path)
        cur.execute(
            "CREATE TABLE bench_old AS SELECT org_code, assignment_number, "
            "md5(ROW(p.*)::text) AS row_hash FROM bench_prev p"
        )
        cur.execute("DROP TABLE bench_prev")
        cur.execute("ANALYZE bench_old")
        _checkpoint(cur)
    return {}


def baseline_copy_diff(db_url: str, path: str) -> dict[str, Any]:
    """Timed: COPY the file into a new all-text table, then the hash-join diff."""
    with psycopg.connect(libpq_url(db_url)) as conn, conn.cursor() as cur:
        cur.execute("DROP TABLE IF EXISTS bench_raw")
        cur.execute(f"CREATE TABLE bench_raw ({_COLUMNS_SQL})")
        conn.commit()
        started = time.perf_counter()
        _copy_file(cur, "bench_raw", path)
        conn.commit()
        copied = time.perf_counter()
        cur.execute(
            "WITH new AS (SELECT org_code, assignment_number, md5(ROW(r.*)::text) AS row_hash "
            "FROM bench_raw r) "
            f"SELECT count(*) FROM new FULL OUTER JOIN bench_old o USING ({_KEY}) "
            "WHERE new.row_hash IS DISTINCT FROM o.row_hash"
        )
        row = cur.fetchone()
        differing = int(row[0]) if row else -1
        conn.commit()
        finished = time.perf_counter()
        cur.execute("SELECT count(*) FROM bench_raw")
        count_row = cur.fetchone()
        rows = int(count_row[0]) if count_row else 0
        cur.execute("DROP TABLE bench_raw")
        conn.commit()
        _checkpoint(cur)
    return {
        "seconds": finished - started,
        "copy_s": round(copied - started, 2),
        "diff_s": round(finished - copied, 2),
        "rows": rows,
        "rows_differing": differing,
    }


def drop_bench_tables(db_url: str) -> dict[str, Any]:
    with psycopg.connect(libpq_url(db_url), autocommit=True) as conn, conn.cursor() as cur:
        cur.execute("DROP TABLE IF EXISTS bench_prev, bench_old, bench_raw")
        _checkpoint(cur)
    return {}


def import_once(db_url: str, path: str, as_of: dt.date) -> dict[str, Any]:
    """Timed: PASA's import of the file (``pasa.hr.importer.import_extract``)."""
    from pasa.store.db import make_engine

    import_extract = importlib.import_module("pasa.hr.importer").import_extract
    engine = make_engine(db_url)
    started = time.perf_counter()
    result = import_extract(engine, Path(path), actor="bench", as_of=as_of)
    seconds = time.perf_counter() - started
    engine.dispose()
    out: dict[str, Any] = {"seconds": seconds}
    for name in (
        "status",
        "rows_accepted",
        "rows_rejected",
        "events_new",
        "events_changed",
        "events_ended",
    ):
        value = getattr(result, name, None)
        out[name] = str(value) if name == "status" else value
    return out


def importer_available() -> str | None:
    """None when ``pasa.hr.importer.import_extract`` can be imported, else the reason."""
    try:
        module = importlib.import_module("pasa.hr.importer")
    except ImportError as exc:
        return f"pasa.hr.importer is not importable yet ({exc})"
    if not hasattr(module, "import_extract"):
        return "pasa.hr.importer has no import_extract yet"
    return None
