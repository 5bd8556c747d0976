"""The webhook connector against a real local HTTP receiver (stdlib ``http.server``).

The receiver records every request it gets (method, raw path, headers, body) and keeps a
tiny in-memory user store behind a small REST API, so a full template set — read and list
included — can run the conformance kit. ``fail_with`` makes it answer everything with one
status (429, 500, 401 ...).
"""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import unquote

import pytest

from pasa.connectors import build_connector
from pasa.connectors.base import (
    ALL_CAPABILITIES,
    Capability,
    ConflictError,
    Connector,
    NotFoundError,
    PermanentError,
    TransientError,
)
from pasa.connectors.kit import ConnectorContract, sample_attributes
from pasa.connectors.webhook import ATTRIBUTE_NAMES, WebhookConnector, WebhookSettings
from pasa.domain.errors import ConfigurationError

SECRET = "Bearer hook-s3cret-value-42"  # test-only
SECRET_ENV = "PASA_TEST_WEBHOOK_AUTH"


@dataclass
class Received:
    method: str
    path: str
    headers: dict[str, str]
    body: Any


@dataclass
class Receiver:
    received: list[Received] = field(default_factory=list)
    users: dict[str, dict[str, Any]] = field(default_factory=dict)
    fail_with: tuple[int, dict[str, str]] | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)
    server: ThreadingHTTPServer | None = None

    @property
    def base_url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.server_address[1]}/api"

    def handle(self, method: str, raw_path: str, body: Any) -> tuple[int, Any]:
        if self.fail_with is not None:
            return self.fail_with[0], {"error": "forced"}
        parts = [unquote(p) for p in raw_path.split("?")[0].split("/") if p]
        if parts[:2] != ["api", "users"]:
            return 404, {"error": "no route"}
        rest = parts[2:]
        with self.lock:
            if not rest:
                if method == "GET":
                    return 200, {"users": [self.users[u] for u in sorted(self.users)]}
                if method == "POST":
                    username = body["username"]
                    if username in self.users:
                        return 409, {"error": "exists"}
                    self.users[username] = {
                        "id": uuid.uuid4().hex,
                        "username": username,
                        "active": True,
                        "attributes": dict(body.get("attributes") or {}),
                        "groups": [],
                    }
                    return 201, {"id": self.users[username]["id"]}
                return 405, None
            user = self.users.get(rest[0])
            if user is None:
                return 404, {"error": "no such user"}
            if len(rest) == 1:
                if method == "GET":
                    return 200, user
                if method == "PATCH":
                    user["attributes"].update(body["attributes"])
                    return 200, user
                if method == "DELETE":
                    del self.users[rest[0]]
                    return 204, None
            if len(rest) == 2 and method == "POST" and rest[1] in ("enable", "disable"):
                user["active"] = rest[1] == "enable"
                return 204, None
            if len(rest) == 2 and method == "POST" and rest[1] == "rename":
                new = body["new_username"]
                if new in self.users:
                    return 409, {"error": "taken"}
                self.users[new] = {**self.users.pop(rest[0]), "username": new}
                return 200, None
            if len(rest) == 4 and rest[1] == "memberships":
                item = f"{rest[2]}:{rest[3]}"
                if method == "PUT" and item not in user["groups"]:
                    user["groups"].append(item)
                if method == "DELETE" and item in user["groups"]:
                    user["groups"].remove(item)
                return 204, None
        return 405, None


def start_receiver() -> Receiver:
    receiver = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def _answer(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            body = json.loads(raw) if raw else None
            receiver.received.append(
                Received(self.command, self.path, dict(self.headers.items()), body)
            )
            status, answer = receiver.handle(self.command, self.path, body)
            data = json.dumps(answer).encode() if answer is not None else b""
            self.send_response(status)
            for key, value in (receiver.fail_with or (0, {}))[1].items():
                self.send_header(key, value)
            if data:
                self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _answer

        def log_message(self, format: str, *args: Any) -> None:
            pass

    receiver.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=receiver.server.serve_forever, daemon=True).start()
    return receiver


def stop_receiver(receiver: Receiver) -> None:
    assert receiver.server is not None
    receiver.server.shutdown()
    receiver.server.server_close()


WRITE_REQUESTS: dict[str, Any] = {
    "create": {
        "method": "POST",
        "path": "/users",
        "body": {"username": "{username}", "attributes": "{attributes}"},
        "expected": [201],
    },
    "update": {
        "method": "PATCH",
        "path": "/users/{username}",
        "body": {"attributes": "{attributes}"},
        "expected": [200],
    },
    "rename": {
        "method": "POST",
        "path": "/users/{username}/rename",
        "body": '{"new_username": "{new_username}"}',
    },
    "enable": {"method": "POST", "path": "/users/{username}/enable", "expected": [204]},
    "disable": {"method": "POST", "path": "/users/{username}/disable", "expected": [204]},
    "delete": {"method": "DELETE", "path": "/users/{username}", "expected": [204]},
    "add_member": {"method": "PUT", "path": "/users/{username}/memberships/{kind}/{value}"},
    "remove_member": {
        "method": "DELETE",
        "path": "/users/{username}/memberships/{kind}/{value}",
    },
}
READ_FIELDS = {"enabled": "active", "memberships": "groups"}
FULL_REQUESTS: dict[str, Any] = {
    **WRITE_REQUESTS,
    "read": {"method": "GET", "path": "/users/{username}", "response": READ_FIELDS},
    "list": {"method": "GET", "path": "/users", "response": {**READ_FIELDS, "items": "users"}},
}


@pytest.fixture(scope="module")
def module_receiver() -> Iterator[Receiver]:
    receiver = start_receiver()
    yield receiver
    stop_receiver(receiver)


@pytest.fixture
def receiver(module_receiver: Receiver, monkeypatch: pytest.MonkeyPatch) -> Receiver:
    monkeypatch.setenv(SECRET_ENV, SECRET)
    module_receiver.users.clear()
    module_receiver.received.clear()
    module_receiver.fail_with = None
    return module_receiver


def _connector(
    receiver: Receiver | str, requests: dict[str, Any] | None = None, **options: Any
) -> WebhookConnector:
    base_url = receiver if isinstance(receiver, str) else receiver.base_url
    return WebhookConnector(
        WebhookSettings(
            base_url=base_url,
            requests=FULL_REQUESTS if requests is None else requests,
            auth_header_env=SECRET_ENV,
            **options,
        ),
        name="rota",
    )


class TestWebhookConnector(ConnectorContract):
    @pytest.fixture
    def connector(self, receiver: Receiver) -> Iterator[Connector]:
        connector = _connector(receiver)
        yield connector
        connector.close()


class TestWriteOnlyWebhookConnector(ConnectorContract):
    @pytest.fixture
    def connector(self, receiver: Receiver) -> Iterator[Connector]:
        connector = _connector(receiver, WRITE_REQUESTS)
        yield connector
        connector.close()


def test_capabilities_follow_configured_operations(receiver: Receiver) -> None:
    assert _connector(receiver).capabilities == ALL_CAPABILITIES
    write_only = _connector(receiver, WRITE_REQUESTS)
    assert write_only.write_only
    assert Capability.READ not in write_only.capabilities
    assert Capability.LIST not in write_only.capabilities
    minimal = _connector(receiver, {"disable": WRITE_REQUESTS["disable"], **_enable()})
    assert minimal.capabilities == {Capability.ENABLE_DISABLE}
    with pytest.raises(PermanentError, match="no 'create' request"):
        minimal.create("jsmith", sample_attributes())
    with pytest.raises(PermanentError, match="no 'read' request"):
        write_only.read("jsmith")


def _enable() -> dict[str, Any]:
    return {"enable": WRITE_REQUESTS["enable"]}


def test_each_operation_sends_the_rendered_request(receiver: Receiver) -> None:
    requests = {
        **FULL_REQUESTS,
        "create": {
            "method": "POST",
            "path": "/users",
            "body": {
                "username": "{username}",
                "attributes": {name: "{attributes." + name + "}" for name in ATTRIBUTE_NAMES},
                "label": "{attributes.first_name} {attributes.last_name} ({{PASA}})",
            },
            "expected": [201],
        },
        "update": {
            "method": "PATCH",
            "path": "/users/{username}",
            "body": {
                "attributes": {
                    "last_name": "{attributes.last_name}",
                    "email": "{attributes.email}",
                }
            },
        },
    }
    connector = _connector(receiver, requests)
    external_id = connector.create("j smith/x", sample_attributes())
    connector.update("j smith/x", {"last_name": "Jones"})
    connector.update("j smith/x", {"email": None})
    connector.disable("j smith/x")
    connector.enable("j smith/x")
    connector.add_member("j smith/x", "app_role", "pacs reporter?")
    connector.remove_member("j smith/x", "app_role", "pacs reporter?")
    connector.rename("j smith/x", "jjones")
    connector.delete("jjones")
    sent = [(r.method, r.path, r.body) for r in receiver.received]
    attributes = sample_attributes()
    assert sent == [
        (
            "POST",
            "/api/users",
            {
                "username": "j smith/x",
                "attributes": attributes,
                "label": "Jane Smith ({PASA})",
            },
        ),
        ("PATCH", "/api/users/j%20smith%2Fx", {"attributes": {"last_name": "Jones"}}),
        ("PATCH", "/api/users/j%20smith%2Fx", {"attributes": {"email": None}}),
        ("POST", "/api/users/j%20smith%2Fx/disable", None),
        ("POST", "/api/users/j%20smith%2Fx/enable", None),
        ("PUT", "/api/users/j%20smith%2Fx/memberships/app_role/pacs%20reporter%3F", None),
        ("DELETE", "/api/users/j%20smith%2Fx/memberships/app_role/pacs%20reporter%3F", None),
        ("POST", "/api/users/j%20smith%2Fx/rename", {"new_username": "jjones"}),
        ("DELETE", "/api/users/jjones", None),
    ]
    assert all(r.headers["Authorization"] == SECRET for r in receiver.received)
    assert receiver.received[0].headers["Content-Type"] == "application/json"
    assert external_id and not receiver.users


def test_404_on_update_and_disable_is_not_found(receiver: Receiver) -> None:
    connector = _connector(receiver, WRITE_REQUESTS)
    with pytest.raises(NotFoundError):
        connector.update("nobody", {"last_name": "x"})
    with pytest.raises(NotFoundError):
        connector.disable("nobody")
    connector.delete("nobody")  # absent: already done
    connector.remove_member("nobody", "group", "g")


def test_409_on_create_conflicts(receiver: Receiver) -> None:

    write_only = _connector(receiver, WRITE_REQUESTS)
    write_only.create("jsmith", sample_attributes())
    with pytest.raises(ConflictError, match="HTTP 409"):
        write_only.create("jsmith", sample_attributes())  # cannot read: cannot tell
    full = _connector(receiver)
    assert full.create("jsmith", sample_attributes()) == receiver.users["jsmith"]["id"]
    with pytest.raises(ConflictError):
        full.create("jsmith", sample_attributes("99999999"))


def test_dot_segments_are_refused(receiver: Receiver) -> None:
    with pytest.raises(PermanentError, match="path segment"):
        _connector(receiver).disable("..")
    assert receiver.received == []


def test_429_with_retry_after_is_transient(receiver: Receiver) -> None:
    receiver.fail_with = (429, {"Retry-After": "12"})
    with pytest.raises(TransientError, match="HTTP 429") as caught:
        _connector(receiver).create("jsmith", sample_attributes())
    assert caught.value.retry_after == 12


def test_500_is_transient(receiver: Receiver) -> None:
    receiver.fail_with = (500, {})
    with pytest.raises(TransientError, match="HTTP 500") as caught:
        _connector(receiver).disable("jsmith")
    assert caught.value.retry_after is None


def test_receiver_down_is_transient(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(SECRET_ENV, SECRET)
    receiver = start_receiver()
    base_url = receiver.base_url
    stop_receiver(receiver)
    with pytest.raises(TransientError, match="unavailable"):
        _connector(base_url, timeout=2).create("jsmith", sample_attributes())


@pytest.mark.parametrize("status", [401, 403])
def test_refused_credentials_are_permanent_without_the_secret(
    receiver: Receiver, status: int
) -> None:
    receiver.fail_with = (status, {"WWW-Authenticate": "Bearer"})
    with pytest.raises(PermanentError) as caught:
        _connector(receiver).create("jsmith", sample_attributes())
    assert not isinstance(caught.value, TransientError)
    assert f"HTTP {status}" in str(caught.value)
    assert SECRET not in str(caught.value) and "s3cret" not in str(caught.value)
    assert SECRET_ENV in str(caught.value)
    assert receiver.received[0].headers["Authorization"] == SECRET


def test_other_refusals_are_permanent_and_scrub_the_secret(receiver: Receiver) -> None:
    receiver.fail_with = (422, {})
    connector = _connector(receiver)
    connector._client()
    connector._secret = "forced"  # the receiver echoes "forced" in its body
    with pytest.raises(PermanentError, match="HTTP 422") as caught:
        connector.update("jsmith", {"last_name": "x"})
    assert "forced" not in str(caught.value)


def test_unknown_placeholder_is_a_configuration_error(receiver: Receiver) -> None:
    bad_body = {
        **WRITE_REQUESTS,
        "create": {"method": "POST", "path": "/users", "body": {"n": "{attributes.shoe_size}"}},
    }
    with pytest.raises(ConfigurationError, match=r"\{attributes\.shoe_size\}"):
        _connector(receiver, bad_body)
    bad_path = {**WRITE_REQUESTS, "delete": {"method": "DELETE", "path": "/users/{kind}"}}
    with pytest.raises(ConfigurationError, match=r"'delete'.*unknown placeholder \{kind\}"):
        _connector(receiver, bad_path)
    code = {**WRITE_REQUESTS, "delete": {"method": "DELETE", "path": "/u/{username.__class__}"}}
    with pytest.raises(ConfigurationError, match="unknown placeholder"):
        _connector(receiver, code)
    with pytest.raises(ConfigurationError, match="unbalanced"):
        _connector(receiver, {**WRITE_REQUESTS, "delete": {"method": "DELETE", "path": "/u/{"}})
    with pytest.raises(ConfigurationError, match="together"):
        _connector(receiver, {"enable": WRITE_REQUESTS["enable"]})
    with pytest.raises(ConfigurationError, match="unknown operation"):
        _connector(receiver, {"launch": WRITE_REQUESTS["enable"]})


def test_registry_builds_webhook_from_settings(
    receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = {
        "base_url": receiver.base_url,
        "auth_header_env": SECRET_ENV,
        "requests": FULL_REQUESTS,
    }
    connector = build_connector("rota", "webhook", settings)
    assert isinstance(connector, WebhookConnector)
    connector.create("jsmith", sample_attributes())
    assert connector.read("jsmith") is not None
    monkeypatch.delenv(SECRET_ENV)
    with pytest.raises(ConfigurationError, match=SECRET_ENV):
        build_connector("rota", "webhook", settings)
    with pytest.raises(ConfigurationError, match="unknown setting"):
        build_connector("rota", "webhook", {**settings, "token": "x", "auth_header_env": None})
