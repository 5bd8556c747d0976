"""The identity team in Chromium: the exceptions board, retrying a parked operation until the
worker sends it, completing a manual task, then finding the person and reading their
timeline — every page checked with axe-core, the board and the timeline photographed."""

from __future__ import annotations

import datetime as dt
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import sqlalchemy as sa
from playwright.sync_api import Page, expect
from sqlalchemy.engine import Engine
from test_pages import assert_accessible, screenshot, sign_in_as, visit

from conftest import LiveApp
from pasa.service import provisioning
from pasa.store import schema as s


@contextmanager
def working_in(path: Path) -> Iterator[None]:
    # The example policy's target systems are SQLite files under ./var of the live app.
    here = Path.cwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(here)


def park_an_operation(engine: Engine) -> tuple[int, int, str]:
    """A delivered group membership marked parked, as the worker leaves one after its last
    attempt (the same update the ledger tests make): (operation, person, last name)."""
    op, p = s.operation, s.person
    with engine.begin() as conn:
        row = conn.execute(
            sa.select(op.c.id, op.c.person_id, p.c.last_name)
            .join(p, p.c.id == op.c.person_id)
            .where(op.c.status == "succeeded", op.c.kind == "add_membership")
            .order_by(op.c.id.desc())
            .limit(1)
        ).one()
        conn.execute(
            op.update()
            .where(op.c.id == row.id)
            .values(status="parked", attempts=5, last_error="connection refused by the target")
        )
    return int(row.id), int(row.person_id), str(row.last_name)


def an_open_task(engine: Engine, person_id: int) -> int:
    """An open PACS task (the manual target) for the person, as the manual connector makes."""
    m, op, t = s.manual_task, s.operation, s.target
    now = dt.datetime.now(dt.UTC)
    with engine.begin() as conn:
        pacs = conn.scalar(sa.select(t.c.id).where(t.c.key == "pacs"))
        op_id = conn.execute(
            op.insert()
            .values(
                idempotency_key=f"browser-identity-{person_id}",
                plan_id="browser-identity",
                target_id=pacs,
                person_id=person_id,
                account_id=None,
                kind="create_account",
                username=f"pacs{person_id}",
                payload={},
                reasons=[],
                summary="create PACS account",
                status="waiting_manual",
                attempts=1,
                created_at=now,
            )
            .returning(op.c.id)
        ).scalar_one()
        return int(
            conn.execute(
                m.insert()
                .values(
                    operation_id=op_id,
                    target_id=pacs,
                    assignee="pacs admins",
                    instructions="Create a PACS account for the person",
                    status="open",
                    created_at=now,
                    due_at=now + dt.timedelta(hours=8),
                )
                .returning(m.c.id)
            ).scalar_one()
        )


def status_of(engine: Engine, table: sa.Table, row_id: int) -> str:
    with engine.connect() as conn:
        return str(conn.scalar(sa.select(table.c.status).where(table.c.id == row_id)))


def test_identity_team_retries_completes_and_reads_a_timeline(
    page: Page, live_app: LiveApp
) -> None:
    engine = live_app.engine
    op_id, person_id, last_name = park_an_operation(engine)
    task_id = an_open_task(engine, person_id)

    sign_in_as(page, "identity team")
    page.get_by_role("link", name="Exceptions").first.click()
    page.wait_for_url(re.compile(r"/exceptions$"))
    assert_accessible(page)
    expect(page.get_by_role("heading", level=1)).to_have_text("Exceptions")
    screenshot(page, "exceptions")

    # Retry the parked operation; the worker then sends it and it is done.
    page.get_by_role("link", name="Failed operations").click()
    page.wait_for_url(re.compile(r"/exceptions/parked"))
    assert_accessible(page)
    row = page.locator(f"#operation-{op_id}")
    expect(row).to_contain_text("connection refused by the target")
    row.get_by_role("button", name=f"Retry operation {op_id}").click()
    expect(page.locator(".nhsuk-notification-banner")).to_contain_text("is queued again")
    assert_accessible(page)
    expect(page.locator(f"#operation-{op_id}")).to_have_count(0)
    assert status_of(engine, s.operation, op_id) == "pending"
    with working_in(live_app.work):
        provisioning.execute(engine)
    assert status_of(engine, s.operation, op_id) == "succeeded"

    # Complete the manual task, recording the username created.
    visit(page, "/exceptions/tasks")
    task = page.locator(f"#task-{task_id}")
    expect(task).to_contain_text("Create a PACS account")
    task.get_by_role("button", name=f"Assign task {task_id} to me").click()
    expect(page.locator(".nhsuk-notification-banner")).to_contain_text("assigned to you")
    task = page.locator(f"#task-{task_id}")
    task.get_by_label("Username created").fill(f"pacs.{person_id}")
    task.get_by_role("button", name=f"Complete task {task_id}").click()
    expect(page.locator(".nhsuk-notification-banner")).to_contain_text("recorded as done")
    assert_accessible(page)
    assert status_of(engine, s.manual_task, task_id) == "done"

    # The other sections of the board pass axe too.
    for path in ("/exceptions/imports", "/exceptions/findings", "/exceptions/targets"):
        visit(page, path)
        expect(page.get_by_role("heading", level=1)).to_be_visible()

    # Find the person and read their timeline.
    page.get_by_role("link", name="People").first.click()
    page.wait_for_url(re.compile(r"/people$"))
    assert_accessible(page)
    page.get_by_label("Find a person").fill(last_name)
    page.get_by_role("button", name="Search").click()
    page.wait_for_url(re.compile(r"/people\?q="))
    assert_accessible(page)
    page.locator(f'a[href="/people/{person_id}/timeline"]').first.click()
    page.wait_for_url(re.compile(rf"/people/{person_id}/timeline$"))
    assert_accessible(page)
    expect(page.get_by_role("heading", level=1)).to_contain_text("Timeline of")
    main = page.locator("main")
    expect(main).to_contain_text(f"Operation {op_id} on")
    expect(main).to_contain_text(f"Operation {op_id}: retry requested")
    expect(main).to_contain_text(f"Manual task {task_id}: completed")
    expect(main).to_contain_text("HR: new assignment")
    screenshot(page, "timeline")
    page.get_by_role("link", name="Their access today, and why").click()
    page.wait_for_url(re.compile(rf"/people/{person_id}/access$"))
    assert_accessible(page)
