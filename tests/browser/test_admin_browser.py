"""The identity team's rotation batches and policy editor in Chromium: edit a rule, preview
the what-if, save; upload a rotation generated from the live trust, preview and approve it
(as a second member of the identity team). axe-core on every page."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from playwright.sync_api import Page, expect
from test_pages import assert_accessible, screenshot, sign_in_as

from conftest import LiveApp
from pasa.hr.synthetic import generate_rotation
from pasa.policy.document import PolicyDocument
from pasa.service import access, policy_edit
from pasa.store import schema as s
from pasa.store.policy_repo import save_policy

SECOND = "second.identity@nhs.net"


@pytest.fixture
def restore_policy(live_app: LiveApp) -> Iterator[None]:
    """Other browser tests share the live app: put the policy back as it was."""
    with live_app.engine.connect() as conn:
        document = conn.execute(
            sa.select(s.policy_version.c.document).where(s.policy_version.c.active)
        ).scalar_one()
    yield
    with live_app.engine.begin() as conn:
        save_policy(conn, PolicyDocument.model_validate(document), source="tests", actor="tests")


def test_policy_editor_previews_then_saves(
    page: Page, live_app: LiveApp, restore_policy: None
) -> None:
    sign_in_as(page, "identity team")
    page.get_by_role("link", name="Policy").first.click()
    page.wait_for_url(re.compile(r"/policy$"))
    assert_accessible(page)
    editor = page.get_by_label("Policy (YAML)")
    text = editor.input_value()
    old = "  grant:\n  - nurse\n- key: bank-nurses"
    assert old in text
    editor.fill(text.replace(old, "  grant:\n  - bank-nurse\n- key: bank-nurses"))
    page.get_by_role("button", name="Preview changes").click()
    page.wait_for_url(re.compile(r"/policy/preview$"))
    assert_accessible(page)
    expect(page.get_by_role("heading", level=1)).to_have_text("Preview of policy changes")
    table = page.locator("#gains-losses")
    expect(table).to_be_visible()
    expect(table).to_contain_text(re.compile("bank", re.I))
    expect(page.locator("#operations-by-target")).to_be_visible()
    screenshot(page, "policy-whatif")
    before = policy_edit.active(live_app.engine)
    assert before is not None
    page.get_by_role("button", name="Save as new version").click()
    page.wait_for_url(re.compile(r"/policy\?saved=\d+$"))
    assert_accessible(page)
    expect(page.get_by_text(re.compile(r"Saved as policy version \d+"))).to_be_visible()
    after = policy_edit.active(live_app.engine)
    assert after is not None and after.version.id > before.version.id
    assert "- bank-nurse\n- key: bank-nurses" in after.text
    # The history's diff against the previous version.
    page.get_by_role("link", name=re.compile(f"Version {after.version.id}")).click()
    assert_accessible(page)
    expect(page.locator(".pasa-diff__added").first).to_contain_text("bank-nurse")


def test_rotation_upload_preview_and_approve(page: Page, live_app: LiveApp) -> None:
    access.grant_role(live_app.engine, SECOND, "org_admin", organisation="RXL", actor="tests")
    rotation_file = live_app.work / "rotation.csv"
    when = live_app.today.replace(year=live_app.today.year + 1)
    generate_rotation(
        live_app.work / "esr.csv", rotation_file, movers=5, rotation_date=when, seed=7
    )

    sign_in_as(page, "identity team")
    page.get_by_role("link", name="Rotations").first.click()
    page.wait_for_url(re.compile(r"/rotations$"))
    assert_accessible(page)
    page.get_by_label("Batch name").fill("Browser rotation")
    page.get_by_label("Rotation date").fill(when.isoformat())
    page.locator("input[type=file]").set_input_files(str(rotation_file))
    page.get_by_role("button", name="Upload and preview").click()
    page.wait_for_url(re.compile(r"/rotations/\d+\?"))
    assert_accessible(page)
    expect(page.get_by_role("heading", level=1)).to_contain_text("Browser rotation")
    expect(page.locator("#by-target")).to_be_visible()
    # Lateral moves in a small trust with no doctors in training: attribute updates only.
    expect(page.locator("#by-target")).to_contain_text(re.compile(r"\bad\b"))
    expect(page.get_by_text("5 people (5 changed rows)")).to_be_visible()
    screenshot(page, "rotation-preview")
    batch_url = page.url.split("?")[0]
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url(re.compile(r"/$"))

    # Someone else in the identity team approves it (dev sign-in by name).
    page.goto("/auth/dev")
    page.get_by_label("Sign-in name").fill(SECOND)
    page.get_by_role("button", name="Sign in", exact=True).click()
    page.wait_for_url(re.compile(r"/home$"))
    page.goto(batch_url)
    assert_accessible(page)
    page.get_by_role("button", name="Approve this batch").click()
    assert_accessible(page)
    page.get_by_role("button", name="Yes, approve the batch").click()
    page.wait_for_url(re.compile(r"done=approved"))
    assert_accessible(page)
    expect(page.get_by_text("The batch is approved")).to_be_visible()
    expect(page.locator(".nhsuk-summary-list")).to_contain_text(SECOND)
