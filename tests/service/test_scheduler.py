"""Scheduled ticks: the organisation-local date decides, pre-steps never stop a tick.

Each test imports a small ESR extract (``tests/hr/esr_builder.py``), loads a policy whose
directory is a ``sql_table`` target (an SQLite file under ``tmp_path``) and runs ticks with a
:class:`~pasa.clock.FixedClock`; what matters is checked in the target's own table.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
import sys
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine

from pasa.clock import FixedClock
from pasa.hr.importer import import_extract
from pasa.policy.document import parse_policy
from pasa.service import scheduler
from pasa.store.policy_repo import save_policy

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "hr"))
from esr_builder import valid_row, write_extract

IMPORTED = dt.date(2026, 7, 20)
LEAVER, STARTER, STAYER = 1, 2, 3  # employee numbers 10000001..3

POLICY = """
version: 1
targets:
  - key: ad
    name: Directory
    connector: sql_table
    username_template: "{employee_number}"
    settings:
      url: sqlite:///DIRECTORY
      table: users
      membership_table: user_groups
birthright: [ad]
roles:
  - key: staff
    description: Every employee
    entitlements:
      - target: ad
        groups: [GG-All-Staff]
rules:
  - key: everyone
    description: Everyone on a contract
    when: {category: Permanent}
    grant: [staff]
"""


def _utc(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).replace(tzinfo=dt.UTC)


@pytest.fixture
def trust(engine: Engine, tmp_path: Path) -> Engine:
    """A leaver (ends 31 July 2026), a starter (starts 3 August 2026) and a stayer."""
    directory = tmp_path / "directory.db"
    with engine.begin() as conn:
        text = POLICY.replace("DIRECTORY", str(directory))
        save_policy(conn, parse_policy(text, "test"), source="t", actor="t")
    rows = [
        valid_row(LEAVER, Assignment_End_Date="31/07/2026"),
        valid_row(STARTER, Assignment_Start_Date="03/08/2026"),
        valid_row(STAYER),
    ]
    result = import_extract(
        engine, write_extract(tmp_path / "esr.csv", rows), actor="t", as_of=IMPORTED
    )
    assert result.status != "held"
    return engine


@pytest.fixture(autouse=True)
def _no_registered_steps(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests choose their pre-steps; steps other modules registered are not theirs to run."""
    monkeypatch.setattr(scheduler, "PRE_STEPS", [])
    monkeypatch.delenv("PASA_TIMEZONE", raising=False)


def _directory(tmp_path: Path) -> dict[str, bool]:
    """username (the employee number) -> enabled, as the directory itself holds it."""
    db = sqlite3.connect(tmp_path / "directory.db")
    try:
        return {u: bool(e) for u, e in db.execute("SELECT username, enabled FROM users")}
    except sqlite3.OperationalError:  # no table yet: nothing was ever provisioned
        return {}
    finally:
        db.close()


def _emp(n: int) -> str:
    return f"{10_000_000 + n:08d}"


def test_leaver_is_disabled_at_the_first_tick_of_the_next_local_day(
    trust: Engine, tmp_path: Path
) -> None:
    clock = FixedClock(_utc("2026-07-31T22:30:00"))  # 23:30 BST, still 31 July in London
    first = scheduler.tick(trust, clock)
    assert first.at == dt.date(2026, 7, 31)
    assert first.planned and first.worker.succeeded and not first.worker.parked
    assert _directory(tmp_path)[_emp(LEAVER)] is True

    clock.set(_utc("2026-07-31T23:30:00"))  # 00:30 BST on 1 August
    second = scheduler.tick(trust, clock)
    assert second.at == dt.date(2026, 8, 1)
    directory = _directory(tmp_path)
    assert directory[_emp(LEAVER)] is False
    assert directory[_emp(STAYER)] is True
    assert "Tick as at 2026-08-01" in str(second)


def test_a_failing_pre_step_is_reported_and_the_tick_carries_on(
    trust: Engine, tmp_path: Path
) -> None:
    seen: list[tuple[dt.date, str]] = []

    def rotation_batches(engine: Engine, at: dt.date, actor: str) -> str | None:
        raise RuntimeError("rotation file is missing")

    def lifecycle_states(engine: Engine, at: dt.date, actor: str) -> str | None:
        seen.append((at, actor))
        return "3 lifecycle states recorded"

    scheduler.PRE_STEPS.extend([rotation_batches, lifecycle_states])
    report = scheduler.tick(trust, FixedClock.at_local(dt.date(2026, 7, 27)), actor="tester")

    assert seen == [(dt.date(2026, 7, 27), "tester")]
    failed, ok = report.steps
    assert failed.error == "RuntimeError: rotation file is missing"
    assert ok.summary == "3 lifecycle states recorded" and ok.error is None
    assert report.failed_steps == (failed,)
    assert report.planned and report.worker.succeeded
    assert set(_directory(tmp_path)) == {_emp(LEAVER), _emp(STAYER)}
    text = str(report)
    assert "rotation_batches FAILED: RuntimeError: rotation file is missing" in text
    assert "3 lifecycle states recorded" in text


def test_starter_gets_nothing_until_the_tick_on_their_start_date(
    trust: Engine, tmp_path: Path
) -> None:
    clock = FixedClock.at_local(dt.date(2026, 8, 2), dt.time(23, 30))
    reports = scheduler.run(trust, clock, dt.timedelta(minutes=30), ticks=1)
    assert [r.at for r in reports] == [dt.date(2026, 8, 2)]
    assert _emp(STARTER) not in _directory(tmp_path)

    # The scheduler's own loop: the fake sleep moves the clock past local midnight.
    waits: list[float] = []

    def sleep(seconds: float) -> None:
        waits.append(seconds)
        clock.advance(dt.timedelta(seconds=seconds))

    shown: list[scheduler.TickReport] = []
    reports = scheduler.run(
        trust, clock, dt.timedelta(minutes=30), ticks=2, sleep=sleep, on_tick=shown.append
    )
    assert [r.at for r in reports] == [dt.date(2026, 8, 2), dt.date(2026, 8, 3)]
    assert shown == reports and waits == [1800.0]
    assert reports[0].planned == 0
    assert _directory(tmp_path)[_emp(STARTER)] is True


def test_no_plan_only_executes(trust: Engine, tmp_path: Path) -> None:
    report = scheduler.tick(trust, FixedClock.at_local(dt.date(2026, 7, 27)), plan=False)
    assert report.planned is None and report.worker.executed == 0
    assert _directory(tmp_path) == {}
