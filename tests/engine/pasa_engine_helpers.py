"""Helpers for ledger and worker tests: targets, people, small plans and a fake clock."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from pasa.connectors.kit import sample_attributes
from pasa.domain.grants import Reason
from pasa.domain.operations import OperationKind, PlannedOperation
from pasa.engine.ledger import RecordedPlan, record_plan
from pasa.store.schema import person, target

T0 = dt.datetime(2026, 8, 5, 7, 0, tzinfo=dt.UTC)
REASON = Reason("rule", "radiographers", "pacs-user", "RXX", "12345678-1")


class FakeClock:
    def __init__(self, start: dt.datetime = T0) -> None:
        self.at = start

    def __call__(self) -> dt.datetime:
        return self.at

    def advance(self, **delta: float) -> None:
        self.at += dt.timedelta(**delta)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def add_target(
    engine: Engine,
    key: str,
    connector: str = "memory",
    settings: dict[str, Any] | None = None,
    *,
    paused: bool = False,
) -> int:
    with engine.begin() as conn:
        return int(
            conn.execute(
                target.insert()
                .values(
                    key=key,
                    name=key.upper(),
                    connector=connector,
                    settings=settings or {},
                    username_template="{first_initial}{last_name}",
                    paused=paused,
                )
                .returning(target.c.id)
            ).scalar_one()
        )


def add_people(engine: Engine, count: int) -> list[int]:
    with engine.begin() as conn:
        conn.execute(
            person.insert(),
            [
                {
                    "id": i,
                    "uid": f"00000000-0000-0000-0000-{i:012d}",
                    "first_name": f"First{i}",
                    "last_name": f"Last{i}",
                    "created_at": T0,
                    "updated_at": T0,
                }
                for i in range(1, count + 1)
            ],
        )
    return list(range(1, count + 1))


def employee(person_id: int) -> str:
    return f"{10000000 + person_id}"


def joiner(
    person_id: int, tkey: str, username: str, groups: Sequence[str] = ("staff",), **attrs: Any
) -> list[PlannedOperation]:
    """Create an account and add its memberships (what the planner emits for a starter)."""
    attributes = sample_attributes(
        employee(person_id),
        first_name=f"First{person_id}",
        last_name=f"Last{person_id}",
        display_name=f"First{person_id} Last{person_id}",
        **attrs,
    )
    ops = [
        PlannedOperation(
            OperationKind.CREATE_ACCOUNT,
            person_id,
            tkey,
            username,
            {"attributes": attributes},
            (REASON,),
            f"create {username} in {tkey}",
        )
    ]
    ops += [
        PlannedOperation(
            OperationKind.ADD_MEMBERSHIP,
            person_id,
            tkey,
            username,
            {"kind": "group", "value": g},
            (REASON,),
            f"add {username} to {g}",
        )
        for g in groups
    ]
    return ops


def op(
    op_kind: OperationKind, person_id: int, tkey: str, username: str, **payload: Any
) -> PlannedOperation:
    return PlannedOperation(op_kind, person_id, tkey, username, payload, (REASON,))


RecordFn = Callable[[Sequence[PlannedOperation]], RecordedPlan]


@pytest.fixture
def record(engine: Engine, clock: FakeClock) -> RecordFn:
    counter = iter(range(1, 10_000))

    def _record(ops: Sequence[PlannedOperation]) -> RecordedPlan:
        with engine.begin() as conn:
            return record_plan(
                conn, ops, plan_id=f"plan-{next(counter)}", actor="tester", now=clock()
            )

    return _record


def scalar(engine: Engine, query: sa.Select[Any]) -> Any:
    with engine.connect() as conn:
        return conn.execute(query).scalar()
