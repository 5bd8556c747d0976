"""The benefits dashboard's figures as JSON: the same numbers ``/dashboard`` shows.

Reading them is ``operations.read`` or ``audit.read`` in the organisation (the identity team,
platform administrators, auditors, ``api:read`` tokens). The period is ``from`` to ``to``
inclusive (organisation-local dates; default the last 90 days, at most two years).
"""

from __future__ import annotations

import datetime as dt
import math
from typing import Annotated

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, Field

from pasa.clock import local_date
from pasa.config import get_settings
from pasa.service import benefits
from pasa.web.api.common import EngineDep, not_found
from pasa.web.api.problems import ApiProblem
from pasa.web.pages.dashboard import authorize_read
from pasa.web.security import CurrentPrincipal, clock_of

router = APIRouter(tags=["benefits"])


class BucketOut(BaseModel):
    label: str
    low_hours: float
    high_hours: float | None = Field(description="Exclusive; null for the open last bucket")
    starters: int


class WeekOut(BaseModel):
    week: dt.date = Field(description="The Monday")
    starters: int
    ready_by_0800: int
    share: float | None


class SavingOut(BaseModel):
    headcount: int
    period_days: int
    baseline_wte: float
    baseline_cost_gbp: float
    baseline_staff: int
    hours_per_wte: float
    scaled_wte: float
    baseline_hours: float
    actions: int
    automated: int
    minutes_per_action: float | None
    hours_saved: float
    cost_per_hour_gbp: float
    cost_saved_gbp: float
    wte_saved: float
    formula: str


class ExceptionsOut(BaseModel):
    parked_operations: int
    open_manual_tasks: int
    quarantined_rows: int
    held_imports: int
    reconciliation_findings: int


class BenefitsOut(BaseModel):
    ods_code: str
    period_from: dt.date
    period_to: dt.date
    starters: int
    starters_ready: int
    starters_not_ready: int
    starters_with_manual_step: int
    time_to_access_hours: dict[str, float] = Field(description="Percentiles p50, p75, p90, p95")
    time_to_access_buckets: list[BucketOut]
    day_one_eligible: int
    day_one_ready: int
    day_one_share: float | None
    weeks: list[WeekOut]
    operations_automated: int
    operations_manual: int
    automated_share: float | None
    saving: SavingOut
    exceptions: ExceptionsOut


FORMULA = (
    "hours_saved = automated x minutes_per_action / 60, where minutes_per_action = "
    "baseline_hours x 60 / actions and baseline_hours = baseline_wte x headcount / "
    "baseline_staff x hours_per_wte x period_days / 365; cost_saved = hours_saved x "
    "baseline_cost_gbp / (baseline_wte x hours_per_wte)"
)


@router.get(
    "/organisations/{ods_code}/benefits",
    response_model=BenefitsOut,
    summary="Benefits figures of an organisation",
)
def get_benefits(
    ods_code: str,
    principal: CurrentPrincipal,
    engine: EngineDep,
    request: Request,
    period_from: Annotated[dt.date | None, Query(alias="from")] = None,
    period_to: Annotated[dt.date | None, Query(alias="to")] = None,
) -> BenefitsOut:
    code = ods_code.upper()
    authorize_read(principal, code)
    settings = get_settings()
    now = clock_of(request).now()
    end = period_to or local_date(now, settings.timezone)
    start = period_from or benefits.default_period(end)[0]
    if start > end:
        raise ApiProblem(400, "'from' is after 'to': the period must start on or before it ends")
    if (end - start).days + 1 > benefits.MAX_DAYS:
        raise ApiProblem(400, f"the period is longer than {benefits.MAX_DAYS} days")
    baseline = benefits.baseline_of(settings)
    found = benefits.dashboard(
        engine, code, start, end, now=now, baseline=baseline, tz=settings.timezone
    )
    if found is None:
        raise not_found()
    r, sv, ex = found.report, found.report.saving, found.exceptions
    return BenefitsOut(
        ods_code=code,
        period_from=start,
        period_to=end,
        starters=r.starters,
        starters_ready=r.ready,
        starters_not_ready=r.not_ready,
        starters_with_manual_step=r.with_manual_step,
        time_to_access_hours={f"p{p}": h for p, h in r.percentiles_hours.items()},
        time_to_access_buckets=[
            BucketOut(
                label=b.label,
                low_hours=b.low_hours,
                high_hours=None if math.isinf(b.high_hours) else b.high_hours,
                starters=b.count,
            )
            for b in r.buckets
        ],
        day_one_eligible=r.day_one_eligible,
        day_one_ready=r.day_one_ready,
        day_one_share=r.day_one_share,
        weeks=[
            WeekOut(week=w.week, starters=w.starters, ready_by_0800=w.ready, share=w.share)
            for w in r.weeks
        ],
        operations_automated=r.automated,
        operations_manual=r.manual,
        automated_share=r.automated_share,
        saving=SavingOut(
            headcount=sv.headcount,
            period_days=sv.period_days,
            baseline_wte=baseline.wte,
            baseline_cost_gbp=baseline.cost_gbp,
            baseline_staff=baseline.staff,
            hours_per_wte=baseline.hours_per_wte,
            scaled_wte=sv.scaled_wte,
            baseline_hours=sv.baseline_hours,
            actions=sv.actions,
            automated=sv.automated,
            minutes_per_action=sv.minutes_per_action,
            hours_saved=sv.hours_saved,
            cost_per_hour_gbp=sv.cost_per_hour,
            cost_saved_gbp=sv.cost_saved_gbp,
            wte_saved=sv.wte_saved,
            formula=FORMULA,
        ),
        exceptions=ExceptionsOut(
            parked_operations=ex.parked_operations,
            open_manual_tasks=ex.open_manual_tasks,
            quarantined_rows=ex.quarantined_rows,
            held_imports=ex.held_imports,
            reconciliation_findings=ex.reconciliation_findings,
        ),
    )
