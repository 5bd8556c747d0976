"""The SCIM service provider: auth and isolation, filters as SQL, paging, PATCH, ETags, Bulk,
and HR-owned attributes refused — on SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from pasa.store import schema as s

from .conftest import Org, add_hr_person, token

ENT = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
USER = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP = "urn:ietf:params:scim:schemas:core:2.0:Group"
PATCH = "urn:ietf:params:scim:api:messages:2.0:PatchOp"


def _user(org: Org, user_name: str, **extra: Any) -> dict[str, Any]:
    body = {"schemas": [USER], "userName": user_name, **extra}
    response = org.client.post("/scim/v2/Users", json=body, headers=org.headers)
    assert response.status_code == 201, response.text
    return dict(response.json())


def _names(org: Org, query: str) -> list[str]:
    response = org.client.get("/scim/v2/Users", params={"filter": query}, headers=org.headers)
    assert response.status_code == 200, response.text
    return sorted(r["userName"] for r in response.json()["Resources"])


@pytest.fixture
def people(engine: Engine, rxl: Org) -> dict[str, str]:
    boss = add_hr_person(
        engine,
        "RXL",
        first="Grace",
        last="Hopper",
        email="grace.hopper@nhs.net",
        employee_number="900",
        assignment_number="900-1",
    )
    ada = add_hr_person(
        engine,
        "RXL",
        first="Ada",
        last="Lovelace",
        email="ada.lovelace@nhs.net",
        employee_number="100",
        assignment_number="100-1",
        supervisor="900-1",
    )
    other = add_hr_person(
        engine,
        "RYJ",
        first="Alan",
        last="Turing",
        email="alan.turing@nhs.net",
        employee_number="200",
        assignment_number="200-1",
    )
    _user(
        rxl,
        "bjensen",
        name={"givenName": "Barbara", "familyName": "Jensen"},
        emails=[
            {"value": "bjensen@example.com", "type": "work", "primary": True},
            {"value": "babs@home.example", "type": "home"},
        ],
        active=True,
    )
    _user(
        rxl,
        "jsmith",
        emails=[{"value": "jsmith@home.example", "type": "home"}],
        active=False,
    )
    return {"boss": boss, "ada": ada, "other": other}


# --- auth ----------------------------------------------------------------------------------


def test_no_token_is_401_and_wrong_scope_is_403(engine: Engine, rxl: Org) -> None:
    client = rxl.client
    assert client.get("/scim/v2/Users").status_code == 401
    api_only = token(engine, "RXL", ["api:read"])
    refused = client.get("/scim/v2/Users", headers={"Authorization": f"Bearer {api_only}"})
    assert refused.status_code == 403
    assert refused.json()["schemas"] == ["urn:ietf:params:scim:api:messages:2.0:Error"]
    # Discovery is public (RFC 7644 §4).
    assert client.get("/scim/v2/ServiceProviderConfig").status_code == 200


def test_another_organisations_resources_are_not_found(
    rxl: Org, ryj: Org, people: dict[str, str]
) -> None:
    assert (
        rxl.client.get(f"/scim/v2/Users/{people['other']}", headers=rxl.headers).status_code == 404
    )
    assert ryj.client.get(f"/scim/v2/Users/{people['ada']}", headers=ryj.headers).status_code == 404
    listed = ryj.client.get("/scim/v2/Users", headers=ryj.headers).json()
    assert [r["id"] for r in listed["Resources"]] == [people["other"]]
    group = rxl.client.post(
        "/scim/v2/Groups", json={"schemas": [GROUP], "displayName": "Ward 1"}, headers=rxl.headers
    ).json()
    assert ryj.client.get(f"/scim/v2/Groups/{group['id']}", headers=ryj.headers).status_code == 404
    gone = ryj.client.delete(f"/scim/v2/Groups/{group['id']}", headers=ryj.headers)
    assert gone.status_code == 404
    # Another organisation's person cannot be made a member either.
    refused = rxl.client.patch(
        f"/scim/v2/Groups/{group['id']}",
        json={
            "schemas": [PATCH],
            "Operations": [{"op": "add", "path": "members", "value": [{"value": people["other"]}]}],
        },
        headers=rxl.headers,
    )
    assert refused.status_code == 400 and refused.json()["scimType"] == "invalidValue"


# --- reading HR users -----------------------------------------------------------------------


def test_hr_user_has_the_enterprise_extension(rxl: Org, people: dict[str, str]) -> None:
    doc = rxl.client.get(f"/scim/v2/Users/{people['ada']}", headers=rxl.headers).json()
    assert doc["userName"] == "ada.lovelace@nhs.net"
    assert doc["active"] is True
    ent = doc[ENT]
    assert ent["employeeNumber"] == "100"
    assert ent["department"] == "Intensive Care"
    assert ent["organization"] == "Blackpool Teaching Hospitals"
    assert ent["manager"]["value"] == people["boss"]


# --- filters ----------------------------------------------------------------------------------


def test_filters_are_answered_by_sql(rxl: Org, people: dict[str, str]) -> None:
    assert _names(rxl, 'userName eq "BJENSEN"') == ["bjensen"]
    assert _names(rxl, 'userName co "lovelace"') == ["ada.lovelace@nhs.net"]
    assert _names(rxl, 'userName sw "j"') == ["jsmith"]
    assert _names(rxl, "name.givenName pr") == [
        "ada.lovelace@nhs.net",
        "bjensen",
        "grace.hopper@nhs.net",
    ]
    assert _names(rxl, 'userName sw "b" or userName sw "g"') == ["bjensen", "grace.hopper@nhs.net"]
    assert _names(rxl, 'active eq true and emails.type eq "home"') == ["bjensen"]
    assert _names(rxl, 'emails[type eq "work" and value co "@nhs.net"]') == [
        "ada.lovelace@nhs.net",
        "grace.hopper@nhs.net",
    ]
    assert _names(rxl, 'emails[type eq "home" and value ew ".example"]') == ["bjensen", "jsmith"]
    assert _names(rxl, f'{ENT}:employeeNumber eq "900"') == ["grace.hopper@nhs.net"]
    assert _names(rxl, "not (active eq true)") == ["jsmith"]
    assert _names(rxl, 'userName co "100%"') == []  # LIKE wildcards are escaped


@pytest.mark.parametrize(
    ("query", "says"),
    [
        ('nickName eq "x"', "nickName"),
        ('userName eq "x', "not valid SCIM filter syntax"),
        ("active gt true", "boolean"),
        ('meta.lastModified gt "yesterday"', "not a dateTime"),
    ],
)
def test_a_bad_filter_is_400_invalid_filter(
    rxl: Org, people: dict[str, str], query: str, says: str
) -> None:
    response = rxl.client.get("/scim/v2/Users", params={"filter": query}, headers=rxl.headers)
    assert response.status_code == 400
    body = response.json()
    assert body["scimType"] == "invalidFilter"
    assert says in body["detail"]


def test_pagination_and_sorting(rxl: Org, people: dict[str, str]) -> None:
    def page(**params: Any) -> dict[str, Any]:
        return dict(rxl.client.get("/scim/v2/Users", params=params, headers=rxl.headers).json())

    first = page(sortBy="userName", startIndex=1, count=2)
    assert first["totalResults"] == 4 and first["itemsPerPage"] == 2
    assert [r["userName"] for r in first["Resources"]] == ["ada.lovelace@nhs.net", "bjensen"]
    rest = page(sortBy="userName", startIndex=3, count=2)
    assert [r["userName"] for r in rest["Resources"]] == ["grace.hopper@nhs.net", "jsmith"]
    descending = page(sortBy="userName", sortOrder="descending", count=1)
    assert descending["Resources"][0]["userName"] == "jsmith"
    huge = page(count=100000)
    assert huge["itemsPerPage"] == 4  # bounded by filter.maxResults (200)
    only = page(attributes="userName", count=1)["Resources"][0]
    assert set(only) <= {"id", "schemas", "userName"}


# --- groups and PATCH ---------------------------------------------------------------------------


def test_patch_members_with_paths_and_filters(
    engine: Engine, rxl: Org, people: dict[str, str]
) -> None:
    group = rxl.client.post(
        "/scim/v2/Groups",
        json={
            "schemas": [GROUP],
            "displayName": "ICU nurses",
            "members": [{"value": people["ada"]}],
        },
        headers=rxl.headers,
    ).json()
    url = f"/scim/v2/Groups/{group['id']}"

    def patch(*ops: dict[str, Any]) -> Any:
        return rxl.client.patch(
            url, json={"schemas": [PATCH], "Operations": list(ops)}, headers=rxl.headers
        )

    added = patch({"op": "add", "path": "members", "value": [{"value": people["boss"]}]})
    assert added.status_code == 200, added.text
    assert {m["value"] for m in added.json()["members"]} == {people["ada"], people["boss"]}
    removed = patch({"op": "remove", "path": f'members[value eq "{people["ada"]}"]'})
    assert [m["value"] for m in removed.json()["members"]] == [people["boss"]]
    renamed = patch({"op": "replace", "path": "displayName", "value": "ICU team"})
    assert renamed.json()["displayName"] == "ICU team"
    found = rxl.client.get(
        "/scim/v2/Groups",
        params={"filter": f'members[value eq "{people["boss"]}"]'},
        headers=rxl.headers,
    ).json()
    assert [g["id"] for g in found["Resources"]] == [group["id"]]
    user = rxl.client.get(f"/scim/v2/Users/{people['boss']}", headers=rxl.headers).json()
    assert [g["display"] for g in user["groups"]] == ["ICU team"]
    with engine.connect() as conn:
        actions = list(
            conn.execute(
                sa.select(s.audit_log.c.action, s.audit_log.c.actor).where(
                    s.audit_log.c.action.like("scim.group%")
                )
            )
        )
    assert [a for a, _ in actions] == ["scim.group.created"] + ["scim.group.replaced"] * 3
    assert all(actor.startswith("token:") for _, actor in actions)


# --- ETags --------------------------------------------------------------------------------------


def test_etags_give_304_and_412(rxl: Org) -> None:
    created = _user(rxl, "etag.user")
    url = f"/scim/v2/Users/{created['id']}"
    got = rxl.client.get(url, headers=rxl.headers)
    tag = got.headers["etag"]
    assert tag == created["meta"]["version"]
    assert rxl.client.get(url, headers={**rxl.headers, "If-None-Match": tag}).status_code == 304
    changed = rxl.client.put(
        url,
        json={"schemas": [USER], "userName": "etag.user", "displayName": "E"},
        headers={**rxl.headers, "If-Match": tag},
    )
    assert changed.status_code == 200 and changed.headers["etag"] != tag
    stale = rxl.client.patch(
        url,
        json={
            "schemas": [PATCH],
            "Operations": [{"op": "replace", "path": "displayName", "value": "F"}],
        },
        headers={**rxl.headers, "If-Match": tag},
    )
    assert stale.status_code == 412
    assert rxl.client.delete(url, headers={**rxl.headers, "If-Match": tag}).status_code == 412
    assert rxl.client.delete(url, headers=rxl.headers).status_code == 204
    assert rxl.client.get(url, headers=rxl.headers).status_code == 404


# --- Bulk -----------------------------------------------------------------------------------------


def test_bulk_resolves_bulk_ids(rxl: Org) -> None:
    config = rxl.client.get("/scim/v2/ServiceProviderConfig").json()
    assert config["bulk"]["maxOperations"] == 100 and config["bulk"]["maxPayloadSize"] > 0
    body = {
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:BulkRequest"],
        "Operations": [
            # The group refers to a user created later in the same request.
            {
                "method": "POST",
                "path": "/Groups",
                "bulkId": "g1",
                "data": {
                    "schemas": [GROUP],
                    "displayName": "Bulk group",
                    "members": [{"type": "User", "value": "bulkId:u1"}],
                },
            },
            {
                "method": "POST",
                "path": "/Users",
                "bulkId": "u1",
                "data": {"schemas": [USER], "userName": "bulk.user"},
            },
            {
                "method": "POST",
                "path": "/Users",
                "bulkId": "u2",
                "data": {"schemas": [USER], "userName": "bulk.user"},
            },
        ],
    }
    response = rxl.client.post("/scim/v2/Bulk", json=body, headers=rxl.headers)
    assert response.status_code == 200, response.text
    ops = {o["bulkId"]: o for o in response.json()["Operations"]}
    assert ops["u1"]["status"] == "201" and ops["g1"]["status"] == "201"
    assert ops["u2"]["status"] == "409"  # userName already taken
    group = rxl.client.get(ops["g1"]["location"], headers=rxl.headers).json()
    user = rxl.client.get(ops["u1"]["location"], headers=rxl.headers).json()
    assert [m["value"] for m in group["members"]] == [user["id"]]
    too_many = rxl.client.post(
        "/scim/v2/Bulk",
        json={"Operations": [{"method": "DELETE", "path": "/Users/x"}] * 101},
        headers=rxl.headers,
    )
    assert too_many.status_code == 413


# --- HR-owned attributes ----------------------------------------------------------------------


def test_changing_hr_owned_attributes_is_refused(rxl: Org, people: dict[str, str]) -> None:
    url = f"/scim/v2/Users/{people['ada']}"
    response = rxl.client.patch(
        url,
        json={
            "schemas": [PATCH],
            "Operations": [{"op": "replace", "path": "name.familyName", "value": "Byron"}],
        },
        headers=rxl.headers,
    )
    assert response.status_code == 400
    assert response.json()["scimType"] == "mutability"
    assert "name" in response.json()["detail"]
    current = rxl.client.get(url, headers=rxl.headers).json()
    assert current["name"]["familyName"] == "Lovelace"
    put = rxl.client.put(
        url, json={"schemas": [USER], "userName": "someone.else"}, headers=rxl.headers
    )
    assert put.status_code == 400 and put.json()["scimType"] == "mutability"
    assert rxl.client.delete(url, headers=rxl.headers).json()["scimType"] == "mutability"
