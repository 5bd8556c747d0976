"""Three procrastinate workers drain the same 10,000 operations: shared, and each done once.

Three ``pasa worker --no-plan --name wN`` processes (procrastinate workers, as an operator
starts one per machine) share one PostgreSQL hub. 2,500 starters (an account and three
groups each: 10,000 operations) wait for an application's user table (``sql_table`` in a
PostgreSQL database of its own, so three writers never queue on a file lock). The target's
``concurrency`` of 6 splits it into six partitions; the test defers their drain jobs at once
(``tasks.dispatch``, as the minute tick would), and each job works a batch of
``tasks.BATCH`` operations and queues its partition again.

Once nothing is open the workers are stopped with SIGTERM. Every operation succeeded exactly
once, none parked, the audit chain verifies; the target holds each account and membership
exactly once; no drain job failed; and the work was shared: each worker's actor
(``worker:wN`` in the audit log, the only place recording who carried an operation out)
appears on at least a batch of succeeded operations.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from pasa.engine import tasks
from pasa.store.db import make_engine
from pasa.store.schema import audit_log

from .conftest import POSTGRES_URL
from .fault_helpers import (
    add_target,
    assert_ledger_clean,
    assert_sql_table_holds,
    postgres_database,
    seed_joiners,
    sql_table_settings,
    start_procrastinate_worker,
    stop_workers,
    wait_for,
    wait_until_drained,
)

PEOPLE = 2500  # 10,000 operations
WORKERS = ("w1", "w2", "w3")
PARTITIONS = 6


@pytest.fixture
def app_db_url() -> Iterator[str]:
    """The application's own database (PostgreSQL, not migrated: the connector makes its
    tables)."""
    if not POSTGRES_URL:
        pytest.skip("PASA_TEST_POSTGRES_URL not set (make test sets it)")
    with postgres_database(POSTGRES_URL, prefix="pasa_fault_app", migrated=False) as url:
        yield url


def _count(hub: Engine, sql: str) -> int:
    with hub.connect() as conn:
        return int(conn.execute(sa.text(sql)).scalar_one())


@pytest.mark.slow
def test_three_workers_share_10000_operations_and_do_each_once(
    pg_hub_url: str, app_db_url: str, tmp_path: Path
) -> None:
    hub = make_engine(pg_hub_url)
    try:
        add_target(
            hub, "app", "sql_table", {**sql_table_settings(app_db_url), "concurrency": PARTITIONS}
        )
        expected = seed_joiners(hub, "app", PEOPLE)
        assert expected.operations == 10_000
        tasks.ensure_schema(hub)

        started = time.monotonic()
        workers = [start_procrastinate_worker(pg_hub_url, name, tmp_path) for name in WORKERS]
        logs = [tmp_path / f"{name}.log" for name in WORKERS]
        try:
            wait_for(
                lambda: _count(hub, "SELECT count(*) FROM procrastinate_workers") >= len(WORKERS),
                "the three workers to register",
                timeout=60,
            )
            with tasks.using(pg_hub_url):
                dispatched = tasks.dispatch(hub)
            # The workers' first minute tick may have queued some partitions already.
            queued = {str(d) for d in (*dispatched.deferred, *dispatched.already_queued)}
            assert queued == {f"app {k}/{PARTITIONS}" for k in range(PARTITIONS)}, dispatched
            took = wait_until_drained(hub, workers, timeout=240, logs=logs)
        finally:
            statuses = stop_workers(workers)
        elapsed = time.monotonic() - started

        assert statuses == [0, 0, 0], (
            f"workers did not stop cleanly on SIGTERM: {statuses}; "
            + "".join(f"\n{p.name}: {p.read_text(errors='replace')[-1000:]}" for p in logs)
        )
        for path in logs:
            assert "Traceback" not in path.read_text(errors="replace"), path.read_text()[-3000:]

        assert_ledger_clean(hub, expected)
        assert_sql_table_holds(app_db_url, expected, hub)

        # (A job queued by a minute tick just as the last operation finished may be left
        # waiting, harmlessly: it would find nothing to do. None may have failed.)
        failed = _count(
            hub,
            "SELECT count(*) FROM procrastinate_jobs "
            "WHERE task_name = 'pasa.drain' AND status::text = 'failed'",
        )
        assert failed == 0, "drain jobs failed"

        with hub.connect() as conn:
            by_actor: Counter[str] = Counter(
                dict(
                    conn.execute(
                        sa.select(audit_log.c.actor, sa.func.count())
                        .where(audit_log.c.action == "operation.succeeded")
                        .group_by(audit_log.c.actor)
                    ).all()
                )
            )
        assert set(by_actor) == {f"worker:{name}" for name in WORKERS}, by_actor
        assert sum(by_actor.values()) == expected.operations
        # Each worker took one of the six first jobs: a full batch at least.
        assert min(by_actor.values()) >= tasks.BATCH, (
            f"the work was not shared: {dict(by_actor)} ({took:.0f} s, {elapsed:.0f} s in all)"
        )
    finally:
        hub.dispose()
