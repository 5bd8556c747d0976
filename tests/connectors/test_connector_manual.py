"""Manual fulfilment: the connector signals, the sentences are clear, tasks close cleanly."""

from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from pasa.connectors import build_connector
from pasa.connectors.base import ManualFulfilment
from pasa.connectors.manual import (
    ManualConnector,
    ManualTaskError,
    cancel_manual_task,
    complete_manual_task,
    describe_task,
)
from pasa.domain.errors import ConfigurationError
from pasa.domain.errors import NotFoundError as PasaNotFoundError
from pasa.domain.operations import OperationKind
from pasa.store.schema import account, manual_task, operation, person, target

JANE = {"first_name": "Jane", "last_name": "Smith", "employee_number": "12345678"}
NOW = dt.datetime(2026, 8, 5, 9, 0, tzinfo=dt.UTC)


@pytest.mark.parametrize(
    ("method", "args"),
    [
        ("create", ("jsmith", JANE)),
        ("update", ("jsmith", {"job_title": "Lead"})),
        ("rename", ("jsmith", "jsmith2")),
        ("enable", ("jsmith",)),
        ("disable", ("jsmith",)),
        ("delete", ("jsmith",)),
        ("add_member", ("jsmith", "group", "reporters")),
        ("remove_member", ("jsmith", "group", "reporters")),
    ],
)
def test_every_change_is_signalled_as_manual(method: str, args: tuple[object, ...]) -> None:
    connector = ManualConnector("PACS", assignee="pacs-admins", sla_hours=4)
    with pytest.raises(ManualFulfilment) as signal:
        getattr(connector, method)(*args)
    assert (signal.value.system, signal.value.assignee, signal.value.sla_hours) == (
        "PACS",
        "pacs-admins",
        4,
    )


def test_manual_system_cannot_be_read() -> None:
    connector = ManualConnector("PACS")
    assert connector.read("jsmith") is None
    assert list(connector.list()) == []


@pytest.mark.parametrize(
    ("kind", "payload", "expected"),
    [
        (
            OperationKind.CREATE_ACCOUNT,
            {"attributes": JANE},
            "Create an account for Jane Smith (employee 12345678) in PACS with username "
            "'jsmith'; record the username you created if it differs.",
        ),
        (
            OperationKind.CREATE_ACCOUNT,
            {"attributes": JANE, "enabled": False},
            "Create an account for Jane Smith (employee 12345678) in PACS with username "
            "'jsmith' (leave it disabled until the start date); record the username you "
            "created if it differs.",
        ),
        (
            OperationKind.UPDATE_ATTRIBUTES,
            {"changes": {"job_title": ["Radiographer", "Lead Radiographer"]}},
            "Update the account 'jsmith' of Jane Smith (employee 12345678) in PACS: set "
            "job_title to 'Lead Radiographer'.",
        ),
        (
            OperationKind.ADD_MEMBERSHIP,
            {"kind": "app_role", "value": "Reporter"},
            "Give the account 'jsmith' of Jane Smith (employee 12345678) the app role "
            "'Reporter' in PACS.",
        ),
        (
            OperationKind.REMOVE_MEMBERSHIP,
            {"kind": "group", "value": "Radiology"},
            "Remove the group 'Radiology' from the account 'jsmith' of Jane Smith (employee "
            "12345678) in PACS.",
        ),
        (
            OperationKind.DISABLE,
            {},
            "Disable the account 'jsmith' of Jane Smith (employee 12345678) in PACS.",
        ),
        (
            OperationKind.DELETE,
            {},
            "Delete the account 'jsmith' of Jane Smith (employee 12345678) in PACS.",
        ),
    ],
)
def test_instructions_are_one_clear_sentence(
    kind: OperationKind, payload: dict[str, object], expected: str
) -> None:
    sentence = describe_task(
        kind, system="PACS", username="jsmith", payload=payload, attributes=JANE
    )
    assert sentence == expected


def test_registry_builds_manual_connector_from_target_settings() -> None:
    connector = build_connector(
        "pacs", "manual", {"system": "PACS", "assignee": "pacs-admins", "sla_hours": 8}
    )
    assert isinstance(connector, ManualConnector)
    assert (connector.system, connector.assignee, connector.sla_hours) == (
        "PACS",
        "pacs-admins",
        8.0,
    )
    with pytest.raises(ConfigurationError, match="sla_hours must be a number"):
        build_connector("pacs", "manual", {"sla_hours": "soon"})
    with pytest.raises(ConfigurationError, match="unknown setting"):
        build_connector("pacs", "manual", {"asignee": "typo"})


def _task(engine: Engine, *, username: str = "jsmith") -> int:
    """One open manual task for a create operation (as the worker leaves it)."""
    with engine.begin() as conn:
        for pid in (1, 2):
            conn.execute(
                person.insert().values(
                    id=pid, uid=f"uid-{pid}", first_name="Jane", last_name="Smith",
                    created_at=NOW, updated_at=NOW,
                )
            )  # fmt: skip
        tid = conn.execute(
            target.insert()
            .values(key="pacs", name="PACS", connector="manual", settings={},
                    username_template="{first_initial}{last_name}")
            .returning(target.c.id)
        ).scalar_one()  # fmt: skip
        for pid, uname in ((1, username), (2, "taken")):
            conn.execute(
                account.insert().values(
                    target_id=tid, person_id=pid, username=uname, status="enabled",
                    attributes=JANE, created_at=NOW, updated_at=NOW,
                )
            )  # fmt: skip
        acct = conn.execute(sa.select(account.c.id).where(account.c.person_id == 1)).scalar()
        op_id = conn.execute(
            operation.insert()
            .values(
                idempotency_key="k1", plan_id="p", target_id=tid, person_id=1, account_id=acct,
                kind="create_account", username=username, payload={"attributes": JANE},
                reasons=[], summary="create", status="waiting_manual", created_at=NOW,
            )
            .returning(operation.c.id)
        ).scalar_one()  # fmt: skip
        return int(
            conn.execute(
                manual_task.insert()
                .values(
                    operation_id=op_id, target_id=tid, assignee="pacs-admins",
                    instructions="Create ...", status="open", created_at=NOW,
                    due_at=NOW + dt.timedelta(hours=8),
                )
                .returning(manual_task.c.id)
            ).scalar_one()
        )  # fmt: skip


def test_completing_with_a_username_taken_by_another_account_is_refused(engine: Engine) -> None:
    task_id = _task(engine)
    with pytest.raises(ManualTaskError, match="'taken' is already recorded"):
        complete_manual_task(engine, task_id, actor="admin", completion={"username": "taken"})
    with engine.connect() as conn:
        assert conn.execute(sa.select(manual_task.c.status)).scalar() == "open"
        assert conn.execute(sa.select(operation.c.status)).scalar() == "waiting_manual"
    complete_manual_task(engine, task_id, actor="admin", completion={}, now=lambda: NOW)
    with engine.connect() as conn:
        task = conn.execute(sa.select(manual_task)).one()
        assert conn.execute(sa.select(operation.c.status)).scalar() == "succeeded"
    assert (task.status, task.completed_by) == ("done", "admin")


def test_cancel_closes_task_and_operation(engine: Engine) -> None:
    task_id = _task(engine)
    cancel_manual_task(engine, task_id, actor="admin", reason="starter withdrew")
    with engine.connect() as conn:
        assert conn.execute(sa.select(manual_task.c.status)).scalar() == "cancelled"
        assert conn.execute(sa.select(operation.c.status)).scalar() == "cancelled"
    with pytest.raises(ManualTaskError, match="already cancelled"):
        cancel_manual_task(engine, task_id, actor="admin")


def test_unknown_task_is_a_clear_error(engine: Engine) -> None:
    with pytest.raises(PasaNotFoundError, match="manual task 42 does not exist"):
        complete_manual_task(engine, 42, actor="admin", completion={})
