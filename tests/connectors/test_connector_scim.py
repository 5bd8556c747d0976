"""The SCIM connector passes the conformance kit against the independent ``scim2-server``.

The server is a separate process started by :mod:`tests.connectors.scim_server`; HTTP failure
answers (429, 500, 401) come from a tiny ``http.server`` stub in this module.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
from scim_server import TOKEN, TOKEN_ENV, ScimServer, free_port, start_scim_server

from pasa.connectors import build_connector
from pasa.connectors.base import Connector, NotFoundError, PermanentError, TransientError
from pasa.connectors.kit import ConnectorContract, sample_attributes
from pasa.connectors.scim import ScimConnector, ScimSettings
from pasa.domain.errors import ConfigurationError


@pytest.fixture(scope="module")
def scim_server() -> Iterator[ScimServer]:
    server = start_scim_server()
    yield server
    server.stop()


@pytest.fixture
def clean_server(scim_server: ScimServer, monkeypatch: pytest.MonkeyPatch) -> ScimServer:
    monkeypatch.setenv(TOKEN_ENV, TOKEN)
    scim_server.wipe()
    return scim_server


def _connector(server: ScimServer, page_size: int = 100, **options: Any) -> ScimConnector:
    return ScimConnector(
        ScimSettings(base_url=server.base_url, token_env=TOKEN_ENV, page_size=page_size, **options),
        name="scim-app",
    )


class TestScimConnector(ConnectorContract):
    @pytest.fixture
    def connector(self, clean_server: ScimServer) -> Iterator[Connector]:
        connector = _connector(clean_server)
        yield connector
        connector.close()


def test_attributes_land_in_scim_user_and_groups(clean_server: ScimServer) -> None:
    connector = _connector(clean_server)
    connector.create("boss", sample_attributes("99999999", first_name="Ann"))
    external_id = connector.create("jsmith", sample_attributes(manager_employee_number="99999999"))
    connector.add_member("jsmith", "app_role", "pacs-reporter")
    connector.add_member("jsmith", "door_zone", "theatres")
    connector.disable("jsmith")
    with clean_server.client() as http:
        user = http.get(f"/Users/{external_id}").json()
        groups = http.get("/Groups").json()["Resources"]
    enterprise = user["urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"]
    assert user["userName"] == "jsmith"
    assert user["name"] == {"givenName": "Jane", "familyName": "Smith"}
    assert user["emails"] == [{"value": "jane.smith@nhs.net", "type": "work", "primary": True}]
    assert user["title"] == "Radiographer"
    assert user["active"] is False
    assert enterprise["employeeNumber"] == "12345678"
    assert enterprise["organization"] == "RXX"
    assert enterprise["department"] == "Radiology"
    boss = connector.read("boss")
    assert boss is not None
    assert enterprise["manager"]["value"] == boss.external_id
    assert {g["displayName"] for g in groups} == {"app:pacs-reporter", "door:theatres"}
    account = connector.read("jsmith")
    assert account is not None
    assert account.attributes["manager_employee_number"] == "99999999"
    assert account.memberships == {("app_role", "pacs-reporter"), ("door_zone", "theatres")}
    connector.close()


# -- requests per operation (the provisioning benchmark's common path) ----------------------

STARTER = [("group", "dept-01"), ("app_role", "pacs-reporter"), ("door_zone", "theatres")]


def _count_requests(connector: ScimConnector) -> list[str]:
    """``METHOD /Resource`` of every request the connector sends from now on."""
    connector._client()  # discovery (once per connector) is not counted
    assert connector._http is not None
    sent: list[str] = []

    def hook(request: httpx.Request) -> None:
        resource = request.url.path.split("/v2/", 1)[1].split("/", 1)[0]
        sent.append(f"{request.method} /{resource}")

    connector._http.event_hooks["request"].append(hook)
    return sent


def _starter(connector: ScimConnector, username: str, number: str) -> str:
    external_id = connector.create(username, sample_attributes(number))
    for kind, value in STARTER:
        connector.add_member(username, kind, value)
    return external_id


def _members(server: ScimServer) -> dict[str, list[str]]:
    with server.client() as http:
        groups = http.get("/Groups").json().get("Resources") or []
    return {g["displayName"]: sorted(m["value"] for m in g.get("members") or []) for g in groups}


def test_a_new_starter_is_four_requests(clean_server: ScimServer) -> None:
    connector = _connector(clean_server)
    first = _starter(connector, "first", "11111111")  # creates the three groups
    sent = _count_requests(connector)
    jsmith = _starter(connector, "jsmith", "12345678")
    assert sent == ["POST /Users", "PATCH /Groups", "PATCH /Groups", "PATCH /Groups"]
    both = sorted([first, jsmith])
    assert _members(clean_server) == {
        "dept-01": both,
        "app:pacs-reporter": both,
        "door:theatres": both,
    }
    account = connector.read("jsmith")
    assert account is not None and account.memberships == set(STARTER)
    connector.close()


def test_a_fresh_connector_looks_each_group_up_once(clean_server: ScimServer) -> None:
    _starter(_connector(clean_server), "first", "11111111")
    connector = _connector(clean_server)
    sent = _count_requests(connector)
    _starter(connector, "jsmith", "12345678")
    assert sent == ["POST /Users", *["GET /Groups", "PATCH /Groups"] * 3]
    sent.clear()
    _starter(connector, "jjones", "22222222")
    assert sent == ["POST /Users", "PATCH /Groups", "PATCH /Groups", "PATCH /Groups"]
    connector.close()


def test_repeats_succeed_without_changes(clean_server: ScimServer) -> None:
    connector = _connector(clean_server)
    external_id = _starter(connector, "jsmith", "12345678")
    sent = _count_requests(connector)
    for kind, value in STARTER:
        connector.add_member("jsmith", kind, value)
    assert sent == ["PATCH /Groups"] * 3  # the server keeps one member (RFC 7644 §3.5.2.1)
    assert connector.create("jsmith", sample_attributes("12345678")) == external_id
    again = _connector(clean_server)  # nothing remembered: found by searching
    for kind, value in STARTER:
        again.add_member("jsmith", kind, value)
    assert _members(clean_server) == {
        "dept-01": [external_id],
        "app:pacs-reporter": [external_id],
        "door:theatres": [external_id],
    }
    connector.remove_member("jsmith", "group", "dept-01")
    connector.remove_member("jsmith", "group", "dept-01")  # not a member: success
    assert _members(clean_server)["dept-01"] == []
    connector.close()
    again.close()


def test_remembered_ids_are_forgotten_on_delete_and_rename(clean_server: ScimServer) -> None:
    connector = _connector(clean_server)
    connector.create("jsmith", sample_attributes())
    connector.delete("jsmith")
    with pytest.raises(NotFoundError):
        connector.add_member("jsmith", "group", "radiology")
    external_id = connector.create("jsmith", sample_attributes())
    connector.rename("jsmith", "jjones")
    with pytest.raises(NotFoundError):
        connector.add_member("jsmith", "group", "radiology")
    connector.add_member("jjones", "group", "radiology")
    assert _members(clean_server) == {"radiology": [external_id]}
    connector.close()


def test_a_group_deleted_meanwhile_is_looked_up_again(clean_server: ScimServer) -> None:
    connector = _connector(clean_server)
    external_id = _starter(connector, "jsmith", "12345678")
    with clean_server.client() as http:
        groups = http.get("/Groups").json()["Resources"]
        dept = next(g for g in groups if g["displayName"] == "dept-01")
        http.delete(f"/Groups/{dept['id']}").raise_for_status()
    sent = _count_requests(connector)
    connector.add_member("jsmith", "group", "dept-01")
    assert sent == ["PATCH /Groups", "GET /Groups", "POST /Groups"]
    assert _members(clean_server)["dept-01"] == [external_id]
    connector.close()


def test_a_user_deleted_behind_the_connectors_back_is_seen_when_the_cache_expires(
    clean_server: ScimServer,
) -> None:
    connector = _connector(clean_server, cache_seconds=0)  # remember nothing
    external_id = connector.create("jsmith", sample_attributes())
    with clean_server.client() as http:
        http.delete(f"/Users/{external_id}").raise_for_status()
    with pytest.raises(NotFoundError):
        connector.add_member("jsmith", "group", "radiology")
    connector.remove_member("jsmith", "group", "radiology")  # absent: success
    connector.close()


def test_list_pages_through_more_users_than_page_size(clean_server: ScimServer) -> None:
    connector = _connector(clean_server, page_size=10)
    for i in range(25):
        connector.create(f"user{i:02d}", sample_attributes(f"2{i:07d}"))
    accounts = list(connector.list())
    assert sorted(a.username for a in accounts) == [f"user{i:02d}" for i in range(25)]
    connector.close()


def test_stopped_server_is_transient() -> None:
    server = start_scim_server()
    connector = ScimConnector(ScimSettings(base_url=server.base_url, timeout=2))
    server.stop()
    with pytest.raises(TransientError, match="unavailable"):
        connector.create("jsmith", sample_attributes())


def test_unreachable_port_is_transient() -> None:
    connector = ScimConnector(ScimSettings(base_url=f"http://127.0.0.1:{free_port()}/v2"))
    with pytest.raises(TransientError):
        connector.read("jsmith")


# -- a stub that answers every request with a fixed failure ---------------------------------


class _Stub:
    def __init__(self, status: int, headers: dict[str, str]) -> None:
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self) -> None:
                stub.seen_auth.append(self.headers.get("Authorization"))
                body = json.dumps(
                    {
                        "schemas": ["urn:ietf:params:scim:api:messages:2.0:Error"],
                        "status": str(status),
                        "detail": "stub",
                    }
                ).encode()
                self.send_response(status)
                for key, value in headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Type", "application/scim+json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _answer

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.seen_auth: list[str | None] = []
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/v2"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def stub_factory() -> Iterator[Any]:
    stubs: list[_Stub] = []

    def make(status: int, headers: dict[str, str] | None = None) -> _Stub:
        stub = _Stub(status, headers or {})
        stubs.append(stub)
        return stub

    yield make
    for stub in stubs:
        stub.stop()


def test_429_is_transient_with_retry_after(stub_factory: Any) -> None:
    stub = stub_factory(429, {"Retry-After": "7"})
    connector = ScimConnector(ScimSettings(base_url=stub.base_url))
    with pytest.raises(TransientError) as caught:
        connector.create("jsmith", sample_attributes())
    assert caught.value.retry_after == 7


def test_503_is_transient_with_retry_after(stub_factory: Any) -> None:
    stub = stub_factory(503, {"Retry-After": "30"})
    with pytest.raises(TransientError) as caught:
        ScimConnector(ScimSettings(base_url=stub.base_url)).read("jsmith")
    assert caught.value.retry_after == 30


def test_500_is_transient(stub_factory: Any) -> None:
    stub = stub_factory(500)
    with pytest.raises(TransientError, match="HTTP 500") as caught:
        ScimConnector(ScimSettings(base_url=stub.base_url)).read("jsmith")
    assert caught.value.retry_after is None


@pytest.mark.parametrize("status", [401, 403])
def test_refused_token_is_permanent_and_never_shown(
    stub_factory: Any, status: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = "s3cret-token-value"
    monkeypatch.setenv("STUB_SCIM_TOKEN", secret)
    stub = stub_factory(status, {"WWW-Authenticate": 'Bearer realm="SCIM"'})
    connector = ScimConnector(ScimSettings(base_url=stub.base_url, token_env="STUB_SCIM_TOKEN"))
    with pytest.raises(PermanentError) as caught:
        connector.create("jsmith", sample_attributes())
    assert not isinstance(caught.value, TransientError)
    assert secret not in str(caught.value)
    assert "STUB_SCIM_TOKEN" in str(caught.value)
    assert stub.seen_auth[0] == f"Bearer {secret}"


def test_wrong_token_against_real_server_is_permanent(
    clean_server: ScimServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WRONG_SCIM_TOKEN", "not-the-token")
    connector = ScimConnector(
        ScimSettings(base_url=clean_server.base_url, token_env="WRONG_SCIM_TOKEN")
    )
    with pytest.raises(PermanentError, match="HTTP 401") as caught:
        connector.read("jsmith")
    assert "not-the-token" not in str(caught.value)


def test_registry_builds_scim_from_settings(
    clean_server: ScimServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    connector = build_connector(
        "portal", "scim", {"base_url": clean_server.base_url, "token_env": TOKEN_ENV}
    )
    assert isinstance(connector, ScimConnector)
    connector.create("jsmith", sample_attributes())
    assert connector.read("jsmith") is not None
    monkeypatch.delenv("SCIM_MISSING", raising=False)
    with pytest.raises(ConfigurationError, match="SCIM_MISSING"):
        build_connector("portal", "scim", {"base_url": "http://x/v2", "token_env": "SCIM_MISSING"})
    with pytest.raises(ConfigurationError, match="unknown setting"):
        build_connector("portal", "scim", {"base_url": "http://x/v2", "tokn": "x"})


def test_a_value_the_scim_schema_refuses_is_permanent_and_nothing_is_sent(
    clean_server: ScimServer,
) -> None:
    connector = _connector(clean_server)
    with pytest.raises(PermanentError, match="invalid SCIM attribute value") as caught:
        connector.create("jsmith", sample_attributes(email="j.smith@example.test"))
    assert not isinstance(caught.value, TransientError)
    assert connector.read("jsmith") is None
