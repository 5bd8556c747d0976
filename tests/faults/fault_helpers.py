"""Shared machinery of the fault tests: hubs, seeded joiners, the worker as a subprocess
(``--once``, or procrastinate workers for scale-out), checks of the ledger, the audit chain
and the targets, and a private PostgreSQL cluster.

Every fault test ends with the same two questions: is every operation applied exactly once
in effect (the *target* holds exactly the expected accounts and memberships, and the hub's
``external_id`` of each account is the one the target holds), and is nothing lost (every
operation ``succeeded``, none parked or left pending/running, exactly one
``operation.succeeded`` audit entry per operation, and the audit chain verifies)?
"""

from __future__ import annotations

import datetime as dt
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from pasa.audit import log as audit
from pasa.connectors.base import Connector
from pasa.connectors.kit import sample_attributes
from pasa.domain.grants import Reason
from pasa.domain.operations import OperationKind, OperationStatus, PlannedOperation
from pasa.engine.ledger import OPEN_STATUSES, record_plan
from pasa.engine.worker import WorkerReport, run_pending
from pasa.store.db import make_engine, migrate, normalise_url
from pasa.store.schema import account, audit_log, operation, person, target

REPO = Path(__file__).resolve().parents[2]
PASA = Path(sys.executable).with_name("pasa")
REASON = Reason("rule", "fault-tests", "staff", "RXX", "12345678-1")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class FakeClock:
    """An injectable ``now`` for ``run_pending``: backoff is honoured without sleeping."""

    def __init__(self, start: dt.datetime | None = None) -> None:
        self.at = start or dt.datetime.now(dt.UTC)

    def __call__(self) -> dt.datetime:
        return self.at

    def advance(self, **delta: float) -> None:
        self.at += dt.timedelta(**delta)


def no_sleep(_seconds: float) -> None:
    return None


# --- hubs -----------------------------------------------------------------------------------


def sqlite_hub(path: Path) -> str:
    """A migrated SQLite hub at ``path``; returns its URL."""
    url = f"sqlite:///{path}"
    engine = make_engine(url)
    migrate(engine)
    engine.dispose()
    return url


@contextmanager
def postgres_database(
    server_url: str, *, prefix: str = "pasa_fault", migrated: bool = True
) -> Iterator[str]:
    """A fresh database on the PostgreSQL server at ``server_url`` (migrated to PASA's
    schema unless ``migrated=False``); dropped after."""
    admin = make_engine(server_url, isolation_level="AUTOCOMMIT")
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    url = (
        sa.engine.make_url(normalise_url(server_url))
        .set(database=name)
        .render_as_string(hide_password=False)
    )
    try:
        if migrated:
            engine = make_engine(url)
            migrate(engine)
            engine.dispose()
        yield url
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


# --- seeding --------------------------------------------------------------------------------


def add_target(
    engine: Engine, key: str, connector: str, settings: dict[str, Any], *, paused: bool = False
) -> int:
    with engine.begin() as conn:
        return int(
            conn.execute(
                target.insert()
                .values(
                    key=key,
                    name=key.upper(),
                    connector=connector,
                    settings=settings,
                    username_template="{first_initial}{last_name}",
                    paused=paused,
                )
                .returning(target.c.id)
            ).scalar_one()
        )


@dataclass
class Expected:
    """What the target must hold once every operation has been applied."""

    target: str
    # username -> employee number
    accounts: dict[str, str] = field(default_factory=dict)
    # (username, kind, value)
    memberships: list[tuple[str, str, str]] = field(default_factory=list)
    operations: int = 0

    def groups(self) -> dict[str, set[str]]:
        """Group value -> usernames in it."""
        out: dict[str, set[str]] = {}
        for username, _kind, value in self.memberships:
            out.setdefault(value, set()).add(username)
        return out


def username_of(person_id: int) -> str:
    return f"u{person_id:05d}"


def employee_of(person_id: int) -> str:
    return f"{20000000 + person_id}"


def default_groups(person_id: int) -> tuple[str, ...]:
    return ("GG-All-Staff", f"GG-Team-{person_id % 7}", f"GG-Site-{person_id % 3}")


def seed_joiners(
    engine: Engine,
    target_key: str,
    people: int,
    *,
    groups: Callable[[int], Sequence[str]] = default_groups,
    chunk: int = 2500,
) -> Expected:
    """``people`` starters on ``target_key``: one create + one add per group each.

    Recorded through the real ledger (``record_plan``), a plan per ``chunk`` operations, so
    the account rows, grants and audit entries are exactly what ``pasa apply`` would write.
    """
    now = dt.datetime.now(dt.UTC)
    with engine.begin() as conn:
        conn.execute(
            person.insert(),
            [
                {
                    "id": i,
                    "uid": f"00000000-0000-0000-0000-{i:012d}",
                    "first_name": f"First{i}",
                    "last_name": f"Last{i}",
                    "created_at": now,
                    "updated_at": now,
                }
                for i in range(1, people + 1)
            ],
        )
    expected = Expected(target=target_key)
    planned: list[PlannedOperation] = []
    for i in range(1, people + 1):
        username, number = username_of(i), employee_of(i)
        expected.accounts[username] = number
        attributes = sample_attributes(
            number,
            first_name=f"First{i}",
            last_name=f"Last{i}",
            display_name=f"First{i} Last{i}",
            # A real domain: SCIM models refuse special-use ones such as .test.
            email=f"{username}@nhs.net",
        )
        planned.append(
            PlannedOperation(
                OperationKind.CREATE_ACCOUNT,
                i,
                target_key,
                username,
                {"attributes": attributes},
                (REASON,),
                f"create {username} in {target_key}",
            )
        )
        for group in groups(i):
            expected.memberships.append((username, "group", group))
            planned.append(
                PlannedOperation(
                    OperationKind.ADD_MEMBERSHIP,
                    i,
                    target_key,
                    username,
                    {"kind": "group", "value": group},
                    (REASON,),
                    f"add {username} to {group}",
                )
            )
    # Never split one person's operations over two plans (order within a plan is kept).
    batch: list[PlannedOperation] = []
    for op in planned:
        if len(batch) >= chunk and op.kind is OperationKind.CREATE_ACCOUNT:
            _record(engine, batch)
            batch = []
        batch.append(op)
    if batch:
        _record(engine, batch)
    expected.operations = len(planned)
    return expected


def _record(engine: Engine, ops: Sequence[PlannedOperation]) -> None:
    with engine.begin() as conn:
        record_plan(conn, ops, plan_id=str(uuid.uuid4()), actor="fault-test")


# --- the ledger -----------------------------------------------------------------------------


def status_counts(engine: Engine) -> dict[str, int]:
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(operation.c.status, sa.func.count()).group_by(operation.c.status)
        )
        return {str(status): int(n) for status, n in rows}


def succeeded(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(
            conn.execute(
                sa.select(sa.func.count()).where(operation.c.status == OperationStatus.SUCCEEDED)
            ).scalar_one()
        )


def drained(engine: Engine) -> bool:
    counts = status_counts(engine)
    return set(counts) <= {OperationStatus.SUCCEEDED, OperationStatus.PARKED}


def open_operations(engine: Engine) -> int:
    """Operations still to do: pending, running or waiting for a manual task."""
    with engine.connect() as conn:
        return int(
            conn.execute(
                sa.select(sa.func.count()).where(operation.c.status.in_(OPEN_STATUSES))
            ).scalar_one()
        )


def assert_ledger_clean(engine: Engine, expected: Expected) -> None:
    """Every operation succeeded exactly once, nothing parked, nothing lost; chain intact."""
    counts = status_counts(engine)
    assert counts == {OperationStatus.SUCCEEDED: expected.operations}, (
        f"ledger not clean: {counts} (expected {expected.operations:,} succeeded)"
        + _problems(engine)
    )
    with engine.connect() as conn:
        per_op: dict[str, int] = dict(
            conn.execute(
                sa.select(audit_log.c.subject_id, sa.func.count())
                .where(audit_log.c.action == "operation.succeeded")
                .group_by(audit_log.c.subject_id)
            ).all()
        )
        twice = {k: v for k, v in per_op.items() if v != 1}
        assert not twice, f"operations recorded as succeeded more than once: {twice}"
        assert len(per_op) == expected.operations, (
            f"{expected.operations - len(per_op):,} operations have no 'operation.succeeded' "
            "audit entry"
        )
        parked = conn.execute(
            sa.select(sa.func.count()).where(audit_log.c.action == "operation.parked")
        ).scalar_one()
        assert parked == 0, f"{parked} operations were parked on the way"
        result = audit.verify(conn)
        assert result.ok, f"audit chain broken: {result.problems[:5]}"


def _problems(engine: Engine, limit: int = 5) -> str:
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(
                operation.c.id, operation.c.status, operation.c.attempts, operation.c.last_error
            )
            .where(operation.c.status != OperationStatus.SUCCEEDED)
            .order_by(operation.c.id)
            .limit(limit)
        ).all()
    return "".join(f"\n  op {r.id} {r.status} after {r.attempts}: {r.last_error}" for r in rows)


def hub_external_ids(engine: Engine, target_key: str) -> dict[str, str | None]:
    """username -> external_id the hub recorded for the target's accounts."""
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(account.c.username, account.c.external_id)
            .join(target, target.c.id == account.c.target_id)
            .where(target.c.key == target_key)
        )
        return {str(u): (None if e is None else str(e)) for u, e in rows}


# --- sql_table targets ----------------------------------------------------------------------


def sql_table_settings(where: Path | str) -> dict[str, Any]:
    """A ``sql_table`` target in a SQLite file (a path) or at a database URL."""
    url = f"sqlite:///{where}" if isinstance(where, Path) else where
    return {"url": url, "table": "users", "membership_table": "user_groups"}


def assert_sql_table_holds(where: Path | str, expected: Expected, hub: Engine) -> None:
    """The target's own tables hold each expected account and membership exactly once.

    ``where`` is the SQLite file or the database URL of :func:`sql_table_settings`.
    """
    engine = make_engine(sql_table_settings(where)["url"])
    try:
        with engine.connect() as conn:
            users = [
                tuple(r)
                for r in conn.exec_driver_sql(
                    "SELECT username, external_id, employee_number FROM users ORDER BY username"
                )
            ]
            # Sorted here: a PostgreSQL collation may order text differently from Python.
            memberships = sorted(
                tuple(r)
                for r in conn.exec_driver_sql("SELECT username, kind, value FROM user_groups")
            )
    finally:
        engine.dispose()
    usernames = [u for u, _, _ in users]
    assert len(usernames) == len(set(usernames)), "an account exists twice in the target"
    missing = sorted(set(expected.accounts) - set(usernames))
    extra = sorted(set(usernames) - set(expected.accounts))
    assert not missing and not extra, (
        f"target accounts differ: {len(missing)} missing (e.g. {missing[:5]}), "
        f"{len(extra)} unexpected (e.g. {extra[:5]})"
    )
    assert {u: n for u, _, n in users} == expected.accounts
    want = sorted(expected.memberships)
    assert len(memberships) == len(set(memberships)), "a membership exists twice in the target"
    missing_m = sorted(set(want) - set(memberships))
    assert not missing_m, f"{len(missing_m)} memberships missing, e.g. {missing_m[:5]}"
    assert memberships == want
    assert hub_external_ids(hub, expected.target) == {u: e for u, e, _ in users}, (
        "the hub's external ids differ from the ones the target holds"
    )


# --- the worker as an operator runs it ------------------------------------------------------


def worker_env(db_url: str, workdir: Path, **extra: str) -> dict[str, str]:
    return {
        **os.environ,
        "PASA_DATABASE_URL": db_url,
        "PASA_VAR_DIR": str(workdir / "var"),
        "PASA_ACTOR": "fault-test",
        "PASA_LOG_LEVEL": "WARNING",
        "COLUMNS": "200",
        **extra,
    }


def start_worker(
    db_url: str, workdir: Path, log_name: str = "worker.log"
) -> subprocess.Popen[bytes]:
    """``pasa worker --once --no-plan`` in the background, output to ``workdir/log_name``."""
    with (workdir / log_name).open("ab") as log:
        return subprocess.Popen(
            [str(PASA), "worker", "--once", "--no-plan"],
            cwd=workdir,
            env=worker_env(db_url, workdir),
            stdout=log,
            stderr=subprocess.STDOUT,
        )


def run_worker(
    db_url: str, workdir: Path, timeout: float = 240.0
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(PASA), "worker", "--once", "--no-plan"],
        cwd=workdir,
        env=worker_env(db_url, workdir),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def wait_for_progress(
    engine: Engine,
    process: subprocess.Popen[bytes],
    at_least: int,
    *,
    timeout: float = 120.0,
    log: Path | None = None,
) -> int:
    """Poll the ledger until ``at_least`` operations succeeded; fail if the worker ends."""
    deadline = time.monotonic() + timeout
    while True:
        done = succeeded(engine)
        if done >= at_least:
            return done
        if process.poll() is not None:
            text = log.read_text(errors="replace")[-3000:] if log else ""
            raise AssertionError(
                f"the worker ended (status {process.returncode}) after only {done:,} "
                f"operations, before the fault could be injected:\n{text}"
            )
        if time.monotonic() > deadline:
            raise AssertionError(f"only {done:,} operations succeeded within {timeout:.0f} s")
        time.sleep(0.05)


def kill_hard(process: subprocess.Popen[bytes]) -> bool:
    """SIGKILL the worker; True when it was still running and died of the signal."""
    if process.poll() is not None:
        return False
    os.kill(process.pid, signal.SIGKILL)
    process.wait(timeout=30)
    return process.returncode == -signal.SIGKILL


def drain_with_cli(db_url: str, workdir: Path, engine: Engine, runs: int = 3) -> list[str]:
    """Run ``pasa worker --once --no-plan`` until nothing is pending (at most ``runs``)."""
    outputs: list[str] = []
    for _ in range(runs):
        result = run_worker(db_url, workdir)
        outputs.append(result.stdout + result.stderr)
        assert result.returncode == 0, outputs[-1]
        assert "Traceback" not in result.stderr, result.stderr
        if drained(engine):
            break
    return outputs


# --- the worker in this process, on a controlled clock --------------------------------------


@dataclass
class InProcessDrain:
    """``run_pending`` run after run on a :class:`FakeClock` until nothing is left to do.

    Between runs the clock moves on by ``step`` (more than the longest backoff), so every
    retry is due at the next run without the test waiting for it in real time. A run that
    made no progress (the target is down) is followed by a real pause of ``idle_pause``
    seconds, so an outage costs few attempts however long it lasts in real time.
    """

    engine: Engine
    connectors: Mapping[str, Connector]
    clock: FakeClock
    max_attempts: int = 30
    backoff_base: float = 1.0
    backoff_cap: float = 4.0
    step: dt.timedelta = dt.timedelta(seconds=10)
    idle_pause: float = 0.2
    reports: list[WorkerReport] = field(default_factory=list)

    def run_once(self) -> WorkerReport:
        report = run_pending(
            self.engine,
            self.connectors,
            now=self.clock,
            max_attempts=self.max_attempts,
            backoff_base=self.backoff_base,
            backoff_cap=self.backoff_cap,
            sleep=no_sleep,
            rng=random.Random(len(self.reports)),
        )
        self.reports.append(report)
        return report

    def until_drained(self, timeout: float = 120.0) -> None:
        deadline = time.monotonic() + timeout
        while open_operations(self.engine):
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"not drained after {timeout:.0f} s and {len(self.reports)} runs: "
                    f"{status_counts(self.engine)}" + _problems(self.engine)
                )
            report = self.run_once()
            if report.retried and not report.succeeded:
                time.sleep(self.idle_pause)
            self.clock.at += self.step


class DrainThread(threading.Thread):
    """:meth:`InProcessDrain.until_drained` in a thread; :meth:`result` re-raises its error."""

    def __init__(self, drain: InProcessDrain, timeout: float = 120.0) -> None:
        super().__init__(name="fault-test-worker", daemon=True)
        self.drain = drain
        self.timeout = timeout
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            self.drain.until_drained(self.timeout)
        except BaseException as exc:
            self.error = exc

    def result(self, timeout: float) -> None:
        self.join(timeout)
        if self.is_alive():
            raise AssertionError(f"the worker thread is still running after {timeout:.0f} s")
        if self.error is not None:
            raise self.error


def wait_for(
    condition: Callable[[], bool], what: str, *, timeout: float = 60.0, poll: float = 0.05
) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(poll)


def retry_entries(engine: Engine) -> list[tuple[int, dt.datetime, dict[str, Any]]]:
    """``operation.retry`` audit entries: (operation id, when, details), oldest first."""
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(audit_log.c.subject_id, audit_log.c.at, audit_log.c.details)
            .where(audit_log.c.action == "operation.retry")
            .order_by(audit_log.c.seq)
        ).all()
    return [(int(r.subject_id), _utc(r.at), dict(r.details or {})) for r in rows]


def _utc(value: dt.datetime) -> dt.datetime:
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


# --- procrastinate workers (scale-out) -------------------------------------------------------


def start_procrastinate_worker(
    db_url: str, name: str, workdir: Path, *extra: str
) -> subprocess.Popen[bytes]:
    """``pasa worker --no-plan --name NAME`` (procrastinate), output to ``workdir/NAME.log``.

    Its audit entries carry the actor ``worker:NAME`` (``tasks._actor``).
    """
    with (workdir / f"{name}.log").open("ab") as log:
        return subprocess.Popen(
            [str(PASA), "worker", "--no-plan", "--name", name, *extra],
            cwd=workdir,
            env=worker_env(db_url, workdir, PASA_ACTOR=f"test:{name}"),
            stdout=log,
            stderr=subprocess.STDOUT,
        )


def stop_workers(workers: Sequence[subprocess.Popen[bytes]], timeout: float = 60.0) -> list[int]:
    """SIGTERM (procrastinate finishes the jobs in hand), then SIGKILL what is left.

    Returns each worker's exit status.
    """
    for w in workers:
        if w.poll() is None:
            w.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + timeout
    for w in workers:
        with suppress(subprocess.TimeoutExpired):
            w.wait(max(deadline - time.monotonic(), 0.1))
        if w.poll() is None:
            w.kill()
            w.wait(10)
    return [int(w.returncode) for w in workers]


def wait_until_drained(
    engine: Engine,
    workers: Sequence[subprocess.Popen[bytes]],
    *,
    timeout: float,
    poll: float = 0.5,
    logs: Sequence[Path] = (),
) -> float:
    """Wait until the ledger has no open operation; return the seconds it took."""
    started = time.monotonic()
    while open_operations(engine):
        elapsed = time.monotonic() - started
        dead = [w.args for w in workers if w.poll() is not None]
        if dead:
            tails = "".join(f"\n{p.name}: {p.read_text(errors='replace')[-1500:]}" for p in logs)
            raise AssertionError(f"a worker exited early: {dead}{tails}")
        if elapsed > timeout:
            with engine.connect() as conn:
                parked = conn.execute(
                    sa.select(operation.c.id, operation.c.kind, operation.c.last_error)
                    .where(operation.c.status == OperationStatus.PARKED)
                    .limit(5)
                ).all()
            raise AssertionError(
                f"not drained after {timeout:.0f}s: {status_counts(engine)} operations; "
                f"parked: {[tuple(r) for r in parked]}"
            )
        time.sleep(poll)
    return time.monotonic() - started


# --- a private PostgreSQL cluster -----------------------------------------------------------


def postgres_bin_dir() -> Path | None:
    """The newest ``/usr/lib/postgresql/*/bin`` holding initdb and pg_ctl, if any."""
    candidates = sorted(
        Path("/usr/lib/postgresql").glob("*/bin"),
        key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0,
    )
    for bin_dir in reversed(candidates):
        if (bin_dir / "initdb").exists() and (bin_dir / "pg_ctl").exists():
            return bin_dir
    for name in ("initdb", "pg_ctl"):
        if shutil.which(name) is None:
            return None
    return Path(shutil.which("pg_ctl") or "").parent


class PrivateCluster:
    """A throw-away PostgreSQL cluster in a temporary directory, on a free port.

    initdb refuses to run as root, so as root every command runs as the ``postgres`` OS user
    (``runuser``) on a directory owned by it. Trust authentication on 127.0.0.1 only.
    """

    def __init__(self, bin_dir: Path) -> None:
        self.bin_dir = bin_dir
        self.root = Path(tempfile.mkdtemp(prefix="pasa-fault-pg-"))
        self.data = self.root / "data"
        self.log = self.root / "postgres.log"
        self.port = free_port()
        self.as_postgres = os.geteuid() == 0
        if self.as_postgres:
            shutil.chown(self.root, "postgres", "postgres")
        self.url = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, *args: str, timeout: float = 120.0) -> subprocess.CompletedProcess[str]:
        command = [str(self.bin_dir / args[0]), *args[1:]]
        if self.as_postgres:
            command = ["runuser", "-u", "postgres", "--", *command]
        result = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
        if result.returncode != 0:
            tail = self.log.read_text(errors="replace")[-2000:] if self.log.exists() else ""
            raise RuntimeError(
                f"{' '.join(args[:2])} failed ({result.returncode}): "
                f"{result.stdout}{result.stderr}\n{tail}"
            )
        return result

    def init(self) -> None:
        self._run(
            "initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8",
            "--no-sync", "--no-instructions",
        )  # fmt: skip

    def _options(self) -> str:
        return (
            f"-p {self.port} -k {self.root} -h 127.0.0.1 -c fsync=off "
            "-c synchronous_commit=off -c full_page_writes=off -c max_connections=30"
        )

    def start(self) -> None:
        self._run(
            "pg_ctl", "-D", str(self.data), "-l", str(self.log), "-o", self._options(), "-w",
            "-t", "60", "start",
        )  # fmt: skip

    def stop(self, mode: str = "fast") -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "-t", "60", "stop")

    def restart(self, mode: str = "fast") -> None:
        self._run(
            "pg_ctl", "-D", str(self.data), "-l", str(self.log), "-o", self._options(), "-m",
            mode, "-w", "-t", "60", "restart",
        )  # fmt: skip

    def running(self) -> bool:
        if not (self.data / "postmaster.pid").exists():
            return False
        command = [str(self.bin_dir / "pg_ctl"), "-D", str(self.data), "status"]
        if self.as_postgres:
            command = ["runuser", "-u", "postgres", "--", *command]
        return subprocess.run(command, capture_output=True, timeout=30).returncode == 0

    def destroy(self) -> None:
        with suppress(Exception):
            if self.running():
                self.stop("immediate")
        shutil.rmtree(self.root, ignore_errors=True)
