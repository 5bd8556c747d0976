"""The web application's foundation in Chromium: landing page, sign-in as a persona, My team,
My access with reasons, the sign-in redirect, error pages — each page checked with axe-core
for serious or critical accessibility violations (WCAG 2.2 AA rules)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from playwright.sync_api import Page, expect

SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
AXE_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa", "best-practice"]


def assert_accessible(page: Page) -> None:
    """No serious or critical axe-core violation on the page as it stands."""
    result: dict[str, Any] = page.evaluate(
        "tags => axe.run(document, {runOnly: {type: 'tag', values: tags}})", AXE_TAGS
    )
    bad = [v for v in result["violations"] if v["impact"] in ("serious", "critical")]
    assert not bad, "\n".join(
        f"{v['id']} ({v['impact']}): {v['help']} at "
        + ", ".join(str(n["target"]) for n in v["nodes"][:3])
        for v in bad
    )


def visit(page: Page, path: str) -> None:
    page.goto(path)
    assert_accessible(page)


def screenshot(page: Page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


def sign_in_as(page: Page, persona: str) -> None:
    visit(page, "/")
    page.get_by_role("button", name=re.compile(f"Sign in as {persona}", re.I)).click()
    page.wait_for_url(re.compile(r"/home$"))
    assert_accessible(page)


def test_landing_page_lists_every_persona(page: Page) -> None:
    visit(page, "/")
    expect(page.get_by_role("heading", level=1)).to_contain_text("Provisioning")
    for persona in ("line manager", "staff member", "identity team", "system owner", "auditor"):
        expect(
            page.get_by_role("button", name=re.compile(f"Sign in as {persona}", re.I))
        ).to_be_visible()
    expect(page.locator("a.nhsuk-skip-link")).to_have_attribute("href", "#maincontent")
    expect(page.locator("main#maincontent")).to_be_visible()
    screenshot(page, "landing")


def test_line_manager_sees_their_team(page: Page) -> None:
    sign_in_as(page, "line manager")
    expect(page.get_by_role("heading", name="My team")).to_be_visible()
    screenshot(page, "home-line-manager")
    page.get_by_role("link", name="My team").first.click()
    page.wait_for_url(re.compile(r"/team$"))
    assert_accessible(page)
    expect(page.get_by_role("heading", level=1)).to_have_text("My team")
    reports = page.locator("table").last.locator("tbody tr")
    expect(reports.first).to_be_visible()
    assert reports.count() >= 1
    screenshot(page, "my-team")
    # A report's access, from the team table.
    reports.first.get_by_role("link").click()
    page.wait_for_url(re.compile(r"/people/\d+/access$"))
    assert_accessible(page)
    expect(page.get_by_role("heading", level=1)).to_contain_text("Access of")


def test_staff_member_sees_their_access_with_a_reason(page: Page) -> None:
    sign_in_as(page, "staff member")
    page.get_by_role("link", name="My access").first.click()
    page.wait_for_url(re.compile(r"/my-access$"))
    assert_accessible(page)
    expect(page.get_by_role("heading", level=1)).to_have_text("My access")
    reason = page.locator(".pasa-reason").first
    expect(reason).to_contain_text(re.compile(r"rule '|birthright"))
    expect(page.get_by_text("Ready").first).to_be_visible()
    screenshot(page, "my-access")


def test_a_page_without_sign_in_redirects_to_the_landing_page(page: Page) -> None:
    page.goto("/team")
    page.wait_for_url(re.compile(r"/\?next=%2Fteam$"))
    assert_accessible(page)
    expect(page.get_by_text("Sign in to see that page.")).to_be_visible()
    # Signing in from there goes back to the page asked for.
    page.get_by_role("button", name=re.compile("Sign in as line manager", re.I)).click()
    page.wait_for_url(re.compile(r"/team$"))
    expect(page.get_by_role("heading", level=1)).to_have_text("My team")


def test_other_roles_get_a_home_page_and_readable_refusals(page: Page) -> None:
    sign_in_as(page, "identity team")
    expect(page.get_by_role("heading", name="Exceptions")).to_be_visible()
    screenshot(page, "home-identity-team")
    visit(page, "/team")
    expect(page.get_by_role("heading", level=1)).to_have_text("You do not have access to this page")
    visit(page, "/no-such-page")
    expect(page.get_by_role("heading", level=1)).to_have_text("Page not found")
    screenshot(page, "not-found")
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url(re.compile(r"/$"))
    for persona, heading in (("system owner", "Trust directory"), ("auditor", "Audit log")):
        sign_in_as(page, persona)
        expect(page.get_by_role("heading", name=re.compile(heading))).to_be_visible()
        page.get_by_role("button", name="Sign out").click()
        page.wait_for_url(re.compile(r"/$"))
