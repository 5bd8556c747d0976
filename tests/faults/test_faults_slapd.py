"""slapd stopped in the middle of a run and started again: retried, then carried out once.

A real OpenLDAP ``slapd`` (``tests/connectors/slapd_server.py``: its own configuration and
data directory, a free port) receives 2,000 operations (500 starters: an account and three
groups each) from the ordinary worker, :func:`pasa.engine.worker.run_pending`, running in a
thread of this test on a controlled clock. Once a good part has succeeded, slapd is stopped
under the worker's feet: the operations in hand fail with a
:class:`~pasa.connectors.base.TransientError`, are given an exponential ``not_before``
backoff, and the circuit breaker stops each run after a few. slapd is then started again on
the same port and data directory; the worker re-binds by itself and drains the rest.

The directory must then hold every account exactly once (with the ``entryUUID`` the hub
recorded) and every group exactly the expected members; every operation succeeded once,
none parked, and the audit chain verifies.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from ldap3 import SUBTREE
from slapd_server import SlapdServer, require_slapd
from sqlalchemy.engine import Engine

from pasa.connectors.registry import build_connector

from .fault_helpers import (
    DrainThread,
    Expected,
    FakeClock,
    InProcessDrain,
    add_target,
    assert_ledger_clean,
    hub_external_ids,
    retry_entries,
    seed_joiners,
    succeeded,
    wait_for,
)

PEOPLE = 500  # 2,000 operations on either hub
PASSWORD_ENV = "PASA_FAULT_LDAP_PASSWORD"
BACKOFF_BASE, BACKOFF_CAP = 1.0, 4.0
# Retries seen while slapd is down before it is started again (several failed runs).
OUTAGE_RETRIES = 40


@pytest.fixture
def slapd(tmp_path: Path) -> Iterator[SlapdServer]:
    require_slapd()
    server = SlapdServer(tmp_path / "slapd")
    server.start()
    try:
        yield server
    finally:
        server.stop()


def _entries(server: SlapdServer, base: str, filt: str, attrs: list[str]) -> list[dict[str, Any]]:
    conn = server.connect()
    try:
        found = conn.extend.standard.paged_search(
            base, filt, search_scope=SUBTREE, attributes=attrs, paged_size=500, generator=False
        )
        return [
            {"dn": e["dn"], **{k: [v.decode() for v in vs] for k, vs in raw.items()}}
            for e in found
            if e.get("type") == "searchResEntry" and (raw := e["raw_attributes"]) is not None
        ]
    finally:
        conn.unbind()


def assert_directory_holds(server: SlapdServer, base: str, expected: Expected, hub: Engine) -> None:
    """Each account once, with its employee number; each group exactly its members, once."""
    attrs = ["uid", "employeeNumber", "entryUUID"]
    people = _entries(server, f"ou=people,{base}", "(objectClass=inetOrgPerson)", attrs)
    uids = [e["uid"][0] for e in people]
    assert len(uids) == len(set(uids)), "an account exists twice in the directory"
    assert sorted(uids) == sorted(expected.accounts), (
        f"directory accounts differ: missing {sorted(set(expected.accounts) - set(uids))[:5]}, "
        f"unexpected {sorted(set(uids) - set(expected.accounts))[:5]}"
    )
    assert {e["uid"][0]: e["employeeNumber"][0] for e in people} == expected.accounts
    ids = {e["uid"][0]: e["entryUUID"][0] for e in people}
    assert hub_external_ids(hub, expected.target) == ids, "the hub's external ids differ"

    groups = _entries(server, f"ou=groups,{base}", "(objectClass=groupOfNames)", ["cn", "member"])
    names = [g["cn"][0] for g in groups]
    assert len(names) == len(set(names)), "a group exists twice in the directory"
    want = expected.groups()
    assert sorted(names) == sorted(want)
    for group in groups:
        members = [m.lower() for m in group.get("member", [])]
        assert len(members) == len(set(members)), f"{group['cn'][0]} lists a member twice"
        dns = {f"uid={u},ou=people,{base}".lower() for u in want[group["cn"][0]]}
        assert set(members) == dns, f"{group['cn'][0]} does not hold exactly its expected members"


@pytest.mark.slow
def test_slapd_stopped_and_restarted_mid_run_loses_and_duplicates_nothing(
    hub: Engine, slapd: SlapdServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(PASSWORD_ENV, slapd.root_password)
    base = slapd.new_subtree(f"f{uuid.uuid4().hex[:8]}")
    settings = {
        "url": slapd.url,
        "bind_dn": slapd.root_dn,
        "bind_password_env": PASSWORD_ENV,
        "base_dn": base,
        "timeout": 3,
    }
    add_target(hub, "dir", "ldap", settings)
    expected = seed_joiners(hub, "dir", PEOPLE)
    connector = build_connector("dir", "ldap", settings)
    drain = InProcessDrain(
        hub, {"dir": connector}, FakeClock(), backoff_base=BACKOFF_BASE, backoff_cap=BACKOFF_CAP
    )
    worker = DrainThread(drain, timeout=150)
    try:
        worker.start()
        wait_for(lambda: succeeded(hub) >= expected.operations // 3, "a third of the operations")
        slapd.stop()  # while the worker runs
        done_before = succeeded(hub)
        wait_for(lambda: len(retry_entries(hub)) >= OUTAGE_RETRIES, "retries while slapd is down")
        slapd.start()  # same port, same data directory
        worker.result(timeout=150)
    finally:
        connector.close()

    assert done_before < expected.operations, "the worker finished before slapd was stopped"
    retries = retry_entries(hub)
    assert len(retries) >= OUTAGE_RETRIES
    for op_id, at, details in retries:
        assert "unavailable" in details["error"], (op_id, details)
        # Backed off: not before base, at most cap (+25% jitter), from the failed attempt.
        wait = (dt.datetime.fromisoformat(details["not_before"]) - at).total_seconds()
        assert BACKOFF_BASE <= wait <= BACKOFF_CAP * 1.25 + 1e-6, (op_id, wait)
    attempts = max(details["attempt"] for _, _, details in retries)
    assert attempts >= 2, "no operation was retried more than once during the outage"
    assert attempts < drain.max_attempts

    assert_directory_holds(slapd, base, expected, hub)
    assert_ledger_clean(hub, expected)
