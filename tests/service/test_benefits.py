"""The benefits dashboard's figures from a small hub (SQLite and PostgreSQL)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
import sqlalchemy as sa
from hub_helpers import A, add_person
from sqlalchemy.engine import Connection, Engine

from pasa.domain.benefits import Baseline
from pasa.service import benefits
from pasa.store import schema as s

UTC = dt.UTC
# Tuesday 24 November 2026, noon: winter, so 08:00 in London is 08:00 UTC.
NOW = dt.datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
# 90 days to the end of next week: the last starter has a start date but no day one yet.
START, END = dt.date(2026, 9, 2), dt.date(2026, 11, 30)


def at(m: int, d: int, h: int = 0, mi: int = 0) -> dt.datetime:
    return dt.datetime(2026, m, d, h, mi, tzinfo=UTC)


def _import(conn: Connection, as_of: dt.date, started: dt.datetime) -> int:
    return int(
        conn.execute(
            s.hr_import.insert()
            .values(
                source="esr-extract",
                filename="x.csv",
                sha256="0" * 64,
                as_of=as_of,
                status="applied",
                started_at=started,
                guard_threshold=0.05,
                actor="test",
            )
            .returning(s.hr_import.c.id)
        ).scalar_one()
    )


class Hub:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        # The go-live extract: every existing member of staff, PASA's first import.
        self.baseline_id = _import(conn, dt.date(2026, 9, 1), at(9, 1, 10))
        self.import_id = _import(conn, dt.date(2026, 11, 1), at(11, 1))
        self.targets = {
            key: conn.execute(
                s.target.insert()
                .values(key=key, name=key, connector=connector, settings={}, username_template="x")
                .returning(s.target.c.id)
            ).scalar_one()
            for key, connector in (("ad", "memory"), ("pharmacy", "manual"))
        }
        self.org_id = conn.scalar(
            sa.select(s.organisation.c.id).where(s.organisation.c.ods_code == "RXL")
        )
        self.n = 0

    def starter(
        self,
        name: str,
        number: str,
        start: dt.date,
        received: dt.datetime,
        import_id: int | None = None,
    ) -> int:
        person = add_person(self.conn, name, "Starter", A(number, start))
        self.event(person, number, start, received, import_id or self.import_id)
        return person

    def event(
        self, person: int, number: str, start: dt.date, received: dt.datetime, import_id: int
    ) -> None:
        self.conn.execute(
            s.hr_event.insert().values(
                import_id=import_id,
                organisation_id=self.org_id,
                assignment_number=number,
                person_id=person,
                kind="new",
                effective_date=start,
                state="applied",
                recorded_at=received,
            )
        )

    def op(
        self,
        person: int,
        target: str,
        created: dt.datetime,
        done: dt.datetime | None,
        status: str = "succeeded",
        manual_task: str | None = None,
        kind: str = "create_account",
    ) -> int:
        self.n += 1
        values: dict[str, Any] = dict(
            idempotency_key=f"k{self.n}",
            plan_id="p",
            target_id=self.targets[target],
            person_id=person,
            kind=kind,
            username=f"u{person}",
            payload={},
            reasons=[],
            summary="",
            status=status,
            created_at=created,
            completed_at=done,
        )
        op_id = self.conn.execute(
            s.operation.insert().values(**values).returning(s.operation.c.id)
        ).scalar_one()
        if manual_task is not None:
            self.conn.execute(
                s.manual_task.insert().values(
                    operation_id=op_id,
                    target_id=self.targets[target],
                    assignee="pharmacy team",
                    instructions="create the account",
                    status=manual_task,
                    created_at=created,
                    due_at=created + dt.timedelta(days=2),
                    completed_at=done,
                )
            )
        return int(op_id)


@pytest.fixture
def scenario(engine: Engine) -> Engine:
    with engine.begin() as conn:
        long_serving = add_person(conn, "Long", "Serving", A("100", dt.date(2020, 1, 1)))
        hub = Hub(conn)
        hub.event(long_serving, "100", dt.date(2020, 1, 1), at(9, 1, 10), hub.baseline_id)
        # Started 7 September, so in the period, but in the go-live extract: provisioned by
        # hand before PASA existed, so not one of PASA's starters.
        hub.starter("Recent", "150", dt.date(2026, 9, 7), at(9, 1, 10), hub.baseline_id)
        # Ready at 07:30 UTC on day one (Monday 16 November): in time.
        early = hub.starter("Early", "201", dt.date(2026, 11, 16), at(11, 10, 9))
        hub.op(early, "ad", at(11, 10, 9, 5), at(11, 10, 9, 20))
        hub.op(early, "ad", at(11, 16, 0, 5), at(11, 16, 7, 30), kind="enable")
        # Ready at 09:00 on day one (Monday 16 November) after a manual pharmacy step: late.
        late = hub.starter("Late", "202", dt.date(2026, 11, 16), at(11, 12, 9))
        hub.op(late, "ad", at(11, 12, 9, 5), at(11, 12, 10))
        hub.op(late, "pharmacy", at(11, 12, 9, 5), at(11, 16, 9), manual_task="done")
        # Starting 23 November, one operation parked: not ready.
        stuck = hub.starter("Stuck", "203", dt.date(2026, 11, 23), at(11, 20, 9))
        hub.op(stuck, "ad", at(11, 20, 9, 5), None, status="parked")
        # Starting 30 November (after today's 08:00): counted as a starter, not for day one.
        future = hub.starter("Future", "204", dt.date(2026, 11, 30), at(11, 23, 9))
        hub.op(future, "ad", at(11, 23, 9, 5), at(11, 23, 9, 6))
        hub.op(
            future, "pharmacy", at(11, 23, 9, 5), None, status="waiting_manual", manual_task="open"
        )
        conn.execute(
            s.hr_quarantine.insert().values(
                import_id=hub.import_id, row_number=7, severity="rejected", reason="bad NI number"
            )
        )
    return engine


def test_the_dashboard_figures_of_a_small_scenario(scenario: Engine) -> None:
    found = benefits.dashboard(scenario, "RXL", START, END, now=NOW, baseline=Baseline())
    assert found is not None
    r = found.report
    # Early, Late, Stuck and Future (not Recent, of the baseline import); Future waits on an
    # open manual task, Stuck is parked.
    assert (r.starters, r.ready, r.not_ready, r.with_manual_step) == (4, 2, 2, 2)
    # Early: 09:00 10 Nov -> 07:30 16 Nov = 142.5 h; Late: 09:00 12 Nov -> 09:00 16 Nov = 96 h.
    assert r.percentiles_hours == {50: 96.0, 75: 142.5, 90: 142.5, 95: 142.5}
    assert [b.count for b in r.buckets] == [0, 0, 0, 0, 2, 0, 0, 0]
    # Day one passed for Early (ready 07:30), Late (09:00) and Stuck (parked): 1 of 3.
    assert (r.day_one_eligible, r.day_one_ready) == (3, 1)
    weeks = {w.week: (w.starters, w.ready) for w in r.weeks}
    assert weeks[dt.date(2026, 11, 16)] == (2, 1)
    assert weeks[dt.date(2026, 11, 23)] == (1, 0)
    assert weeks[dt.date(2026, 11, 30)] == (0, 0)
    # Succeeded in the period: Early 2, Late 2 (one by hand), Future 1.
    assert (r.automated, r.manual) == (4, 1)
    # Headcount on 30 November: Long Serving, Recent and the four starters.
    saving = r.saving
    assert saving.headcount == 6
    assert saving.baseline_hours == pytest.approx(33 * 6 / 7000 * 1650 * 90 / 365)
    assert saving.hours_saved == pytest.approx(saving.baseline_hours * 4 / 5)
    ex = found.exceptions
    assert (ex.parked_operations, ex.open_manual_tasks, ex.quarantined_rows, ex.held_imports) == (
        1,
        1,
        1,
        0,
    )


def test_an_unknown_organisation_has_no_dashboard(scenario: Engine) -> None:
    assert benefits.dashboard(scenario, "XXX", START, END, now=NOW) is None


def test_a_later_import_of_a_baseline_starter_makes_them_a_starter(scenario: Engine) -> None:
    """The rule is about where the assignment arrived, not a flag on the person: the same
    start date keyed after go-live (a later import) is a PASA starter."""
    with scenario.begin() as conn:
        later = _import(conn, dt.date(2026, 11, 20), at(11, 20))
        org_id = conn.scalar(
            sa.select(s.organisation.c.id).where(s.organisation.c.ods_code == "RXL")
        )
        conn.execute(
            s.hr_event.update()
            .where(s.hr_event.c.organisation_id == org_id, s.hr_event.c.assignment_number == "150")
            .values(import_id=later)
        )
    found = benefits.dashboard(scenario, "RXL", START, END, now=NOW, baseline=Baseline())
    assert found is not None
    assert found.report.starters == 5
