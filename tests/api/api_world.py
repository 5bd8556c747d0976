"""A small two-organisation world for the REST API, and an app for every kind of caller.

RXL is "our" organisation, RYJ the other one. In RXL a line manager manages one member of
staff; RYJ has one person. Users are signed in by a test-only dependency override that
reads ``X-Test-Subject`` (never in ``src``); tokens are real API tokens.
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from fastapi import FastAPI, Request
from sqlalchemy.engine import Engine

from pasa.policy.document import parse_policy
from pasa.service import access
from pasa.store import schema as s
from pasa.store.policy_repo import save_policy
from pasa.web.api.problems import install
from pasa.web.app import create_app
from pasa.web.security import current_principal
from support.hub_world import add_organisation, add_position, add_staff

NOW = dt.datetime(2026, 1, 5, 9, 0, tzinfo=dt.UTC)
START = dt.date(2020, 1, 1)
OWN, OTHER = "RXL", "RYJ"

POLICY = """
version: 1
targets:
  - key: ad
    name: Active Directory
    connector: memory
  - key: door
    name: Door access
    connector: memory
"""

USERS = {
    "platform_admin": "pa@nhs.net",
    "org_admin": "oa@nhs.net",
    "system_owner": "so@nhs.net",
    "line_manager": "lm@nhs.net",
    "staff": "staff@nhs.net",
    "auditor": "au@nhs.net",
}
TOKENS = ("api:read", "api:write")
ROLES = (*USERS, *TOKENS)
TEST_SUBJECT = "X-Test-Subject"


@dataclass
class World:
    engine: Engine
    orgs: dict[str, int] = field(default_factory=dict)
    positions: dict[str, int] = field(default_factory=dict)
    # The person a cell is about in each organisation: RXL staff, RYJ person.
    people: dict[str, int] = field(default_factory=dict)
    manager: int = 0
    targets: dict[str, int] = field(default_factory=dict)
    accounts: dict[str, int] = field(default_factory=dict)
    tokens: dict[str, str] = field(default_factory=dict)
    _seq: Iterator[int] = field(default_factory=lambda: itertools.count(1))

    def headers(self, role: str) -> dict[str, str]:
        if role in TOKENS:
            return {"Authorization": f"Bearer {self.tokens[role]}"}
        return {TEST_SUBJECT: USERS[role]}

    # --- factories: a fresh object per use, so every state change starts from the same state

    def operation(self, org: str, status: str = "parked", target: str = "ad") -> int:
        n = next(self._seq)
        with self.engine.begin() as conn:
            return int(
                conn.execute(
                    s.operation.insert()
                    .values(
                        idempotency_key=f"test-{n}-{org}",
                        plan_id="plan-1",
                        target_id=self.targets[target],
                        person_id=self.people[org],
                        account_id=self.accounts[org],
                        kind="add_membership",
                        username=f"user{org.lower()}",
                        payload={"kind": "group", "value": "staff"},
                        reasons=[{"rule": "everyone"}],
                        summary=f"add {org} to staff",
                        status=status,
                        attempts=3 if status == "parked" else 0,
                        last_error="target down" if status == "parked" else None,
                        created_at=NOW + dt.timedelta(seconds=n),
                    )
                    .returning(s.operation.c.id)
                ).scalar_one()
            )

    def task(self, org: str) -> int:
        op = self.operation(org, status="waiting_manual")
        with self.engine.begin() as conn:
            return int(
                conn.execute(
                    s.manual_task.insert()
                    .values(
                        operation_id=op,
                        target_id=self.targets["ad"],
                        assignee="service desk",
                        instructions="Add them to the staff group",
                        status="open",
                        created_at=NOW,
                        due_at=NOW + dt.timedelta(days=1),
                    )
                    .returning(s.manual_task.c.id)
                ).scalar_one()
            )

    def grant(self, org: str) -> int:
        from pasa.service.access_grants import add_grant

        return add_grant(
            self.engine,
            person_id=self.people[org],
            target="ad",
            kind="group",
            value="research",
            valid_from=START,
            valid_to=None,
            justification="research project",
            requested_by="requester@nhs.net",
            approved_by="approver@nhs.net",
        )

    def held_import(self, org: str) -> int:
        with self.engine.begin() as conn:
            import_id = conn.execute(
                s.hr_import.insert()
                .values(
                    source="esr-extract",
                    filename=f"{org}.csv",
                    sha256="0" * 64,
                    as_of=START,
                    status="held",
                    started_at=NOW,
                    guard_threshold=0.1,
                    guard_reason="would end 50% of active assignments",
                    actor="hr",
                    rows_total=3,
                    rows_rejected=1,
                )
                .returning(s.hr_import.c.id)
            ).scalar_one()
            conn.execute(
                s.hr_event.insert().values(
                    import_id=import_id,
                    organisation_id=self.orgs[org],
                    assignment_number=f"{org}-9",  # no such assignment: approving ends nothing
                    person_id=self.people[org],
                    kind="ended",
                    effective_date=START,
                    state="held",
                    recorded_at=NOW,
                )
            )
            conn.execute(
                s.hr_quarantine.insert(),
                [
                    {
                        "import_id": import_id,
                        "row_number": row,
                        "severity": "rejected",
                        "field": "NI_Number",
                        "reason": "not a National Insurance number",
                        "value": "XX",
                        "assignment_number": f"{org}-{row}",
                    }
                    for row in (2, 3, 4)
                ],
            )
        return int(import_id)


def _org(conn: sa.Connection, world: World, ods: str) -> None:
    world.orgs[ods] = add_organisation(conn, ods, at=NOW)
    world.positions[ods] = add_position(
        conn, world.orgs[ods], number=f"{ods}-P1", department=("D1", "Ward 1", "CC1")
    )


def add_person(
    conn: sa.Connection,
    world: World,
    ods: str,
    first: str,
    last: str,
    number: str,
    *,
    email: str | None = None,
    supervisor: str | None = None,
) -> int:
    return add_staff(
        conn,
        world.orgs[ods],
        world.positions[ods],
        first,
        last,
        number,
        start=START,
        at=NOW,
        email=email,
        supervisor=supervisor,
    )


def build_world(engine: Engine) -> World:
    world = World(engine)
    with engine.begin() as conn:
        for ods in (OWN, OTHER):
            _org(conn, world, ods)
        world.manager = add_person(
            conn, world, OWN, "Lena", "Manager", f"{OWN}-M", email=USERS["line_manager"]
        )
        world.people[OWN] = add_person(
            conn,
            world,
            OWN,
            "Sam",
            "Staff",
            f"{OWN}-1",
            email=USERS["staff"],
            supervisor=f"{OWN}-M",
        )
        world.people[OTHER] = add_person(conn, world, OTHER, "Olly", "Other", f"{OTHER}-1")
        save_policy(conn, parse_policy(POLICY, "test.yaml"), source="test.yaml", actor="test")
        world.targets = {
            key: int(i) for key, i in conn.execute(sa.select(s.target.c.key, s.target.c.id))
        }
        for ods in (OWN, OTHER):
            world.accounts[ods] = int(
                conn.execute(
                    s.account.insert()
                    .values(
                        target_id=world.targets["ad"],
                        person_id=world.people[ods],
                        username=f"user{ods.lower()}",
                        status="enabled",
                        attributes={},
                        created_at=NOW,
                        updated_at=NOW,
                    )
                    .returning(s.account.c.id)
                ).scalar_one()
            )
    access.grant_role(
        engine, USERS["platform_admin"], "platform_admin", organisation=None, actor="t"
    )
    access.grant_role(engine, USERS["org_admin"], "org_admin", organisation=OWN, actor="t")
    access.grant_role(engine, USERS["auditor"], "auditor", organisation=OWN, actor="t")
    access.grant_role(
        engine, USERS["system_owner"], "system_owner", organisation=OWN, target="ad", actor="t"
    )
    for scope in TOKENS:
        world.tokens[scope] = access.create_token(
            engine, organisation=OWN, scopes=[scope], name=scope, actor="t"
        ).secret
    return world


def build_app(engine: Engine) -> FastAPI:
    """The real application, with problem handlers and test-only sign-in by header."""
    app = create_app(engine)
    install(app)

    def principal_for_tests(request: Request) -> Any:
        subject = request.headers.get(TEST_SUBJECT)
        if subject:
            return access.user_principal(engine, subject)
        return current_principal(request)

    app.dependency_overrides[current_principal] = principal_for_tests
    return app
