"""The line manager's readiness page per starter, its live fragment, My team's readiness tags
and the one-time reveal of the day-one sign-in details — through the real app with the real
dev sign-in (session cookie and CSRF), on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

import pytest
import sqlalchemy as sa
import structlog
from fastapi.testclient import TestClient
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy.engine import Engine

from pasa.clock import FixedClock
from pasa.config import Settings
from pasa.policy.document import parse_policy
from pasa.service import access
from pasa.store import schema as s
from pasa.store.policy_repo import save_policy
from pasa.web.app import create_app
from support.hub_world import add_organisation, add_position, add_staff
from support.web_session import csrf, sign_in

NOW = dt.datetime.combine(dt.date.today(), dt.time(9, 0), tzinfo=dt.UTC)
TODAY = NOW.date()
START = TODAY + dt.timedelta(days=7)  # a week ahead: inside the directory's pre-hire window
LONG_AGO = dt.date(2020, 1, 1)
MANAGER, OTHER_MANAGER = "lena.manager@nhs.net", "omar.manager@nhs.net"
STARTER, IDENTITY = "sam.starter@nhs.net", "identity.team@nhs.net"

POLICY = """
version: 1
targets:
  - key: ad
    name: Trust directory
    connector: memory
    lifecycle: {prehire_days: 7, credential_handover: true}
  - key: doors
    name: Door access
    connector: memory
    lifecycle: {prehire_days: 7}
  - key: pacs
    name: Radiology PACS
    connector: memory
roles:
  - key: basics
    description: everyone
    entitlements:
      - {target: ad, groups: [GG-All-Staff]}
      - {target: doors, door_zones: [main-entrance]}
      - {target: pacs, app_roles: [Viewer]}
rules:
  - key: everyone
    description: every permanent employee
    when: {category: Permanent}
    grant: [basics]
"""


@dataclass
class World:
    engine: Engine
    manager: int
    starter: int
    other: int  # reports to another manager
    targets: dict[str, int]
    seq: int = 0

    def account(self, target: str, status: str = "disabled") -> int:
        with self.engine.begin() as conn:
            return int(
                conn.execute(
                    s.account.insert()
                    .values(
                        target_id=self.targets[target],
                        person_id=self.starter,
                        username="sstarter",
                        status=status,
                        attributes={},
                        created_at=NOW - dt.timedelta(hours=1),
                        updated_at=NOW - dt.timedelta(hours=1),
                    )
                    .returning(s.account.c.id)
                ).scalar_one()
            )

    def grant(self, account_id: int, kind: str, value: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                s.account_grant.insert().values(
                    account_id=account_id, kind=kind, value=value, reasons=[], granted_at=NOW
                )
            )

    def operation(self, target: str, kind: str, status: str, **extra: object) -> int:
        self.seq += 1
        with self.engine.begin() as conn:
            return int(
                conn.execute(
                    s.operation.insert()
                    .values(
                        idempotency_key=f"t-{self.seq}",
                        plan_id="p",
                        target_id=self.targets[target],
                        person_id=self.starter,
                        kind=kind,
                        username="sstarter",
                        payload=extra.pop("payload", {}),
                        reasons=[],
                        summary=kind,
                        status=status,
                        created_at=NOW,
                        **extra,
                    )
                    .returning(s.operation.c.id)
                ).scalar_one()
            )

    def handover(self, account_id: int) -> int:
        with self.engine.begin() as conn:
            return int(
                conn.execute(
                    s.credential_handover.insert()
                    .values(
                        account_id=account_id,
                        person_id=self.starter,
                        status="waiting",
                        manager_person_id=self.manager,
                        created_at=NOW,
                    )
                    .returning(s.credential_handover.c.id)
                ).scalar_one()
            )


def _person(
    conn: sa.Connection,
    org: int,
    position: int,
    first: str,
    last: str,
    number: str,
    email: str,
    start: dt.date,
    supervisor: str | None = None,
) -> int:
    return add_staff(
        conn,
        org,
        position,
        first,
        last,
        number,
        start=start,
        at=NOW,
        email=email,
        supervisor=supervisor,
    )


@pytest.fixture
def world(engine: Engine) -> World:
    with engine.begin() as conn:
        org = add_organisation(conn, "RXL", at=NOW)
        position = add_position(conn, org, number="RXL-P1", department=("D1", "Ward 1", "CC1"))
        manager = _person(conn, org, position, "Lena", "Manager", "M1", MANAGER, LONG_AGO)
        _person(conn, org, position, "Omar", "Manager", "M2", OTHER_MANAGER, LONG_AGO)
        starter = _person(conn, org, position, "Sam", "Starter", "S1", STARTER, START, "M1")
        other = _person(conn, org, position, "Olly", "Other", "S2", "olly@nhs.net", START, "M2")
        save_policy(conn, parse_policy(POLICY, "test.yaml"), source="test.yaml", actor="test")
        targets = {k: int(i) for k, i in conn.execute(sa.select(s.target.c.key, s.target.c.id))}
    access.grant_role(engine, IDENTITY, "org_admin", organisation="RXL", actor="test")
    return World(engine, manager, starter, other, targets)


def _client(engine: Engine, subject: str) -> TestClient:
    settings = Settings(dev_signin=True, session_secret="s" * 40, signin_rate_limit=0)
    client = TestClient(
        create_app(engine, clock=FixedClock(NOW), settings=settings),
        base_url="https://testserver",
    )
    sign_in(client, subject)
    return client


def _rows(page: str) -> dict[str, str]:
    """Access shown -> its status tag, from the readiness table."""
    out = {}
    for row in re.findall(r'<tr class="nhsuk-table__row pasa-item.*?</tr>', page, re.S):
        cells = re.findall(r"</span>(.*?)</td>", row, re.S)
        what = re.sub(r"<[^>]+>", "", cells[1]).strip()
        out[f"{re.sub(r'<[^>]+>', '', cells[0]).strip()}: {what}"] = re.sub(
            r"<[^>]+>", "", cells[2]
        ).strip()
    return out


def _day(d: dt.date) -> str:
    return f"{d:%a} {d.day} {d:%b %Y}"


# --- states -----------------------------------------------------------------------------------


def test_nothing_done_yet_shows_every_item_pending_with_its_expected_date(
    world: World, engine: Engine
) -> None:
    page = _client(engine, MANAGER).get(f"/people/{world.starter}/readiness")
    assert page.status_code == 200
    rows = _rows(page.text)
    assert rows == {
        "Trust directory: Account": "Pending",
        "Trust directory: Group GG-All-Staff": "Pending",
        "Door access: Account": "Pending",
        "Door access: Door zone main-entrance": "Pending",
        "Radiology PACS: Account": "Pending",
        "Radiology PACS: Application role Viewer": "Pending",
    }
    assert f"To be created (disabled) on {_day(TODAY)} and enabled by 08:00 on" in page.text
    assert f"Door access opens on {_day(START)}" in page.text
    assert "0 of 6 ready" in page.text
    # Something is still to happen: the live part polls itself.
    assert 'hx-trigger="every 10s"' in page.text


def test_each_state_shows_with_its_reason(world: World, engine: Engine) -> None:
    ad = world.account("ad", status="enabled")
    world.grant(ad, "group", "GG-All-Staff")
    world.operation("ad", "create_account", "succeeded", completed_at=NOW)
    world.operation(
        "doors",
        "create_account",
        "parked",
        last_error="door controller offline",
        attempts=5,
    )
    task_op = world.operation("pacs", "create_account", "waiting_manual", payload={})
    with engine.begin() as conn:
        conn.execute(
            s.manual_task.insert().values(
                operation_id=task_op,
                target_id=world.targets["pacs"],
                assignee="PACS administrators",
                instructions="Create the account",
                status="open",
                created_at=NOW,
                due_at=NOW + dt.timedelta(hours=24),
            )
        )
    page = _client(engine, MANAGER).get(f"/people/{world.starter}/readiness").text
    rows = _rows(page)
    assert rows["Trust directory: Account sstarter"] == "Ready"
    assert rows["Trust directory: Group GG-All-Staff"] == "Ready"
    assert rows["Door access: Account"] == "Failed"
    assert rows["Radiology PACS: Account"] == "Manual task"
    assert "door controller offline" in page and "The identity team has been told" in page
    due = (NOW + dt.timedelta(hours=24)).strftime("%-d %b %Y %H:%M")
    assert f"PACS administrators will set this up in Radiology PACS by {due}" in page
    assert "2 of 6 ready; 1 needs the identity team; 1 waiting for a manual task" in page


def test_everything_ready_says_so_and_stops_polling(world: World, engine: Engine) -> None:
    for target, kind, value in (
        ("ad", "group", "GG-All-Staff"),
        ("doors", "door_zone", "main-entrance"),
        ("pacs", "app_role", "Viewer"),
    ):
        account = world.account(target, status="enabled")
        world.grant(account, kind, value)
    client = _client(engine, MANAGER)
    page = client.get(f"/people/{world.starter}/readiness").text
    assert f"Everything is ready for {START:%A} {START.day} {START:%B}" in page
    assert "hx-trigger" not in page
    fragment = client.get(f"/people/{world.starter}/readiness/status")
    assert fragment.status_code == 200
    assert "<html" not in fragment.text and "Everything is ready" in fragment.text
    assert "hx-trigger" not in fragment.text


def test_the_fragment_follows_the_ledger(world: World, engine: Engine) -> None:
    client = _client(engine, MANAGER)
    url = f"/people/{world.starter}/readiness/status"
    before = client.get(url)
    assert before.status_code == 200 and "<html" not in before.text
    assert f'hx-get="{url}"' in before.text and "0 of 6 ready" in before.text
    world.grant(world.account("ad", status="enabled"), "group", "GG-All-Staff")
    after = client.get(url).text
    assert "2 of 6 ready" in after and 'hx-trigger="every 10s"' in after


# --- My team ----------------------------------------------------------------------------------


def test_my_team_links_each_starter_to_readiness_with_a_tag(world: World, engine: Engine) -> None:
    client = _client(engine, MANAGER)
    page = client.get("/team").text
    assert f'href="/people/{world.starter}/readiness"' in page
    assert "0 of 6 ready" in page
    world.operation("doors", "create_account", "parked", last_error="offline")
    assert "Needs attention" in client.get("/team").text


def test_my_team_reads_readiness_in_a_fixed_number_of_queries(world: World, engine: Engine) -> None:
    client = _client(engine, MANAGER)

    def count() -> int:
        seen: list[str] = []

        def listener(*args: object) -> None:
            seen.append(str(args[2]))

        sa.event.listen(engine, "before_cursor_execute", listener)
        try:
            assert client.get("/team").status_code == 200
        finally:
            sa.event.remove(engine, "before_cursor_execute", listener)
        return len(seen)

    one = count()
    # Four more starters for the same manager: the page must not ask once per person.
    with engine.begin() as conn:
        org = conn.scalar(sa.select(s.organisation.c.id))
        position = conn.scalar(sa.select(s.position.c.id))
        for n in range(4):
            _person(
                conn, org, position, "New", f"Starter{n}", f"S1{n}", f"n{n}@nhs.net", START, "M1"
            )
    client = _client(engine, MANAGER)  # the reports are read at sign-in
    assert "New Starter3" in client.get("/team").text
    assert count() == one


# --- authorization ----------------------------------------------------------------------------


def test_who_may_see_a_readiness_page(world: World, engine: Engine) -> None:
    url = f"/people/{world.starter}/readiness"
    assert _client(engine, MANAGER).get(url).status_code == 200
    assert _client(engine, IDENTITY).get(url).status_code == 200
    mine = _client(engine, STARTER).get(url)
    assert mine.status_code == 200 and "Your readiness" in mine.text
    # Another manager's report, and a member of staff looking at someone else: not found.
    assert _client(engine, MANAGER).get(f"/people/{world.other}/readiness").status_code == 404
    assert (
        _client(engine, MANAGER).get(f"/people/{world.other}/readiness/status").status_code == 404
    )
    assert _client(engine, STARTER).get(f"/people/{world.manager}/readiness").status_code == 404
    assert _client(engine, MANAGER).get("/people/999999/readiness").status_code == 404
    # Not signed in: off to sign in, and back afterwards.
    anonymous = TestClient(create_app(engine, settings=Settings(dev_signin=True)))
    bounced = anonymous.get(url, follow_redirects=False)
    assert bounced.status_code == 303 and "next=" in bounced.headers["location"]


# --- day-one credential handover ----------------------------------------------------------------


def test_the_line_manager_reveals_the_day_one_code_exactly_once(
    world: World, engine: Engine, capsys: pytest.CaptureFixture[str]
) -> None:
    hid = world.handover(world.account("ad"))
    client = _client(engine, MANAGER)
    page = client.get(f"/people/{world.starter}/readiness").text
    assert "Reveal day-one sign-in details" in page
    confirm = client.get(f"/people/{world.starter}/handover/{hid}/reveal")
    assert confirm.status_code == 200 and "Shown only once" in confirm.text
    token = csrf(confirm.text)
    url = f"/people/{world.starter}/handover/{hid}/reveal"
    # Without the CSRF token the form is refused and nothing is revealed.
    assert client.post(url, data={}).status_code == 403
    with structlog.testing.capture_logs() as logs:
        shown = client.post(url, data={"csrf_token": token})
    assert shown.status_code == 200
    assert shown.headers["cache-control"] == "no-store"
    code = re.search(r'id="activation-code">([^<]+)<', shown.text)
    assert code and code.group(1).startswith(f"{hid}-")
    # The code is stored only as a hash, and never reaches a log line or the audit.
    secret = code.group(1)
    assert secret not in repr(logs) and secret not in capsys.readouterr().err
    with engine.connect() as conn:
        stored = conn.execute(sa.select(s.credential_handover)).one()
        audit = " ".join(str(r.details) for r in conn.execute(sa.select(s.audit_log)))
    assert stored.status == "revealed" and stored.revealed_by == MANAGER
    assert secret not in str(stored) and secret not in audit
    # A second reveal is refused, saying by whom and when; the code is not shown again.
    again = client.post(url, data={"csrf_token": token})
    assert again.status_code == 409
    assert f"already revealed by {MANAGER}" in again.text and secret not in again.text
    after = client.get(f"/people/{world.starter}/readiness").text
    assert "Already revealed by" in after and "Reveal day-one sign-in details" not in after


def test_only_the_line_manager_may_reveal(world: World, engine: Engine) -> None:
    hid = world.handover(world.account("ad"))
    url = f"/people/{world.starter}/handover/{hid}/reveal"
    identity = _client(engine, IDENTITY)
    assert "Reveal day-one" not in identity.get(f"/people/{world.starter}/readiness").text
    assert identity.get(url).status_code == 403
    starter = _client(engine, STARTER)
    assert starter.get(url).status_code == 403
    other = _client(engine, OTHER_MANAGER)
    assert other.get(url).status_code == 404
    # A handover of someone else through this manager's report: not found.
    assert (
        _client(engine, MANAGER)
        .get(f"/people/{world.starter}/handover/{hid + 1}/reveal")
        .status_code
        == 404
    )
    with engine.connect() as conn:
        assert conn.scalar(sa.select(s.credential_handover.c.status)) == "waiting"


# --- the summary of a page and a tag (pure) ------------------------------------------------------


@given(st.lists(st.sampled_from(["ready", "pending", "manual", "failed"]), max_size=12))
def test_banner_and_tag_agree_with_the_items(states: list[str]) -> None:
    from pasa.domain.model import PersonView
    from pasa.web.pages.readiness_data import Item, Readiness

    person = PersonView(1, "u", "Sam", "Starter", None, None, ())
    items = [Item("ad", "AD", "group", f"G{n}", state, "") for n, state in enumerate(states)]
    r = Readiness(person, "starter", START, TODAY, items)
    text, _ = r.tag
    if "failed" in states:
        failed = states.count("failed")
        needs = "needs" if failed == 1 else "need"
        assert text == "Needs attention" and f"{failed} {needs} the identity team" in r.headline
    elif all(state == "ready" for state in states):
        assert text == "Ready" and r.headline.startswith(("Everything is ready", "Nothing is due"))
        assert not r.live
    else:
        assert text == f"{states.count('ready')} of {len(states)} ready" and r.live
    if states and not r.all_ready:
        assert r.headline.startswith(f"{states.count('ready')} of {len(states)} ready")
        assert ("manual task" in r.headline) == ("manual" in states)
