"""The benefits dashboard in Chromium: an auditor opens it from the menu, changes the period,
and every chart is an image with a text alternative followed by its table (axe-checked)."""

from __future__ import annotations

import re

from playwright.sync_api import Page, expect
from test_pages import assert_accessible, screenshot, sign_in_as


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
    screenshot(page, "benefits-dashboard")

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
