"""axe-core on every page each persona can reach, found by following the links on the pages.

The flow tests check the pages they use; this crawl makes sure no page is left out as pages are
added: each persona signs in, then every same-site link is followed breadth-first (two of each
URL shape, e.g. ``/people/{id}/timeline``, so a team of hundreds is not walked in full), and
every page reached must load without a server error and without a serious or critical axe
violation.
"""

from __future__ import annotations

import re
from collections import deque
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Page
from test_pages import assert_accessible, sign_in_as

PERSONAS = ("line manager", "staff member", "identity team", "system owner", "auditor")
PER_SHAPE = 2
MAX_PAGES = 80
# Links that change state on GET do not exist; these only leave the site or the session.
SKIP = re.compile(r"^/(auth/|static/|assets/|healthz|metrics|api/|scim/|\.well-known/)")


def _shape(path: str) -> str:
    return re.sub(r"/\d+(?=/|$)", "/{id}", path)


def _links(page: Page) -> list[str]:
    hrefs: list[str] = page.eval_on_selector_all(
        "main a[href], header a[href]", "els => els.map(e => e.getAttribute('href'))"
    )
    out = []
    for href in hrefs:
        parts = urlsplit(href)
        if parts.scheme or parts.netloc or not parts.path.startswith("/"):
            continue  # another site, or an in-page anchor
        if SKIP.match(parts.path):
            continue
        out.append(parts.path + (f"?{parts.query}" if parts.query else ""))
    return out


@pytest.mark.parametrize("persona", PERSONAS)
def test_every_reachable_page_is_accessible(page: Page, persona: str) -> None:
    sign_in_as(page, persona)
    seen_shapes: dict[str, int] = {}
    queued = deque(["/home"])
    visited: set[str] = set()
    problems: list[str] = []
    while queued and len(visited) < MAX_PAGES:
        path = queued.popleft()
        shape = _shape(urlsplit(path).path)
        if path in visited or seen_shapes.get(shape, 0) >= PER_SHAPE:
            continue
        visited.add(path)
        seen_shapes[shape] = seen_shapes.get(shape, 0) + 1
        response = page.goto(path)
        status = response.status if response else 0
        if status >= 500:
            problems.append(f"{path}: HTTP {status}")
            continue
        try:
            assert_accessible(page)
        except AssertionError as exc:
            problems.append(f"{path}: {exc}")
        queued.extend(link for link in _links(page) if link not in visited)
    assert len(visited) >= 2, f"{persona} reached only {sorted(visited)}"
    print(f"{persona}: {len(visited)} pages checked")
    assert not problems, "\n".join(problems)
