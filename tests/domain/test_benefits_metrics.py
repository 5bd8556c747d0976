"""Benefits metrics: worked examples computed by hand, and properties."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pasa.domain.benefits import (
    Baseline,
    StarterFacts,
    compute,
    day_one_deadline,
    estimate_saving,
    histogram,
    percentile,
    ready_by_day_one,
    share,
)

UTC = dt.UTC


def at(y: int, m: int, d: int, h: int = 0, mi: int = 0) -> dt.datetime:
    return dt.datetime(y, m, d, h, mi, tzinfo=UTC)


# --- worked examples ---------------------------------------------------------------------


def test_08_00_is_07_00_utc_in_summer_time_and_08_00_utc_in_winter() -> None:
    assert day_one_deadline(dt.date(2026, 7, 1)).astimezone(UTC) == at(2026, 7, 1, 7)
    assert day_one_deadline(dt.date(2026, 12, 1)).astimezone(UTC) == at(2026, 12, 1, 8)
    # The clocks go forward on Sunday 29 March 2026 at 01:00 UTC, back on 25 October.
    assert day_one_deadline(dt.date(2026, 3, 29)).astimezone(UTC) == at(2026, 3, 29, 7)
    assert day_one_deadline(dt.date(2026, 3, 28)).astimezone(UTC) == at(2026, 3, 28, 8)
    assert day_one_deadline(dt.date(2026, 10, 25)).astimezone(UTC) == at(2026, 10, 25, 8)
    assert day_one_deadline(dt.date(2026, 10, 24)).astimezone(UTC) == at(2026, 10, 24, 7)


def test_a_starter_ready_at_07_30_utc_in_july_missed_08_00_but_in_january_made_it() -> None:
    july = StarterFacts(1, at(2026, 6, 1), dt.date(2026, 7, 1), {"ad": at(2026, 7, 1, 7, 30)})
    january = StarterFacts(2, at(2026, 1, 1), dt.date(2026, 1, 5), {"ad": at(2026, 1, 5, 7, 30)})
    assert not ready_by_day_one(july)
    assert ready_by_day_one(january)


def test_worked_example() -> None:
    # Four starters: ready in 2 h, 30 h, 100 h; one still waiting on the door system.
    starters = [
        StarterFacts(1, at(2026, 11, 2, 9), dt.date(2026, 11, 3), {"ad": at(2026, 11, 2, 11)}),
        StarterFacts(
            2,
            at(2026, 11, 2, 9),
            dt.date(2026, 11, 4),
            {"ad": at(2026, 11, 2, 10), "door": at(2026, 11, 3, 15)},
            manual=True,
        ),
        StarterFacts(3, at(2026, 11, 5, 8), dt.date(2026, 11, 9), {"ad": at(2026, 11, 9, 12)}),
        StarterFacts(4, at(2026, 11, 5, 8), dt.date(2026, 11, 10), {"ad": None}),
    ]
    report = compute(
        starters,
        automated=90,
        manual=10,
        headcount=700,
        period_from=dt.date(2026, 11, 1),
        period_to=dt.date(2026, 11, 30),
        now=at(2026, 11, 24, 12),
    )
    assert (report.starters, report.ready, report.not_ready, report.with_manual_step) == (
        4,
        3,
        1,
        1,
    )
    # Hours 2, 30, 100: nearest rank p50 = 2nd = 30, p75/p90/p95 = 3rd = 100.
    assert report.percentiles_hours == {50: 30.0, 75: 100.0, 90: 100.0, 95: 100.0}
    assert [b.count for b in report.buckets] == [0, 1, 0, 1, 1, 0, 0, 0]
    # Ready by 08:00: starters 1 and 2 yes; 3 (ready at noon) and 4 (not ready) no.
    assert (report.day_one_eligible, report.day_one_ready, report.day_one_share) == (4, 2, 0.5)
    weeks = {w.week: (w.starters, w.ready) for w in report.weeks}
    assert weeks[dt.date(2026, 11, 2)] == (2, 2)
    assert weeks[dt.date(2026, 11, 9)] == (2, 0)
    assert weeks[dt.date(2026, 11, 16)] == (0, 0)
    assert report.automated_share == 0.9
    # 700 staff: 3.3 WTE x 1,650 h x 30/365 = 447.53 h; x 90% automated = 402.78 h.
    saving = report.saving
    assert saving.scaled_wte == pytest.approx(3.3)
    assert saving.baseline_hours == pytest.approx(3.3 * 1650 * 30 / 365)
    assert saving.minutes_per_action == pytest.approx(3.3 * 1650 * 30 / 365 * 60 / 100)
    assert saving.hours_saved == pytest.approx(402.7808, rel=1e-5)
    # £1.1m / (33 x 1,650 h) = £20.20 an hour.
    assert saving.cost_per_hour == pytest.approx(20.2020, rel=1e-4)
    assert saving.cost_saved_gbp == pytest.approx(402.7808 * 1_100_000 / (33 * 1650), rel=1e-5)
    assert saving.wte_saved == pytest.approx(3.3 * 0.9)


def test_the_full_baseline_a_year_is_saved_when_everything_is_automated() -> None:
    saving = estimate_saving(Baseline(), 7000, automated=5000, manual=0, period_days=365)
    assert saving.hours_saved == pytest.approx(33 * 1650)
    assert saving.cost_saved_gbp == pytest.approx(1_100_000)


def test_a_day_one_still_to_come_is_neither_a_success_nor_a_miss() -> None:
    tomorrow = StarterFacts(1, at(2026, 11, 20), dt.date(2026, 11, 25), {"ad": None})
    report = compute(
        [tomorrow],
        automated=0,
        manual=0,
        headcount=10,
        period_from=dt.date(2026, 11, 1),
        period_to=dt.date(2026, 11, 30),
        now=at(2026, 11, 24, 12),
    )
    assert report.day_one_eligible == 0 and report.day_one_share is None
    assert report.automated_share is None and report.saving.hours_saved == 0


def test_a_bad_baseline_is_refused_with_its_name() -> None:
    with pytest.raises(ValueError, match="baseline staff"):
        Baseline(staff=0)


# --- properties --------------------------------------------------------------------------

hours_lists = st.lists(
    st.floats(min_value=0, max_value=1e5, allow_nan=False), min_size=1, max_size=50
)


@given(
    hours_lists, st.floats(min_value=0.01, max_value=100), st.floats(min_value=0.01, max_value=100)
)
def test_percentiles_are_monotone_and_observed(values: list[float], p: float, q: float) -> None:
    low, high = sorted((p, q))
    assert percentile(values, low) <= percentile(values, high)
    assert percentile(values, p) in values
    assert min(values) <= percentile(values, p) <= max(values)


@given(st.lists(st.floats(min_value=0, max_value=1e6, allow_nan=False), max_size=50))
def test_the_histogram_counts_every_value_once(values: list[float]) -> None:
    assert sum(b.count for b in histogram(values)) == len(values)


@given(st.integers(min_value=-5, max_value=10**6), st.integers(min_value=-5, max_value=10**6))
def test_shares_are_in_0_to_1(part: int, whole: int) -> None:
    value = share(part, whole)
    assert value is None or 0.0 <= value <= 1.0


@given(
    st.integers(min_value=0, max_value=10**6),
    st.integers(min_value=0, max_value=10**6),
    st.integers(min_value=0, max_value=10**6),
    st.integers(min_value=0, max_value=1000),
)
def test_the_saving_is_never_negative_nor_more_than_the_baseline(
    headcount: int, automated: int, manual: int, days: int
) -> None:
    saving = estimate_saving(Baseline(), headcount, automated, manual, days)
    assert 0 <= saving.hours_saved <= saving.baseline_hours + 1e-6
    assert saving.cost_saved_gbp >= 0
    if automated == 0:
        assert saving.hours_saved == 0 and saving.cost_saved_gbp == 0


@given(
    st.dates(min_value=dt.date(2000, 1, 1), max_value=dt.date(2100, 12, 31)),
    st.integers(min_value=-600, max_value=600),
)
def test_08_00_local_on_every_day_including_dst_changes(day: dt.date, seconds: int) -> None:
    deadline = day_one_deadline(day)
    local = deadline.astimezone(ZoneInfo("Europe/London"))
    assert (local.date(), local.hour, local.minute) == (day, 8, 0)
    assert deadline.astimezone(UTC).hour in (7, 8)
    ready = deadline.astimezone(UTC) + dt.timedelta(seconds=seconds)
    starter = StarterFacts(1, ready - dt.timedelta(days=3), day, {"ad": ready})
    assert ready_by_day_one(starter) == (seconds <= 0)


@given(
    st.lists(
        st.tuples(
            st.integers(min_value=0, max_value=60 * 24 * 60),
            st.integers(min_value=0, max_value=60),
            st.booleans(),
        ),
        max_size=30,
    )
)
def test_report_shares_stay_in_range(rows: list[tuple[int, int, bool]]) -> None:
    base = at(2026, 1, 1)
    starters = [
        StarterFacts(
            i,
            base,
            (base + dt.timedelta(days=start)).date(),
            {"ad": None if not done else base + dt.timedelta(minutes=minutes)},
        )
        for i, (minutes, start, done) in enumerate(rows)
    ]
    report = compute(
        starters,
        automated=len(rows),
        manual=1,
        headcount=100,
        period_from=dt.date(2026, 1, 1),
        period_to=dt.date(2026, 3, 31),
        now=at(2026, 2, 15),
    )
    for value in [report.day_one_share, report.automated_share, *(w.share for w in report.weeks)]:
        assert value is None or 0 <= value <= 1
    assert report.ready + report.not_ready == report.starters
    ps = [report.percentiles_hours[p] for p in sorted(report.percentiles_hours)]
    assert ps == sorted(ps)
