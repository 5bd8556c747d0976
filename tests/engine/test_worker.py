"""The worker carries the ledger to the targets: what a user would notice in each target."""

from __future__ import annotations

import dataclasses
import threading
from datetime import date
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from pasa_engine_helpers import (
    FakeClock,
    RecordFn,
    add_people,
    add_target,
    employee,
    joiner,
    op,
)
from sqlalchemy.engine import Engine

from pasa.audit import log as audit
from pasa.connectors.base import Capability, PermanentError, TransientError
from pasa.connectors.manual import (
    ManualConnector,
    ManualTaskError,
    cancel_manual_task,
    complete_manual_task,
)
from pasa.connectors.memory import MemoryConnector
from pasa.connectors.sqltable import SqlTableConnector, SqlTableSettings
from pasa.domain.errors import ConfigurationError
from pasa.domain.operations import OperationKind
from pasa.engine import ledger
from pasa.engine.worker import run_pending
from pasa.store.schema import account, audit_log, manual_task, operation


def _ops(engine: Engine, tkey: str | None = None) -> list[ledger.OperationRecord]:
    with engine.connect() as conn:
        return ledger.list_operations(conn, target=tkey)


def _statuses(engine: Engine, tkey: str) -> list[str]:
    return [o.status for o in _ops(engine, tkey)]


def _actions(engine: Engine) -> list[str]:
    with engine.connect() as conn:
        return list(conn.execute(sa.select(audit_log.c.action).order_by(audit_log.c.seq)).scalars())


@pytest.fixture
def app_db(tmp_path: Path) -> SqlTableConnector:
    """An application's own user table (a separate SQLite file, as in a real deployment)."""
    return SqlTableConnector(SqlTableSettings(url=f"sqlite:///{tmp_path / 'app.db'}"), name="app")


def test_plan_lands_in_the_target_table(
    engine: Engine, record: RecordFn, clock: FakeClock, app_db: SqlTableConnector
) -> None:
    add_target(engine, "app", "sql_table")
    add_people(engine, 2)
    record([*joiner(1, "app", "first1", ["staff", "radiology"]), *joiner(2, "app", "first2")])

    report = run_pending(engine, {"app": app_db}, now=clock)

    assert (report.succeeded, report.parked, report.retried) == (5, 0, 0)
    with app_db.engine.connect() as conn:
        users = {r.username: r for r in conn.execute(sa.select(app_db.users))}
        members = set(conn.execute(sa.select(app_db.memberships)).all())
    assert set(users) == {"first1", "first2"}
    assert users["first1"].employee_number == employee(1)
    assert users["first1"].enabled
    assert members == {
        ("first1", "group", "staff"),
        ("first1", "group", "radiology"),
        ("first2", "group", "staff"),
    }
    with engine.connect() as conn:
        ext = dict(conn.execute(sa.select(account.c.username, account.c.external_id)).all())
        assert audit.verify(conn).ok
    assert ext["first1"] == users["first1"].external_id
    assert set(_statuses(engine, "app")) == {"succeeded"}
    assert _actions(engine).count("operation.succeeded") == 5


def test_rerunning_sends_nothing_twice(engine: Engine, record: RecordFn, clock: FakeClock) -> None:
    add_target(engine, "ad")
    add_people(engine, 3)
    record([o for p in (1, 2, 3) for o in joiner(p, "ad", f"u{p}", ["a", "b"])])
    ad = MemoryConnector("ad")
    assert run_pending(engine, {"ad": ad}, now=clock).succeeded == 9
    calls = list(ad.calls)
    again = run_pending(engine, {"ad": ad}, now=clock)
    assert again.executed == 0
    assert ad.calls == calls
    assert {a.username for a in ad.list()} == {"u1", "u2", "u3"}


def test_failing_target_retries_with_backoff_then_parks_while_others_succeed(
    engine: Engine, record: RecordFn, clock: FakeClock
) -> None:
    add_target(engine, "ad")
    add_target(engine, "pacs")
    add_people(engine, 2)
    record(
        [
            *joiner(1, "ad", "u1"),
            *joiner(2, "ad", "u2"),
            *joiner(1, "pacs", "p1"),
            *joiner(2, "pacs", "p2"),
        ]
    )
    ad = MemoryConnector("ad")
    pacs = MemoryConnector("pacs")
    pacs.fail_with = TransientError("PACS refused the connection")

    waits: list[float] = []
    report = run_pending(engine, {"ad": ad, "pacs": pacs}, now=clock, max_attempts=4)
    assert report.succeeded == 4  # ad: everything, at once
    assert {a.username for a in ad.list()} == {"u1", "u2"}
    assert report.retried == 2  # pacs: both creates; their memberships wait behind them
    assert report.blocked == 2
    for attempt in (2, 3):
        creates = [o for o in _ops(engine, "pacs") if o.kind == "create_account"]
        assert all(o.status == "pending" and o.attempts == attempt - 1 for o in creates)
        nb = min(o.not_before for o in creates if o.not_before is not None)
        waits.append((nb.replace(tzinfo=None) - clock().replace(tzinfo=None)).total_seconds())
        # Not due yet: nothing is sent.
        before = len(pacs.calls)
        assert run_pending(engine, {"pacs": pacs}, now=clock).executed == 0
        assert len(pacs.calls) == before
        clock.at = max(o.not_before for o in creates if o.not_before is not None).replace(
            tzinfo=clock.at.tzinfo
        )
        clock.advance(seconds=1)
        assert run_pending(engine, {"ad": ad, "pacs": pacs}, now=clock).retried == 2
    assert waits[1] > waits[0] > 0  # exponential back-off

    creates = [o for o in _ops(engine, "pacs") if o.kind == "create_account"]
    clock.at = max(o.not_before for o in creates if o.not_before is not None).replace(
        tzinfo=clock.at.tzinfo
    )
    clock.advance(seconds=1)
    final = run_pending(engine, {"ad": ad, "pacs": pacs}, now=clock, max_attempts=4)
    assert final.parked == 2
    ops = _ops(engine, "pacs")
    assert [o.status for o in ops] == ["parked", "pending", "parked", "pending"]
    assert ops[0].last_error == "gave up after 4 attempts: PACS refused the connection"
    assert set(_statuses(engine, "ad")) == {"succeeded"}
    assert "operation.retry" in _actions(engine) and "operation.parked" in _actions(engine)


def test_permanent_error_parks_at_once_and_retry_sends_again(
    engine: Engine, record: RecordFn, clock: FakeClock
) -> None:
    add_target(engine, "ad")
    add_people(engine, 2)
    record([*joiner(1, "ad", "alice", ["a", "b"]), *joiner(2, "ad", "bob", ["a", "b"])])
    ad = MemoryConnector("ad")
    ad.fail_with = PermanentError("password policy rejected the account")
    ad.fail_methods = frozenset({"create"})
    ad.fail_usernames = frozenset({"bob"})

    report = run_pending(engine, {"ad": ad}, now=clock)

    assert (report.succeeded, report.parked, report.blocked) == (3, 1, 2)
    assert _read_memberships(ad, "alice") == {("group", "a"), ("group", "b")}
    assert ad.read("bob") is None
    bob = [o for o in _ops(engine, "ad") if o.username == "bob"]
    assert [o.status for o in bob] == ["parked", "pending", "pending"]
    assert bob[0].last_error == "password policy rejected the account"
    assert ad.calls_to("add_member") == 2  # bob's memberships were never sent

    ad.fail_with = None
    with engine.begin() as conn:
        ledger.retry_operation(conn, bob[0].id, "admin")
    assert run_pending(engine, {"ad": ad}, now=clock).succeeded == 3
    assert _read_memberships(ad, "bob") == {("group", "a"), ("group", "b")}


def _read_memberships(connector: MemoryConnector, username: str) -> set[tuple[str, str]]:
    found = connector.read(username)
    assert found is not None
    return set(found.memberships)


def test_conflict_parks_with_the_reason(engine: Engine, record: RecordFn, clock: FakeClock) -> None:
    add_target(engine, "ad")
    add_people(engine, 1)
    ad = MemoryConnector("ad")
    ad.create("first1", {"employee_number": "99999999"})  # someone else's account
    record(joiner(1, "ad", "first1", []))
    assert run_pending(engine, {"ad": ad}, now=clock).parked == 1
    [parked] = _ops(engine, "ad")
    assert "already exists for employee 99999999" in (parked.last_error or "")


def test_unsupported_operation_parks_with_a_sentence(
    engine: Engine, record: RecordFn, clock: FakeClock
) -> None:
    add_target(engine, "ad")
    add_people(engine, 1)
    ad = MemoryConnector("ad", capabilities=frozenset(Capability) - {Capability.DELETE})
    record(joiner(1, "ad", "u1", []))
    record([op(OperationKind.DELETE, 1, "ad", "u1")])
    report = run_pending(engine, {"ad": ad}, now=clock)
    assert (report.succeeded, report.parked) == (1, 1)
    assert "cannot do 'delete'" in (_ops(engine, "ad")[1].last_error or "")


def test_paused_and_unconfigured_targets_are_skipped(
    engine: Engine, record: RecordFn, clock: FakeClock
) -> None:
    add_target(engine, "ad", paused=True)
    add_target(engine, "door")
    add_target(engine, "email")
    add_people(engine, 1)
    record([*joiner(1, "ad", "u1"), *joiner(1, "door", "u1"), *joiner(1, "email", "u1")])
    ad, email = MemoryConnector("ad"), MemoryConnector("email")
    report = run_pending(engine, {"ad": ad, "email": email}, now=clock)
    assert report.skipped_paused == 2
    assert report.unconfigured_targets == ["door"]
    assert report.succeeded == 2
    assert ad.calls == []
    assert set(_statuses(engine, "ad")) == {"pending"}


def test_later_operations_of_an_account_run_in_order(
    engine: Engine, record: RecordFn, clock: FakeClock
) -> None:
    add_target(engine, "ad")
    add_people(engine, 1)
    record(joiner(1, "ad", "u1", ["old"]))
    record(
        [
            op(
                OperationKind.UPDATE_ATTRIBUTES,
                1,
                "ad",
                "u1",
                changes={"job_title": ["Radiographer", "Matron"]},
            ),
            op(OperationKind.ADD_MEMBERSHIP, 1, "ad", "u1", kind="group", value="new"),
            op(OperationKind.REMOVE_MEMBERSHIP, 1, "ad", "u1", kind="group", value="old"),
            op(OperationKind.DISABLE, 1, "ad", "u1"),
        ]
    )
    ad = MemoryConnector("ad")
    assert run_pending(engine, {"ad": ad}, now=clock).succeeded == 6
    assert [m for m, _ in ad.calls] == [
        "create",
        "add_member",
        "update",
        "add_member",
        "remove_member",
        "disable",
    ]
    remote = ad.read("u1")
    assert remote is not None and not remote.enabled
    assert remote.memberships == {("group", "new")}
    assert remote.attributes["job_title"] == "Matron"


def test_limit_and_progress(engine: Engine, record: RecordFn, clock: FakeClock) -> None:
    add_target(engine, "ad")
    add_people(engine, 3)
    record([o for p in (1, 2, 3) for o in joiner(p, "ad", f"u{p}", [])])
    seen: list[int] = []
    report = run_pending(
        engine, {"ad": MemoryConnector()}, now=clock, limit=2, progress=seen.append
    )
    assert report.succeeded == 2 and report.deferred == 1
    assert seen == [1, 2]


def test_circuit_breaker_stops_hammering_a_dead_target(
    engine: Engine, record: RecordFn, clock: FakeClock
) -> None:
    add_target(engine, "ad")
    add_people(engine, 6)
    record([o for p in range(1, 7) for o in joiner(p, "ad", f"u{p}", [])])
    ad = MemoryConnector("ad")
    ad.fail_with = ConnectionRefusedError("connection refused")
    report = run_pending(engine, {"ad": ad}, now=clock, circuit_breaker=3)
    assert (report.retried, report.deferred) == (3, 3)
    assert report.circuit_open_targets == ["ad"]
    assert "connection error: connection refused" in (_ops(engine, "ad")[0].last_error or "")


def test_manual_target_becomes_tasks_and_completion_records_the_username(
    engine: Engine, record: RecordFn, clock: FakeClock
) -> None:
    add_target(engine, "pacs", "manual", {"assignee": "pacs-admins", "sla_hours": 8})
    add_people(engine, 1)
    record(joiner(1, "pacs", "first1", ["reporters"]))
    pacs = ManualConnector("PACS", assignee="pacs-admins", sla_hours=8)

    report = run_pending(engine, {"pacs": pacs}, now=clock)

    assert report.waiting_manual == 1 and report.blocked == 1
    with engine.connect() as conn:
        [task] = conn.execute(sa.select(manual_task)).all()
    assert task.assignee == "pacs-admins"
    assert task.status == "open"
    assert task.instructions == (
        f"Create an account for First1 Last1 (employee {employee(1)}) in PACS with username "
        "'first1'; record the username you created if it differs."
    )
    assert (
        task.due_at.replace(tzinfo=None) - task.created_at.replace(tzinfo=None)
    ).total_seconds() == 8 * 3600
    assert _statuses(engine, "pacs") == ["waiting_manual", "pending"]
    # Running again creates nothing new while the person works on it.
    assert run_pending(engine, {"pacs": pacs}, now=clock).executed == 0

    complete_manual_task(
        engine,
        task.id,
        actor="pacs.admin@nhs.net",
        completion={"username": "first1.last1", "external_id": "PACS-77"},
    )
    assert _statuses(engine, "pacs") == ["succeeded", "pending"]
    with engine.connect() as conn:
        acct = conn.execute(sa.select(account)).one()
    assert (acct.username, acct.external_id) == ("first1.last1", "PACS-77")
    with pytest.raises(ManualTaskError, match="already done"):
        complete_manual_task(engine, task.id, actor="x", completion={})

    # The next task uses the username actually created.
    assert run_pending(engine, {"pacs": pacs}, now=clock).waiting_manual == 1
    with engine.connect() as conn:
        tasks = conn.execute(sa.select(manual_task).order_by(manual_task.c.id)).all()
    assert "'first1.last1'" in tasks[1].instructions and "'reporters'" in tasks[1].instructions

    cancel_manual_task(engine, tasks[1].id, actor="pacs.admin@nhs.net", reason="left")
    assert _statuses(engine, "pacs") == ["succeeded", "cancelled"]
    actions = _actions(engine)
    assert actions.count("operation.manual") == 2
    assert "manual_task.completed" in actions and "manual_task.cancelled" in actions


def test_cancelled_operation_is_not_sent(
    engine: Engine, record: RecordFn, clock: FakeClock
) -> None:
    add_target(engine, "ad")
    add_people(engine, 1)
    record(joiner(1, "ad", "u1", ["a"]))
    membership = _ops(engine, "ad")[1]
    with engine.begin() as conn:
        ledger.cancel_operation(conn, membership.id, "admin")
    ad = MemoryConnector("ad")
    assert run_pending(engine, {"ad": ad}, now=clock).succeeded == 1
    assert ad.calls_to("add_member") == 0


def test_two_workers_at_once_send_each_operation_once(
    engine: Engine, record: RecordFn, clock: FakeClock
) -> None:
    if engine.dialect.name != "postgresql":
        pytest.skip("concurrent workers are a PostgreSQL deployment; SQLite has one writer")
    add_target(engine, "ad")
    add_target(engine, "email")
    people = add_people(engine, 40)
    record([o for p in people for t in ("ad", "email") for o in joiner(p, t, f"u{p}", ["a"])])
    ad, email = MemoryConnector("ad"), MemoryConnector("email")
    reports = []

    def work() -> None:
        reports.append(run_pending(engine, {"ad": ad, "email": email}, now=clock))

    threads = [threading.Thread(target=work) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    # Anything a worker skipped because another held it is picked up by a final run.
    reports.append(run_pending(engine, {"ad": ad, "email": email}, now=clock))
    assert sum(r.succeeded for r in reports) == 160
    assert ad.calls_to("create") == 40 and ad.calls_to("add_member") == 40
    assert email.calls_to("create") == 40
    with engine.connect() as conn:
        left = conn.execute(
            sa.select(sa.func.count())
            .select_from(operation)
            .where(operation.c.status != "succeeded")
        ).scalar()
        assert audit.verify(conn).ok
    assert left == 0


def test_target_table_in_the_same_database_as_pasa(
    engine: Engine, db_url: str, record: RecordFn, clock: FakeClock
) -> None:
    """The embedded demo keeps an application's user table beside PASA's own tables."""
    add_target(engine, "app", "sql_table")
    add_people(engine, 2)
    record([*joiner(1, "app", "u1", ["a", "b"]), *joiner(2, "app", "u2", ["a"])])
    app = SqlTableConnector(
        SqlTableSettings(url=db_url, table="app_users_w", membership_table="app_members_w"),
        name="app",
    )
    try:
        assert run_pending(engine, {"app": app}, now=clock).succeeded == 5
        remote = {a.username: a for a in app.list()}
        assert set(remote) == {"u1", "u2"}
        assert remote["u1"].memberships == {("group", "a"), ("group", "b")}
    finally:
        app.memberships.drop(app.engine, checkfirst=True)
        app.users.drop(app.engine, checkfirst=True)
        app.close()


def _usernames(engine: Engine) -> list[str]:
    with engine.connect() as conn:
        return list(conn.execute(sa.select(account.c.username)).scalars())


def test_rename_renames_in_the_target_and_records_the_new_username(
    engine: Engine, record: RecordFn, clock: FakeClock
) -> None:
    add_target(engine, "ad")
    add_people(engine, 1)
    record(joiner(1, "ad", "jsmith", ["staff"]))
    ad = MemoryConnector("ad")
    run_pending(engine, {"ad": ad}, now=clock)
    # A change of name: rename first, later operations of the plan carry the new name.
    record(
        [
            op(OperationKind.RENAME, 1, "ad", "jsmith", new_username="jjones"),
            op(OperationKind.ADD_MEMBERSHIP, 1, "ad", "jjones", kind="group", value="wards"),
        ]
    )
    report = run_pending(engine, {"ad": ad}, now=clock)
    assert (report.succeeded, report.parked, report.retried) == (2, 0, 0)
    assert ad.read("jsmith") is None
    remote = ad.read("jjones")
    assert remote is not None and remote.memberships == {("group", "staff"), ("group", "wards")}
    assert _usernames(engine) == ["jjones"]
    sent = [c for c in ad.calls if c[0] != "read"]
    assert sent[-2:] == [("rename", "jsmith"), ("add_member", "jjones")]
    with engine.connect() as conn:
        row = conn.execute(
            sa.select(audit_log.c.details)
            .where(audit_log.c.action == "operation.succeeded")
            .order_by(audit_log.c.seq.desc())
            .offset(1)
            .limit(1)
        ).scalar_one()
        assert audit.verify(conn).ok
    assert (row["kind"], row["username"], row["new_username"]) == ("rename", "jsmith", "jjones")


def test_rename_needs_the_capability_and_parks_with_a_sentence(
    engine: Engine, record: RecordFn, clock: FakeClock
) -> None:
    add_target(engine, "ad")
    add_people(engine, 1)
    record(joiner(1, "ad", "jsmith", []))
    ad = MemoryConnector("ad", capabilities=frozenset(Capability) - {Capability.RENAME})
    run_pending(engine, {"ad": ad}, now=clock)
    record([op(OperationKind.RENAME, 1, "ad", "jsmith", new_username="jjones")])
    report = run_pending(engine, {"ad": ad}, now=clock)
    assert report.parked == 1
    assert "cannot do 'rename'" in (_ops(engine, "ad")[-1].last_error or "")
    assert ad.read("jsmith") is not None and ad.read("jjones") is None


def test_operations_recorded_before_a_rename_use_the_old_name(
    engine: Engine, record: RecordFn, clock: FakeClock
) -> None:
    """The recorded username is the intent (already the new name); the target is not."""
    add_target(engine, "ad")
    add_people(engine, 1)
    record(joiner(1, "ad", "jsmith", ["staff"]))  # not yet sent when the rename is planned
    record(
        [
            op(OperationKind.RENAME, 1, "ad", "jsmith", new_username="jjones"),
            op(OperationKind.ADD_MEMBERSHIP, 1, "ad", "jjones", kind="group", value="wards"),
        ]
    )
    ad = MemoryConnector("ad")
    report = run_pending(engine, {"ad": ad}, now=clock)
    assert (report.succeeded, report.parked, report.retried) == (4, 0, 0)
    assert [c for c in ad.calls if c[0] != "read"] == [
        ("create", "jsmith"),
        ("add_member", "jsmith"),
        ("rename", "jsmith"),
        ("add_member", "jjones"),
    ]
    remote = ad.read("jjones")
    assert remote is not None and remote.memberships == {("group", "staff"), ("group", "wards")}
    assert _usernames(engine) == ["jjones"]


def test_create_with_enabled_false_pre_provisions_a_disabled_account(
    engine: Engine, record: RecordFn, clock: FakeClock
) -> None:
    add_target(engine, "ad")
    add_people(engine, 1)
    create, add = joiner(1, "ad", "starter", ["staff"])
    disabled = dataclasses.replace(create, payload={**create.payload, "enabled": False})
    record([disabled, add])
    ad = MemoryConnector("ad")
    assert run_pending(engine, {"ad": ad}, now=clock).succeeded == 2
    remote = ad.read("starter")
    assert remote is not None and not remote.enabled
    assert remote.memberships == {("group", "staff")}
    assert [m for m, _ in ad.calls if m != "read"] == ["create", "disable", "add_member"]


class _DatedMemory(MemoryConnector):
    """A memory connector that stores membership validity dates."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.validity: dict[tuple[str, str, str], tuple[object, object]] = {}

    def add_member(self, username: str, kind: str, value: str, **dates: object) -> None:
        super().add_member(username, kind, value)
        self.validity[(username, kind, value)] = (dates.get("valid_from"), dates.get("valid_to"))


def test_validity_dates_reach_only_connectors_that_declare_them(
    engine: Engine, record: RecordFn, clock: FakeClock
) -> None:
    add_target(engine, "doors")
    add_target(engine, "plain")
    add_people(engine, 1)
    dated = {"kind": "door_zone", "value": "wards", "valid_from": "2026-09-01"}
    for tkey in ("doors", "plain"):
        (create,) = joiner(1, tkey, "u1", [])
        record([create, op(OperationKind.ADD_MEMBERSHIP, 1, tkey, "u1", **dated)])
    doors = _DatedMemory("doors")
    doors.capabilities = doors.capabilities | {Capability.VALIDITY_DATES}
    plain = _DatedMemory("plain")
    assert Capability.VALIDITY_DATES not in plain.capabilities
    assert run_pending(engine, {"doors": doors, "plain": plain}, now=clock).succeeded == 4
    assert doors.validity == {("u1", "door_zone", "wards"): (date(2026, 9, 1), None)}
    assert plain.validity == {("u1", "door_zone", "wards"): (None, None)}


class _Sleeps:
    """A fake ``sleep`` that records each wait and moves the fake clock on by it."""

    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock
        self.waits: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)
        self.clock.advance(seconds=seconds)


def test_rate_per_minute_paces_one_target_and_drains_it_in_one_run(
    engine: Engine, record: RecordFn, clock: FakeClock
) -> None:
    add_target(engine, "ad")
    add_target(engine, "slow", settings={"rate_per_minute": 30})
    add_people(engine, 3)
    record([o for p in (1, 2, 3) for tkey in ("ad", "slow") for o in joiner(p, tkey, f"u{p}")])
    ad, slow = MemoryConnector("ad"), MemoryConnector("slow")
    sleeps = _Sleeps(clock)
    sent_at: list[float] = []
    start = clock()
    real_create = slow.create

    def timed_create(username: str, attributes: Any) -> str:
        sent_at.append((clock() - start).total_seconds())
        return real_create(username, attributes)

    slow.create = timed_create  # type: ignore[method-assign]
    report = run_pending(engine, {"ad": ad, "slow": slow}, now=clock, sleep=sleeps)

    # Everything is sent in this one run; the unpaced target never waits.
    assert report.succeeded == 12 and report.deferred == 0
    assert len(list(slow.list())) == 3
    # 6 operations at 30 a minute: one every 2 seconds, so 5 waits of 2 seconds.
    assert sleeps.waits == [2.0] * 5
    assert report.by_target["slow"].waited == 10.0
    assert report.by_target["ad"].waited == 0.0
    assert report.waited == {"slow": 10.0}
    assert "slow waited 10.0s" in str(report)
    assert sent_at == [0.0, 4.0, 8.0]  # each create follows its account's membership


def test_a_bad_rate_per_minute_is_refused(engine: Engine, record: RecordFn) -> None:
    add_target(engine, "slow", settings={"rate_per_minute": "lots"})
    add_people(engine, 1)
    record(joiner(1, "slow", "u1"))
    with pytest.raises(ConfigurationError, match="rate_per_minute"):
        run_pending(engine, {"slow": MemoryConnector("slow")})
