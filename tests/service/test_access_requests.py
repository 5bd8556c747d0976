"""Access requests end to end in the service: submit from the catalogue, decide, grant and
plan, reminders and escalation, and the emails that arrive at a real SMTP server (aiosmtpd).
Runs on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from hub_helpers import A, add_person, org
from sqlalchemy.engine import Engine

from pasa.config import Settings
from pasa.domain.access import Principal
from pasa.domain.requests import RequestError, State
from pasa.policy.document import PolicyDocument
from pasa.service import access, access_grants, access_requests, notify
from pasa.store import schema as s
from pasa.store.policy_repo import save_policy
from support.served import free_port
from support.smtp import Inbox, smtp_server

DAY = dt.date(2026, 11, 24)
NOW = dt.datetime(2026, 11, 24, 9, 0, tzinfo=dt.UTC)

POLICY = {
    "version": 1,
    "targets": [
        {"key": "ad", "name": "Directory", "connector": "memory"},
        {"key": "epr", "name": "EPR", "connector": "memory"},
    ],
    "birthright": ["ad"],
    "requestable": [
        {
            "key": "epr-prescriber",
            "target": "epr",
            "kind": "app_role",
            "value": "Prescriber",
            "approvers": ["line_manager", "system_owner"],
            "sla_hours": 24,
        },
        {
            "key": "store",
            "target": "epr",
            "kind": "app_role",
            "value": "Store",
            "approvers": ["line_manager"],
            "max_days": 30,
        },
    ],
}


@pytest.fixture
def smtp() -> Iterator[tuple[Inbox, Settings]]:
    with smtp_server() as inbox:
        yield inbox, Settings(smtp_host="127.0.0.1", smtp_port=inbox.port, smtp_from="pasa@nhs.net")


@pytest.fixture
def trust(engine: Engine) -> dict[str, int]:
    with engine.begin() as conn:
        org(conn, "RXL")
        save_policy(conn, PolicyDocument.model_validate(POLICY), source="test", actor="test")
        manager = add_person(conn, "Mary", "Ward", A("100", dt.date(2020, 1, 1)))
        nurse = add_person(conn, "Nia", "Nurse", A("200", dt.date(2024, 1, 1), supervisor="100"))
        for pid, email in ((manager, "mary.ward@nhs.net"), (nurse, "nia.nurse@nhs.net")):
            conn.execute(s.person.update().where(s.person.c.id == pid).values(email=email))
    access.grant_role(
        engine, "so@nhs.net", "system_owner", organisation="RXL", target="epr", actor="t"
    )
    access.grant_role(engine, "it@nhs.net", "org_admin", organisation="RXL", actor="t")
    return {"manager": manager, "nurse": nurse}


def _who(engine: Engine, subject: str) -> Principal:
    return access.user_principal(engine, subject, at=DAY)


def _submit(engine: Engine, by: str, person: int, item: str = "epr-prescriber", **kw: object):  # type: ignore[no-untyped-def]
    values: dict[str, object] = {
        "justification": "independent prescriber from Monday",
        "valid_from": None,
        "valid_to": None,
        **kw,
    }
    return access_requests.submit(
        engine,
        _who(engine, by),
        person_id=person,
        item_key=item,
        now=NOW,
        today=DAY,
        **values,  # type: ignore[arg-type]
    )


def test_a_request_by_the_line_manager_is_approved_by_the_system_owner_and_planned(
    engine: Engine, trust: dict[str, int], smtp: tuple[Inbox, Settings]
) -> None:
    inbox, settings = smtp
    request = _submit(engine, "mary.ward@nhs.net", trust["nurse"])
    # The line manager asked: their stage is given; the system owner is next.
    assert request.state is State.AWAITING_SYSTEM_OWNER
    assert request.decisions[0].by_request
    assert notify.send_pending(engine, settings).sent == 1
    (ask,) = inbox.to("so@nhs.net")
    assert "needs your approval" in ask["Subject"] and "Nia Nurse" in ask.get_payload()

    with pytest.raises(RequestError, match="separation of duties"):
        access_requests.decide_request(
            engine,
            _who(engine, "mary.ward@nhs.net"),
            request.id,
            approve=True,
            reason="",
            now=NOW,
            today=DAY,
        )
    done = access_requests.decide_request(
        engine,
        _who(engine, "so@nhs.net"),
        request.id,
        approve=True,
        reason="qualified",
        now=NOW,
        today=DAY,
    )
    assert done.state is State.APPROVED and done.grant_id is not None
    (grant,) = access_grants.list_grants(engine, trust["nurse"])
    assert (grant.target, grant.value, grant.requested_by, grant.approved_by) == (
        "epr",
        "Prescriber",
        "mary.ward@nhs.net",
        "so@nhs.net",
    )
    # Planned at once: the operations wait for the worker.
    progress = access_requests.progress(engine, done, DAY)
    assert progress.operations and not progress.ready
    assert {o.status for o in progress.operations} == {"pending"}
    assert any(o.kind == "add_membership" for o in progress.operations)

    notify.send_pending(engine, settings)
    for address in ("mary.ward@nhs.net", "nia.nurse@nhs.net"):
        (told,) = inbox.to(address)
        assert told["Subject"] == f"Access request #{request.id} was approved"
        assert "qualified" in told.get_payload()
    with engine.connect() as conn:
        actions = list(conn.scalars(sa.select(s.audit_log.c.action).order_by(s.audit_log.c.seq)))
    assert {"request.submit", "request.approve", "grant.add", "request.granted"} <= set(actions)


def test_a_staff_request_waits_for_their_line_manager_who_may_reject_it(
    engine: Engine, trust: dict[str, int], smtp: tuple[Inbox, Settings]
) -> None:
    inbox, settings = smtp
    request = _submit(engine, "nia.nurse@nhs.net", trust["nurse"])
    assert request.state is State.AWAITING_LINE_MANAGER
    # The system owner cannot jump the line manager's stage.
    with pytest.raises(access_requests.RequestRefused, match="line manager"):
        access_requests.decide_request(
            engine,
            _who(engine, "so@nhs.net"),
            request.id,
            approve=True,
            reason="",
            now=NOW,
            today=DAY,
        )
    with pytest.raises(RequestError, match="say why"):
        access_requests.decide_request(
            engine,
            _who(engine, "mary.ward@nhs.net"),
            request.id,
            approve=False,
            reason="",
            now=NOW,
            today=DAY,
        )
    rejected = access_requests.decide_request(
        engine,
        _who(engine, "mary.ward@nhs.net"),
        request.id,
        approve=False,
        reason="not qualified yet",
        now=NOW,
        today=DAY,
    )
    assert rejected.state is State.REJECTED and rejected.grant_id is None
    assert access_grants.list_grants(engine, trust["nurse"]) == []
    notify.send_pending(engine, settings)
    assert [m["Subject"] for m in inbox.to("mary.ward@nhs.net")] == [
        f"Access request #{request.id} needs your approval (line manager)"
    ]
    (told,) = inbox.to("nia.nurse@nhs.net")
    assert "rejected" in told["Subject"] and "not qualified yet" in told.get_payload()


def test_the_catalogue_and_dates_are_checked(engine: Engine, trust: dict[str, int]) -> None:
    with pytest.raises(RequestError, match="not in the catalogue"):
        _submit(engine, "mary.ward@nhs.net", trust["nurse"], item="root")
    with pytest.raises(RequestError, match="justification"):
        _submit(engine, "mary.ward@nhs.net", trust["nurse"], justification="  ")
    with pytest.raises(RequestError, match="needs an end date"):
        _submit(engine, "mary.ward@nhs.net", trust["nurse"], item="store")
    with pytest.raises(RequestError, match="at most 30 days"):
        _submit(
            engine,
            "mary.ward@nhs.net",
            trust["nurse"],
            item="store",
            valid_to=DAY + dt.timedelta(days=31),
        )
    with engine.connect() as conn:
        assert conn.scalar(sa.select(sa.func.count()).select_from(s.access_request)) == 0


def test_reminder_past_the_sla_escalation_past_twice_and_the_inboxes(
    engine: Engine,
    trust: dict[str, int],
    smtp: tuple[Inbox, Settings],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    inbox, settings = smtp
    monkeypatch.setattr(notify, "get_settings", lambda: settings)
    request = _submit(engine, "nia.nurse@nhs.net", trust["nurse"])
    waiting = access_requests.inbox(engine, _who(engine, "mary.ward@nhs.net"))
    assert [v.id for v in waiting.waiting] == [request.id]
    assert [v.id for v in waiting.for_reports] == [request.id]
    assert [
        v.id for v in access_requests.inbox(engine, _who(engine, "nia.nurse@nhs.net")).mine
    ] == [request.id]
    # Not yet escalated: not in the identity team's queue.
    assert access_requests.inbox(engine, _who(engine, "it@nhs.net")).waiting == []

    step = access_requests.request_housekeeping
    assert step(engine, DAY, "scheduler", NOW + dt.timedelta(hours=1)) == "requests: 1 emails sent"
    assert "1 reminded" in str(step(engine, DAY, "scheduler", NOW + dt.timedelta(hours=25)))
    assert step(engine, DAY, "scheduler", NOW + dt.timedelta(hours=26)) is None  # once per stage
    assert "1 escalated" in str(step(engine, DAY, "scheduler", NOW + dt.timedelta(hours=49)))
    assert [m["Subject"] for m in inbox.to("mary.ward@nhs.net")] == [
        f"Access request #{request.id} needs your approval (line manager)",
        f"Reminder: access request #{request.id} is waiting for you",
    ]
    (escalation,) = inbox.to("it@nhs.net")
    assert "Escalated" in escalation["Subject"]
    assert [v.id for v in access_requests.inbox(engine, _who(engine, "it@nhs.net")).waiting] == [
        request.id
    ]
    # The identity team may now decide it.
    decided = access_requests.decide_request(
        engine, _who(engine, "it@nhs.net"), request.id, approve=True, reason="", now=NOW, today=DAY
    )
    assert decided.state is State.AWAITING_SYSTEM_OWNER
    # A month undecided: expired.
    assert "1 expired" in str(step(engine, DAY, "scheduler", NOW + dt.timedelta(days=31)))
    assert access_requests.get_request(engine, request.id).state is State.EXPIRED


def test_withdraw_and_the_outbox_without_smtp(engine: Engine, trust: dict[str, int]) -> None:
    request = _submit(engine, "nia.nurse@nhs.net", trust["nurse"])
    with pytest.raises(access_requests.RequestRefused, match="only the requester"):
        access_requests.withdraw(engine, _who(engine, "so@nhs.net"), request.id, now=NOW)
    withdrawn = access_requests.withdraw(
        engine, _who(engine, "nia.nurse@nhs.net"), request.id, now=NOW
    )
    assert withdrawn.state is State.WITHDRAWN
    with pytest.raises(RequestError, match="already withdrawn"):
        access_requests.withdraw(engine, _who(engine, "nia.nurse@nhs.net"), request.id, now=NOW)
    # No SMTP host: the message is logged and kept.
    report = notify.send_pending(engine, Settings(smtp_host=None))
    assert report.logged == 1
    with engine.connect() as conn:
        assert list(conn.scalars(sa.select(s.notification.c.status))) == ["logged"]


def test_a_line_manager_only_item_asked_by_the_line_manager_goes_to_the_identity_team(
    engine: Engine, trust: dict[str, int], smtp: tuple[Inbox, Settings]
) -> None:
    inbox, settings = smtp
    request = _submit(
        engine,
        "mary.ward@nhs.net",
        trust["nurse"],
        item="store",
        valid_to=DAY + dt.timedelta(days=7),
    )
    assert request.state is State.AWAITING_LINE_MANAGER and request.decisions == ()
    assert access_requests.inbox(engine, _who(engine, "mary.ward@nhs.net")).waiting == []
    team = access_requests.inbox(engine, _who(engine, "it@nhs.net"))
    assert [v.id for v in team.waiting] == [request.id]
    notify.send_pending(engine, settings)
    assert [m["To"] for m in inbox.messages] == ["it@nhs.net"]
    done = access_requests.decide_request(
        engine, _who(engine, "it@nhs.net"), request.id, approve=True, reason="", now=NOW, today=DAY
    )
    assert done.state is State.APPROVED
    (grant,) = access_grants.list_grants(engine, trust["nurse"])
    assert (grant.requested_by, grant.approved_by, grant.valid_to) == (
        "mary.ward@nhs.net",
        "it@nhs.net",
        DAY + dt.timedelta(days=7),
    )


def test_an_unreachable_smtp_server_keeps_the_messages_for_the_next_tick(
    engine: Engine, trust: dict[str, int], smtp: tuple[Inbox, Settings]
) -> None:
    inbox, settings = smtp
    _submit(engine, "nia.nurse@nhs.net", trust["nurse"])
    down = Settings(smtp_host="127.0.0.1", smtp_port=free_port())  # nothing listens there
    assert notify.send_pending(engine, down).failed == 1
    with engine.connect() as conn:
        row = conn.execute(sa.select(s.notification)).one()
    assert (row.status, row.attempts) == ("pending", 1)
    assert "unreachable" in row.last_error
    assert notify.send_pending(engine, settings).sent == 1
    assert [m["To"] for m in inbox.messages] == ["mary.ward@nhs.net"]


def test_the_scheduler_runs_the_request_step() -> None:
    from pasa.service import scheduler

    assert access_requests.request_housekeeping in scheduler.PRE_STEPS
