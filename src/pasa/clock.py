"""The organisation's clock: "today" and "as at" are in Europe/London, DST-safe.

Everything that asks "what date is it?" takes a :class:`Clock`, so tests travel in time with
:class:`FixedClock` and production uses :class:`SystemClock`. Instants are aware UTC
datetimes; the organisation-local *date* of an instant decides what is in force: an
assignment ending on 31 July is in force until 23:59:59 London time that day, whatever the
UTC offset (at 23:30 UTC on 31 July in summer it is already 1 August in London).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Protocol
from zoneinfo import ZoneInfo

LONDON = ZoneInfo("Europe/London")
DEFAULT_TZ = "Europe/London"


class Clock(Protocol):
    """Where "now" comes from."""

    def now(self) -> dt.datetime:
        """The current instant, timezone-aware."""
        ...


class SystemClock:
    """The real clock."""

    def now(self) -> dt.datetime:
        return dt.datetime.now(dt.UTC)


class FixedClock:
    """A clock that stands still until moved (tests, simulations, the demo's time travel)."""

    def __init__(self, instant: dt.datetime) -> None:
        self._now = _aware(instant)

    def now(self) -> dt.datetime:
        return self._now

    def set(self, instant: dt.datetime) -> None:
        self._now = _aware(instant)

    def advance(self, delta: dt.timedelta) -> None:
        self._now = self._now + delta

    @classmethod
    def at_local(
        cls, day: dt.date, time: dt.time = dt.time(8, 0), tz: str = DEFAULT_TZ
    ) -> FixedClock:
        """A clock at ``time`` (default 08:00) local time on ``day``."""
        return cls(local_instant(day, time, tz))


def _aware(instant: dt.datetime) -> dt.datetime:
    if instant.tzinfo is None:
        raise ValueError("instants must be timezone-aware (naive datetimes are ambiguous)")
    return instant.astimezone(dt.UTC)


def local_date(instant: dt.datetime, tz: str = DEFAULT_TZ) -> dt.date:
    """The organisation-local date of ``instant`` (the "as at" date of an evaluation)."""
    return _aware(instant).astimezone(ZoneInfo(tz)).date()


def local_instant(day: dt.date, time: dt.time = dt.time(0, 0), tz: str = DEFAULT_TZ) -> dt.datetime:
    """The UTC instant of local ``time`` on ``day`` (``fold=0`` resolves the autumn hour)."""
    return dt.datetime.combine(day, time, tzinfo=ZoneInfo(tz)).astimezone(dt.UTC)


_SYSTEM = SystemClock()
# The process-wide clock behind now()/today(). A module global rather than a contextvar: the
# in-process worker may run operations on threads, and they must see the simulated time too.
_current: Clock = _SYSTEM


def current() -> Clock:
    """The clock now() reads: the system clock unless a simulation has set one."""
    return _current


@contextmanager
def use_clock(clock: Clock) -> Iterator[Clock]:
    """Make ``clock`` the process-wide clock for the block (simulations, the demo's history).

    Nests: leaving a block restores whatever clock was current when it was entered.
    """
    global _current
    previous = _current
    _current = clock
    try:
        yield clock
    finally:
        _current = previous


def now() -> dt.datetime:
    """The current instant (aware UTC) from the process-wide clock."""
    return _current.now()


def today(tz: str = DEFAULT_TZ) -> dt.date:
    return local_date(_current.now(), tz)


def parse_date(text: str) -> dt.date:
    """Accept ISO (2026-08-05) or ESR style (05/08/2026)."""
    text = text.strip()
    for fmt in ("%Y-%m-%d", "%d/%m/%Y"):
        try:
            return dt.datetime.strptime(text, fmt).date()
        except ValueError:
            continue
    raise ValueError(f"'{text}' is not a date; use YYYY-MM-DD or DD/MM/YYYY")
