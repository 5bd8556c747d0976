"""Connectors: one module per target system, one protocol, one conformance kit."""

from pasa.connectors.base import (
    Capability,
    ConflictError,
    Connector,
    ConnectorError,
    ManualFulfilment,
    NotFoundError,
    PermanentError,
    RemoteAccount,
    TransientError,
)
from pasa.connectors.registry import build_connector, register

__all__ = [
    "Capability",
    "ConflictError",
    "Connector",
    "ConnectorError",
    "ManualFulfilment",
    "NotFoundError",
    "PermanentError",
    "RemoteAccount",
    "TransientError",
    "build_connector",
    "register",
]
