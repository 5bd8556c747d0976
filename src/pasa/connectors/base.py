"""The connector protocol: how PASA changes an account in one target system.

A connector is a thin adapter over one system (a directory, an application's user table, a
SCIM service, a human with a to-do list). It knows nothing about plans, reasons or the ledger:
the worker (:mod:`pasa.engine.worker`) calls one method per operation and records the outcome.

Idempotent by contract
    Every method may be called again after a crash, a timeout or a retry, so each one must
    leave the target in the same state whether it ran once or many times:

    * ``create`` of an account that already exists *for the same person* returns its id;
    * ``add_member`` of an existing membership and ``remove_member`` of an absent one succeed;
    * ``enable`` of an enabled and ``disable`` of a disabled account succeed;
    * ``delete`` of an absent account succeeds.

Errors (all subclasses of :class:`ConnectorError`) tell the worker what to do next:
:class:`TransientError` (retry later, with back-off), :class:`PermanentError` (park the
operation at once, with the message), :class:`NotFoundError` and :class:`ConflictError`
(both permanent). :class:`ManualFulfilment` is not a failure: it tells the worker the change
is for a person to carry out, so the operation becomes a manual task.
"""

from __future__ import annotations

import datetime as dt
import os
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from pasa.domain.errors import ConfigurationError

# Attribute PASA uses to tell whose account a username belongs to (create conflict check).
OWNER_ATTRIBUTE = "employee_number"

Attributes = Mapping[str, Any]
Membership = tuple[str, str]  # (kind, value), e.g. ("group", "radiology-users")


class Capability(StrEnum):
    CREATE = "create"
    UPDATE = "update"
    RENAME = "rename"
    ENABLE_DISABLE = "enable_disable"
    DELETE = "delete"
    MEMBERSHIPS = "memberships"
    READ = "read"
    LIST = "list"
    # Memberships may carry validity dates (``valid_from`` / ``valid_to`` of ``add_member``).
    VALIDITY_DATES = "validity_dates"
    # ``set_password``: the target accepts a password PASA sets (day-one credential handover).
    SET_PASSWORD = "set_password"  # noqa: S105 - a capability name, not a password


# What every full connector offers. The optional capabilities are declared only by connectors
# that really honour them, so the worker never sends dates or passwords into a void.
OPTIONAL_CAPABILITIES: frozenset[Capability] = frozenset(
    {Capability.VALIDITY_DATES, Capability.SET_PASSWORD}
)
ALL_CAPABILITIES: frozenset[Capability] = frozenset(Capability) - OPTIONAL_CAPABILITIES


@dataclass(frozen=True, slots=True)
class RemoteAccount:
    """An account as the target system holds it (read back, never PASA's own record)."""

    username: str
    external_id: str
    enabled: bool
    attributes: dict[str, Any] = field(default_factory=dict)
    memberships: frozenset[Membership] = frozenset()


class ConnectorError(Exception):
    """Base of every error a connector raises; the message is one clear sentence."""


class TransientError(ConnectorError):
    """The target could not be reached or was busy; the same call may succeed later.

    ``retry_after`` (seconds) is a hint from the target (e.g. HTTP ``Retry-After``).
    """

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class PermanentError(ConnectorError):
    """The target refused the change; repeating it will not help until someone acts."""


class NotFoundError(PermanentError):
    """The account the operation needs does not exist in the target."""


class ConflictError(PermanentError):
    """The username exists in the target and belongs to someone else."""


class ManualFulfilment(Exception):
    """Signal: this change is carried out by a person, not by PASA.

    The worker records a manual task (assignee, due date) and sets the operation to
    ``waiting_manual``. ``instructions`` may be left empty: the worker then writes a sentence
    from the operation and the person's details.
    """

    def __init__(
        self,
        *,
        system: str,
        assignee: str,
        sla_hours: float,
        instructions: str | None = None,
    ) -> None:
        super().__init__(f"manual fulfilment by {assignee} in {system}")
        self.system = system
        self.assignee = assignee
        self.sla_hours = sla_hours
        self.instructions = instructions


def owner_of(attributes: Attributes) -> Any:
    return attributes.get(OWNER_ATTRIBUTE)


def check_owner(username: str, existing: Attributes, wanted: Attributes) -> None:
    """Raise :class:`ConflictError` if an existing account belongs to another person."""
    have, want = owner_of(existing), owner_of(wanted)
    if have != want:
        raise ConflictError(
            f"username '{username}' already exists for employee {have or 'unknown'}, "
            f"not employee {want or 'unknown'}"
        )


# --- operation payloads (as the planner writes them) -------------------------------------


def create_attributes(payload: Mapping[str, Any]) -> dict[str, Any]:
    attrs = payload.get("attributes")
    if isinstance(attrs, Mapping):
        return dict(attrs)
    return {k: v for k, v in payload.items() if k not in ("enabled",)}


def update_changes(payload: Mapping[str, Any]) -> dict[str, Any]:
    """The new attribute values of an ``update_attributes`` payload.

    Accepts ``{"changes": {attr: [old, new]}}`` (what the planner emits, so the operation
    shows the before and after) and ``{"changes": {attr: new}}``.
    """
    changes: Mapping[str, Any] = payload
    for key in ("changes", "attributes"):
        value = payload.get(key)
        if isinstance(value, Mapping):
            changes = value
            break
    return {
        attr: value[1] if isinstance(value, list | tuple) and len(value) == 2 else value
        for attr, value in changes.items()
    }


def membership_of(payload: Mapping[str, Any]) -> tuple[str, str]:
    try:
        return str(payload["kind"]), str(payload["value"])
    except KeyError as exc:
        raise ConfigurationError(
            f"a membership operation's payload needs 'kind' and 'value', got {dict(payload)}"
        ) from exc


class Connector(ABC):
    """One target system. Subclass it, set ``capabilities`` and implement the methods.

    Methods a connector does not support (see ``capabilities``) raise
    :class:`PermanentError`; the worker checks capabilities first and parks the operation
    with a clear message instead of calling them.
    """

    capabilities: frozenset[Capability] = ALL_CAPABILITIES

    @abstractmethod
    def create(self, username: str, attributes: Attributes) -> str:
        """Create an enabled account; return the target's id for it (idempotent)."""

    @abstractmethod
    def update(self, username: str, changes: Attributes) -> None:
        """Set the given attributes (others unchanged); NotFoundError if absent."""

    def rename(self, username: str, new_username: str) -> None:
        """Change the account's username, keeping its memberships (optional capability)."""
        raise PermanentError(f"{type(self).__name__} cannot rename accounts")

    @abstractmethod
    def enable(self, username: str) -> None:
        """Enable the account; NotFoundError if absent."""

    @abstractmethod
    def disable(self, username: str) -> None:
        """Disable the account; NotFoundError if absent."""

    @abstractmethod
    def delete(self, username: str) -> None:
        """Delete the account and its memberships; succeeds if already absent."""

    @abstractmethod
    def add_member(
        self,
        username: str,
        kind: str,
        value: str,
        *,
        valid_from: dt.date | None = None,
        valid_to: dt.date | None = None,
    ) -> None:
        """Give the account a membership; NotFoundError if the account is absent.

        ``valid_from`` / ``valid_to`` are only passed to connectors declaring
        :attr:`Capability.VALIDITY_DATES`; others may ignore them. Re-adding an existing
        membership with other dates updates the dates.
        """

    @abstractmethod
    def remove_member(self, username: str, kind: str, value: str) -> None:
        """Remove a membership; succeeds if the membership or the account is absent."""

    @abstractmethod
    def read(self, username: str) -> RemoteAccount | None:
        """The account as the target holds it, or ``None``."""

    @abstractmethod
    def list(self) -> Iterator[RemoteAccount]:
        """Every account in the target (for reconciliation)."""

    def set_password(self, username: str, password: str) -> None:
        """Set the account's password (optional capability); NotFoundError if absent.

        Implementations never log, store in clear or echo ``password`` in an error.
        """
        raise PermanentError(f"{type(self).__name__} cannot set passwords in this target")

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections; default does nothing."""


def reject_unknown_settings(
    target_key: str, settings: Mapping[str, Any], allowed: Iterable[str]
) -> None:
    """A misspelt setting must fail loudly at start-up, not be ignored silently."""
    known = set(allowed)
    extra = sorted(set(settings) - known)
    if extra:
        raise ConfigurationError(
            f"target '{target_key}' has unknown setting(s) {', '.join(extra)}; "
            f"allowed: {', '.join(sorted(known))}"
        )


def require_text_setting(target_key: str, kind: str, settings: Mapping[str, Any], name: str) -> str:
    """A setting the connector cannot work without, e.g. ``base_url``."""
    value = settings.get(name)
    if not value or not isinstance(value, str):
        raise ConfigurationError(f"target '{target_key}' ({kind}) needs a '{name}' setting")
    return value


def require_secret_env(target_key: str, env_name: object, what: str) -> None:
    """Secrets come from the environment; fail at start-up when the named variable is unset."""
    if env_name is not None and not os.environ.get(str(env_name)):
        raise ConfigurationError(
            f"target '{target_key}' reads its {what} from environment variable "
            f"{env_name}, which is not set"
        )
