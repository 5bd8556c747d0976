"""Day-one credential handover: prepare, reveal once, redeem once; secrets never stored."""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from typing import Any

import pytest
import sqlalchemy as sa
import structlog
from fastapi.testclient import TestClient
from hub_helpers import NOW, A, add_person, load_policy
from sqlalchemy.engine import Connection, Engine
from structlog.testing import capture_logs
from typer.testing import CliRunner

from pasa.audit.log import verify
from pasa.cli.main import app as cli
from pasa.clock import FixedClock
from pasa.connectors.base import TransientError
from pasa.connectors.memory import MemoryConnector
from pasa.service.handover import (
    HandoverError,
    credential_handovers,
    list_handovers,
    password_problems,
    prepare_handovers,
    redeem,
    reveal,
    revoke,
)
from pasa.store import schema as s
from pasa.web.app import create_app

D = dt.date
DAY = D(2026, 11, 24)
GOOD = "Plum-tree orchard 42"


def _account(conn: Connection, target: str, person_id: int, username: str, op: str) -> int:
    target_id = conn.scalar(sa.select(s.target.c.id).where(s.target.c.key == target))
    account_id = conn.execute(
        s.account.insert()
        .values(
            target_id=target_id,
            person_id=person_id,
            username=username,
            status="enabled",
            attributes={},
            created_at=NOW,
            updated_at=NOW,
        )
        .returning(s.account.c.id)
    ).scalar_one()
    conn.execute(
        s.operation.insert().values(
            idempotency_key=uuid.uuid4().hex,
            plan_id=str(uuid.uuid4()),
            target_id=target_id,
            person_id=person_id,
            account_id=account_id,
            kind="create_account",
            username=username,
            payload={},
            reasons=[],
            summary="create",
            status=op,
            created_at=NOW,
        )
    )
    return int(account_id)


@pytest.fixture
def world(engine: Engine) -> dict[str, Any]:
    with engine.begin() as conn:
        load_policy(
            conn,
            [
                {
                    "key": "ad",
                    "name": "Directory",
                    "connector": "memory",
                    "lifecycle": {"credential_handover": True},
                },
                {"key": "app", "name": "App", "connector": "memory"},
            ],
        )
        manager = add_person(conn, "Mary", "Manager", A("5001", D(2015, 1, 1)))
        starter = add_person(conn, "Sam", "Starter", A("5002", D(2026, 11, 24), supervisor="5001"))
        _account(conn, "ad", starter, "sstarter", "succeeded")
        _account(conn, "app", starter, "sstarter", "succeeded")
        _account(conn, "ad", manager, "mmanager", "pending")
    directory = MemoryConnector("ad")
    directory.create("sstarter", {"employee_number": "5002"})
    return {"manager": manager, "starter": starter, "ad": directory}


def _clock() -> FixedClock:
    return FixedClock(dt.datetime(2026, 11, 24, 9, 0, tzinfo=dt.UTC))


def test_prepare_once_per_account_with_the_line_manager(
    engine: Engine, world: dict[str, Any]
) -> None:
    assert prepare_handovers(engine, DAY, actor="t") == "handover: 1 activation codes prepared"
    assert credential_handovers(engine, DAY, "scheduler") is None  # idempotent
    rows = list_handovers(engine)
    assert [(r.person, r.target, r.username, r.manager, r.status) for r in rows] == [
        ("Sam Starter", "ad", "sstarter", "Mary Manager", "waiting")
    ]
    with engine.connect() as conn:
        audit = conn.execute(
            sa.select(s.audit_log).where(s.audit_log.c.action == "handover.prepared")
        ).one()
        assert audit.details["manager_person_id"] == world["manager"]
        assert verify(conn).ok


def test_reveal_once_then_redeem_sets_the_password(engine: Engine, world: dict[str, Any]) -> None:
    prepare_handovers(engine, DAY, actor="t")
    clock = _clock()
    (row,) = list_handovers(engine)
    revealed = reveal(engine, row.id, actor="mary", clock=clock)
    assert revealed.code.startswith(f"{row.id}-") and len(revealed.code) > 40
    assert revealed.activation_path == "/activate"
    assert revealed.expires_at == clock.now() + dt.timedelta(hours=72)
    with pytest.raises(HandoverError, match=r"already revealed by mary at .*pasa handover revoke"):
        reveal(engine, row.id, actor="mary", clock=clock)

    username = redeem(engine, revealed.code, GOOD, connectors={"ad": world["ad"]}, clock=clock)
    assert username == "sstarter"
    assert world["ad"].check_password("sstarter", GOOD)
    assert list_handovers(engine)[0].status == "redeemed"
    with pytest.raises(HandoverError, match="already been used"):
        redeem(engine, revealed.code, GOOD, connectors={"ad": world["ad"]}, clock=clock)


def test_password_rules() -> None:
    names = ["Sam", "Starter", "", ""]
    assert password_problems(GOOD, "sstarter", names) == []
    assert password_problems("short", "sstarter", names) == [
        "it must be at least 12 characters long"
    ]
    assert password_problems("my SSTARTER pass", "sstarter", names) == [
        "it must not contain your username",
        "it must not contain your name",
    ]
    assert password_problems("hello sam, welcome", "sstarter", names) == [
        "it must not contain your name"
    ]


def test_refusals_lock_expiry_and_revoke(engine: Engine, world: dict[str, Any]) -> None:
    prepare_handovers(engine, DAY, actor="t")
    clock = _clock()
    first = list_handovers(engine)[0].id
    code = reveal(engine, first, actor="mary", clock=clock).code
    connectors = {"ad": world["ad"]}
    with pytest.raises(HandoverError, match="cannot be used: it must not contain your name"):
        redeem(engine, code, "Starter-of-the-year!", connectors=connectors, clock=clock)
    with pytest.raises(HandoverError, match="not valid"):
        redeem(engine, "nonsense", GOOD, connectors=connectors, clock=clock)
    world["ad"].fail_with = TransientError("directory busy")
    with pytest.raises(HandoverError, match="still works"):
        redeem(engine, code, GOOD, connectors=connectors, clock=clock)
    world["ad"].fail_with = None
    for attempt in range(5):
        with pytest.raises(HandoverError, match="withdrawn" if attempt == 4 else "not valid"):
            redeem(engine, f"{first}-wrong{attempt}", GOOD, connectors=connectors, clock=clock)
    with pytest.raises(HandoverError, match="withdrawn"):
        redeem(engine, code, GOOD, connectors=connectors, clock=clock)  # locked now

    second = revoke(engine, first, actor="identity")
    statuses = {r.id: r.status for r in list_handovers(engine)}
    assert statuses == {first: "revoked", second: "waiting"}
    code2 = reveal(engine, second, actor="mary", clock=clock).code
    clock.advance(dt.timedelta(hours=73))
    with pytest.raises(HandoverError, match="expired"):
        redeem(engine, code2, GOOD, connectors=connectors, clock=clock)
    assert {r.id: r.status for r in list_handovers(engine)}[second] == "expired"
    third = revoke(engine, second, actor="identity")
    code3 = reveal(engine, third, actor="mary", clock=clock).code
    assert redeem(engine, code3, GOOD, connectors=connectors, clock=clock) == "sstarter"
    with pytest.raises(HandoverError, match="already been redeemed"):
        revoke(engine, third, actor="identity")


def test_no_secret_in_database_audit_or_logs(
    engine: Engine, world: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    clock = _clock()
    bad_password = "Sam-Starter-is-me"
    with capture_logs() as events:
        prepare_handovers(engine, DAY, actor="t")
        handover_id = list_handovers(engine)[0].id
        code = reveal(engine, handover_id, actor="mary", clock=clock).code
        with pytest.raises(HandoverError) as refused:
            redeem(engine, code, bad_password, connectors={"ad": world["ad"]}, clock=clock)
        with pytest.raises(HandoverError) as wrong:
            redeem(engine, code + "x", GOOD, connectors={"ad": world["ad"]}, clock=clock)
        world["ad"].fail_with = TransientError(f"echoing {GOOD} back")  # a careless target
        with pytest.raises(HandoverError):
            redeem(engine, code, GOOD, connectors={"ad": world["ad"]}, clock=clock)
        world["ad"].fail_with = None
        redeem(engine, code, GOOD, connectors={"ad": world["ad"]}, clock=clock)
        client = TestClient(create_app(engine, connectors={"ad": world["ad"]}, clock=clock))
        client.post("/activate", data={"code": code, "password": GOOD, "confirm": GOOD})
    secrets_ = [code, code.split("-", 1)[1], GOOD, bad_password]
    for text in (str(refused.value), str(wrong.value)):
        assert not any(x in text for x in secrets_)
    logged = repr(events) + caplog.text + repr(structlog.get_config())
    with engine.connect() as conn:
        dumped = repr(conn.execute(sa.select(s.audit_log)).all())
        dumped += repr(conn.execute(sa.select(s.credential_handover)).all())
        hashes = conn.execute(sa.select(s.credential_handover.c.token_hash)).scalars().all()
        assert verify(conn).ok
    assert any(events) and "handover.redeemed" in repr(events)
    for secret in secrets_:
        assert secret not in logged
        assert secret not in dumped
    assert len(hashes) == 1 and hashes[0] is not None and len(hashes[0]) == 64


def test_activation_page(engine: Engine, world: dict[str, Any]) -> None:
    prepare_handovers(engine, DAY, actor="t")
    clock = _clock()
    code = reveal(engine, list_handovers(engine)[0].id, actor="mary", clock=clock).code
    client = TestClient(create_app(engine, connectors={"ad": world["ad"]}, clock=clock))
    page = client.get("/activate")
    assert page.status_code == 200
    assert "method='post'" in page.text and "type='password'" in page.text

    mismatch = client.post("/activate", data={"code": code, "password": GOOD, "confirm": "x"})
    assert mismatch.status_code == 400 and "not the same" in mismatch.text
    weak = client.post("/activate", data={"code": code, "password": "short", "confirm": "short"})
    assert weak.status_code == 400 and "at least 12 characters" in weak.text
    wrong = client.post("/activate", data={"code": "1-nope", "password": GOOD, "confirm": GOOD})
    assert wrong.status_code == 400 and "not valid" in wrong.text
    for response in (mismatch, weak, wrong):
        assert not any(x in response.text for x in (code, GOOD, "1-nope"))

    done = client.post("/activate", data={"code": code, "password": GOOD, "confirm": GOOD})
    assert done.status_code == 200 and "sstarter" in done.text
    assert world["ad"].check_password("sstarter", GOOD)


def test_cli_list_reveal_revoke(
    engine: Engine, world: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    prepare_handovers(engine, DAY, actor="t")
    monkeypatch.setattr("pasa.cli.main.open_engine", lambda **_: engine)
    runner = CliRunner()
    listed = runner.invoke(cli, ["handover", "list"])
    assert listed.exit_code == 0 and "sstarter" in listed.output and "waiting" in listed.output
    shown = runner.invoke(cli, ["handover", "reveal", "1", "--actor", "mary"])
    assert shown.exit_code == 0, shown.output
    assert "will not be shown again" in shown.output
    with engine.connect() as conn:
        row = conn.execute(sa.select(s.credential_handover)).one()
    assert row.revealed_by == "mary"
    again = runner.invoke(cli, ["handover", "reveal", "1", "--actor", "mary"])
    assert isinstance(again.exception, HandoverError)
    revoked = runner.invoke(cli, ["handover", "revoke", "1"])
    assert revoked.exit_code == 0 and "handover 2 is waiting" in revoked.output
