"""My credentials in Chromium: a staff member gets an offer QR code, then its transaction code
on a separate step; every state passes axe-core and fits a phone's width."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect
from test_pages import assert_accessible, screenshot, sign_in_as

from pasa.passport.keys import KEK_ENV, KeyEncryptionKey


def _wider_than_screen(page: Page) -> list[str]:
    """Elements of the main content reaching past the right edge of the screen."""
    found: list[str] = page.evaluate(
        """() => [...document.querySelectorAll('main *')]
            .filter(e => e.getBoundingClientRect().right > window.innerWidth + 1)
            .map(e => e.tagName + '.' + e.className)"""
    )
    return found


def test_staff_member_gets_an_offer_qr_code_and_then_its_code(
    page: Page, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The served app reads the key-encryption key when it signs: set for this test only.
    monkeypatch.setenv(KEK_ENV, KeyEncryptionKey.generate())
    sign_in_as(page, "staff member")
    page.get_by_role("link", name="My credentials").first.click()
    page.wait_for_url(re.compile(r"/my-credentials$"))
    assert_accessible(page)
    expect(page.get_by_role("heading", level=1)).to_have_text("My credentials")
    expect(page.get_by_text("No passport credentials have been issued to you yet")).to_be_visible()

    page.get_by_role("button", name="Get my passport credentials").click()
    page.wait_for_url(re.compile(r"/my-credentials/offer$"))
    assert_accessible(page)
    expect(page.get_by_role("img", name="QR code of your offer")).to_be_visible()
    expect(page.locator("a[href^='openid-credential-offer:']")).to_be_visible()
    expect(page.locator("#tx-code")).to_have_count(0)
    screenshot(page, "my-credentials")

    page.set_viewport_size({"width": 360, "height": 740})
    assert _wider_than_screen(page) == [], "the offer page scrolls sideways on a phone"

    page.get_by_role("button", name="Show my transaction code").click()
    page.wait_for_url(re.compile(r"/my-credentials/offer/code$"))
    assert_accessible(page)
    expect(page.locator("#tx-code")).to_have_text(re.compile(r"^\d{6}$"))
    assert _wider_than_screen(page) == []
