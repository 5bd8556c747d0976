"""Times on the pages are London wall-clock times, whatever the season or the database."""

from __future__ import annotations

import datetime as dt

from pasa.web.pages.rendering import templates


def _render(value: dt.datetime | None) -> str:
    source = '{{ (v | local).strftime("%-d %b %Y %H:%M") if v else "-" }}'
    return templates.env.from_string(source).render(v=value)


def test_summer_instants_show_british_summer_time() -> None:
    assert _render(dt.datetime(2026, 7, 1, 7, 30, tzinfo=dt.UTC)) == "1 Jul 2026 08:30"


def test_winter_instants_show_greenwich_time() -> None:
    assert _render(dt.datetime(2026, 12, 1, 7, 30, tzinfo=dt.UTC)) == "1 Dec 2026 07:30"


def test_naive_values_from_sqlite_are_read_as_utc() -> None:
    assert _render(dt.datetime(2026, 7, 1, 23, 30)) == "2 Jul 2026 00:30"


def test_missing_values_stay_missing() -> None:
    assert _render(None) == "-"
