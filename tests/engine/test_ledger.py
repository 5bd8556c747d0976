"""The ledger records operations and PASA's recorded state in the caller's transaction."""

from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa
from pasa_engine_helpers import REASON, RecordFn, add_people, add_target, joiner, op, scalar
from sqlalchemy.engine import Engine

from pasa.audit import log as audit
from pasa.domain.errors import ConfigurationError
from pasa.domain.errors import NotFoundError as PasaNotFoundError
from pasa.domain.grants import (
    AccountAttributes,
    DesiredAccount,
    DesiredGrant,
    DesiredState,
    EntitlementKind,
)
from pasa.domain.operations import OperationKind, OperationStatus
from pasa.engine import ledger
from pasa.planning.plan import plan
from pasa.policy.document import TargetSpec
from pasa.store.hub import load_recorded, taken_usernames
from pasa.store.schema import account, account_grant, audit_log, operation


def _accounts(engine: Engine) -> dict[str, tuple[str, dict[str, object]]]:
    with engine.connect() as conn:
        rows = conn.execute(sa.select(account.c.username, account.c.status, account.c.attributes))
        return {r.username: (r.status, r.attributes) for r in rows}


def _grants(engine: Engine) -> set[tuple[str, str, str]]:
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(account.c.username, account_grant.c.kind, account_grant.c.value).join(
                account, account.c.id == account_grant.c.account_id
            )
        )
        return {(r[0], r[1], r[2]) for r in rows}


def test_plan_records_operations_and_recorded_state(engine: Engine, record: RecordFn) -> None:
    add_target(engine, "ad")
    add_target(engine, "pacs")
    add_people(engine, 2)
    plan = [
        *joiner(1, "ad", "first1", ["staff", "radiology"]),
        *joiner(2, "ad", "first2"),
        *joiner(1, "pacs", "f1last", []),
    ]
    recorded = record(plan)
    assert recorded.operations == 6
    assert recorded.counts == {
        "ad": {"add_membership": 3, "create_account": 2},
        "pacs": {"create_account": 1},
    }
    with engine.connect() as conn:
        ops = ledger.list_operations(conn)
        entry = conn.execute(sa.select(audit_log)).one()
    assert [o.status for o in ops] == ["pending"] * 6
    assert len({o.id for o in ops}) == 6
    assert all(o.account_id is not None for o in ops)
    assert ops[0].reasons[0]["rule"] == "radiographers"
    assert ops[1].payload == {"kind": "group", "value": "staff"}
    assert entry.action == "plan.apply" and entry.details["operations"] == 6
    accounts = _accounts(engine)
    assert accounts["first1"][0] == "enabled"
    assert accounts["first1"][1]["employee_number"] == "10000001"
    assert _grants(engine) == {
        ("first1", "group", "staff"),
        ("first1", "group", "radiology"),
        ("first2", "group", "staff"),
    }


def test_later_plans_change_recorded_state(engine: Engine, record: RecordFn) -> None:
    add_target(engine, "ad")
    add_people(engine, 3)
    record(
        [*joiner(1, "ad", "a1", ["staff", "old"]), *joiner(2, "ad", "a2"), *joiner(3, "ad", "a3")]
    )
    record(
        [
            op(
                OperationKind.UPDATE_ATTRIBUTES,
                1,
                "ad",
                "a1",
                changes={"job_title": ["Radiographer", "Lead"]},
            ),
            op(OperationKind.REMOVE_MEMBERSHIP, 1, "ad", "a1", kind="group", value="old"),
            op(OperationKind.ADD_MEMBERSHIP, 1, "ad", "a1", kind="group", value="new"),
            op(OperationKind.DISABLE, 2, "ad", "a2"),
            op(OperationKind.DELETE, 3, "ad", "a3"),
        ]
    )
    accounts = _accounts(engine)
    assert accounts["a1"][1]["job_title"] == "Lead"
    assert accounts["a1"][1]["first_name"] == "First1"
    assert accounts["a2"][0] == "disabled"
    assert accounts["a3"][0] == "deleted"
    assert ("a1", "group", "old") not in _grants(engine)
    assert ("a1", "group", "new") in _grants(engine)
    # A rehire re-creates on the same account row (one account per person per target).
    record(joiner(3, "ad", "a3b", []))
    accounts = _accounts(engine)
    assert "a3" not in accounts and accounts["a3b"][0] == "enabled"


def test_unknown_target_records_nothing(engine: Engine, record: RecordFn) -> None:
    add_target(engine, "ad")
    add_people(engine, 1)
    with pytest.raises(ConfigurationError, match="not configured"):
        record([*joiner(1, "ad", "a1"), *joiner(1, "nosuch", "a1")])
    assert scalar(engine, sa.select(sa.func.count()).select_from(operation)) == 0
    assert scalar(engine, sa.select(sa.func.count()).select_from(account)) == 0


def test_caller_rollback_loses_both_operations_and_state(engine: Engine) -> None:
    add_target(engine, "ad")
    add_people(engine, 1)
    with engine.connect() as conn, conn.begin() as tx:
        ledger.record_plan(conn, joiner(1, "ad", "a1"), plan_id="p", actor="t")
        tx.rollback()
    assert scalar(engine, sa.select(sa.func.count()).select_from(operation)) == 0
    assert scalar(engine, sa.select(sa.func.count()).select_from(account)) == 0


def test_empty_plan_writes_nothing(engine: Engine, record: RecordFn) -> None:
    assert record([]).operations == 0
    assert scalar(engine, sa.select(sa.func.count()).select_from(audit_log)) == 0


def test_idempotency_key_is_stable_and_distinct(engine: Engine) -> None:
    ops = joiner(1, "ad", "a1", ["x", "y"])
    keys = [ledger.idempotency_key("p", i, o) for i, o in enumerate(ops)]
    assert len(set(keys)) == 3
    assert keys == [ledger.idempotency_key("p", i, o) for i, o in enumerate(ops)]
    assert keys[0] != ledger.idempotency_key("q", 0, ops[0])


def test_large_plan_is_recorded_in_bulk(engine: Engine, record: RecordFn) -> None:
    add_target(engine, "ad")
    add_target(engine, "email")
    people = add_people(engine, 1500)
    plan = [o for p in people for t in ("ad", "email") for o in joiner(p, t, f"u{p}", ["a", "b"])]
    recorded = record(plan)
    assert recorded.operations == 9000
    with engine.connect() as conn:
        assert ledger.pending_counts(conn) == {"ad": 4500, "email": 4500}
        unlinked = conn.execute(
            sa.select(sa.func.count())
            .select_from(operation)
            .where(operation.c.account_id.is_(None))
        ).scalar()
    assert unlinked == 0
    assert scalar(engine, sa.select(sa.func.count()).select_from(account_grant)) == 6000
    with engine.connect() as conn:
        assert audit.verify(conn).ok


def test_list_filter_retry_and_cancel(engine: Engine, record: RecordFn) -> None:
    add_target(engine, "ad")
    add_target(engine, "pacs")
    add_people(engine, 2)
    record([*joiner(1, "ad", "a1"), *joiner(2, "pacs", "p2")])
    with engine.begin() as conn:
        ad_ops = ledger.list_operations(conn, target="ad")
        assert [o.kind for o in ad_ops] == ["create_account", "add_membership"]
        conn.execute(
            operation.update()
            .where(operation.c.id == ad_ops[0].id)
            .values(status="parked", attempts=5, last_error="boom")
        )
        ledger.retry_operation(conn, ad_ops[0].id, "admin")
        again = ledger.get_operation(conn, ad_ops[0].id)
        assert (again.status, again.attempts, again.not_before) == ("pending", 0, None)
        with pytest.raises(ledger.OperationStateError, match="only parked"):
            ledger.retry_operation(conn, ad_ops[0].id, "admin")
        ledger.cancel_operation(conn, ad_ops[1].id, "admin", reason="not needed")
        assert ledger.get_operation(conn, ad_ops[1].id).status == OperationStatus.CANCELLED
        with pytest.raises(ledger.OperationStateError):
            ledger.cancel_operation(conn, ad_ops[1].id, "admin")
        with pytest.raises(PasaNotFoundError):
            ledger.retry_operation(conn, 999_999, "admin")
        assert ledger.status_counts(conn) == {
            "ad": {"cancelled": 1, "pending": 1},
            "pacs": {"pending": 2},
        }
        actions = conn.execute(sa.select(audit_log.c.action).order_by(audit_log.c.seq)).scalars()
        assert list(actions) == ["plan.apply", "operation.retry_requested", "operation.cancelled"]


def test_replanning_after_record_plan_is_empty(engine: Engine, record: RecordFn) -> None:
    """The outbox contract with the planner: recorded state moves with the operations."""
    add_target(engine, "ad")
    add_people(engine, 3)
    specs = {"ad": TargetSpec(key="ad", name="AD", connector="memory")}

    def desired(job: str, groups: dict[int, list[str]]) -> DesiredState:
        accounts = tuple(
            DesiredAccount(
                p, "ad",
                AccountAttributes(f"First{p}", f"Last{p}", f"First{p} Last{p}", None,
                                  f"1000000{p}", "RXX", "Radiology", job, None),
                (REASON,),
            )
            for p in groups
        )  # fmt: skip
        grants = tuple(
            DesiredGrant(p, "ad", EntitlementKind.GROUP, g, (REASON,))
            for p, gs in groups.items()
            for g in gs
        )
        return DesiredState(dt.date(2026, 8, 5), accounts, grants, frozenset({1, 2, 3}))

    def replan(state: DesiredState) -> int:
        with engine.begin() as conn:
            ops = plan(state, load_recorded(conn), specs, taken_usernames(conn)).operations
            if ops:
                ledger.record_plan(conn, ops, plan_id=f"p{len(ops)}", actor="t")
            return len(ops)

    first = desired("Radiographer", {1: ["staff", "rad"], 2: ["staff"], 3: []})
    assert replan(first) > 0
    assert replan(first) == 0
    mover = desired("Lead", {1: ["staff", "lead"], 2: ["staff"]})  # 3 leaves, 1 moves
    assert replan(mover) > 0
    assert replan(mover) == 0
