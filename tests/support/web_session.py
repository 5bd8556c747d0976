"""Sign a ``TestClient`` in through the dev sign-in, and read the CSRF token a form carries."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient

CSRF_FIELD = re.compile(r"name='csrf_token' value='([^']+)'")


def csrf(page: str) -> str:
    """The CSRF token of the (first) form on ``page``; fails the test if there is none."""
    found = CSRF_FIELD.search(page)
    assert found, page
    return found.group(1)


def sign_in(client: TestClient, subject: str, *, follow_redirects: bool = False) -> None:
    """Sign ``subject`` in through ``/auth/dev`` (the app must have ``dev_signin`` on)."""
    token = csrf(client.get("/auth/dev").text)
    done = client.post(
        "/auth/dev",
        data={"subject": subject, "csrf_token": token},
        follow_redirects=follow_redirects,
    )
    assert done.status_code == (200 if follow_redirects else 303), done.text
