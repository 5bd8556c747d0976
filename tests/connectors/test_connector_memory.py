"""The in-memory reference connector passes the conformance kit."""

from __future__ import annotations

import pytest

from pasa.connectors import Capability, build_connector
from pasa.connectors.base import Connector
from pasa.connectors.kit import ConnectorContract
from pasa.connectors.memory import MemoryConnector
from pasa.domain.errors import ConfigurationError


class TestMemoryConnector(ConnectorContract):
    @pytest.fixture
    def connector(self) -> Connector:
        return MemoryConnector("memory")


class TestMemoryConnectorWithoutOptionalCapabilities(ConnectorContract):
    """Capabilities a connector lacks are skipped by the kit, not failed."""

    @pytest.fixture
    def connector(self) -> Connector:
        return MemoryConnector("limited", capabilities=frozenset(Capability) - {Capability.RENAME})


def test_registry_builds_memory_connector() -> None:
    assert isinstance(build_connector("demo", "memory", {}), MemoryConnector)


def test_registry_rejects_unknown_kind_with_a_sentence() -> None:
    with pytest.raises(ConfigurationError, match="target 'pacs' uses connector 'ldapish'"):
        build_connector("pacs", "ldapish", {})


def test_platform_settings_never_reach_the_connector() -> None:
    """`reconcile: correct` is PASA's own setting; connectors refusing unknown keys still build."""
    from pasa.connectors.registry import build_connector

    connector = build_connector(
        "dir",
        "ldap",
        {
            "url": "ldap://127.0.0.1:1",
            "bind_dn": "cn=admin,dc=nhs,dc=test",
            "bind_password_env": "PATH",
            "base_dn": "dc=nhs,dc=test",
            "reconcile": "correct",
        },
    )
    assert connector is not None
