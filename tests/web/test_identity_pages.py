"""The identity team's pages over HTTP (real app, real session sign-in, real CSRF), on SQLite
and PostgreSQL: who may see the exceptions board and person timelines, and that every
action changes state and is audited exactly as the API and CLI do it."""

from __future__ import annotations

import datetime as dt
import re
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy.engine import Engine

from pasa.clock import FixedClock
from pasa.config import Settings
from pasa.service import access
from pasa.store import schema as s
from pasa.web.app import create_app
from pasa.web.pages.identity_data import search_terms

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "api"))

from api_world import NOW, OTHER, OWN, USERS, World, build_world

OTHER_ADMIN = "oa.other@nhs.net"
CSRF = re.compile(r"name='csrf_token' value='([^']+)'")


class Browser:
    """A TestClient signed in through the dev sign-in, posting forms with their CSRF field."""

    def __init__(self, client: TestClient) -> None:
        self.client = client
        self.csrf = ""

    def sign_in(self, subject: str) -> Browser:
        form = self.client.get("/auth/dev")
        self.csrf = CSRF.search(form.text).group(1)  # type: ignore[union-attr]
        done = self.client.post(
            "/auth/dev", data={"csrf_token": self.csrf, "subject": subject}, follow_redirects=False
        )
        assert done.status_code == 303
        # Signing in starts a new session with a new token: read it from a page's forms.
        self.csrf = CSRF.search(self.client.get("/home").text).group(1)  # type: ignore[union-attr]
        return self

    def get(self, path: str, params: dict[str, str] | None = None) -> httpx.Response:
        return self.client.get(path, params=params, headers={"accept": "text/html"})

    def post(self, path: str, **fields: str) -> httpx.Response:
        return self.client.post(
            path,
            data={"csrf_token": self.csrf, **fields},
            headers={"accept": "text/html", "referer": "http://testserver" + path},
            follow_redirects=False,
        )


@pytest.fixture
def world(engine: Engine) -> World:
    built = build_world(engine)
    access.grant_role(engine, OTHER_ADMIN, "org_admin", organisation=OTHER, actor="t")
    return built


@pytest.fixture
def app_client(engine: Engine, world: World) -> Iterator[TestClient]:
    settings = Settings(
        dev_signin=True,
        session_cookie_secure=False,
        session_secret="identity-pages-tests-secret-0123456789",
        signin_rate_limit=0,
    )
    # Two days after the world's tasks were created: a task due after one day is overdue.
    clock = FixedClock(NOW + dt.timedelta(days=2))
    with TestClient(create_app(engine, settings=settings, clock=clock)) as c:
        yield c


def as_user(client: TestClient, role_or_subject: str) -> Browser:
    return Browser(client).sign_in(USERS.get(role_or_subject, role_or_subject))


def _status(engine: Engine, table: sa.Table, row_id: int) -> str:
    with engine.connect() as conn:
        return str(conn.scalar(sa.select(table.c.status).where(table.c.id == row_id)))


def _audit(engine: Engine, action: str) -> list[sa.Row[object]]:
    a = s.audit_log
    with engine.connect() as conn:
        return list(conn.execute(sa.select(a).where(a.c.action == action).order_by(a.c.seq)))


# --- who may see what ------------------------------------------------------------------------


@pytest.mark.parametrize("role", ["staff", "line_manager"])
def test_staff_and_line_managers_are_refused_the_identity_pages(
    app_client: TestClient, world: World, engine: Engine, role: str
) -> None:
    op = world.operation(OWN)
    user = as_user(app_client, role)
    for path in ("/exceptions", "/exceptions/parked", "/exceptions/tasks", "/people?q=sam"):
        page = user.get(path)
        assert page.status_code == 403, path
        assert "You do not have access to this page" in page.text
    assert user.post(f"/exceptions/operations/{op}/retry").status_code == 403
    assert _status(engine, s.operation, op) == "parked"
    # A line manager's report's timeline (operations, audit) is not theirs to read either.
    timeline = user.get(f"/people/{world.people[OWN]}/timeline")
    assert timeline.status_code == 403


def test_another_organisations_identity_team_sees_nothing_of_ours(
    app_client: TestClient, world: World, engine: Engine
) -> None:
    op = world.operation(OWN)
    task = world.task(OWN)
    held = world.held_import(OWN)
    theirs = as_user(app_client, OTHER_ADMIN)
    board = theirs.get("/exceptions/parked")
    assert board.status_code == 200
    assert "Sam Staff" not in board.text
    assert "Sam Staff" not in theirs.get("/exceptions/tasks").text
    assert f"Import {held}" not in theirs.get("/exceptions/imports").text
    found = theirs.get("/people", params={"q": "sam"})
    assert "Nobody found" in found.text
    assert theirs.get(f"/people/{world.people[OWN]}/timeline").status_code == 404
    # Their own person is there.
    assert theirs.get(f"/people/{world.people[OTHER]}/timeline").status_code == 200
    # Acting on ours by id is answered as if it did not exist, and changes nothing.
    assert theirs.post(f"/exceptions/operations/{op}/retry").status_code == 404
    assert theirs.post(f"/exceptions/tasks/{task}/complete", username="x").status_code == 404
    assert theirs.post(f"/exceptions/imports/{held}/approve").status_code == 404
    assert _status(engine, s.operation, op) == "parked"
    assert _status(engine, s.manual_task, task) == "open"
    assert _status(engine, s.hr_import, held) == "held"


def test_an_auditor_reads_but_is_offered_no_action_and_may_not_act(
    app_client: TestClient, world: World, engine: Engine
) -> None:
    op = world.operation(OWN)
    auditor = as_user(app_client, "auditor")
    parked = auditor.get("/exceptions/parked")
    assert parked.status_code == 200 and "target down" in parked.text
    assert f"/exceptions/operations/{op}/retry" not in parked.text
    assert auditor.post(f"/exceptions/operations/{op}/retry").status_code == 403
    assert _status(engine, s.operation, op) == "parked"
    assert auditor.get(f"/people/{world.people[OWN]}/timeline").status_code == 200


def test_a_form_without_its_csrf_token_is_refused(
    app_client: TestClient, world: World, engine: Engine
) -> None:
    op = world.operation(OWN)
    admin = as_user(app_client, "org_admin")
    admin.csrf = "forged"
    assert admin.post(f"/exceptions/operations/{op}/retry").status_code == 403
    assert _status(engine, s.operation, op) == "parked"


# --- actions ---------------------------------------------------------------------------------


def test_retrying_a_parked_operation_queues_it_again_with_an_audit_entry(
    app_client: TestClient, world: World, engine: Engine
) -> None:
    op = world.operation(OWN)
    admin = as_user(app_client, "org_admin")
    board = admin.get("/exceptions/parked")
    assert "Sam Staff" in board.text and "target down" in board.text
    # The page's own form carries the CSRF field (as HTML, not escaped text).
    form = re.compile(
        rf'action="/exceptions/operations/{op}/retry"[^>]*>\s*'
        r"<input type=.hidden. name=.csrf_token."
    )
    assert form.search(board.text)
    done = admin.post(f"/exceptions/operations/{op}/retry")
    assert done.status_code == 303
    assert done.headers["location"] == "/exceptions/parked"
    assert _status(engine, s.operation, op) == "pending"
    [entry] = _audit(engine, "operation.retry_requested")
    assert (entry.actor, entry.subject_id) == (USERS["org_admin"], str(op))
    after = admin.get("/exceptions/parked")
    assert f"Operation {op}" in after.text and "is queued again" in after.text
    assert "No operation is parked." in after.text
    # The banner is shown once.
    assert "is queued again" not in admin.get("/exceptions/parked").text


def test_cancelling_needs_a_reason_and_records_it(
    app_client: TestClient, world: World, engine: Engine
) -> None:
    op = world.operation(OWN)
    admin = as_user(app_client, "org_admin")
    admin.post(f"/exceptions/operations/{op}/cancel", reason="  ")
    page = admin.get("/exceptions/parked")
    assert f"Enter the reason for cancelling operation {op}" in page.text
    assert _status(engine, s.operation, op) == "parked"
    admin.post(f"/exceptions/operations/{op}/cancel", reason="starter withdrew")
    assert _status(engine, s.operation, op) == "cancelled"
    [entry] = _audit(engine, "operation.cancelled")
    assert entry.details["reason"] == "starter withdrew"


def test_a_manual_task_is_assigned_and_completed_with_the_username_created(
    app_client: TestClient, world: World, engine: Engine
) -> None:
    task = world.task(OWN)
    admin = as_user(app_client, "org_admin")
    queue = admin.get("/exceptions/tasks")
    assert "Add them to the staff group" in queue.text and "Overdue" in queue.text
    admin.post(f"/exceptions/tasks/{task}/assign")
    with engine.connect() as conn:
        assignee = conn.scalar(
            sa.select(s.manual_task.c.assignee).where(s.manual_task.c.id == task)
        )
    assert assignee == USERS["org_admin"]
    assert _audit(engine, "manual_task.assigned")[0].details["previous"] == "service desk"
    admin.post(f"/exceptions/tasks/{task}/complete", username="sstaff7", note="done by phone")
    with engine.connect() as conn:
        row = conn.execute(
            sa.select(s.manual_task.c.status, s.manual_task.c.completion, s.operation.c.status)
            .select_from(s.manual_task.join(s.operation))
            .where(s.manual_task.c.id == task)
        ).one()
        username = conn.scalar(
            sa.select(s.account.c.username).where(s.account.c.id == world.accounts[OWN])
        )
    assert row[0] == "done" and row[2] == "succeeded"
    assert row[1] == {"username": "sstaff7", "note": "done by phone"}
    # Observed state: later operations use the username actually created.
    assert username == "sstaff7"
    [entry] = _audit(engine, "manual_task.completed")
    assert entry.actor == USERS["org_admin"]
    page = admin.get("/exceptions/tasks")
    assert "recorded as done with username &#39;sstaff7&#39;" in page.text
    # A second completion is refused with the reason, and nothing changes.
    admin.post(f"/exceptions/tasks/{task}/complete", username="other")
    assert "already done" in admin.get("/exceptions/tasks").text


def test_an_overlong_completion_field_is_refused_with_its_limit(
    app_client: TestClient, world: World, engine: Engine
) -> None:
    task = world.task(OWN)
    admin = as_user(app_client, "org_admin")
    admin.post(f"/exceptions/tasks/{task}/complete", username="x" * 201)
    assert "must be 200 characters or fewer" in admin.get("/exceptions/tasks").text
    assert _status(engine, s.manual_task, task) == "open"


def test_a_held_import_shows_its_quarantine_and_guard_and_is_decided(
    app_client: TestClient, world: World, engine: Engine
) -> None:
    held = world.held_import(OWN)
    second = world.held_import(OWN)
    admin = as_user(app_client, "org_admin")
    page = admin.get("/exceptions/imports")
    assert "not a National Insurance number" in page.text
    assert "would end 50% of active assignments" in page.text
    admin.post(f"/exceptions/imports/{held}/reject", reason="")
    assert "Enter the reason for rejecting HR import" in admin.get("/exceptions/imports").text
    assert _status(engine, s.hr_import, held) == "held"
    admin.post(f"/exceptions/imports/{held}/approve")
    assert _status(engine, s.hr_import, held) == "approved"
    admin.post(f"/exceptions/imports/{second}/reject", reason="truncated file")
    assert _status(engine, s.hr_import, second) == "rejected"
    assert _audit(engine, "hr.approve")[0].actor == USERS["org_admin"]
    assert _audit(engine, "hr.reject")[0].details["reason"] == "truncated file"


def test_target_health_and_pause_resume(
    app_client: TestClient, world: World, engine: Engine
) -> None:
    world.operation(OWN, status="pending")
    admin = as_user(app_client, "org_admin")
    page = admin.get("/exceptions/targets")
    assert "Active Directory" in page.text and "Running" in page.text
    admin.post("/exceptions/targets/ad/pause")
    with engine.connect() as conn:
        paused = conn.scalar(sa.select(s.target.c.paused).where(s.target.c.key == "ad"))
    assert paused is True
    page = admin.get("/exceptions/targets")
    assert "Paused" in page.text and "Resume Active Directory" in page.text
    admin.post("/exceptions/targets/ad/resume")
    assert [e.action for e in _audit(engine, "target.paused")] == ["target.paused"]
    assert len(_audit(engine, "target.resumed")) == 1
    assert admin.post("/exceptions/targets/nosuch/pause").status_code == 404


def test_findings_of_the_latest_reconciliation_are_listed_by_target(
    app_client: TestClient, world: World, engine: Engine
) -> None:
    with engine.begin() as conn:
        old, new = (
            conn.execute(
                s.reconciliation_run.insert()
                .values(
                    target_id=world.targets["ad"],
                    started_at=NOW + dt.timedelta(hours=h),
                    finished_at=NOW + dt.timedelta(hours=h),
                    policy="report",
                    counts={"orphan": 1},
                    actor="t",
                )
                .returning(s.reconciliation_run.c.id)
            ).scalar_one()
            for h in (0, 1)
        )
        for run, username in ((old, "gone.before"), (new, "orphan.now")):
            conn.execute(
                s.reconciliation_finding.insert().values(
                    run_id=run,
                    target_id=world.targets["ad"],
                    username=username,
                    person_id=None,
                    kind="orphan",
                    details={},
                    found_at=NOW,
                )
            )
    admin = as_user(app_client, "org_admin")
    page = admin.get("/exceptions/findings")
    assert "orphan.now" in page.text and "gone.before" not in page.text
    assert "orphan.now" not in admin.get("/exceptions/findings?kind=drifted").text
    assert "1 orphan, unmatched or drifted" in admin.get("/exceptions").text


# --- people ------------------------------------------------------------------------------------


@pytest.mark.parametrize("query", ["sam", "SAM STAFF", "RXL-1", "ERXL-1", "staff@nhs", "userrxl"])
def test_person_search_by_name_number_email_or_username(
    app_client: TestClient, world: World, query: str
) -> None:
    admin = as_user(app_client, "org_admin")
    page = admin.get("/people", params={"q": query})
    assert f'href="/people/{world.people[OWN]}/timeline"' in page.text
    assert f"/people/{world.people[OTHER]}/" not in page.text


def test_the_timeline_tells_the_story_newest_first(
    app_client: TestClient, world: World, engine: Engine
) -> None:
    person = world.people[OWN]
    world.grant(OWN)
    op = world.operation(OWN)
    admin = as_user(app_client, "org_admin")
    admin.post(f"/exceptions/operations/{op}/retry")
    page = admin.get(f"/people/{person}/timeline")
    text = page.text
    assert page.status_code == 200
    assert "Timeline of Sam Staff" in text
    assert f'href="/people/{person}/access"' in text
    assert "Request approved: group &#39;research&#39;" in text and "research project" in text
    assert f"Operation {op} on Active Directory: add RXL to staff" in text
    assert f"Operation {op}: retry requested" in text
    # Newest first: the retry (audit, now) comes before the operation it is about.
    assert text.index("retry requested") < text.index(f"Operation {op} on Active Directory")
    assert admin.get("/people/999999/timeline").status_code == 404


@given(st.text(max_size=300))
def test_search_terms_are_lowercase_words_and_bounded(q: str) -> None:
    terms = search_terms(q)
    assert len(terms) <= 5
    assert all(t and t == t.lower() and not any(c.isspace() for c in t) for t in terms)


def test_long_lists_are_paged(app_client: TestClient, world: World) -> None:
    ops = [world.operation(OWN) for _ in range(27)]
    admin = as_user(app_client, "org_admin")
    first = admin.get("/exceptions/parked").text
    assert f'id="operation-{ops[24]}"' in first and f'id="operation-{ops[25]}"' not in first
    assert "Page 2 of 2" in first
    second = admin.get("/exceptions/parked", params={"page": "2"}).text
    assert f'id="operation-{ops[25]}"' in second and f'id="operation-{ops[0]}"' not in second
    # A page past the end shows the last one rather than nothing.
    assert f'id="operation-{ops[26]}"' in admin.get("/exceptions/parked?page=9").text
