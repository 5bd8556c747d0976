"""Benefits metrics (pure): time to access, ready by 08:00 on day one, automation rate and the
staff time saved against the business case's baseline.

Definitions (docs/web.md, "Benefits dashboard"):

* **Time to access** of a starter: from the moment PASA received the HR record of the new
  assignment to the moment the last of its required systems became ready (every operation
  planned for the starter on that system succeeded). A starter with a system not yet ready
  has no time to access yet; one with no required system was ready when the record arrived.
* **Ready by 08:00 on day one**: every required system ready at or before 08:00 on the start
  date, in the organisation's time zone (Europe/London: 07:00 UTC in summer time, 08:00 UTC
  in winter). Only starters whose 08:00 on day one has passed are counted.
* **Automated / manual operations**: operations that succeeded in the period; *manual* when a
  person fulfilled it (it had a manual task), else *automated*.
* **Staff time saved** (:func:`estimate_saving`): the baseline team's hours, scaled to the
  organisation's headcount and to the period, times the share of provisioning actions PASA
  automated. Equivalently: baseline minutes per action (the baseline team's hours over the
  period's actions) times the automated actions.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

HOUR = 3600.0
DAY_ONE_HOUR = dt.time(8, 0)
DEFAULT_TIMEZONE = "Europe/London"
PERCENTILES: tuple[int, ...] = (50, 75, 90, 95)

# Histogram bucket edges in hours: the lower edge is inclusive, the upper exclusive.
BUCKET_EDGES: tuple[float, ...] = (0, 1, 4, 24, 72, 168, 336, 672, math.inf)
BUCKET_LABELS: tuple[str, ...] = (
    "under 1 hour",
    "1 to 4 hours",
    "4 to 24 hours",
    "1 to 3 days",
    "3 to 7 days",
    "1 to 2 weeks",
    "2 to 4 weeks",
    "4 weeks or more",
)


@dataclass(frozen=True, slots=True)
class Baseline:
    """The manual provisioning effort PASA replaces (defaults: the business case)."""

    wte: float = 33.0  # identity and access staff at the baseline trust
    cost_gbp: float = 1_100_000.0  # their cost a year
    staff: int = 7_000  # the baseline trust's headcount
    hours_per_wte: float = 1_650.0  # worked hours a year of one WTE

    def __post_init__(self) -> None:
        for name in ("wte", "cost_gbp", "staff", "hours_per_wte"):
            value = getattr(self, name)
            if not (isinstance(value, int | float) and math.isfinite(value) and value > 0):
                raise ValueError(f"baseline {name} must be a positive number, not {value!r}")

    @property
    def cost_per_hour(self) -> float:
        return self.cost_gbp / (self.wte * self.hours_per_wte)


@dataclass(frozen=True, slots=True)
class StarterFacts:
    """What the dashboard needs to know about one starter."""

    person_id: int
    received_at: dt.datetime  # when PASA recorded the HR record (timezone-aware)
    start_date: dt.date
    # Each required system (target key) → when it became ready (None: not ready yet).
    systems_ready_at: Mapping[str, dt.datetime | None] = field(default_factory=dict)
    manual: bool = False  # a person had to fulfil at least one step

    @property
    def ready_at(self) -> dt.datetime | None:
        """When the last required system became ready (None while one is not)."""
        if not self.systems_ready_at:
            return self.received_at
        times = list(self.systems_ready_at.values())
        if any(t is None for t in times):
            return None
        return max(t for t in times if t is not None)

    @property
    def hours_to_access(self) -> float | None:
        ready = self.ready_at
        if ready is None:
            return None
        # Access may already exist when the record arrives (a rehire): that is zero, not less.
        return max(0.0, (ready - self.received_at).total_seconds() / HOUR)


def day_one_deadline(start_date: dt.date, timezone: str = DEFAULT_TIMEZONE) -> dt.datetime:
    """08:00 local time on the start date, as an aware instant (zoneinfo applies DST)."""
    return dt.datetime.combine(start_date, DAY_ONE_HOUR, tzinfo=ZoneInfo(timezone))


def ready_by_day_one(starter: StarterFacts, timezone: str = DEFAULT_TIMEZONE) -> bool:
    ready = starter.ready_at
    return ready is not None and ready <= day_one_deadline(starter.start_date, timezone)


def percentile(values: Sequence[float], p: float) -> float:
    """The nearest-rank percentile (an observed value; monotone in ``p``)."""
    if not values:
        raise ValueError("no values")
    if not 0 < p <= 100:
        raise ValueError(f"percentile must be in (0, 100], not {p}")
    ordered = sorted(values)
    rank = max(1, math.ceil(p / 100 * len(ordered)))
    return ordered[rank - 1]


@dataclass(frozen=True, slots=True)
class Bucket:
    label: str
    low_hours: float
    high_hours: float  # exclusive; math.inf for the last
    count: int


def histogram(hours: Iterable[float]) -> list[Bucket]:
    counts = [0] * len(BUCKET_LABELS)
    for h in hours:
        for i in range(len(BUCKET_LABELS)):
            if BUCKET_EDGES[i] <= h < BUCKET_EDGES[i + 1]:
                counts[i] += 1
                break
    return [
        Bucket(label, BUCKET_EDGES[i], BUCKET_EDGES[i + 1], counts[i])
        for i, label in enumerate(BUCKET_LABELS)
    ]


def share(part: int, whole: int) -> float | None:
    """``part / whole`` in [0, 1]; None when there is nothing to divide."""
    if whole <= 0:
        return None
    return min(1.0, max(0.0, part / whole))


@dataclass(frozen=True, slots=True)
class WeekReadiness:
    week: dt.date  # the Monday
    starters: int  # starters whose 08:00 on day one has passed
    ready: int

    @property
    def share(self) -> float | None:
        return share(self.ready, self.starters)


@dataclass(frozen=True, slots=True)
class Saving:
    """The estimate and every number in its formula (shown on the page)."""

    headcount: int
    period_days: int
    scaled_wte: float  # baseline WTE x headcount / baseline staff
    baseline_hours: float  # scaled WTE x hours per WTE x period days / 365
    actions: int  # automated + manual operations in the period
    automated: int
    minutes_per_action: float | None  # baseline hours x 60 / actions
    hours_saved: float
    cost_per_hour: float
    cost_saved_gbp: float
    hours_per_wte: float

    @property
    def wte_saved(self) -> float:
        """The saving as whole-time equivalents (hours saved a year / hours per WTE)."""
        if self.period_days <= 0:
            return 0.0
        return self.hours_saved * 365 / self.period_days / self.hours_per_wte


def estimate_saving(
    baseline: Baseline, headcount: int, automated: int, manual: int, period_days: int
) -> Saving:
    """Hours and pounds saved in a period: baseline hours (scaled) x automated share.

    The assumption: the baseline team's effort is spent on provisioning actions in proportion
    to their number, and the period's volume is typical for the organisation. Then one action
    costs ``minutes_per_action`` of staff time, and each automated action saves that much.
    """
    headcount = max(0, headcount)
    automated, manual, period_days = max(0, automated), max(0, manual), max(0, period_days)
    scaled_wte = baseline.wte * headcount / baseline.staff
    baseline_hours = scaled_wte * baseline.hours_per_wte * period_days / 365
    actions = automated + manual
    minutes = baseline_hours * 60 / actions if actions else None
    hours_saved = (minutes or 0.0) * automated / 60
    return Saving(
        headcount=headcount,
        period_days=period_days,
        scaled_wte=scaled_wte,
        baseline_hours=baseline_hours,
        actions=actions,
        automated=automated,
        minutes_per_action=minutes,
        hours_saved=hours_saved,
        cost_per_hour=baseline.cost_per_hour,
        cost_saved_gbp=hours_saved * baseline.cost_per_hour,
        hours_per_wte=baseline.hours_per_wte,
    )


@dataclass(frozen=True, slots=True)
class BenefitsReport:
    period_from: dt.date
    period_to: dt.date
    starters: int
    ready: int  # starters with every system ready now
    not_ready: int
    with_manual_step: int
    percentiles_hours: dict[int, float]  # empty when nobody is ready
    buckets: list[Bucket]
    day_one_eligible: int
    day_one_ready: int
    weeks: list[WeekReadiness]
    automated: int
    manual: int
    saving: Saving

    @property
    def day_one_share(self) -> float | None:
        return share(self.day_one_ready, self.day_one_eligible)

    @property
    def automated_share(self) -> float | None:
        return share(self.automated, self.automated + self.manual)


def _monday(day: dt.date) -> dt.date:
    return day - dt.timedelta(days=day.weekday())


def compute(
    starters: Iterable[StarterFacts],
    *,
    automated: int,
    manual: int,
    headcount: int,
    period_from: dt.date,
    period_to: dt.date,
    now: dt.datetime,
    baseline: Baseline = Baseline(),
    timezone: str = DEFAULT_TIMEZONE,
) -> BenefitsReport:
    """Every figure of the dashboard from the facts of one organisation and period."""
    if period_to < period_from:
        raise ValueError("the period ends before it starts")
    facts = list(starters)
    hours = [h for h in (f.hours_to_access for f in facts) if h is not None]
    weeks: dict[dt.date, list[int]] = {}
    eligible = ready_on_day_one = 0
    for f in facts:
        if day_one_deadline(f.start_date, timezone) > now:
            continue  # day one has not reached 08:00 yet: neither a success nor a miss
        ok = ready_by_day_one(f, timezone)
        eligible += 1
        ready_on_day_one += ok
        week = weeks.setdefault(_monday(f.start_date), [0, 0])
        week[0] += 1
        week[1] += ok
    all_weeks = []
    monday = _monday(period_from)
    while monday <= period_to:
        n, ok_n = weeks.get(monday, (0, 0))
        all_weeks.append(WeekReadiness(monday, n, ok_n))
        monday += dt.timedelta(days=7)
    return BenefitsReport(
        period_from=period_from,
        period_to=period_to,
        starters=len(facts),
        ready=len(hours),
        not_ready=len(facts) - len(hours),
        with_manual_step=sum(1 for f in facts if f.manual),
        percentiles_hours={p: percentile(hours, p) for p in PERCENTILES} if hours else {},
        buckets=histogram(hours),
        day_one_eligible=eligible,
        day_one_ready=ready_on_day_one,
        weeks=all_weeks,
        automated=automated,
        manual=manual,
        saving=estimate_saving(
            baseline, headcount, automated, manual, (period_to - period_from).days + 1
        ),
    )
