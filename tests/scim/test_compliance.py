"""The independent SCIM 2.0 compliance checker (scim2-tester) finds no failure.

PASA is served by uvicorn on a free local port in a thread; scim2-tester drives it over
HTTP with an organisation's ``scim`` token, as any SCIM client would.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import httpx2
import pytest
import uvicorn
from scim2_client.engines.httpx2 import SyncSCIMClient
from scim2_tester import Status, check_server
from sqlalchemy.engine import Engine

from pasa.web.app import create_app

from .conftest import add_hr_person, setup_orgs, token


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def served(engine: Engine) -> Iterator[str]:
    setup_orgs(engine)
    port = _free_port()
    server = uvicorn.Server(
        uvicorn.Config(create_app(engine), host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(10)


def test_scim2_tester_reports_no_failures(engine: Engine, served: str) -> None:
    add_hr_person(
        engine,
        "RXL",
        first="Ada",
        last="Lovelace",
        email="ada@nhs.net",
        employee_number="100",
        assignment_number="100-1",
    )
    secret = token(engine, "RXL")
    with httpx2.Client(
        base_url=f"{served}/scim/v2",
        headers={"Authorization": f"Bearer {secret}"},
        timeout=30,
    ) as http:
        results = check_server(SyncSCIMClient(http))
    failures = [r for r in results if r.status in (Status.ERROR, Status.CRITICAL)]
    report = "\n".join(
        f"- {r.resource_type or ''} {r.title}: {r.reason} {r.data!r:.600}" for r in failures
    )
    assert not failures, f"{len(failures)} of {len(results)} checks failed:\n{report}"
    assert sum(r.status is Status.SUCCESS for r in results) > 20
