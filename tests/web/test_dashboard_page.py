"""The benefits dashboard page and its JSON twin: who may see them, and what they show."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import Connection, Engine

from pasa.clock import FixedClock
from pasa.config import Settings
from pasa.service import access
from pasa.store import schema as s
from pasa.web.app import create_app
from support.hub_world import add_assignment, add_organisation, add_person, add_position
from support.web_session import sign_in

NOW = dt.datetime(2026, 11, 24, 12, 0, tzinfo=dt.UTC)


def _applied_import(
    conn: Connection, filename: str, digit: str, as_of: dt.date, started_at: dt.datetime
) -> int:
    return int(
        conn.execute(
            s.hr_import.insert()
            .values(
                source="esr-extract",
                filename=filename,
                sha256=digit * 64,
                as_of=as_of,
                status="applied",
                started_at=started_at,
                guard_threshold=0.05,
                actor="t",
            )
            .returning(s.hr_import.c.id)
        ).scalar_one()
    )


def _seed(engine: Engine) -> None:
    """RXL: one starter ready at 07:30 on Monday 16 November, one automated operation and one
    done by hand; RYJ: another organisation."""
    with engine.begin() as conn:
        org = add_organisation(conn, "RXL", at=NOW)
        add_organisation(conn, "RYJ", at=NOW)
        pos = add_position(
            conn,
            org,
            number="P",
            title="Nurse",
            site=("S", "S"),
            department=("D", "D", "C"),
            area_of_work="M",
            grade_code="5",
        )
        person = add_person(conn, uid="p1", first="Ann", last="Lee", at=NOW)
        add_assignment(
            conn,
            organisation_id=org,
            position_id=pos,
            person_id=person,
            number="1",
            employee_number="1",
            start=dt.date(2026, 11, 16),
            at=NOW,
        )
        # Go-live: the organisation's first (baseline) import, whose people are not starters.
        baseline = _applied_import(
            conn, "go-live", "1", dt.date(2026, 9, 1), dt.datetime(2026, 9, 1, 9, tzinfo=dt.UTC)
        )
        conn.execute(
            s.hr_event.insert().values(
                import_id=baseline,
                organisation_id=org,
                assignment_number="0",
                kind="new",
                effective_date=dt.date(2020, 1, 1),
                state="applied",
                recorded_at=dt.datetime(2026, 9, 1, 9, tzinfo=dt.UTC),
            )
        )
        imp = _applied_import(conn, "f", "0", dt.date(2026, 11, 10), NOW)
        conn.execute(
            s.hr_event.insert().values(
                import_id=imp,
                organisation_id=org,
                assignment_number="1",
                person_id=person,
                kind="new",
                effective_date=dt.date(2026, 11, 16),
                state="applied",
                recorded_at=dt.datetime(2026, 11, 10, 9, tzinfo=dt.UTC),
            )
        )
        target = conn.execute(
            s.target.insert()
            .values(key="ad", name="AD", connector="memory", settings={}, username_template="x")
            .returning(s.target.c.id)
        ).scalar_one()
        for i, done in enumerate(
            (
                dt.datetime(2026, 11, 10, 10, tzinfo=dt.UTC),
                dt.datetime(2026, 11, 16, 7, 30, tzinfo=dt.UTC),
            )
        ):
            op = conn.execute(
                s.operation.insert()
                .values(
                    idempotency_key=f"k{i}",
                    plan_id="p",
                    target_id=target,
                    person_id=person,
                    kind="create_account" if i == 0 else "enable",
                    username="al",
                    payload={},
                    reasons=[],
                    summary="",
                    status="succeeded",
                    created_at=dt.datetime(2026, 11, 10, 9, 5, tzinfo=dt.UTC),
                    completed_at=done,
                )
                .returning(s.operation.c.id)
            ).scalar_one()
            if i == 1:
                conn.execute(
                    s.manual_task.insert().values(
                        operation_id=op,
                        target_id=target,
                        assignee="x",
                        instructions="x",
                        status="done",
                        created_at=NOW,
                        due_at=NOW,
                        completed_at=done,
                    )
                )
    for subject, role, org_code in (
        ("admin@nhs.net", "org_admin", "RXL"),
        ("auditor@nhs.net", "auditor", "RXL"),
        ("owner@nhs.net", "system_owner", "RXL"),
        ("other@nhs.net", "org_admin", "RYJ"),
        ("platform@nhs.net", "platform_admin", None),
    ):
        access.grant_role(
            engine,
            subject,
            role,
            organisation=org_code,
            target="ad" if role == "system_owner" else None,
            actor="test",
        )


@pytest.fixture
def client(engine: Engine) -> TestClient:
    _seed(engine)
    values: dict[str, Any] = {"dev_signin": True, "session_secret": "k" * 40}
    app = create_app(engine, clock=FixedClock(NOW), settings=Settings(**values))
    return TestClient(app, base_url="https://testserver")


def _text(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


@pytest.mark.parametrize("subject", ["admin@nhs.net", "auditor@nhs.net", "platform@nhs.net"])
def test_the_identity_team_platform_admins_and_auditors_see_the_figures(
    client: TestClient, subject: str
) -> None:
    sign_in(client, subject)
    page = client.get("/dashboard?org=RXL&period=30", headers={"accept": "text/html"})
    assert page.status_code == 200, page.text
    text = _text(page.text)
    assert "Trust RXL (RXL)" in text
    # One starter, ready at 07:30 on day one after 142.5 hours; one of two operations by hand.
    assert "100% of starters (1 of 1) had every system ready by 08:00" in text
    assert "within 5.9 days of the HR record arriving" in text
    assert "50% of 2 completed operations needed nobody (1 were done by hand)" in text
    assert 'role="img"' in page.text and '<title id="tta-title">' in page.text
    assert "Ready by 08:00 on day one, by week" in text
    assert "1 automated actions x" in text  # the formula, with this period's numbers


@pytest.mark.parametrize("subject", ["owner@nhs.net", "nobody@nhs.net"])
def test_others_are_refused(client: TestClient, subject: str) -> None:
    sign_in(client, subject)
    page = client.get("/dashboard", headers={"accept": "text/html"})
    assert page.status_code == 403
    assert client.get("/api/v1/organisations/RXL/benefits").status_code in (403, 404)


def test_another_organisation_is_not_found(client: TestClient) -> None:
    sign_in(client, "other@nhs.net")
    assert client.get("/dashboard?org=RXL", headers={"accept": "text/html"}).status_code == 404
    assert client.get("/dashboard", headers={"accept": "text/html"}).status_code == 200


def test_signed_out_goes_to_sign_in(client: TestClient) -> None:
    page = client.get("/dashboard", headers={"accept": "text/html"}, follow_redirects=False)
    assert page.status_code == 303 and page.headers["location"].startswith("/?next=")


def test_an_unknown_period_is_a_clear_error(client: TestClient) -> None:
    sign_in(client, "admin@nhs.net")
    page = client.get("/dashboard?period=7", headers={"accept": "text/html"})
    assert page.status_code == 400
    assert "Choose a period from the list" in page.text


def test_the_api_gives_the_same_figures(client: TestClient) -> None:
    sign_in(client, "auditor@nhs.net")
    body = client.get("/api/v1/organisations/RXL/benefits?from=2026-10-26&to=2026-11-24").json()
    assert body["starters"] == 1 and body["day_one_ready"] == 1 and body["day_one_share"] == 1.0
    assert body["time_to_access_hours"]["p50"] == 142.5
    assert (body["operations_automated"], body["operations_manual"]) == (1, 1)
    assert body["saving"]["period_days"] == 30 and body["saving"]["hours_saved"] > 0
    bad = client.get("/api/v1/organisations/RXL/benefits?from=2026-11-24&to=2026-11-01")
    assert bad.status_code == 400
    assert bad.headers["content-type"] == "application/problem+json"
    assert "'from' is after 'to'" in bad.json()["detail"]
