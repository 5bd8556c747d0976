"""Access requests in Chromium: a line manager asks for access for a report and follows it to
ready; a system owner approves a request waiting for them. axe-core on every page visited;
screenshots of the requests list, a request's detail and the approvals queue."""

from __future__ import annotations

import datetime as dt
import re

import pytest
import sqlalchemy as sa
from playwright.sync_api import Page, expect
from test_pages import assert_accessible, screenshot, sign_in_as

from conftest import OWNER, LiveApp
from pasa.service import access, access_requests, provisioning
from pasa.store import schema as s
from pasa.web.pages.views import personas


def _open_a_current_report(page: Page) -> str:
    page.get_by_role("link", name="My team").first.click()
    page.wait_for_url(re.compile(r"/team$"))
    row = page.locator("table").last.locator("tbody tr").filter(has_text="Current").first
    name = row.get_by_role("link").inner_text()
    row.get_by_role("link").click()
    page.wait_for_url(re.compile(r"/people/\d+/access$"))
    assert_accessible(page)
    return name


def test_a_line_manager_requests_access_and_follows_it_to_ready(
    page: Page, live_app: LiveApp, monkeypatch: pytest.MonkeyPatch
) -> None:
    sign_in_as(page, "line manager")
    name = _open_a_current_report(page)
    page.get_by_role("link", name=f"Request access for {name}").click()
    page.wait_for_url(re.compile(r"/people/\d+/request-access$"))
    assert_accessible(page)

    # Nothing chosen: the NHS.UK error summary names each problem and links to the field.
    page.get_by_role("button", name="Send request").click()
    summary = page.locator(".nhsuk-error-summary")
    expect(summary).to_contain_text("Select the access to request")
    expect(summary).to_contain_text("Enter why they need this access")
    assert_accessible(page)

    # Remote access needs an end date within 365 days: too far first.
    page.get_by_label("group GG-Remote-Access on ad").check()
    page.get_by_label("Why do they need it?").fill("On-call from home for the ward rota")
    too_far = live_app.today + dt.timedelta(days=400)
    page.get_by_label("Day").fill(str(too_far.day))
    page.get_by_label("Month").fill(str(too_far.month))
    page.get_by_label("Year").fill(str(too_far.year))
    page.get_by_role("button", name="Send request").click()
    expect(page.locator(".nhsuk-error-summary")).to_contain_text(
        "may be granted for at most 365 days"
    )
    assert_accessible(page)
    # The ward's shared mailbox instead: the line manager asks, the system owner approves.
    page.get_by_label("group GG-Mailbox-Ward-Shared on ad").check()
    ends = live_app.today + dt.timedelta(days=90)
    page.get_by_label("Day").fill(str(ends.day))
    page.get_by_label("Month").fill(str(ends.month))
    page.get_by_label("Year").fill(str(ends.year))
    page.get_by_role("button", name="Send request").click()
    page.wait_for_url(re.compile(r"/requests/\d+$"))
    assert_accessible(page)
    status = page.locator(".pasa-request-status")
    expect(status).to_contain_text("Waiting for system owner")
    expect(page.locator(".pasa-timeline")).to_contain_text("approval is given by asking")
    request_id = int(page.url.rsplit("/", 1)[1])

    owner = access.user_principal(live_app.engine, OWNER, at=live_app.today)
    access_requests.decide_request(
        live_app.engine,
        owner,
        request_id,
        approve=True,
        reason="Mailbox owner agrees",
        now=dt.datetime.now(dt.UTC),
        today=live_app.today,
    )
    page.reload()
    assert_accessible(page)
    expect(status).to_contain_text("Approved")
    expect(status).to_contain_text("Being set up")
    expect(page.locator(".pasa-timeline")).to_contain_text("Time-bound grant")
    expect(page.get_by_role("table")).to_contain_text("Queued")

    # The worker runs (the target systems are SQLite files under the app's ./var).
    monkeypatch.chdir(live_app.work)
    provisioning.execute(live_app.engine)
    page.reload()
    assert_accessible(page)
    expect(page.locator(".pasa-request-status")).to_contain_text("Ready")
    expect(page.get_by_role("table")).to_contain_text("Done")
    screenshot(page, "request-detail")

    page.get_by_role("link", name="Back to requests").click()
    page.wait_for_url(re.compile(r"/requests$"))
    assert_accessible(page)
    expect(page.get_by_role("heading", name="Requests for your team")).to_be_visible()
    expect(page.locator("#reports + table")).to_contain_text(name)
    screenshot(page, "requests")


def test_a_system_owner_approves_a_request_waiting_for_them(
    page: Page, live_app: LiveApp, monkeypatch: pytest.MonkeyPatch
) -> None:
    manager_subject = personas(live_app.engine, live_app.today)[0].subject
    assert manager_subject is not None
    manager = access.user_principal(live_app.engine, manager_subject, at=live_app.today)
    with live_app.engine.connect() as conn:
        asked_for = set(conn.scalars(sa.select(s.access_request.c.person_id)))
    report = min(set(manager.reports) - asked_for)
    now = dt.datetime.now(dt.UTC)
    asked = access_requests.submit(
        live_app.engine,
        manager,
        person_id=report,
        item_key="ward-mailbox",
        justification="Covers the ward clerk's leave",
        valid_from=None,
        valid_to=None,
        now=now,
        today=live_app.today,
    )
    assert asked.current_stage is not None and asked.current_stage.value == "system_owner"

    sign_in_as(page, "system owner")
    page.get_by_role("link", name="Requests").first.click()
    page.wait_for_url(re.compile(r"/requests$"))
    assert_accessible(page)
    waiting = page.locator("#waiting + table")
    expect(waiting).to_contain_text(f"#{asked.id}")
    expect(waiting).to_contain_text("Due ")
    screenshot(page, "approvals")

    waiting.get_by_role("link", name=f"#{asked.id}").click()
    page.wait_for_url(re.compile(rf"/requests/{asked.id}$"))
    assert_accessible(page)
    # Rejecting needs a reason: the error is shown, nothing is recorded.
    page.get_by_label("Reject").check()
    page.get_by_role("button", name="Record decision").click()
    expect(page.locator(".nhsuk-error-summary")).to_contain_text("Say why")
    assert_accessible(page)
    page.get_by_label("Approve").check()
    page.get_by_label("Reason").fill("Mailbox owner agrees")
    page.get_by_role("button", name="Record decision").click()
    page.wait_for_url(re.compile(rf"/requests/{asked.id}$"))
    assert_accessible(page)
    expect(page.locator(".pasa-request-status")).to_contain_text("Approved")
    expect(page.locator(".pasa-timeline")).to_contain_text("Mailbox owner agrees")
    assert access_requests.get_request(live_app.engine, asked.id).grant_id is not None

    # Someone else's request does not exist for a member of staff: the 404 page.
    staff = personas(live_app.engine, live_app.today)[1].subject
    assert staff is not None
    if access.user_principal(live_app.engine, staff).person_id != report:
        page.context.clear_cookies()
        sign_in_as(page, "staff member")
        page.goto(f"/requests/{asked.id}")
        assert_accessible(page)
        expect(page.get_by_role("heading", level=1)).to_have_text("Page not found")
        page.goto(f"/people/{report}/request-access")
        expect(page.get_by_role("heading", level=1)).to_have_text("Page not found")
