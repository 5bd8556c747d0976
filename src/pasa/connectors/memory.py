"""The in-memory reference connector: the contract in its simplest form.

Used by tests, the property tests and ``pasa demo``. It records every call it receives
(``calls``) so a test can assert that nothing was sent twice, and it can be told to fail
(``fail_with``) to exercise the worker's retry and parking paths.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from pasa.connectors.base import (
    ALL_CAPABILITIES,
    Attributes,
    Capability,
    ConflictError,
    Connector,
    Membership,
    NotFoundError,
    RemoteAccount,
    check_owner,
)


@dataclass
class _Account:
    external_id: str
    enabled: bool
    attributes: dict[str, Any]
    memberships: set[Membership] = field(default_factory=set)
    # "scrypt$<salt hex>$<hash hex>" once a password was set; never the password itself.
    password_hash: str | None = None


class MemoryConnector(Connector):
    """Accounts held in a dict; thread-safe; every contract rule implemented exactly."""

    def __init__(
        self,
        name: str = "memory",
        *,
        capabilities: frozenset[Capability] = ALL_CAPABILITIES | {Capability.SET_PASSWORD},
    ) -> None:
        self.name = name
        self.capabilities = capabilities
        self.calls: list[tuple[str, str]] = []
        # An exception to raise on every call (or on the named method only), for tests.
        self.fail_with: BaseException | None = None
        self.fail_methods: frozenset[str] | None = None
        self.fail_usernames: frozenset[str] | None = None
        self._accounts: dict[str, _Account] = {}
        self._ids = itertools.count(1)
        self._lock = threading.Lock()

    # -- helpers ---------------------------------------------------------------------------

    def _enter(self, method: str, username: str) -> None:
        self.calls.append((method, username))
        if self.fail_with is None:
            return
        if self.fail_methods is not None and method not in self.fail_methods:
            return
        if self.fail_usernames is not None and username not in self.fail_usernames:
            return
        raise self.fail_with

    def _get(self, username: str) -> _Account:
        account = self._accounts.get(username)
        if account is None:
            raise NotFoundError(f"account '{username}' does not exist in {self.name}")
        return account

    def calls_to(self, method: str) -> int:
        return sum(1 for m, _ in self.calls if m == method)

    # -- protocol --------------------------------------------------------------------------

    def create(self, username: str, attributes: Attributes) -> str:
        with self._lock:
            self._enter("create", username)
            existing = self._accounts.get(username)
            if existing is not None:
                check_owner(username, existing.attributes, attributes)
                existing.attributes.update(attributes)
                return existing.external_id
            external_id = f"{self.name}-{next(self._ids)}"
            self._accounts[username] = _Account(external_id, True, dict(attributes))
            return external_id

    def update(self, username: str, changes: Attributes) -> None:
        with self._lock:
            self._enter("update", username)
            self._get(username).attributes.update(changes)

    def rename(self, username: str, new_username: str) -> None:
        with self._lock:
            self._enter("rename", username)
            if username == new_username:
                self._get(username)
                return
            if new_username in self._accounts:
                if username not in self._accounts:
                    return  # already renamed (repeat of an earlier call)
                raise ConflictError(f"username '{new_username}' already exists in {self.name}")
            self._accounts[new_username] = self._get(username)
            del self._accounts[username]

    def enable(self, username: str) -> None:
        with self._lock:
            self._enter("enable", username)
            self._get(username).enabled = True

    def disable(self, username: str) -> None:
        with self._lock:
            self._enter("disable", username)
            self._get(username).enabled = False

    def delete(self, username: str) -> None:
        with self._lock:
            self._enter("delete", username)
            self._accounts.pop(username, None)

    def add_member(self, username: str, kind: str, value: str, **_: object) -> None:
        with self._lock:
            self._enter("add_member", username)
            self._get(username).memberships.add((kind, value))

    def remove_member(self, username: str, kind: str, value: str) -> None:
        with self._lock:
            self._enter("remove_member", username)
            account = self._accounts.get(username)
            if account is not None:
                account.memberships.discard((kind, value))

    def read(self, username: str) -> RemoteAccount | None:
        with self._lock:
            self._enter("read", username)
            account = self._accounts.get(username)
            return None if account is None else self._remote(username, account)

    def list(self) -> Iterator[RemoteAccount]:
        with self._lock:
            self._enter("list", "")
            snapshot = [self._remote(u, a) for u, a in sorted(self._accounts.items())]
        return iter(snapshot)

    def set_password(self, username: str, password: str) -> None:
        with self._lock:
            self._enter("set_password", username)
            salt = os.urandom(16)
            digest = _scrypt(password, salt)
            self._get(username).password_hash = f"scrypt${salt.hex()}${digest.hex()}"

    def check_password(self, username: str, password: str) -> bool:
        """True when ``password`` is the one last set (for tests; not part of the protocol)."""
        with self._lock:
            account = self._accounts.get(username)
            if account is None or account.password_hash is None:
                return False
            _, salt, digest = account.password_hash.split("$")
            return hmac.compare_digest(_scrypt(password, bytes.fromhex(salt)).hex(), digest)

    @staticmethod
    def _remote(username: str, account: _Account) -> RemoteAccount:
        return RemoteAccount(
            username=username,
            external_id=account.external_id,
            enabled=account.enabled,
            attributes=dict(account.attributes),
            memberships=frozenset(account.memberships),
        )


def _scrypt(password: str, salt: bytes) -> bytes:
    return hashlib.scrypt(password.encode("utf-8"), salt=salt, n=2**14, r=8, p=1, dklen=32)
