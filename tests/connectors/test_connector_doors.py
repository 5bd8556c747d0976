"""The door connector passes the conformance kit against a vendor-style REST simulator.

The simulator (:mod:`tests.connectors.door_simulator`) is a FastAPI app run by uvicorn in its
own process on a free port, once per module; ``POST /__reset`` gives each test a fresh state
with the pre-created access-group catalogue.

Door systems hold door zones only, so the kit tests that use ``group`` / ``app_role``
memberships are repeated here with ``door_zone`` memberships (same steps, same assertions);
that the other kinds are refused is tested separately.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from datetime import UTC, date, datetime
from typing import Any

import pytest
from door_simulator import (
    API_KEY,
    API_KEY_ENV,
    CATALOGUE,
    DoorSimulator,
    free_port,
    start_door_simulator,
)
from sqlalchemy.engine import Engine

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
from pasa.connectors.doors import DoorConnector, DoorSettings, door_validity
from pasa.connectors.kit import ConnectorContract, sample_attributes
from pasa.domain.errors import ConfigurationError
from pasa.domain.operations import OperationKind, PlannedOperation
from pasa.engine import ledger
from pasa.engine.worker import run_pending
from pasa.store.schema import person, target


@pytest.fixture(scope="module")
def simulator() -> Iterator[DoorSimulator]:
    server = start_door_simulator()
    yield server
    server.stop()


@pytest.fixture
def clean(simulator: DoorSimulator, monkeypatch: pytest.MonkeyPatch) -> DoorSimulator:
    monkeypatch.setenv(API_KEY_ENV, API_KEY)
    simulator.reset()
    return simulator


def _connector(server: DoorSimulator, **overrides: Any) -> DoorConnector:
    settings = DoorSettings(base_url=server.base_url, api_key_env=API_KEY_ENV)
    return DoorConnector(dataclasses.replace(settings, **overrides), name="estates-doors")


def _holder(server: DoorSimulator, external_id: str) -> dict[str, Any]:
    with server.client() as http:
        response = http.get(f"/api/cardholders/{external_id}")
        response.raise_for_status()
        body: dict[str, Any] = response.json()
        return body


class TestDoorConnector(ConnectorContract):
    @pytest.fixture
    def connector(self, clean: DoorSimulator) -> Iterator[Connector]:
        connector = _connector(clean)
        yield connector
        connector.close()

    # The kit's membership tests with door_zone memberships (the kit uses group/app_role).

    def test_rename_keeps_account_and_memberships(self, connector: Connector) -> None:
        external_id = connector.create("jsmith", sample_attributes())
        connector.add_member("jsmith", "door_zone", "radiology")
        connector.rename("jsmith", "jjones")
        connector.rename("jsmith", "jjones")  # repeat
        assert connector.read("jsmith") is None
        account = connector.read("jjones")
        assert account is not None
        assert account.external_id == external_id
        assert account.memberships == {("door_zone", "radiology")}

    def test_recreate_after_delete_starts_clean(self, connector: Connector) -> None:
        connector.create("jsmith", sample_attributes())
        connector.add_member("jsmith", "door_zone", "radiology")
        connector.delete("jsmith")
        connector.create("jsmith", sample_attributes())
        account = connector.read("jsmith")
        assert account is not None and account.memberships == frozenset()

    def test_memberships_add_and_remove_idempotently(self, connector: Connector) -> None:
        connector.create("jsmith", sample_attributes())
        connector.add_member("jsmith", "door_zone", "radiology")
        connector.add_member("jsmith", "door_zone", "radiology")
        connector.add_member("jsmith", "door_zone", "pharmacy-store")
        account = connector.read("jsmith")
        assert account is not None
        assert account.memberships == {
            ("door_zone", "radiology"),
            ("door_zone", "pharmacy-store"),
        }
        connector.remove_member("jsmith", "door_zone", "radiology")
        connector.remove_member("jsmith", "door_zone", "radiology")
        connector.remove_member("jsmith", "door_zone", "maternity")  # never held
        account = connector.read("jsmith")
        assert account is not None
        assert account.memberships == {("door_zone", "pharmacy-store")}

    def test_memberships_are_per_account(self, connector: Connector) -> None:
        connector.create("jsmith", sample_attributes("11111111"))
        connector.create("jjones", sample_attributes("22222222"))
        connector.add_member("jsmith", "door_zone", "radiology")
        account = connector.read("jjones")
        assert account is not None and account.memberships == frozenset()

    def test_add_member_to_absent_account_is_not_found(self, connector: Connector) -> None:
        with pytest.raises(NotFoundError):
            connector.add_member("nobody", "door_zone", "radiology")

    def test_remove_member_of_absent_account_succeeds(self, connector: Connector) -> None:
        connector.remove_member("nobody", "door_zone", "radiology")

    def test_list_returns_every_account(self, connector: Connector) -> None:
        for i in range(5):
            connector.create(f"user{i}", sample_attributes(f"1000000{i}"))
        connector.add_member("user3", "door_zone", "theatres")
        accounts = {a.username: a for a in connector.list()}
        assert set(accounts) == {f"user{i}" for i in range(5)}
        assert accounts["user3"].memberships == {("door_zone", "theatres")}
        assert accounts["user0"].attributes["employee_number"] == "10000000"


def test_declares_every_capability(clean: DoorSimulator) -> None:
    assert _connector(clean).capabilities == ALL_CAPABILITIES | {Capability.VALIDITY_DATES}
    assert Capability.VALIDITY_DATES in _connector(clean).capabilities


def test_worker_sends_a_dated_door_zone_and_a_new_date_updates_it(
    clean: DoorSimulator, engine: Engine
) -> None:
    """A membership operation's valid_from / valid_to arrive in the door system."""
    at = datetime(2026, 8, 5, 7, 0, tzinfo=UTC)
    with engine.begin() as conn:
        conn.execute(
            target.insert().values(
                key="estates-doors",
                name="Doors",
                connector="door_system",
                settings={},
                username_template="{employee_number}",
            )
        )
        conn.execute(
            person.insert().values(
                id=1,
                uid="00000000-0000-0000-0000-000000000001",
                first_name="Jane",
                last_name="Smith",
                created_at=at,
                updated_at=at,
            )
        )

    def _record(plan_id: str, *ops: PlannedOperation) -> None:
        with engine.begin() as conn:
            ledger.record_plan(conn, ops, plan_id=plan_id, actor="tester", now=at)

    def _zone(**dates: str) -> PlannedOperation:
        payload = {"kind": "door_zone", "value": "theatres", **dates}
        return PlannedOperation(OperationKind.ADD_MEMBERSHIP, 1, "estates-doors", "jsmith", payload)

    create = PlannedOperation(
        OperationKind.CREATE_ACCOUNT,
        1,
        "estates-doors",
        "jsmith",
        {"attributes": sample_attributes()},
    )
    _record("p1", create, _zone(valid_from="2026-09-01"))
    connector = _connector(clean)
    report = run_pending(engine, {"estates-doors": connector}, now=lambda: at)
    assert (report.succeeded, report.parked, report.retried) == (2, 0, 0)
    remote = connector.read("jsmith")
    assert remote is not None
    (entry,) = _holder(clean, remote.external_id)["accessGroups"]
    assert entry["accessGroup"]["name"] == "theatres"
    assert (entry["from"], entry["until"]) == ("2026-09-01T00:00:00+00:00", None)

    # Re-adding the membership with new dates updates them: one entry, never two.
    _record("p2", _zone(valid_from="2026-09-01", valid_to="2027-03-31"))
    assert run_pending(engine, {"estates-doors": connector}, now=lambda: at).succeeded == 1
    (entry,) = _holder(clean, remote.external_id)["accessGroups"]
    assert (entry["from"], entry["until"]) == (
        "2026-09-01T00:00:00+00:00",
        "2027-03-31T00:00:00+00:00",
    )
    connector.close()


def test_attributes_land_in_the_cardholder(clean: DoorSimulator) -> None:
    connector = _connector(clean)
    external_id = connector.create("jsmith", sample_attributes(job_title="Porter"))
    holder = _holder(clean, external_id)
    assert holder["firstName"] == "Jane"
    assert holder["lastName"] == "Smith"
    assert holder["division"] == "Radiology"
    assert holder["authorised"] is True
    assert holder["personalDataFields"] == {
        "pasaUsername": "jsmith",
        "employeeNumber": "12345678",
        "displayName": "Jane Smith",
        "email": "jane.smith@nhs.net",
        "organisation": "RXX",
        "jobTitle": "Porter",
    }


def test_disable_bars_the_cardholder(clean: DoorSimulator) -> None:
    connector = _connector(clean)
    external_id = connector.create("jsmith", sample_attributes())
    connector.disable("jsmith")
    assert _holder(clean, external_id)["authorised"] is False
    connector.enable("jsmith")
    assert _holder(clean, external_id)["authorised"] is True


def test_door_zone_validity_is_stored_and_updated(clean: DoorSimulator) -> None:
    connector = _connector(clean)
    external_id = connector.create("jsmith", sample_attributes())
    start = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)
    connector.add_member("jsmith", "door_zone", "theatres", valid_from=start, valid_to="2027-03-31")
    connector.add_member("jsmith", "door_zone", "wards")
    entries = {e["accessGroup"]["name"]: e for e in _holder(clean, external_id)["accessGroups"]}
    assert entries["theatres"]["from"] == "2026-12-01T08:00:00+00:00"
    assert entries["theatres"]["until"] == "2027-03-31T00:00:00+00:00"
    assert entries["wards"]["from"] is None and entries["wards"]["until"] is None
    # same validity again: nothing changes; new validity: the entry is updated, not doubled
    connector.add_member("jsmith", "door_zone", "theatres", valid_from=start, valid_to="2027-03-31")
    connector.add_member("jsmith", "door_zone", "theatres", valid_to=date(2027, 6, 30))
    groups = _holder(clean, external_id)["accessGroups"]
    theatres = [e for e in groups if e["accessGroup"]["name"] == "theatres"]
    assert len(theatres) == 1
    assert theatres[0]["from"] is None
    assert theatres[0]["until"] == "2027-06-30T00:00:00+00:00"


def test_door_validity_from_payload() -> None:
    assert door_validity({"kind": "door_zone", "value": "wards"}) == (None, None)
    assert door_validity({"valid_from": "2026-01-01T09:00:00Z"}) == (
        "2026-01-01T09:00:00+00:00",
        None,
    )
    with pytest.raises(PermanentError, match="before it starts"):
        door_validity({"valid_from": "2026-02-01", "valid_to": "2026-01-01"})
    with pytest.raises(PermanentError, match="ISO 8601"):
        door_validity({"valid_until": "next Tuesday"})  # older name of valid_to


def test_unknown_zone_is_permanent_naming_it_and_the_known_ones(clean: DoorSimulator) -> None:
    connector = _connector(clean)
    connector.create("jsmith", sample_attributes())
    with pytest.raises(PermanentError) as caught:
        connector.add_member("jsmith", "door_zone", "helipad")
    message = str(caught.value)
    assert not isinstance(caught.value, NotFoundError)
    assert "'helipad'" in message
    shown = sorted(CATALOGUE)[:10]
    assert all(name in message for name in shown)
    assert sorted(CATALOGUE)[-1] not in message  # truncated
    assert f"({len(CATALOGUE)} in all)" in message


def test_zone_added_to_the_catalogue_later_is_found(clean: DoorSimulator) -> None:
    connector = _connector(clean)
    connector.create("jsmith", sample_attributes())
    connector.add_member("jsmith", "door_zone", "wards")  # catalogue now cached
    with clean.client() as http:
        http.post("/api/access_groups", json={"name": "helipad"}).raise_for_status()
    connector.add_member("jsmith", "door_zone", "helipad")
    account = connector.read("jsmith")
    assert account is not None
    assert account.memberships == {("door_zone", "wards"), ("door_zone", "helipad")}


def test_zones_mapping_translates_both_ways(clean: DoorSimulator) -> None:
    connector = _connector(clean, zones={"theatre-suite": "theatres", "ward-7": "wards"})
    external_id = connector.create("jsmith", sample_attributes())
    connector.add_member("jsmith", "door_zone", "theatre-suite")
    groups = _holder(clean, external_id)["accessGroups"]
    assert [e["accessGroup"]["name"] for e in groups] == ["theatres"]
    account = connector.read("jsmith")
    assert account is not None and account.memberships == {("door_zone", "theatre-suite")}
    with pytest.raises(PermanentError, match=r"'theatres' is not mapped.*theatre-suite, ward-7"):
        connector.add_member("jsmith", "door_zone", "theatres")


@pytest.mark.parametrize("kind", ["group", "app_role"])
def test_other_membership_kinds_are_refused(clean: DoorSimulator, kind: str) -> None:
    connector = _connector(clean)
    connector.create("jsmith", sample_attributes())
    for call in (connector.add_member, connector.remove_member):
        with pytest.raises(PermanentError, match="door systems hold door zones only"):
            call("jsmith", kind, "radiology")


def test_list_follows_next_links(clean: DoorSimulator) -> None:
    connector = _connector(clean, page_size=4)
    for i in range(11):
        connector.create(f"user{i:02d}", sample_attributes(f"3{i:07d}"))
    with clean.client() as http:  # a cardholder PASA does not manage (no pasaUsername)
        http.post("/api/cardholders", json={"firstName": "Contractor", "lastName": "Visitor"})
    assert sorted(a.username for a in connector.list()) == [f"user{i:02d}" for i in range(11)]


def test_rename_onto_taken_username_conflicts_and_create_keeps_owner(clean: DoorSimulator) -> None:
    connector = _connector(clean)
    connector.create("jsmith", sample_attributes("11111111"))
    with pytest.raises(ConflictError):
        connector.create("jsmith", sample_attributes("22222222"))
    connector.disable("jsmith")
    connector.create("jsmith", sample_attributes("11111111"))  # the same person again
    account = connector.read("jsmith")
    assert account is not None and account.enabled is True


def test_429_with_retry_after_is_transient(clean: DoorSimulator) -> None:
    connector = _connector(clean)
    clean.fail_next(429, {"Retry-After": "7"})
    with pytest.raises(TransientError, match="HTTP 429") as caught:
        connector.create("jsmith", sample_attributes())
    assert caught.value.retry_after == 7
    connector.create("jsmith", sample_attributes())  # the retry succeeds


def test_5xx_is_transient(clean: DoorSimulator) -> None:
    clean.fail_next(500)
    with pytest.raises(TransientError, match="HTTP 500") as caught:
        _connector(clean).read("jsmith")
    assert caught.value.retry_after is None


def test_404_from_the_server_is_not_found(clean: DoorSimulator) -> None:
    connector = _connector(clean)
    connector.create("jsmith", sample_attributes())
    clean.fail_next(404)
    with pytest.raises(NotFoundError):
        connector.read("jsmith")


def test_stopped_simulator_is_transient(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(API_KEY_ENV, API_KEY)
    server = start_door_simulator()
    connector = _connector(server, timeout=2.0)
    connector.create("jsmith", sample_attributes())
    server.stop()
    with pytest.raises(TransientError, match="unavailable"):
        connector.disable("jsmith")


def test_unreachable_port_is_transient(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(API_KEY_ENV, API_KEY)
    connector = DoorConnector(
        DoorSettings(base_url=f"http://127.0.0.1:{free_port()}", api_key_env=API_KEY_ENV)
    )
    with pytest.raises(TransientError):
        connector.read("jsmith")


@pytest.mark.parametrize("status", [401, 403])
def test_refused_key_is_permanent_and_never_shown(
    clean: DoorSimulator, monkeypatch: pytest.MonkeyPatch, status: int
) -> None:
    secret = "wrong-door-key-7781"
    monkeypatch.setenv("WRONG_DOOR_KEY", secret)
    connector = _connector(clean, api_key_env="WRONG_DOOR_KEY")
    if status == 403:
        clean.fail_next(403)
    with pytest.raises(PermanentError, match=f"HTTP {status}") as caught:
        connector.create("jsmith", sample_attributes())
    assert not isinstance(caught.value, TransientError)
    assert secret not in str(caught.value)
    assert API_KEY not in str(caught.value)
    assert "WRONG_DOOR_KEY" in str(caught.value)


def test_missing_key_variable_is_permanent(
    clean: DoorSimulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("NO_SUCH_DOOR_KEY", raising=False)
    with pytest.raises(PermanentError, match="NO_SUCH_DOOR_KEY"):
        _connector(clean, api_key_env="NO_SUCH_DOOR_KEY").read("jsmith")


def test_registry_builds_door_system(clean: DoorSimulator, monkeypatch: pytest.MonkeyPatch) -> None:
    connector = build_connector(
        "estates", "door_system", {"base_url": clean.base_url, "api_key_env": API_KEY_ENV}
    )
    assert isinstance(connector, DoorConnector)
    connector.create("jsmith", sample_attributes())
    assert connector.read("jsmith") is not None
    monkeypatch.delenv("DOOR_MISSING", raising=False)
    with pytest.raises(ConfigurationError, match="DOOR_MISSING"):
        build_connector(
            "estates", "door_system", {"base_url": "http://x", "api_key_env": "DOOR_MISSING"}
        )
    with pytest.raises(ConfigurationError, match="unknown setting"):
        build_connector("estates", "door_system", {"base_url": "http://x", "api_key": "x"})
    # PASA's own pacing setting never reaches the connector, but a bad value is refused.
    paced = {"base_url": clean.base_url, "api_key_env": API_KEY_ENV, "rate_per_minute": 20}
    assert isinstance(build_connector("estates", "door_system", paced), DoorConnector)
    with pytest.raises(ConfigurationError, match="rate_per_minute"):
        build_connector("estates", "door_system", {**paced, "rate_per_minute": 0})
