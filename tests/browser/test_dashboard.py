"""The benefits dashboard in Chromium: an auditor opens it from the menu, changes the period,
and every chart is an image with a text alternative followed by its table (axe-checked).

The shared live app holds only a go-live import (nobody counts as a starter yet), so one more
app is served here over a hub with ten weeks of simulated history — the demo's own
simulation at a 300-staff scale — for the figures and the screenshot.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect
from rich.console import Console
from test_pages import assert_accessible, screenshot, sign_in_as

from conftest import REPO
from pasa.config import Settings
from pasa.policy.document import load_policy_file
from pasa.service import access
from pasa.service.demo import simulate_history
from pasa.store.db import make_engine, migrate
from pasa.store.policy_repo import save_policy
from pasa.web.app import create_app
from support.served import served

AUDITOR = "auditor@nhs.net"


@contextlib.contextmanager
def _quiet(_label: str, _total: int | None) -> Iterator[object]:
    yield lambda _n: None


@pytest.fixture(scope="module")
def history_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    work = tmp_path_factory.mktemp("history")
    engine = make_engine(f"sqlite:///{work / 'pasa.db'}")
    migrate(engine)
    here = Path.cwd()
    os.chdir(work)  # the example policy's target systems are SQLite files under ./var
    try:
        with engine.begin() as conn:
            policy = load_policy_file(REPO / "examples" / "policy.yaml")
            save_policy(conn, policy, source="tests", actor="tests")
        simulate_history(
            engine,
            Console(quiet=True),
            _quiet,  # type: ignore[arg-type]
            staff=300,
            today=dt.date.today(),
            demo_dir=work,
            actor="tests",
        )
    finally:
        os.chdir(here)
    access.grant_role(engine, AUDITOR, "auditor", organisation="RXL", actor="tests")
    settings = Settings(
        dev_signin=True,
        session_cookie_secure=False,
        session_secret="browser-tests-session-secret-0123456789",
        signin_rate_limit=0,
    )
    with served(create_app(engine, settings=settings)) as url:
        yield url
    engine.dispose()


def test_the_dashboard_shows_ten_weeks_of_history(browser: Browser, history_url: str) -> None:
    context = browser.new_context(base_url=history_url, viewport={"width": 1100, "height": 900})
    context.add_init_script(path=str(REPO / "web" / "node_modules" / "axe-core" / "axe.min.js"))
    page = context.new_page()
    try:
        sign_in_as(page, "auditor")
        page.goto("/dashboard")
        assert_accessible(page)
        card = page.locator(".nhsuk-card", has_text="Ready by 08:00 on day one")
        share = re.search(r"(\d+)%", card.inner_text())
        assert share, card.inner_text()
        # A real mix: most starters ready on day one, not all (manual tasks finish later).
        assert 0 < int(share.group(1)) < 100
        starters = page.get_by_role("table", name="Starters by time to access")
        assert sum(int(n) for n in re.findall(r"\b(\d+)$", starters.inner_text(), flags=re.M)) > 5
        screenshot(page, "benefits-dashboard")
    finally:
        context.close()


def test_an_auditor_reads_the_benefits_dashboard(page: Page) -> None:
    sign_in_as(page, "auditor")
    page.get_by_role("link", name="Benefits").first.click()
    page.wait_for_url(re.compile(r"/dashboard$"))
    assert_accessible(page)
    expect(page.get_by_role("heading", level=1)).to_have_text("Benefits dashboard")
    for chart in (
        "Time to access: starters by how long they waited",
        "Share of starters ready by 08:00 on day one, by week",
        "Completed operations: automated and manual",
        "Open exceptions by kind",
    ):
        expect(page.get_by_role("img", name=chart)).to_be_visible()
    expect(page.get_by_role("table", name="Starters by time to access")).to_be_visible()
    expect(page.get_by_text("How the saving is estimated")).to_be_visible()

    page.get_by_label("Period").select_option("365")
    page.get_by_role("button", name="Show").click()
    page.wait_for_url(re.compile(r"period=365"))
    assert_accessible(page)
    expect(page.get_by_label("Period")).to_have_value("365")
    expect(page.get_by_text("x 365 / 365 days")).to_be_visible()


def test_the_dashboard_works_on_a_phone(page: Page) -> None:
    page.set_viewport_size({"width": 375, "height": 800})
    sign_in_as(page, "identity team")
    page.goto("/dashboard")
    assert_accessible(page)
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 375 + 1, f"the page scrolls sideways on a phone ({width}px)"
