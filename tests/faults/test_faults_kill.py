"""A worker killed with SIGKILL in the middle of a large batch loses nothing.

``pasa worker --once --no-plan`` (the real command, in its own process) carries thousands of
operations to an application's user table (``sql_table``, a SQLite file). Once a good part
of them has succeeded it is killed with SIGKILL — no clean-up, no rollback handler, possibly
in the middle of a target write or a ledger commit. The worker is then run again until
nothing is pending. Every account and membership must be in the target exactly once, with
the external id the hub recorded; every operation succeeded exactly once; none parked.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy.engine import Engine

from .fault_helpers import (
    add_target,
    assert_ledger_clean,
    assert_sql_table_holds,
    drain_with_cli,
    kill_hard,
    seed_joiners,
    sql_table_settings,
    start_worker,
    status_counts,
    wait_for_progress,
)

# 10,000 operations on PostgreSQL (2,500 starters: a create and three groups each); the
# SQLite hub runs the same story on a smaller batch to keep the suite short.
PEOPLE = {"postgresql": 2500, "sqlite": 750}


@pytest.mark.slow
def test_sigkill_mid_batch_loses_and_duplicates_nothing(
    hub: Engine, hub_url: str, tmp_path: Path
) -> None:
    backend = "sqlite" if hub_url.startswith("sqlite") else "postgresql"
    app_db = tmp_path / "app.db"
    add_target(hub, "app", "sql_table", sql_table_settings(app_db))
    expected = seed_joiners(hub, "app", PEOPLE[backend])
    assert expected.operations == PEOPLE[backend] * 4

    log = tmp_path / "worker-killed.log"
    worker = start_worker(hub_url, tmp_path, log.name)
    try:
        done = wait_for_progress(hub, worker, expected.operations // 4, log=log)
        assert kill_hard(worker), "the worker was not running any more when it was to be killed"
    finally:
        kill_hard(worker)
    after_kill = status_counts(hub)
    assert after_kill.get("succeeded", 0) < expected.operations, (
        f"the worker finished before it was killed ({after_kill}); the test proves nothing"
    )
    assert done > 0

    drain_with_cli(hub_url, tmp_path, hub)

    assert_sql_table_holds(app_db, expected, hub)
    assert_ledger_clean(hub, expected)
