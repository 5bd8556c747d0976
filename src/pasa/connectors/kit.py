"""The connector conformance kit: one contract test-suite every connector inherits.

Subclass :class:`ConnectorContract` in a test module and provide a ``connector`` fixture
returning a fresh, empty connector; pytest collects every ``test_`` method below::

    class TestMyConnector(ConnectorContract):
        @pytest.fixture
        def connector(self) -> Iterator[Connector]:
            yield MyConnector(...)

Tests needing a capability the connector does not declare are skipped, not failed.
"""

from __future__ import annotations

from typing import Any

import pytest

from pasa.connectors.base import (
    Capability,
    ConflictError,
    Connector,
    NotFoundError,
    RemoteAccount,
)


def sample_attributes(employee_number: str = "12345678", **overrides: Any) -> dict[str, Any]:
    """A complete set of account attributes (what the planner sends on create)."""
    attributes: dict[str, Any] = {
        "first_name": "Jane",
        "last_name": "Smith",
        "display_name": "Jane Smith",
        "email": "jane.smith@nhs.net",
        "employee_number": employee_number,
        "organisation": "RXX",
        "department": "Radiology",
        "job_title": "Radiographer",
        "manager_employee_number": None,
    }
    attributes.update(overrides)
    return attributes


def _need(connector: Connector, *capabilities: Capability) -> None:
    missing = [c.value for c in capabilities if c not in connector.capabilities]
    if missing:
        pytest.skip(f"{type(connector).__name__} does not support {', '.join(missing)}")


def _read(connector: Connector, username: str) -> RemoteAccount:
    found = connector.read(username)
    assert found is not None, f"{username} should exist"
    return found


class ConnectorContract:
    """Contract tests; subclasses supply the ``connector`` fixture."""

    # -- create ----------------------------------------------------------------------------

    def test_declares_capabilities(self, connector: Connector) -> None:
        assert isinstance(connector.capabilities, frozenset)
        assert all(isinstance(c, Capability) for c in connector.capabilities)

    def test_create_then_read_back(self, connector: Connector) -> None:
        _need(connector, Capability.CREATE, Capability.READ)
        attributes = sample_attributes()
        external_id = connector.create("jsmith", attributes)
        assert isinstance(external_id, str) and external_id
        account = _read(connector, "jsmith")
        assert account.username == "jsmith"
        assert account.external_id == external_id
        assert account.enabled is True
        for key, value in attributes.items():
            assert account.attributes.get(key) == value, key
        assert account.memberships == frozenset()

    def test_read_absent_is_none(self, connector: Connector) -> None:
        _need(connector, Capability.READ)
        assert connector.read("nobody") is None

    def test_create_twice_returns_same_id(self, connector: Connector) -> None:
        _need(connector, Capability.CREATE, Capability.LIST)
        first = connector.create("jsmith", sample_attributes())
        second = connector.create("jsmith", sample_attributes())
        assert first == second
        assert [a.username for a in connector.list()] == ["jsmith"]

    def test_create_of_someone_elses_username_conflicts(self, connector: Connector) -> None:
        _need(connector, Capability.CREATE, Capability.READ)
        connector.create("jsmith", sample_attributes("11111111"))
        with pytest.raises(ConflictError):
            connector.create("jsmith", sample_attributes("22222222", first_name="John"))
        assert _read(connector, "jsmith").attributes["employee_number"] == "11111111"

    def test_distinct_accounts_get_distinct_ids(self, connector: Connector) -> None:
        _need(connector, Capability.CREATE)
        a = connector.create("jsmith", sample_attributes("11111111"))
        b = connector.create("jsmith2", sample_attributes("22222222"))
        assert a != b

    # -- update ----------------------------------------------------------------------------

    def test_update_changes_only_given_attributes(self, connector: Connector) -> None:
        _need(connector, Capability.CREATE, Capability.UPDATE, Capability.READ)
        connector.create("jsmith", sample_attributes())
        connector.update("jsmith", {"last_name": "Jones", "job_title": "Superintendent"})
        connector.update("jsmith", {"last_name": "Jones", "job_title": "Superintendent"})
        account = _read(connector, "jsmith")
        assert account.attributes["last_name"] == "Jones"
        assert account.attributes["job_title"] == "Superintendent"
        assert account.attributes["first_name"] == "Jane"

    def test_update_can_clear_an_attribute(self, connector: Connector) -> None:
        _need(connector, Capability.CREATE, Capability.UPDATE, Capability.READ)
        connector.create("jsmith", sample_attributes())
        connector.update("jsmith", {"email": None})
        assert _read(connector, "jsmith").attributes.get("email") is None

    def test_update_of_absent_account_is_not_found(self, connector: Connector) -> None:
        _need(connector, Capability.UPDATE)
        with pytest.raises(NotFoundError):
            connector.update("nobody", {"last_name": "Jones"})

    # -- rename ----------------------------------------------------------------------------

    def test_rename_keeps_account_and_memberships(self, connector: Connector) -> None:
        _need(connector, Capability.CREATE, Capability.RENAME, Capability.READ)
        external_id = connector.create("jsmith", sample_attributes())
        if Capability.MEMBERSHIPS in connector.capabilities:
            connector.add_member("jsmith", "group", "radiology")
        connector.rename("jsmith", "jjones")
        connector.rename("jsmith", "jjones")  # repeat
        assert connector.read("jsmith") is None
        account = _read(connector, "jjones")
        assert account.external_id == external_id
        if Capability.MEMBERSHIPS in connector.capabilities:
            assert account.memberships == {("group", "radiology")}

    def test_rename_onto_existing_username_conflicts(self, connector: Connector) -> None:
        _need(connector, Capability.CREATE, Capability.RENAME)
        connector.create("jsmith", sample_attributes("11111111"))
        connector.create("jjones", sample_attributes("22222222"))
        with pytest.raises(ConflictError):
            connector.rename("jsmith", "jjones")

    # -- enable / disable ------------------------------------------------------------------

    def test_disable_and_enable_are_idempotent(self, connector: Connector) -> None:
        _need(connector, Capability.CREATE, Capability.ENABLE_DISABLE, Capability.READ)
        connector.create("jsmith", sample_attributes())
        connector.disable("jsmith")
        connector.disable("jsmith")
        assert _read(connector, "jsmith").enabled is False
        connector.enable("jsmith")
        connector.enable("jsmith")
        assert _read(connector, "jsmith").enabled is True

    def test_enable_of_absent_account_is_not_found(self, connector: Connector) -> None:
        _need(connector, Capability.ENABLE_DISABLE)
        with pytest.raises(NotFoundError):
            connector.enable("nobody")

    def test_disable_of_absent_account_is_not_found(self, connector: Connector) -> None:
        _need(connector, Capability.ENABLE_DISABLE)
        with pytest.raises(NotFoundError):
            connector.disable("nobody")

    # -- delete ----------------------------------------------------------------------------

    def test_delete_is_idempotent(self, connector: Connector) -> None:
        _need(connector, Capability.CREATE, Capability.DELETE, Capability.READ)
        connector.create("jsmith", sample_attributes())
        connector.delete("jsmith")
        connector.delete("jsmith")
        connector.delete("never-existed")
        assert connector.read("jsmith") is None

    def test_recreate_after_delete_starts_clean(self, connector: Connector) -> None:
        _need(
            connector, Capability.CREATE, Capability.DELETE, Capability.MEMBERSHIPS, Capability.READ
        )
        connector.create("jsmith", sample_attributes())
        connector.add_member("jsmith", "group", "radiology")
        connector.delete("jsmith")
        connector.create("jsmith", sample_attributes())
        assert _read(connector, "jsmith").memberships == frozenset()

    # -- memberships -----------------------------------------------------------------------

    def test_memberships_add_and_remove_idempotently(self, connector: Connector) -> None:
        _need(connector, Capability.CREATE, Capability.MEMBERSHIPS, Capability.READ)
        connector.create("jsmith", sample_attributes())
        connector.add_member("jsmith", "group", "radiology")
        connector.add_member("jsmith", "group", "radiology")
        connector.add_member("jsmith", "app_role", "pacs-reporter")
        assert _read(connector, "jsmith").memberships == {
            ("group", "radiology"),
            ("app_role", "pacs-reporter"),
        }
        connector.remove_member("jsmith", "group", "radiology")
        connector.remove_member("jsmith", "group", "radiology")
        connector.remove_member("jsmith", "group", "never-held")
        assert _read(connector, "jsmith").memberships == {("app_role", "pacs-reporter")}

    def test_memberships_are_per_account(self, connector: Connector) -> None:
        _need(connector, Capability.CREATE, Capability.MEMBERSHIPS, Capability.READ)
        connector.create("jsmith", sample_attributes("11111111"))
        connector.create("jjones", sample_attributes("22222222"))
        connector.add_member("jsmith", "group", "radiology")
        assert _read(connector, "jjones").memberships == frozenset()

    def test_add_member_to_absent_account_is_not_found(self, connector: Connector) -> None:
        _need(connector, Capability.MEMBERSHIPS)
        with pytest.raises(NotFoundError):
            connector.add_member("nobody", "group", "radiology")

    def test_remove_member_of_absent_account_succeeds(self, connector: Connector) -> None:
        _need(connector, Capability.MEMBERSHIPS)
        connector.remove_member("nobody", "group", "radiology")

    # -- list ------------------------------------------------------------------------------

    def test_list_returns_every_account(self, connector: Connector) -> None:
        _need(connector, Capability.CREATE, Capability.LIST, Capability.MEMBERSHIPS)
        for i in range(5):
            connector.create(f"user{i}", sample_attributes(f"1000000{i}"))
        connector.add_member("user3", "group", "theatres")
        accounts = {a.username: a for a in connector.list()}
        assert set(accounts) == {f"user{i}" for i in range(5)}
        assert accounts["user3"].memberships == {("group", "theatres")}
        assert accounts["user0"].attributes["employee_number"] == "10000000"

    def test_list_of_empty_target_is_empty(self, connector: Connector) -> None:
        _need(connector, Capability.LIST)
        assert list(connector.list()) == []
