"""The process-wide clock: simulations (the demo's history) move every timestamp PASA writes."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from pasa import clock
from pasa.clock import FixedClock, SystemClock, use_clock
from pasa.hr.importer import import_extract
from pasa.hr.synthetic import generate_workforce
from pasa.policy.document import load_policy_file
from pasa.service import provisioning
from pasa.store import schema as s
from pasa.store.policy_repo import save_policy

REPO = Path(__file__).resolve().parents[1]
# A Monday in March 2025, 06:00 London (GMT): well in the past, so the real clock cannot match.
THEN = dt.datetime(2025, 3, 3, 6, 0, tzinfo=dt.UTC)


def test_now_is_the_real_clock_when_no_simulation_is_set() -> None:
    assert isinstance(clock.current(), SystemClock)
    before = dt.datetime.now(dt.UTC)
    assert before <= clock.now() <= dt.datetime.now(dt.UTC)


def test_use_clock_nests_and_restores_even_after_an_error() -> None:
    outer, inner = FixedClock(THEN), FixedClock(THEN + dt.timedelta(days=30))
    with use_clock(outer):
        assert clock.now() == THEN
        assert clock.today() == dt.date(2025, 3, 3)
        with use_clock(inner):
            assert clock.now() == THEN + dt.timedelta(days=30)
        assert clock.now() == THEN
        outer.advance(dt.timedelta(hours=2))  # moving the clock moves now()
        assert clock.now() == THEN + dt.timedelta(hours=2)
        with pytest.raises(RuntimeError), use_clock(inner):
            raise RuntimeError("a failing simulation step")
        assert clock.current() is outer
    assert isinstance(clock.current(), SystemClock)


def test_import_apply_and_execute_are_stamped_with_the_simulated_instant(
    engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # target systems are SQLite files under ./var
    day = dt.date(2025, 3, 3)
    extract = tmp_path / "esr.csv"
    generate_workforce(extract, staff=100, org="RXL", seed=3, as_of=day)
    sim = FixedClock(THEN)
    with use_clock(sim):
        with engine.begin() as conn:
            save_policy(
                conn, load_policy_file(REPO / "examples" / "policy.yaml"), source="t", actor="t"
            )
        import_extract(engine, extract, actor="t", as_of=day)
        sim.advance(dt.timedelta(hours=1))
        provisioning.apply(engine, day, actor="t")
        provisioning.execute(engine)

    def utc(value: dt.datetime) -> dt.datetime:
        return value if value.tzinfo else value.replace(tzinfo=dt.UTC)

    with engine.connect() as conn:
        imported = conn.execute(sa.select(s.hr_import.c.started_at, s.hr_import.c.finished_at))
        for started, finished in imported:
            assert utc(started) == THEN and utc(finished) == THEN
        events = {utc(t) for t in conn.scalars(sa.select(s.hr_event.c.recorded_at))}
        assert events == {THEN}
        ops = conn.execute(sa.select(s.operation.c.created_at, s.operation.c.completed_at)).all()
        assert ops
        later = THEN + dt.timedelta(hours=1)
        assert {utc(c) for c, _ in ops} == {later}
        assert {utc(d) for _, d in ops if d is not None} == {later}
        audit_times = {utc(t) for t in conn.scalars(sa.select(s.audit_log.c.at))}
        assert audit_times == {THEN, later}
