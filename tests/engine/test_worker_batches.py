"""The worker claims and commits operations in batches: what that changes, and what it must not.

One transaction per batch (not per operation); a connector failing mid-batch costs only its
own operation; a worker stopped mid-batch keeps what it had done; a worker *killed* mid-batch
(no clean-up at all) re-sends at most that batch and never an operation whose outcome was
committed.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from pasa_engine_helpers import FakeClock, RecordFn, add_people, add_target, joiner
from sqlalchemy.engine import Engine

from pasa.audit import log as audit
from pasa.connectors.base import Attributes, TransientError
from pasa.connectors.memory import MemoryConnector
from pasa.connectors.sqltable import SqlTableConnector, SqlTableSettings
from pasa.engine import ledger
from pasa.engine.worker import run_pending
from pasa.store.db import make_engine
from pasa.store.schema import audit_log, operation


@contextmanager
def _commits(engine: Engine) -> Iterator[list[int]]:
    """Count the transactions committed on ``engine`` while the block runs."""
    seen: list[int] = []

    def on_commit(_conn: Any) -> None:
        seen.append(1)

    sa.event.listen(engine, "commit", on_commit)
    try:
        yield seen
    finally:
        sa.event.remove(engine, "commit", on_commit)


def _status_counts(engine: Engine) -> dict[str, int]:
    with engine.connect() as conn:
        return {k: n for counts in ledger.status_counts(conn).values() for k, n in counts.items()}


def _verified(engine: Engine) -> int:
    with engine.connect() as conn:
        result = audit.verify(conn)
    assert result.ok, result.problems
    return result.entries


def _starters(record: RecordFn, engine: Engine, people: int, tkey: str = "ad") -> None:
    """``people`` starters: a create and three memberships each (4 operations a person)."""
    add_people(engine, people)
    record([o for p in range(1, people + 1) for o in joiner(p, tkey, f"u{p}", ["a", "b", "c"])])


def test_one_commit_per_batch_and_one_audit_entry_per_operation(
    engine: Engine, record: RecordFn, clock: FakeClock
) -> None:
    add_target(engine, "ad")
    _starters(record, engine, 10)  # 40 operations
    audit_before = _verified(engine)
    ad = MemoryConnector("ad")
    seen: list[int] = []
    with _commits(engine) as commits:
        report = run_pending(engine, {"ad": ad}, now=clock, batch_size=16, progress=seen.append)
    assert report.succeeded == 40
    assert len(commits) == 3  # 16 + 16 + 8
    assert seen == list(range(1, 41))  # progress still counts operation by operation
    assert _status_counts(engine) == {"succeeded": 40}
    assert _verified(engine) == audit_before + 40
    # Per-account order holds across batch boundaries (u4's memberships span batches 1 and 2).
    assert [c for c in ad.calls if c[1] == "u4"] == [("create", "u4")] + [("add_member", "u4")] * 3


def test_default_batches_commit_far_less_often_than_once_per_operation(
    engine: Engine, record: RecordFn, clock: FakeClock
) -> None:
    add_target(engine, "ad")
    _starters(record, engine, 100)  # 400 operations
    with _commits(engine) as commits:
        assert run_pending(engine, {"ad": MemoryConnector("ad")}, now=clock).succeeded == 400
    assert len(commits) == 2  # the default batch is 200 operations


def test_a_failure_mid_batch_costs_only_its_own_account(
    engine: Engine, record: RecordFn, clock: FakeClock
) -> None:
    add_target(engine, "ad")
    _starters(record, engine, 5)  # 20 operations, one batch
    ad = MemoryConnector("ad")
    ad.fail_with = TransientError("busy", retry_after=120)
    ad.fail_methods = frozenset({"create"})
    ad.fail_usernames = frozenset({"u3"})
    with _commits(engine) as commits:
        report = run_pending(engine, {"ad": ad}, now=clock)
    assert len(commits) == 1
    assert (report.succeeded, report.retried, report.blocked) == (16, 1, 3)
    with engine.connect() as conn:
        u3 = [o for o in ledger.list_operations(conn, target="ad") if o.username == "u3"]
    assert [o.status for o in u3] == ["pending"] * 4
    assert u3[0].attempts == 1 and u3[0].last_error == "busy"
    assert u3[0].not_before is not None
    assert (u3[0].not_before.replace(tzinfo=None) - clock().replace(tzinfo=None)).seconds >= 120
    assert ad.calls_to("add_member") == 12  # u3's memberships were never sent
    _verified(engine)

    # The retry, once due, sends u3's operations and nothing that was committed.
    ad.fail_with = None
    clock.advance(seconds=200)
    calls = len(ad.calls)
    assert run_pending(engine, {"ad": ad}, now=clock).succeeded == 4
    assert [u for _, u in ad.calls[calls:]] == ["u3"] * 4
    assert _status_counts(engine) == {"succeeded": 20}


class _Stop(BaseException):
    """What a worker being stopped sees (like KeyboardInterrupt or SystemExit)."""


def test_a_worker_stopped_mid_batch_commits_what_it_had_done(
    engine: Engine, record: RecordFn, clock: FakeClock
) -> None:
    add_target(engine, "ad")
    _starters(record, engine, 5)  # 20 operations
    ad = MemoryConnector("ad")
    real = ad.add_member
    sent: list[str] = []

    def add_member(username: str, kind: str, value: str, **dates: object) -> None:
        if len(sent) == 6:
            raise _Stop
        sent.append(f"{username}:{value}")
        real(username, kind, value)

    ad.add_member = add_member  # type: ignore[method-assign]
    with pytest.raises(_Stop):
        run_pending(engine, {"ad": ad}, now=clock, batch_size=50)
    # u1 and u2 complete, u3 created: 9 outcomes recorded and committed despite the stop.
    assert _status_counts(engine) == {"succeeded": 9, "pending": 11}
    _verified(engine)

    ad.add_member = real  # type: ignore[method-assign]
    calls = len(ad.calls)
    assert run_pending(engine, {"ad": ad}, now=clock).succeeded == 11
    resent = ad.calls[calls:]
    assert ("create", "u3") not in resent and ("create", "u1") not in resent
    assert resent[0] == ("add_member", "u3")  # the operation in hand is sent again
    assert _status_counts(engine) == {"succeeded": 20}


def test_a_batch_commits_once_it_has_been_open_batch_seconds(
    engine: Engine, record: RecordFn, clock: FakeClock
) -> None:
    """A slow target commits often: every send here takes one second of the run's clock."""
    add_target(engine, "slow")
    _starters(record, engine, 2, "slow")  # 8 operations
    slow = MemoryConnector("slow")
    real = slow.create, slow.add_member

    def create(username: str, attributes: Attributes) -> str:
        clock.advance(seconds=1)
        return real[0](username, attributes)

    def add_member(username: str, kind: str, value: str, **dates: object) -> None:
        clock.advance(seconds=1)
        real[1](username, kind, value)

    slow.create = create  # type: ignore[method-assign]
    slow.add_member = add_member  # type: ignore[method-assign]
    with _commits(engine) as commits:
        report = run_pending(engine, {"slow": slow}, now=clock, batch_seconds=2.5)
    assert report.succeeded == 8
    assert len(commits) == 3  # 3 + 3 + 2 sends
    assert [m for m, _ in slow.calls] == ["create"] + ["add_member"] * 3 + ["create"] + [
        "add_member"
    ] * 3


def test_batch_size_must_be_positive(engine: Engine) -> None:
    with pytest.raises(ValueError, match="batch_size"):
        run_pending(engine, {}, batch_size=0)


# --- a worker killed mid-batch (SIGKILL: no clean-up, no rollback handler) -----------------


class _Journalled(SqlTableConnector):
    """An application table that writes every call to a journal; ``die_after`` sends it
    ends its own process at once, as SIGKILL would, before the next call."""

    def __init__(self, db: Path, journal: Path, die_after: int | None = None) -> None:
        super().__init__(SqlTableSettings(url=f"sqlite:///{db}"), name="app")
        self.journal = journal
        self.die_after = die_after
        self.sent = 0

    def _note(self, entry: str) -> None:
        if self.die_after is not None and self.sent == self.die_after:
            os._exit(9)
        self.sent += 1
        with self.journal.open("a") as handle:
            handle.write(entry + "\n")

    def create(self, username: str, attributes: Attributes) -> str:
        self._note(f"create {username}")
        return super().create(username, attributes)

    def add_member(self, username: str, kind: str, value: str, **dates: object) -> None:
        self._note(f"add_member {username} {value}")
        super().add_member(username, kind, value, **dates)


def _worker_killed_after(db_url: str, db: str, journal: str, sends: int, batch: int) -> None:
    engine = make_engine(db_url)
    run_pending(engine, {"app": _Journalled(Path(db), Path(journal), sends)}, batch_size=batch)


def test_a_worker_killed_mid_batch_resends_at_most_that_batch(
    engine: Engine, db_url: str, record: RecordFn, tmp_path: Path
) -> None:
    add_target(engine, "app", "sql_table")
    _starters(record, engine, 10, "app")  # 40 operations
    db, journal = tmp_path / "app.db", tmp_path / "journal"
    child = multiprocessing.get_context("fork").Process(
        target=_worker_killed_after, args=(db_url, str(db), str(journal), 25, 10)
    )
    child.start()
    child.join(120)
    assert child.exitcode == 9
    sent_before = journal.read_text().splitlines()
    assert len(sent_before) == 25
    # Two batches of 10 committed; the third had sent 5 when the worker died: not committed.
    assert _status_counts(engine) == {"succeeded": 20, "pending": 20}
    _verified(engine)
    with engine.connect() as conn:
        committed = set(
            conn.execute(
                sa.select(audit_log.c.subject_id).where(audit_log.c.action == "operation.succeeded")
            ).scalars()
        )
        done = {
            str(i)
            for i in conn.execute(
                sa.select(operation.c.id).where(operation.c.status == "succeeded")
            ).scalars()
        }
    assert committed == done

    app = _Journalled(db, tmp_path / "journal-again")
    try:
        assert run_pending(engine, {"app": app}).succeeded == 20
        sent_again = (tmp_path / "journal-again").read_text().splitlines()
        # Exactly the uncommitted operations: the 5 sent in the killed batch, then the 15
        # never sent. Nothing committed is sent again.
        assert sent_again[:5] == sent_before[20:]
        assert not set(sent_again) & set(sent_before[:20])
        assert len(sent_again) == 20
        remote = {a.username: a for a in app.list()}
        assert set(remote) == {f"u{p}" for p in range(1, 11)}
        assert all(a.memberships == {("group", g) for g in "abc"} for a in remote.values())
    finally:
        app.close()
    assert _status_counts(engine) == {"succeeded": 40}
    assert _verified(engine) >= 40
