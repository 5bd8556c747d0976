"""The organisation's clock: "today" and "as at" are in Europe/London, DST-safe."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

LONDON = ZoneInfo("Europe/London")


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def today(tz: str = "Europe/London") -> dt.date:
    return dt.datetime.now(ZoneInfo(tz)).date()


def parse_date(text: str) -> dt.date:
    """Accept ISO (2026-08-05) or ESR style (05/08/2026)."""
    text = text.strip()
    for fmt in ("%Y-%m-%d", "%d/%m/%Y"):
        try:
            return dt.datetime.strptime(text, fmt).date()
        except ValueError:
            continue
    raise ValueError(f"'{text}' is not a date; use YYYY-MM-DD or DD/MM/YYYY")
