"""The catalogue of requestable access in the policy document: read and refused clearly."""

from __future__ import annotations

from pathlib import Path

import pytest

from pasa.domain.errors import ConfigurationError
from pasa.domain.grants import EntitlementKind
from pasa.policy.document import load_policy_file, parse_policy

BASE = """
version: 1
targets:
  - {key: ad, name: Directory, connector: memory}
  - {key: doors, name: Doors, connector: memory}
"""
EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "policy.yaml"


def test_an_item_is_read_with_its_defaults() -> None:
    document = parse_policy(
        BASE + "requestable:\n  - {key: store, target: doors, kind: door_zone, value: store}\n",
        "p.yaml",
    )
    item = document.requestable_item("store")
    assert (item.kind, item.approvers, item.max_days, item.sla_hours) == (
        EntitlementKind.DOOR_ZONE,
        ("line_manager",),
        None,
        72,
    )
    assert item.describe() == "door zone store on doors"


@pytest.mark.parametrize(
    ("items", "message"),
    [
        (
            "[{key: x, target: door}]",
            "requestable[0] 'x': unknown target 'door' (known: ad, doors)",
        ),
        ("[{key: x, target: ad, kind: group}]", "requestable[0] 'x': a group item needs the group"),
        ("[{key: x, target: ad, value: GG}]", "an account item (no 'kind') takes no 'value'"),
        (
            "[{key: x, target: ad, approvers: [system_owner, system_owner]}]",
            "approvers repeat a stage: system_owner, system_owner",
        ),
        ("[{key: x, target: ad, approvers: []}]", "approvers"),
        ("[{key: x, target: ad, approvers: [boss]}]", "'line_manager' or 'system_owner'"),
        ("[{key: x, target: ad, max_days: 0}]", "max_days"),
        ("[{key: x, target: ad}, {key: x, target: doors}]", "duplicate key"),
        ("[{key: x, target: ad, approver: [line_manager]}]", "unknown field 'approver'"),
    ],
)
def test_problems_are_named(items: str, message: str) -> None:
    with pytest.raises(ConfigurationError) as error:
        parse_policy(BASE + f"requestable: {items}\n", "p.yaml")
    assert message in str(error.value)
    assert str(error.value).startswith("p.yaml: requestable")


def test_the_example_policy_has_a_catalogue() -> None:
    keys = {i.key for i in load_policy_file(EXAMPLE).requestable}
    assert {"epr-prescriber", "pharmacy-store", "ward-mailbox"} <= keys
