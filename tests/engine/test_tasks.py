"""Executing operations as procrastinate jobs: deferring, partitions, pausing, stalled jobs.

PostgreSQL tests use a database of their own (procrastinate's tables are created in it);
they are skipped without ``PASA_TEST_POSTGRES_URL``.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import sqlalchemy as sa
from pasa_engine_helpers import RecordFn, add_people, add_target, joiner
from sqlalchemy.engine import Engine

from pasa.audit import log as audit
from pasa.clock import FixedClock
from pasa.domain.errors import ConfigurationError, NotFoundError
from pasa.engine import tasks
from pasa.engine.ledger import record_plan
from pasa.service import scheduler
from pasa.store.db import make_engine, migrate, normalise_url
from pasa.store.schema import audit_log, operation, target

POSTGRES_URL = os.environ.get("PASA_TEST_POSTGRES_URL")
PASA = str(Path(sys.executable).with_name("pasa"))


@pytest.fixture
def pg_url(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A fresh, migrated PostgreSQL database of this test's own; PASA_DATABASE_URL names it."""
    if not POSTGRES_URL:
        pytest.skip("PASA_TEST_POSTGRES_URL not set (make test sets it)")
    admin = make_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    name = f"pasa_tasks_{uuid.uuid4().hex[:12]}"
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    url = (
        sa.engine.make_url(normalise_url(POSTGRES_URL))
        .set(database=name)
        .render_as_string(hide_password=False)
    )
    eng = make_engine(url)
    migrate(eng)
    eng.dispose()
    monkeypatch.setenv("PASA_DATABASE_URL", url)
    try:
        yield url
    finally:
        tasks._engines.pop(url, None)
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


@pytest.fixture
def pg(pg_url: str) -> Iterator[Engine]:
    eng = make_engine(pg_url)
    tasks.ensure_schema(eng)
    yield eng
    eng.dispose()


def _record(engine: Engine, ops: list[Any]) -> None:
    with engine.begin() as conn:
        record_plan(conn, ops, plan_id=f"plan-{uuid.uuid4().hex[:6]}", actor="tester")


def _joiners(engine: Engine, tkey: str, people: range) -> None:
    _record(engine, [o for i in people for o in joiner(i, tkey, f"user{i}")])


def _jobs(engine: Engine, task: str = "pasa.drain") -> list[tuple[str, str]]:
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text(
                "SELECT lock, status::text FROM procrastinate_jobs WHERE task_name = :t "
                "ORDER BY lock, status::text"
            ),
            {"t": task},
        ).all()
    return [(r.lock, r.status) for r in rows]


def _sql_target(
    engine: Engine, tmp_path: Path, key: str = "app", *, paused: bool = False, **settings: Any
) -> int:
    url = f"sqlite:///{tmp_path / f'{key}.db'}"
    return add_target(engine, key, "sql_table", {"url": url, **settings}, paused=paused)


# --- deferring -----------------------------------------------------------------------------


def test_the_schema_is_created_once(pg: Engine) -> None:
    assert tasks.ensure_schema(pg) is False  # the fixture created it; a second start keeps it
    with pg.connect() as conn:
        assert conn.execute(sa.text("SELECT to_regclass('procrastinate_jobs')")).scalar()


def test_deferring_creates_one_job_per_due_partition_and_never_twice(
    pg: Engine, pg_url: str, tmp_path: Path
) -> None:
    add_people(pg, 12)
    _sql_target(pg, tmp_path, "app", concurrency=3)
    _sql_target(pg, tmp_path, "paced", rate_per_minute=600, concurrency=8)
    _sql_target(pg, tmp_path, "later")
    _joiners(pg, "app", range(1, 13))
    _joiners(pg, "paced", range(1, 5))
    _joiners(pg, "later", range(1, 3))
    with pg.begin() as conn:  # every operation of "later" waits for a retry next hour
        later_id = conn.execute(sa.select(target.c.id).where(target.c.key == "later")).scalar()
        conn.execute(
            operation.update()
            .where(operation.c.target_id == later_id)
            .values(not_before=dt.datetime.now(dt.UTC) + dt.timedelta(hours=1))
        )

    with tasks.using(pg_url):
        first = tasks.dispatch(pg)
        second = tasks.dispatch(pg)

    expected = ["app 0/3", "app 1/3", "app 2/3", "paced 0/1"]
    assert sorted(str(d) for d in first.deferred) == expected
    assert second.deferred == ()
    assert sorted(str(d) for d in second.already_queued) == expected
    assert _jobs(pg) == [
        ("pasa.drain:app:0/3", "todo"),
        ("pasa.drain:app:1/3", "todo"),
        ("pasa.drain:app:2/3", "todo"),
        ("pasa.drain:paced:0/1", "todo"),
    ]
    # Once the retry falls due, the next tick picks the waiting target up.
    later = tasks.due_drains(pg, dt.datetime.now(dt.UTC) + dt.timedelta(hours=2))
    assert [str(d) for d in later if d.target == "later"] == ["later 1/4", "later 2/4"]


def test_only_partitions_with_due_operations_get_jobs(pg: Engine, tmp_path: Path) -> None:
    add_people(pg, 8)
    _sql_target(pg, tmp_path, "app", concurrency=4)
    _joiners(pg, "app", [2, 6])  # both in partition 2 of 4
    assert [str(d) for d in tasks.due_drains(pg)] == ["app 2/4"]


def test_a_paused_target_gets_no_jobs_and_resuming_brings_them(
    pg: Engine, pg_url: str, tmp_path: Path
) -> None:
    add_people(pg, 4)
    _sql_target(pg, tmp_path, "app", concurrency=2)
    _sql_target(pg, tmp_path, "other", concurrency=1)
    _joiners(pg, "app", range(1, 5))
    _joiners(pg, "other", range(1, 5))

    assert tasks.set_paused(pg, "app", True, actor="tester") is True
    assert tasks.set_paused(pg, "app", True, actor="tester") is False  # already paused
    with tasks.using(pg_url):
        paused = tasks.dispatch(pg)
        assert [str(d) for d in paused.deferred] == ["other 0/1"]
        assert tasks.set_paused(pg, "app", False, actor="tester") is True
        resumed = tasks.dispatch(pg)
    assert [str(d) for d in resumed.deferred] == ["app 0/2", "app 1/2"]
    assert [lock for lock, _ in _jobs(pg)] == [
        "pasa.drain:app:0/2",
        "pasa.drain:app:1/2",
        "pasa.drain:other:0/1",
    ]
    with pg.connect() as conn:
        actions = conn.execute(
            sa.select(audit_log.c.action, audit_log.c.subject_id, audit_log.c.actor).where(
                audit_log.c.subject_type == "target"
            )
        ).all()
        assert [tuple(a) for a in actions] == [
            ("target.paused", "app", "tester"),
            ("target.resumed", "app", "tester"),
        ]
        assert audit.verify(conn).ok


def test_pausing_an_unknown_target_names_the_known_ones(pg: Engine, tmp_path: Path) -> None:
    _sql_target(pg, tmp_path, "app")
    with pytest.raises(NotFoundError, match=r"no target 'nope' \(targets: app\)"):
        tasks.set_paused(pg, "nope", True, actor="tester")


def test_a_bad_concurrency_setting_is_refused_and_leaves_other_targets_alone(
    pg: Engine, tmp_path: Path
) -> None:
    add_people(pg, 2)
    _sql_target(pg, tmp_path, "bad", concurrency=0)
    _sql_target(pg, tmp_path, "good", concurrency=1)
    _joiners(pg, "bad", range(1, 3))
    _joiners(pg, "good", range(1, 3))
    assert [str(d) for d in tasks.due_drains(pg)] == ["good 0/1"]
    with pytest.raises(ConfigurationError, match="concurrency must be between 1 and 64"):
        tasks.drain(pg, "bad")


# --- executing -----------------------------------------------------------------------------


@pytest.mark.parametrize("db_url", ["sqlite", "postgresql"], indirect=True)
def test_a_drain_executes_its_partition_only(
    engine: Engine, record: RecordFn, tmp_path: Path
) -> None:
    add_people(engine, 9)
    _sql_target(engine, tmp_path, "app", concurrency=3)
    record([o for i in range(1, 10) for o in joiner(i, "app", f"user{i}", ("staff", "ward"))])

    report = tasks.drain(engine, "app", 1, 3)

    assert report.succeeded == 9  # people 1, 4 and 7: a create and two memberships each
    with engine.connect() as conn:
        rows = conn.execute(sa.select(operation.c.person_id, operation.c.status)).all()
    done = {p for p, status in rows if status == "succeeded"}
    assert done == {1, 4, 7}
    assert all(status == "pending" for p, status in rows if p % 3 != 1)


def test_drain_jobs_run_by_a_procrastinate_worker_carry_out_every_operation(
    pg: Engine, pg_url: str, tmp_path: Path
) -> None:
    add_people(pg, 30)
    _sql_target(pg, tmp_path, "app", concurrency=3)
    # A target whose database refuses connections: its operations wait for a retry.
    add_target(pg, "down", "sql_table", {"url": "postgresql://nobody@127.0.0.1:9/none"})
    _joiners(pg, "app", range(1, 31))
    _joiners(pg, "down", range(1, 2))

    with tasks.using(pg_url):
        tasks.dispatch(pg)
    tasks.run_worker(pg, pg_url, plan=False, wait=False, name="test-worker")

    with pg.connect() as conn:
        statuses = dict(
            conn.execute(
                sa.select(operation.c.status, sa.func.count()).group_by(operation.c.status)
            ).all()
        )
        actors = set(
            conn.execute(
                sa.select(audit_log.c.actor).where(audit_log.c.action == "operation.succeeded")
            ).scalars()
        )
        jobs_left = conn.execute(
            sa.text("SELECT count(*) FROM procrastinate_jobs WHERE task_name = 'pasa.drain'")
        ).scalar()
    assert statuses == {"succeeded": 60, "pending": 2}  # one failing target blocks no other
    assert actors == {"worker:test-worker"}
    assert jobs_left == 0  # successful jobs are deleted


def test_a_job_stops_after_its_batch_and_queues_its_partition_again(
    pg: Engine, pg_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tasks, "BATCH", 4)
    add_people(pg, 5)
    _sql_target(pg, tmp_path, "app", concurrency=1)
    _joiners(pg, "app", range(1, 6))  # 10 operations: jobs of 4, 4 and 2

    with tasks.using(pg_url):
        tasks.dispatch(pg)
    tasks.run_worker(pg, pg_url, plan=False, wait=False, name="batches")

    with pg.connect() as conn:
        left = conn.execute(
            sa.select(sa.func.count()).where(operation.c.status != "succeeded")
        ).scalar()
        per_entry = conn.execute(
            sa.select(sa.func.count()).where(audit_log.c.action == "operation.succeeded")
        ).scalar()
    assert left == 0
    assert per_entry == 10


def test_the_in_process_tick_runs_the_same_task_function_on_sqlite(
    engine: Engine, record: RecordFn, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert engine.dialect.name == "sqlite"  # the embedded default
    add_people(engine, 4)
    _sql_target(engine, tmp_path, "app")
    _sql_target(engine, tmp_path, "held", paused=True)
    record([o for i in range(1, 5) for o in joiner(i, "app", f"user{i}")])
    record([o for i in range(1, 3) for o in joiner(i, "held", f"user{i}")])
    calls: list[tuple[Any, ...]] = []
    real = tasks.drain

    def spy(*args: Any, **kwargs: Any) -> Any:
        calls.append(args[1:])
        return real(*args, **kwargs)

    monkeypatch.setattr(tasks, "drain", spy)
    report = scheduler.tick(engine, FixedClock(dt.datetime.now(dt.UTC)), plan=False)

    assert calls == [()]  # every target, one partition
    assert report.worker.succeeded == 8
    assert report.worker.skipped_paused == 4  # the paused target waits


@pytest.fixture
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Only the parametrised tests above use both backends; the rest use :func:`pg_url`."""
    if getattr(request, "param", "sqlite") == "sqlite":
        template: Path = request.getfixturevalue("_sqlite_template")
        path = tmp_path / "pasa.db"
        path.write_bytes(template.read_bytes())
        return f"sqlite:///{path}"
    return str(request.getfixturevalue("pg_url"))


# --- stalled jobs --------------------------------------------------------------------------


def test_the_jobs_of_a_killed_worker_are_retried(pg: Engine, pg_url: str, tmp_path: Path) -> None:
    add_people(pg, 2)
    _sql_target(pg, tmp_path, "app", concurrency=2)
    _joiners(pg, "app", range(1, 3))
    with tasks.using(pg_url):
        tasks.dispatch(pg)
    with pg.begin() as conn:  # a worker took both jobs, then died: its heartbeat is old
        dead = conn.execute(
            sa.text(
                "INSERT INTO procrastinate_workers (last_heartbeat) "
                "VALUES (now() - interval '5 minutes') RETURNING id"
            )
        ).scalar()
        conn.execute(
            sa.text(
                "UPDATE procrastinate_jobs SET status = 'doing', worker_id = :w "
                "WHERE task_name = 'pasa.drain'"
            ),
            {"w": dead},
        )
    with tasks.using(pg_url):  # partition 1/2 meanwhile queued again by a tick
        tasks.defer_drains([tasks.Drain("app", 1, 2)])

    async def retry() -> int:
        with tasks.app.replace_connector(tasks.make_connector(pg_url)):
            async with tasks.app.open_async():
                context = SimpleNamespace(app=tasks.app)
                return await tasks.retry_stalled_jobs(context, timestamp=0)  # type: ignore[arg-type]

    assert asyncio.run(retry()) == 1
    assert _jobs(pg) == [
        ("pasa.drain:app:0/2", "todo"),  # retried
        ("pasa.drain:app:1/2", "failed"),  # the stalled one: the queued job does its work
        ("pasa.drain:app:1/2", "todo"),
    ]
    tasks.run_worker(pg, pg_url, plan=False, wait=False, name="survivor")
    with pg.connect() as conn:
        assert set(conn.execute(sa.select(operation.c.status)).scalars()) == {"succeeded"}


# --- the CLI -------------------------------------------------------------------------------


def _pasa(db: str, *args: str, ok: bool = True) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PASA_DATABASE_URL": db, "PASA_ACTOR": "ops:alice", "COLUMNS": "200"}
    result = subprocess.run(
        [PASA, *args], env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert (result.returncode == 0) is ok, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    return result


def test_pause_resume_and_list_from_the_cli_are_audited(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'pasa.db'}"
    engine = make_engine(db)
    migrate(engine)
    _sql_target(engine, tmp_path, "epr", concurrency=2, rate_per_minute=30)
    _sql_target(engine, tmp_path, "pacs")

    assert "Target epr paused" in _pasa(db, "target", "pause", "epr").stdout
    assert "already paused" in _pasa(db, "target", "pause", "epr").stdout
    listed = json.loads(_pasa(db, "target", "list", "--json").stdout)
    assert [(t["key"], t["paused"], t["concurrency"]) for t in listed] == [
        ("epr", True, 1),  # paced: one job at a time
        ("pacs", False, 4),
    ]
    assert "paused" in _pasa(db, "target", "list").stdout
    assert "Target epr resumed" in _pasa(db, "target", "resume", "epr").stdout
    missing = _pasa(db, "target", "pause", "nope", ok=False)
    assert "no target 'nope'" in missing.stderr

    with engine.connect() as conn:
        entries = conn.execute(
            sa.select(audit_log.c.actor, audit_log.c.action, audit_log.c.subject_id).order_by(
                audit_log.c.seq
            )
        ).all()
        assert [tuple(e) for e in entries] == [
            ("ops:alice", "target.paused", "epr"),
            ("ops:alice", "target.resumed", "epr"),
        ]
        assert (
            conn.execute(sa.select(target.c.paused).where(target.c.key == "epr")).scalar() is False
        )
        assert audit.verify(conn).ok
    engine.dispose()


def test_procrastinate_workers_need_postgresql() -> None:
    with pytest.raises(ConfigurationError, match="need PostgreSQL"):
        tasks.conninfo("sqlite:///var/pasa.db")
    assert tasks.conninfo("postgresql+psycopg://u:p@db:5433/pasa?sslmode=require") == (
        "postgresql://u:p@db:5433/pasa?sslmode=require"
    )
