"""Scheduled reconciliation: the scheduler's pre-step, on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from reconcile_helpers import add_person, add_target, record_account
from sqlalchemy.engine import Engine

from pasa.audit.log import verify
from pasa.clock import FixedClock, local_instant
from pasa.connectors import registry
from pasa.connectors.base import Connector, TransientError
from pasa.connectors.kit import sample_attributes
from pasa.connectors.memory import MemoryConnector
from pasa.domain.errors import ConfigurationError
from pasa.service import scheduler
from pasa.service.reconcile_schedule import (
    reconcile_due,
    scheduled_reconciliations,
    tick_instant,
)
from pasa.store import schema as s

# Well after the real date, so the tick's instant is the start of the travelled-to day.
DAY = dt.date(2031, 3, 3)
KIND = "test_directory"


@pytest.fixture
def directories(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, MemoryConnector]]:
    """Targets of connector kind ``test_directory`` read these (by target key)."""
    found: dict[str, MemoryConnector] = {}

    def build(target_key: str, settings: object) -> Connector:
        return found.setdefault(target_key, MemoryConnector(target_key))

    monkeypatch.setitem(registry._FACTORIES, KIND, build)
    monkeypatch.delenv("PASA_TIMEZONE", raising=False)
    yield found


@pytest.fixture
def only_this_step(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(scheduler, "PRE_STEPS", [scheduled_reconciliations])


def _runs(engine: Engine, target: str) -> list[sa.Row[tuple[object, ...]]]:
    r, t = s.reconciliation_run, s.target
    with engine.connect() as conn:
        return list(
            conn.execute(
                sa.select(r)
                .select_from(r.join(t, t.c.id == r.c.target_id))
                .where(t.c.key == target)
                .order_by(r.c.id)
            )
        )


def _audit(engine: Engine, action: str) -> list[sa.Row[tuple[object, ...]]]:
    with engine.connect() as conn:
        return list(
            conn.execute(
                sa.select(s.audit_log)
                .where(s.audit_log.c.action == action)
                .order_by(s.audit_log.c.seq)
            )
        )


def _aware(value: dt.datetime) -> dt.datetime:
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


def _step(prepared: scheduler.Prepared) -> scheduler.StepResult:
    (step,) = [x for x in prepared.steps if x.name == "scheduled_reconciliations"]
    return step


def test_the_step_is_registered_with_the_scheduler() -> None:
    assert scheduled_reconciliations in scheduler.PRE_STEPS
    assert "reconcile_every_hours" in registry.PLATFORM_SETTINGS
    assert registry.connector_settings({"reconcile_every_hours": 6, "x": 1}) == {"x": 1}


@pytest.mark.usefixtures("only_this_step")
def test_due_target_is_reconciled_once_per_interval(
    engine: Engine, directories: dict[str, MemoryConnector]
) -> None:
    add_target(engine, "pacs", KIND, reconcile_every_hours=36)
    clock = FixedClock.at_local(DAY, dt.time(8, 0))

    first = scheduler.prepare(engine, clock, plan=False)
    assert _step(first).summary == "reconciled pacs (0 findings)"
    (run,) = _runs(engine, "pacs")
    assert _aware(run.started_at) == local_instant(DAY)  # the tick's day, not the real one
    assert run.finished_at is not None and run.actor == "scheduler"

    # Later the same day, and the next day: within 36 hours, nothing is due.
    clock.advance(dt.timedelta(hours=10))
    assert _step(scheduler.prepare(engine, clock, plan=False)).summary is None
    clock.set(local_instant(DAY + dt.timedelta(days=1), dt.time(8, 0)))
    assert _step(scheduler.prepare(engine, clock, plan=False)).summary is None
    assert len(_runs(engine, "pacs")) == 1

    # Travel past the interval: reconciled again, then not again that day.
    clock.set(local_instant(DAY + dt.timedelta(days=2), dt.time(8, 0)))
    again = scheduler.prepare(engine, clock, plan=False)
    assert _step(again).summary == "reconciled pacs (0 findings)"
    assert _step(scheduler.prepare(engine, clock, plan=False)).summary is None
    assert len(_runs(engine, "pacs")) == 2
    assert len(_audit(engine, "reconcile.run")) == 2


def test_an_explicit_instant_schedules_to_the_hour(
    engine: Engine, directories: dict[str, MemoryConnector]
) -> None:
    add_target(engine, "pacs", KIND, reconcile_every_hours="6")
    eight = local_instant(DAY, dt.time(8, 0))
    assert [o.target for o in reconcile_due(engine, eight, actor="t")] == ["pacs"]
    assert reconcile_due(engine, eight + dt.timedelta(hours=5, minutes=59), actor="t") == []
    later = reconcile_due(engine, eight + dt.timedelta(hours=6), actor="t")
    assert [o.target for o in later] == ["pacs"]
    assert [_aware(r.started_at) for r in _runs(engine, "pacs")][1] >= eight + dt.timedelta(hours=6)


def test_an_on_demand_run_counts_as_the_last_run(
    engine: Engine, directories: dict[str, MemoryConnector]
) -> None:
    from pasa.engine.reconcile import reconcile

    add_target(engine, "pacs", KIND, reconcile_every_hours=24)
    eight = local_instant(DAY, dt.time(8, 0))
    reconcile(engine, "pacs", actor="alice", now=lambda: eight)
    assert reconcile_due(engine, eight + dt.timedelta(hours=23), actor="t") == []
    assert len(reconcile_due(engine, eight + dt.timedelta(hours=24), actor="t")) == 1


@pytest.mark.usefixtures("only_this_step")
def test_targets_without_the_setting_or_paused_are_never_scheduled(
    engine: Engine, directories: dict[str, MemoryConnector]
) -> None:
    add_target(engine, "ondemand", KIND, reconcile="correct")
    add_target(engine, "resting", KIND, reconcile_every_hours=1)
    with engine.begin() as conn:
        conn.execute(s.target.update().where(s.target.c.key == "resting").values(paused=True))
    clock = FixedClock.at_local(DAY)
    for _ in range(3):
        prepared = scheduler.prepare(engine, clock, plan=False)
        assert _step(prepared).summary is None and _step(prepared).error is None
        clock.advance(dt.timedelta(days=30))
    assert _runs(engine, "ondemand") == [] and _runs(engine, "resting") == []
    assert directories == {}  # no connector was even built


@pytest.mark.parametrize(
    "value", [0, -2, "daily", "", True, [6], float("inf"), float("nan"), 24 * 366 + 1]
)
def test_a_bad_setting_is_refused_naming_the_target(value: object) -> None:
    with pytest.raises(ConfigurationError, match="target 'pacs': reconcile_every_hours must"):
        registry.reconcile_every_hours("pacs", {"reconcile_every_hours": value})


def test_good_settings_are_read_as_hours() -> None:
    read = registry.reconcile_every_hours
    assert read("t", {}) is None
    assert read("t", {"reconcile_every_hours": 6}) == 6.0
    assert read("t", {"reconcile_every_hours": "0.5"}) == 0.5
    assert read("t", {"reconcile_every_hours": 24 * 366}) == 24 * 366


@pytest.mark.usefixtures("only_this_step")
def test_a_bad_setting_in_a_tick_is_reported_and_others_still_run(
    engine: Engine, directories: dict[str, MemoryConnector]
) -> None:
    add_target(engine, "odd", KIND, reconcile_every_hours="daily")
    add_target(engine, "pacs", KIND, reconcile_every_hours=24)
    summary = _step(scheduler.prepare(engine, FixedClock.at_local(DAY), plan=False)).summary
    assert summary is not None
    assert "reconciled pacs (0 findings)" in summary
    assert (
        "reconciliation failed: odd (ConfigurationError: target 'odd': reconcile_every_hours "
        "must be a number of hours, not 'daily')" in summary
    )
    assert _runs(engine, "odd") == [] and len(_runs(engine, "pacs")) == 1


@pytest.mark.usefixtures("only_this_step")
def test_a_failing_target_does_not_stop_another(
    engine: Engine, directories: dict[str, MemoryConnector]
) -> None:
    # "adown" sorts first, so "pacs" is reconciled after the failure.
    add_target(engine, "adown", KIND, reconcile_every_hours=24)
    add_target(engine, "pacs", KIND, reconcile_every_hours=24)
    down = directories["adown"] = MemoryConnector("adown")
    down.fail_with = TransientError("connection refused")
    clock = FixedClock.at_local(DAY)

    prepared = scheduler.prepare(engine, clock, plan=False)
    step = _step(prepared)
    assert step.error is None  # the step itself carried on
    assert step.summary == (
        "reconciled pacs (0 findings); "
        "reconciliation failed: adown (TransientError: connection refused)"
    )
    (good,) = _runs(engine, "pacs")
    assert good.finished_at is not None
    (failed_run,) = _runs(engine, "adown")
    assert failed_run.finished_at is None
    (failed,) = _audit(engine, "reconcile.failed")
    assert failed.subject_id == "adown" and failed.actor == "scheduler"
    assert failed.details == {"scheduled": True, "error": "TransientError: connection refused"}

    # Not hammered within the retry delay; tried again later, when the directory is back.
    assert _step(scheduler.prepare(engine, clock, plan=False)).summary is None
    down.fail_with = None
    clock.advance(dt.timedelta(days=1))
    later = _step(scheduler.prepare(engine, clock, plan=False))
    assert later.summary == "reconciled adown (0 findings), pacs (0 findings)"
    assert _runs(engine, "adown")[-1].finished_at is not None
    with engine.connect() as conn:
        assert verify(conn).ok


@pytest.mark.usefixtures("only_this_step")
def test_findings_and_audit_are_as_for_an_on_demand_run(
    engine: Engine, directories: dict[str, MemoryConnector]
) -> None:
    tid = add_target(engine, "pacs", KIND, reconcile="correct", reconcile_every_hours=12)
    add_person(engine, 1, "10000001")
    c = directories["pacs"] = MemoryConnector("pacs")
    c.create("jsmith", sample_attributes("10000001", job_title="Sister"))
    c.create("handmade", sample_attributes("99999999"))
    record_account(engine, tid, 1, "jsmith", sample_attributes("10000001"))

    prepared = scheduler.prepare(engine, FixedClock.at_local(DAY), actor="nightly", plan=False)
    assert _step(prepared).summary == "reconciled pacs (2 findings, 1 corrections)"

    (run,) = _runs(engine, "pacs")
    assert run.policy == "correct" and run.actor == "nightly"
    assert run.counts["drifted"] == 1 and run.counts["unmatched"] == 1
    with engine.connect() as conn:
        findings = conn.execute(
            sa.select(s.reconciliation_finding).order_by(s.reconciliation_finding.c.username)
        ).all()
        assert verify(conn).ok
    assert [(f.username, f.kind, f.run_id) for f in findings] == [
        ("handmade", "unmatched", run.id),
        ("jsmith", "drifted", run.id),
    ]
    assert findings[1].details["corrected"] == ["update job_title"]
    remote = c.read("jsmith")
    assert remote is not None and remote.attributes["job_title"] != "Sister"
    (audit,) = _audit(engine, "reconcile.run")
    assert audit.actor == "nightly" and audit.subject_id == "pacs"
    assert audit.details["run_id"] == run.id
    assert audit.details["policy"] == "correct" and audit.details["corrections"] == 1


def test_a_real_tick_with_every_registered_step_runs_it(
    engine: Engine, directories: dict[str, MemoryConnector]
) -> None:
    add_target(engine, "pacs", KIND, reconcile_every_hours=24)
    report = scheduler.tick(engine, FixedClock.at_local(DAY), plan=False)
    assert "scheduled_reconciliations: reconciled pacs (0 findings)" in str(report)
    assert len(_runs(engine, "pacs")) == 1


def test_the_tick_instant_is_real_time_today_else_the_travelled_day() -> None:
    tz = "Europe/London"
    real = dt.datetime(2026, 11, 24, 18, 30, tzinfo=dt.UTC)
    assert tick_instant(dt.date(2026, 11, 24), tz, real) == real
    assert tick_instant(DAY, tz, real) == local_instant(DAY, dt.time(0, 0), tz)
    past = tick_instant(dt.date(2026, 8, 5), tz, real)
    assert past == local_instant(dt.date(2026, 8, 6), dt.time(0, 0), tz) - dt.timedelta(
        microseconds=1
    )
