"""A line manager follows a new starter in Chromium: My team → the starter's readiness page
(pending items with the dates they are expected, live) → reveals the day-one sign-in details
once. axe-core on every page; the readiness page is saved to docs/screenshots/readiness.png."""

from __future__ import annotations

import datetime as dt
import os
import re

import sqlalchemy as sa
from playwright.sync_api import Page, expect
from test_pages import assert_accessible, screenshot, sign_in_as

from conftest import LiveApp
from pasa.service import handover, provisioning
from pasa.store import schema as s
from pasa.web.pages.views import personas


def _add_starter(live_app: LiveApp) -> str:
    """A starter due in five days for the demo's line manager, provisioned as the nightly run
    would (accounts created disabled inside the pre-hire window, handover prepared)."""
    engine, today = live_app.engine, live_app.today
    manager = next(p.subject for p in personas(engine, today) if p.label == "Line manager")
    a, p = s.assignment, s.person
    start = today + dt.timedelta(days=5)
    with engine.begin() as conn:
        post = conn.execute(
            sa.select(a)
            .join(p, p.c.id == a.c.person_id)
            .where(sa.func.lower(p.c.email) == manager, a.c.start_date <= today)
            .limit(1)
        ).one()
        now = dt.datetime.now(dt.UTC)
        person_id = conn.execute(
            p.insert()
            .values(
                uid="browser-starter-0001",
                first_name="Nadia",
                last_name="Newstart",
                email="nadia.newstart@nhs.net",
                created_at=now,
                updated_at=now,
            )
            .returning(p.c.id)
        ).scalar_one()
        conn.execute(
            a.insert().values(
                organisation_id=post.organisation_id,
                assignment_number="99999901",
                person_id=person_id,
                employee_number="99999901",
                position_id=post.position_id,
                category="Permanent",
                status="Active Assignment",
                is_primary=True,
                start_date=start,
                supervisor_assignment_number=post.assignment_number,
                wte=1,
                row_hash="b" * 64,
                updated_at=now,
            )
        )
    here = os.getcwd()
    os.chdir(live_app.work)  # the example policy's targets are SQLite files under ./var
    try:
        provisioning.apply(engine, today, actor="tests")
        provisioning.execute(engine)
        handover.prepare_handovers(engine, today, actor="tests")
    finally:
        os.chdir(here)
    return "Nadia Newstart"


def test_line_manager_follows_a_starter_and_reveals_the_day_one_details(
    page: Page, live_app: LiveApp
) -> None:
    name = _add_starter(live_app)
    sign_in_as(page, "line manager")
    page.get_by_role("link", name="My team").first.click()
    page.wait_for_url(re.compile(r"/team$"))
    assert_accessible(page)
    changes = page.locator("table").first
    row = changes.locator("tr", has_text=name)
    expect(row.locator(".nhsuk-tag", has_text="Starter")).to_be_visible()
    expect(row).to_contain_text("ready")  # the readiness tag, e.g. "1 of 9 ready"

    row.get_by_role("link", name=name, exact=True).click()
    page.wait_for_url(re.compile(r"/people/\d+/readiness$"))
    assert_accessible(page)
    expect(page.get_by_role("heading", level=1)).to_have_text(f"Readiness of {name}")
    expect(page.locator("#readiness-headline")).to_contain_text("ready")
    # Accounts exist disabled (pre-hire) and wait for day one; door zones open on the day.
    expect(page.locator("tr.pasa-item--pending").first).to_be_visible()
    expect(page.get_by_text(re.compile(r"enabled by 08:00 on")).first).to_be_visible()
    expect(page.get_by_text(re.compile(r"Door access opens on")).first).to_be_visible()
    # Live while anything is pending (htmx polls the fragment).
    expect(page.locator("#readiness-status")).to_have_attribute("hx-trigger", "every 10s")
    with page.expect_response(lambda r: r.url.endswith("/readiness/status"), timeout=15_000):
        pass  # htmx asks for the fragment within 10 s (the CSP allows it: no inline script)
    expect(page.locator("#readiness-status tr.pasa-item--pending").first).to_be_visible()
    assert_accessible(page)
    screenshot(page, "readiness")

    page.get_by_role("link", name=re.compile("Reveal day-one sign-in details")).click()
    page.wait_for_url(re.compile(r"/handover/\d+/reveal$"))
    assert_accessible(page)
    page.get_by_role("button", name="Yes, reveal the code now").click()
    code = page.locator("#activation-code")
    expect(code).to_be_visible()
    assert re.fullmatch(r"\d+-[\w-]{20,}", code.inner_text().strip())
    assert_accessible(page)

    # Back on the readiness page it cannot be revealed again.
    page.get_by_role("link", name=re.compile("Back to the readiness")).click()
    expect(page.get_by_text(re.compile("Already revealed by"))).to_be_visible()
    expect(page.get_by_role("link", name=re.compile("Reveal day-one"))).to_have_count(0)
    assert_accessible(page)
