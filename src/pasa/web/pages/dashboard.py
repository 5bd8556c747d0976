"""The benefits dashboard: time to access, ready by 08:00 on day one, automation rate,
open exceptions and staff time saved against a configurable baseline (issue 6).

For the identity team (``org_admin``), platform administrators and auditors, over their own
organisations: ``operations.read`` or ``audit.read`` in the organisation shown. Charts are
inline SVG drawn on the server (no script), each followed by a table of the same figures.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass
from typing import Annotated

import sqlalchemy as sa
from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from pasa.clock import local_date
from pasa.config import get_settings
from pasa.domain.access import Action, Principal, Resource, Role, decide
from pasa.domain.benefits import BenefitsReport
from pasa.service import benefits
from pasa.store import schema as s
from pasa.web.pages.rendering import PageRoute, render
from pasa.web.security import AccessDenied, authorize, clock_of, current_principal, engine_of

router = APIRouter(include_in_schema=False, route_class=PageRoute)

PERIODS: dict[str, str] = {
    "30": "Last 30 days",
    "90": "Last 90 days",
    "180": "Last 6 months",
    "365": "Last 12 months",
}
SHORT_BUCKETS = ("<1h", "1-4h", "4-24h", "1-3d", "3-7d", "1-2w", "2-4w", "4w+")
_READERS = (Role.ORG_ADMIN, Role.PLATFORM_ADMIN, Role.AUDITOR)


def may_read(principal: Principal, ods_code: str) -> bool:
    """``operations.read`` or ``audit.read`` in the organisation."""
    resource = Resource.of(ods_code)
    return any(decide(principal, a, resource) for a in (Action.READ_OPERATIONS, Action.READ_AUDIT))


def authorize_read(principal: Principal, ods_code: str) -> None:
    """Raise the refusal of ``audit.read`` (its 403 or 404) unless one of the two is allowed."""
    if not may_read(principal, ods_code):
        authorize(principal, Action.READ_AUDIT, Resource.of(ods_code))


def _choices(request: Request, principal: Principal) -> list[tuple[str, str]]:
    """The organisations this principal may see the dashboard of, (ODS code, name)."""
    orgs = principal.organisations()
    o = s.organisation
    query = sa.select(o.c.ods_code, o.c.name).order_by(o.c.ods_code)
    if orgs is not None:
        query = query.where(o.c.ods_code.in_(sorted(orgs)))
    with engine_of(request).connect() as conn:
        rows = conn.execute(query).all()
    return [(r.ods_code, r.name) for r in rows if may_read(principal, r.ods_code)]


# --- charts: geometry for the inline SVG (the template draws it) ---------------------------


@dataclass(frozen=True, slots=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    label: str
    value: str


def _nice_max(value: float) -> int:
    """A round axis maximum at or above ``value`` (1, 2 or 5 times a power of ten)."""
    if value <= 0:
        return 1
    power = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 5, 10):
        if step * power >= value:
            return int(step * power) if step * power >= 1 else 1
    return int(10 * power)


def column_bars(
    values: list[float], labels: list[str], texts: list[str], top: float, width: float = 640
) -> list[Bar]:
    """Vertical bars in a ``width`` x 200 plot (y grows down; base line at 200)."""
    if not values:
        return []
    slot = width / len(values)
    gap = min(8.0, slot * 0.2)
    bars = []
    for i, (v, label, text) in enumerate(zip(values, labels, texts, strict=True)):
        height = 0.0 if top <= 0 else 200 * min(1.0, max(0.0, v / top))
        bars.append(Bar(i * slot + gap / 2, 200 - height, slot - gap, height, label, text))
    return bars


def _pct(value: float | None) -> str:
    return "no data" if value is None else f"{value * 100:.0f}%"


def _hours(value: float) -> str:
    if value < 48:
        return f"{value:.1f} hours"
    return f"{value / 24:.1f} days"


def charts(report: BenefitsReport) -> dict[str, object]:
    counts = [b.count for b in report.buckets]
    top = _nice_max(max(counts, default=0))
    weeks = report.weeks
    automated_share = report.automated_share
    return {
        "histogram": {
            "top": top,
            "bars": column_bars(
                [float(c) for c in counts], list(SHORT_BUCKETS), [str(c) for c in counts], top
            ),
        },
        "weekly": {
            "bars": column_bars(
                [w.share or 0.0 for w in weeks],
                [w.week.strftime("%-d %b") for w in weeks],
                ["-" if w.share is None else f"{w.share * 100:.0f}%" for w in weeks],
                1.0,
            ),
            "empty": [w.share is None for w in weeks],
            "label_every": max(1, math.ceil(len(weeks) / 8)),
        },
        "automation": {
            "automated_width": 600 * (automated_share or 0.0),
            "has_data": automated_share is not None,
        },
    }


def exception_bars(rows: list[tuple[str, int, str]]) -> list[Bar]:
    """Horizontal bars, one 36-unit row each, in a 400-wide plot after 200 units of label."""
    top = _nice_max(max((n for _, n, _ in rows), default=0))
    return [
        Bar(200, i * 36 + 6, 400 * n / top, 24, label, str(n))
        for i, (label, n, _) in enumerate(rows)
    ]


@router.get("/dashboard")
def dashboard_page(
    request: Request,
    org: Annotated[str | None, Query(max_length=10)] = None,
    period: Annotated[str | None, Query(max_length=10)] = None,
) -> Response:
    principal = current_principal(request)
    if not set(principal.roles()) & set(_READERS):
        raise AccessDenied(
            403,
            "The benefits dashboard is for the identity team, platform administrators and "
            "auditors.",
        )
    choices = _choices(request, principal)
    if not choices:
        raise AccessDenied(403, "None of your organisations is set up in PASA yet.")
    errors: dict[str, str] = {}
    ods = (org or choices[0][0]).strip().upper()
    if ods not in {code for code, _ in choices}:
        authorize_read(principal, ods)  # another organisation's: 404; no role in it: 403
        raise AccessDenied(404, "not found")
    authorize_read(principal, ods)
    chosen = period or "90"
    if chosen not in PERIODS:
        errors["period"] = "Choose a period from the list"
        chosen = "90"
    settings = get_settings()
    now = clock_of(request).now()
    start, end = benefits.default_period(local_date(now, settings.timezone), int(chosen))
    found = benefits.dashboard(
        engine_of(request),
        ods,
        start,
        end,
        now=now,
        baseline=benefits.baseline_of(settings),
        tz=settings.timezone,
    )
    if found is None:
        raise AccessDenied(404, "not found")
    report = found.report
    return render(
        request,
        "dashboard.html",
        title="Benefits dashboard",
        principal=principal,
        status=400 if errors else 200,
        errors=errors,
        board=found,
        report=report,
        saving=report.saving,
        charts=charts(report),
        exceptions=found.exceptions.as_rows(),
        exception_bars=exception_bars(found.exceptions.as_rows()),
        choices=choices,
        chosen_org=ods,
        periods=PERIODS,
        chosen_period=chosen,
        hours=_hours,
        pct=_pct,
        today=end,
        measured_at=now.astimezone(dt.UTC),
    )
