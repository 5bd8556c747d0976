"""Shared benchmark plumbing: child-process steps, peak memory, machine facts, fresh databases.

Every measured step runs in its own freshly spawned child process, so its peak resident set
size is its own (read in the child with ``getrusage(RUSAGE_SELF)`` when the step finishes;
the parent also records ``getrusage(RUSAGE_CHILDREN)``, a running maximum over all children).
"""

from __future__ import annotations

import multiprocessing
import os
import platform
import resource
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from pasa.store.db import make_engine, migrate, normalise_url

ROOT = Path(__file__).resolve().parent.parent
WORK = ROOT / "var" / "bench"


@dataclass(frozen=True, slots=True)
class StepResult:
    """The outcome of one measured step: its own figures plus seconds and peak RSS (MiB)."""

    name: str
    seconds: float
    peak_rss_mib: float
    data: dict[str, Any]


def _child(conn: Connection, func: Callable[..., dict[str, Any]], kwargs: dict[str, Any]) -> None:
    try:
        started = time.perf_counter()
        data = func(**kwargs)
        seconds = data.pop("seconds", None)
        if seconds is None:
            seconds = time.perf_counter() - started
        peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        conn.send({"seconds": seconds, "peak_rss_mib": peak_kib / 1024, "data": data})
    except BaseException as exc:
        conn.send({"error": f"{exc.__class__.__name__}: {exc}"})
        raise
    finally:
        conn.close()


def run_step(
    name: str,
    func: Callable[..., dict[str, Any]],
    *,
    timeout: float | None = None,
    **kwargs: Any,
) -> StepResult:
    """Run ``func(**kwargs)`` in a new child process; ``func`` returns a dict of figures.

    ``func`` may put its own ``seconds`` in the dict (time of the measured part only);
    otherwise the whole call is timed. A step still running after ``timeout`` seconds is
    terminated and reported with ``data["timed_out"] = True``.
    """
    ctx = multiprocessing.get_context("spawn")
    receiver, sender = ctx.Pipe(duplex=False)
    child = ctx.Process(target=_child, args=(sender, func, kwargs), name=f"bench: {name}")
    started = time.perf_counter()
    child.start()
    sender.close()
    out: dict[str, Any] | None = None
    if receiver.poll(timeout):
        try:
            out = receiver.recv()
        except EOFError:
            out = None
    child.join(5 if out is not None else 0)
    if child.is_alive():
        child.terminate()
        child.join()
    if out is None:
        elapsed = time.perf_counter() - started
        reason = "timed out" if timeout is not None and elapsed >= timeout else "died"
        out = {"seconds": elapsed, "peak_rss_mib": 0.0, "data": {"timed_out": True}}
        print(f"  {name}: {reason} after {elapsed:.0f}s (exit code {child.exitcode})", flush=True)
        return StepResult(name, float(out["seconds"]), 0.0, out["data"])
    if "error" in out:
        raise RuntimeError(f"benchmark step {name!r} failed: {out['error']}")
    result = StepResult(name, float(out["seconds"]), float(out["peak_rss_mib"]), out["data"])
    print(
        f"  {name}: {result.seconds:.2f}s, peak RSS {result.peak_rss_mib:.0f} MiB "
        f"{_brief(result.data)}",
        flush=True,
    )
    return result


def _brief(data: dict[str, Any]) -> str:
    shown = {k: v for k, v in data.items() if isinstance(v, int | float | str) and len(str(v)) < 40}
    return " ".join(f"{k}={v}" for k, v in shown.items())


def machine_info(postgres_url: str | None) -> dict[str, str]:
    info = {
        "cpus (nproc)": str(os.cpu_count() or "?"),
        "ram": _ram(),
        "python": platform.python_version(),
        "os": f"{platform.system()} {platform.release()}",
        "cpu": _cpu_model(),
    }
    if postgres_url:
        try:
            engine = make_engine(postgres_url)
            with engine.connect() as conn:
                info["postgresql"] = str(conn.exec_driver_sql("SHOW server_version").scalar())
                for setting in ("shared_buffers", "work_mem", "max_wal_size", "synchronous_commit"):
                    value = conn.exec_driver_sql(f"SHOW {setting}").scalar()
                    info[f"pg {setting}"] = str(value)
            engine.dispose()
        except Exception as exc:  # machine info must not stop the run
            info["postgresql"] = f"unavailable ({exc.__class__.__name__})"
    return info


def _ram() -> str:
    try:
        with open("/proc/meminfo", encoding="ascii") as handle:
            for line in handle:
                if line.startswith("MemTotal:"):
                    return f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
    except OSError:
        pass
    return "?"


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "?"


@contextmanager
def fresh_database(url: str, *, keep: bool = False) -> Iterator[str]:
    """Create a new, migrated database next to ``url``; yield its URL; drop it afterwards."""
    admin = make_engine(url, isolation_level="AUTOCOMMIT")
    name = f"pasa_bench_{uuid.uuid4().hex[:10]}"
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    db_url = sa.engine.make_url(normalise_url(url)).set(database=name)
    text = db_url.render_as_string(hide_password=False)
    engine = make_engine(text)
    migrate(engine)
    engine.dispose()
    try:
        yield text
    finally:
        if not keep:
            with admin.connect() as conn:
                conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


def libpq_url(url: str) -> str:
    """A SQLAlchemy URL as plain libpq ``postgresql://`` for psycopg.connect."""
    parsed = sa.engine.make_url(normalise_url(url)).set(drivername="postgresql")
    return parsed.render_as_string(hide_password=False)


def splice_section(document: str, lines: list[str], start: str, end: str) -> str:
    """``document`` with the section between the ``start`` and ``end`` markers replaced by
    ``lines`` (appended if absent), so one benchmark can be re-run alone."""
    text = "\n".join(lines)
    if start in document and end in document:
        head, rest = document.split(start, 1)
        tail = rest.split(end, 1)[1].lstrip("\n")
        return head + text + ("\n" + tail if tail else "")
    return document.rstrip("\n") + "\n\n" + text


def synthetic_people(ids: Iterable[int], now: Any) -> list[dict[str, Any]]:
    """``person`` rows for the given ids (the benchmarks' staff seeded straight into the hub)."""
    return [
        {
            "id": i,
            "uid": f"00000000-0000-0000-0000-{i:012d}",
            "first_name": f"First{i}",
            "last_name": f"Last{i}",
            "created_at": now,
            "updated_at": now,
        }
        for i in ids
    ]
