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
