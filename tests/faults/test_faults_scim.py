"""A SCIM service answering 500 and 429 (Retry-After): every operation carried out once.

A real ``scim2-server`` (``tests/connectors/scim_server.py``) sits behind a fault-injecting
reverse proxy (``fault_proxy.py``): every 7th request gets HTTP 500 — every other one of
those *after* the server has carried the request out, so the client sees a failure for work
that was done — and every 5th of the others HTTP 429 with ``Retry-After: 120``. The ordinary
worker, :func:`pasa.engine.worker.run_pending`, works 2,000 operations (500 starters: a
user and three group memberships each) through the proxy on a controlled clock:

* a 429 pushes the operation's ``not_before`` at least ``Retry-After`` out, a 500 only the
  (much shorter) exponential backoff; a run when the backoffs but not the Retry-After have
  passed retries the 500s and leaves every 429 alone;
* once drained, the SCIM service holds each user exactly once (with the ``id`` the hub
  recorded as external id) and each group exactly once with exactly its members, none
  listed twice; every operation succeeded once, none parked, and the audit chain verifies.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from scim_server import TOKEN, ScimServer, start_scim_server
from sqlalchemy.engine import Engine

from pasa.connectors.registry import build_connector
from pasa.store.schema import operation

from .fault_helpers import (
    Expected,
    FakeClock,
    InProcessDrain,
    add_target,
    assert_ledger_clean,
    hub_external_ids,
    retry_entries,
    seed_joiners,
)
from .fault_proxy import FaultProxy

PEOPLE = 500  # 2,000 operations on either hub
TOKEN_ENV = "PASA_FAULT_SCIM_TOKEN"
RETRY_AFTER = 120  # seconds, far beyond the backoff below
BACKOFF_BASE, BACKOFF_CAP = 1.0, 4.0
ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"


@pytest.fixture
def scim() -> Iterator[ScimServer]:
    server = start_scim_server()
    try:
        yield server
    finally:
        server.stop()


def _all(server: ScimServer, endpoint: str) -> list[dict[str, Any]]:
    """Every resource of ``endpoint``, straight from the server (not through the proxy)."""
    out: list[dict[str, Any]] = []
    with server.client() as http:
        while True:
            page = http.get(endpoint, params={"startIndex": len(out) + 1, "count": 500})
            page.raise_for_status()
            resources = page.json().get("Resources") or []
            out += resources
            if not resources or len(out) >= page.json()["totalResults"]:
                return out


def assert_scim_holds(server: ScimServer, expected: Expected, hub: Engine) -> None:
    users = _all(server, "/Users")
    names = [u["userName"] for u in users]
    assert len(names) == len(set(names)), "a user exists twice in the SCIM service"
    assert sorted(names) == sorted(expected.accounts), (
        f"SCIM users differ: missing {sorted(set(expected.accounts) - set(names))[:5]}, "
        f"unexpected {sorted(set(names) - set(expected.accounts))[:5]}"
    )
    assert {u["userName"]: u[ENTERPRISE]["employeeNumber"] for u in users} == expected.accounts
    ids = {u["userName"]: u["id"] for u in users}
    assert hub_external_ids(hub, expected.target) == ids, "the hub's external ids differ"

    groups = _all(server, "/Groups")
    titles = [g["displayName"] for g in groups]
    assert len(titles) == len(set(titles)), (
        f"a group exists twice in the SCIM service: {sorted(titles)}"
    )
    want = expected.groups()
    assert sorted(titles) == sorted(want)
    for group in groups:
        members = [m["value"] for m in group.get("members") or []]
        assert len(members) == len(set(members)), f"{group['displayName']} lists a member twice"
        assert set(members) == {ids[u] for u in want[group["displayName"]]}, (
            f"{group['displayName']} does not hold exactly its expected members"
        )


def _attempts_by_error(hub: Engine, needle: str) -> dict[int, int]:
    """Pending operations whose last error mentions ``needle``: id -> attempts so far."""
    with hub.connect() as conn:
        rows = conn.execute(
            sa.select(operation.c.id, operation.c.attempts).where(
                operation.c.status == "pending", operation.c.last_error.contains(needle)
            )
        ).all()
    return {int(r.id): int(r.attempts) for r in rows}


@pytest.mark.slow
def test_scim_500_and_429_with_retry_after_are_retried_and_applied_once(
    hub: Engine, scim: ScimServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(TOKEN_ENV, TOKEN)
    with FaultProxy(scim.base_url.removesuffix("/v2"), retry_after=RETRY_AFTER) as proxy:
        settings = {"base_url": f"{proxy.url}/v2", "token_env": TOKEN_ENV, "timeout": 10}
        add_target(hub, "scim", "scim", settings)
        expected = seed_joiners(hub, "scim", PEOPLE)
        connector = build_connector("scim", "scim", settings)
        clock = FakeClock()
        drain = InProcessDrain(
            hub,
            {"scim": connector},
            clock,
            backoff_base=BACKOFF_BASE,
            backoff_cap=BACKOFF_CAP,
            step=dt.timedelta(seconds=RETRY_AFTER * 1.25 + 10),
        )
        try:
            # 1. One run: the backoff of each failure follows what the service answered.
            drain.run_once()
            first = retry_entries(hub)
            busy = [(op, at, d) for op, at, d in first if "HTTP 429" in d["error"]]
            failed = [(op, at, d) for op, at, d in first if "HTTP 500" in d["error"]]
            assert busy and failed, f"the proxy injected no 429 or no 500: {proxy.counts}"
            assert len(busy) + len(failed) == len(first), [d["error"] for _, _, d in first]
            for op_id, at, details in busy:
                wait = (dt.datetime.fromisoformat(details["not_before"]) - at).total_seconds()
                assert wait >= RETRY_AFTER, f"op {op_id}: Retry-After not honoured ({wait} s)"
            for op_id, at, details in failed:
                wait = (dt.datetime.fromisoformat(details["not_before"]) - at).total_seconds()
                assert BACKOFF_BASE <= wait <= BACKOFF_CAP * 1.25 + 1e-6, (op_id, wait)

            # 2. Past every backoff but not the Retry-After: the 500s are retried, the 429s
            # are left alone.
            waiting = _attempts_by_error(hub, "HTTP 429")
            to_retry = _attempts_by_error(hub, "HTTP 500")
            assert waiting and to_retry
            clock.advance(seconds=BACKOFF_CAP * 1.25 + 1)
            second = drain.run_once()
            assert second.succeeded > 0
            with hub.connect() as conn:
                now = dict(
                    conn.execute(
                        sa.select(operation.c.id, operation.c.attempts).where(
                            operation.c.id.in_(list(waiting) + list(to_retry))
                        )
                    ).all()
                )
            touched_busy = [op for op, n in waiting.items() if now[op] != n]
            assert not touched_busy, f"operations retried before their Retry-After: {touched_busy}"
            assert any(now[op] != n for op, n in to_retry.items()), "no 500 was retried"

            # 3. Drain.
            clock.advance(seconds=RETRY_AFTER * 1.25 + 10)
            drain.until_drained(timeout=150)
        finally:
            connector.close()

    assert proxy.counts["busy"] >= 50 and proxy.counts["fail"] >= 25, proxy.counts
    lost = [(m, p) for _, m, p, action in proxy.log if action == "lost_reply"]
    assert len(lost) >= 25
    assert any(m == "POST" and "/Users" in p for m, p in lost), "no lost reply to a user create"
    assert any(m == "PATCH" for m, _ in lost), "no lost reply to a membership change"

    assert_scim_holds(scim, expected, hub)
    assert_ledger_clean(hub, expected)
