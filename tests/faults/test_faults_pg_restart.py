"""The hub's PostgreSQL restarted in the middle of a batch: nothing lost, nothing twice.

The test starts a PostgreSQL cluster of its own (``initdb`` into a temporary directory,
``pg_ctl start`` on a free port; as root every command runs as the ``postgres`` OS user), so
restarting it never disturbs the shared test server. ``pasa worker --once --no-plan`` (the
real command, in its own process) carries 4,000 operations (1,000 starters: an account and
three groups each) from that hub to an application's user table (``sql_table``, a SQLite
file). Once a quarter has succeeded the cluster is restarted with ``pg_ctl restart -m fast``:
every connection is cut, possibly between the target write and the ledger commit. The
worker may fail or carry on; it is then run again until nothing is pending. Every account
and membership must be in the target exactly once, with the external id the hub recorded;
every operation succeeded exactly once; none parked; the audit chain verifies.
"""

from __future__ import annotations

import os
import pwd
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from pasa.store.db import make_engine

from .fault_helpers import (
    PrivateCluster,
    add_target,
    assert_ledger_clean,
    assert_sql_table_holds,
    drain_with_cli,
    kill_hard,
    postgres_bin_dir,
    postgres_database,
    seed_joiners,
    sql_table_settings,
    start_worker,
    succeeded,
    wait_for_progress,
)

PEOPLE = 1000  # 4,000 operations


@pytest.fixture
def cluster() -> Iterator[PrivateCluster]:
    bin_dir = postgres_bin_dir()
    if bin_dir is None:
        pytest.skip("no PostgreSQL server binaries (initdb, pg_ctl) on this machine")
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            pytest.skip("running as root without a 'postgres' OS user to run initdb as")
    server = PrivateCluster(bin_dir)
    try:
        server.init()
        server.start()
        yield server
    finally:
        server.destroy()


def _started_at(engine: Engine) -> object:
    with engine.connect() as conn:
        return conn.execute(sa.text("SELECT pg_postmaster_start_time()")).scalar_one()


@pytest.mark.slow
def test_postgres_restarted_mid_batch_loses_and_duplicates_nothing(
    cluster: PrivateCluster, tmp_path: Path
) -> None:
    with postgres_database(cluster.url) as hub_url:
        hub = make_engine(hub_url)
        try:
            app_db = tmp_path / "app.db"
            add_target(hub, "app", "sql_table", sql_table_settings(app_db))
            expected = seed_joiners(hub, "app", PEOPLE)
            first_start = _started_at(hub)

            log = tmp_path / "worker-restarted.log"
            worker = start_worker(hub_url, tmp_path, log.name)
            try:
                done = wait_for_progress(hub, worker, expected.operations // 4, log=log)
                cluster.restart("fast")  # every connection cut, the worker's included
                try:
                    status = worker.wait(timeout=240)
                except subprocess.TimeoutExpired:
                    status = None
            finally:
                kill_hard(worker)
            assert done < expected.operations, "the worker finished before the restart"
            assert _started_at(hub) != first_start, "the cluster was not restarted"
            # It may carry on (status 0) or stop with the CLI's sentence (status 1, "cannot
            # use the database"); either way not with a traceback, and not hanging.
            output = log.read_text(errors="replace")
            assert status in (0, 1), f"worker status {status}: {output[-3000:]}"
            assert "Traceback" not in output, output[-3000:]
            after_restart = succeeded(hub)

            drain_with_cli(hub_url, tmp_path, hub)

            assert_sql_table_holds(app_db, expected, hub)
            assert_ledger_clean(hub, expected)
            assert after_restart <= expected.operations
        finally:
            hub.dispose()
