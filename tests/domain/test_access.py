"""The authorization decision: every role, action and own or other organisation, and properties."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pasa.domain.access import (
    READS,
    ROLE_ACTIONS,
    SCOPE_ACTIONS,
    Action,
    Binding,
    Principal,
    Resource,
    Role,
    Scope,
    decide,
    parse_scopes,
)

OWN, OTHER = "RXL", "RYJ"
ME, REPORT, STRANGER = 1, 2, 3

ADMIN = Principal("root@nhs.net", bindings=frozenset({Binding(Role.PLATFORM_ADMIN)}))
IDENTITY_TEAM = Principal("it@nhs.net", bindings=frozenset({Binding(Role.ORG_ADMIN, OWN)}))
AUDITOR = Principal("audit@nhs.net", bindings=frozenset({Binding(Role.AUDITOR, OWN)}))
OWNER = Principal(
    "pacs.owner@nhs.net", bindings=frozenset({Binding(Role.SYSTEM_OWNER, OWN, "pacs")})
)
MANAGER = Principal(
    "ward.manager@nhs.net",
    person_id=ME,
    person_organisations=frozenset({OWN}),
    reports={REPORT: frozenset({OWN})},
)
STAFF = Principal("nurse@nhs.net", person_id=REPORT, person_organisations=frozenset({OWN}))
SCIM_TOKEN = Principal(
    "token:1", scopes=frozenset({Scope.SCIM}), token_organisation=OWN, display_name="scim"
)

WRITES = frozenset(Action) - READS


def expected(who: str, action: Action, org: str, person: int | None, target: str | None) -> int:
    """The designed answer, written out case by case (the matrix the tests check)."""
    if who == "admin":
        return 200
    if org == OTHER:
        return 404
    if who == "identity_team":
        return 200
    if who == "auditor":
        return 200 if action in READS else 403
    if who == "owner":
        if target == "pacs" and action in ROLE_ACTIONS[Role.SYSTEM_OWNER]:
            return 200
        return 403
    if who == "scim_token":
        return 200 if action in (Action.SCIM_READ, Action.SCIM_WRITE) else 403
    own_person = {"manager": ME, "staff": REPORT}[who]
    if person == own_person and action in ROLE_ACTIONS[Role.STAFF]:
        return 200
    if who == "manager" and person == REPORT and action in ROLE_ACTIONS[Role.LINE_MANAGER]:
        return 200
    if person is not None and person not in (own_person, REPORT if who == "manager" else None):
        return 404
    return 403


PRINCIPALS = {
    "admin": ADMIN,
    "identity_team": IDENTITY_TEAM,
    "auditor": AUDITOR,
    "owner": OWNER,
    "manager": MANAGER,
    "staff": STAFF,
    "scim_token": SCIM_TOKEN,
}
RESOURCES = [
    pytest.param(org, person, target, id=f"{org}-person{person}-{target}")
    for org in (OWN, OTHER)
    for person, target in ((ME, None), (REPORT, None), (STRANGER, None), (None, "pacs"))
]


@pytest.mark.parametrize("who", sorted(PRINCIPALS))
@pytest.mark.parametrize("action", sorted(Action))
@pytest.mark.parametrize(("org", "person", "target"), RESOURCES)
def test_matrix(who: str, action: Action, org: str, person: int | None, target: str | None) -> None:
    decision = decide(PRINCIPALS[who], action, Resource.of(org, person_id=person, target=target))
    assert decision.status == expected(who, action, org, person, target), decision.reason
    assert decision.reason


def test_system_owner_approves_for_their_system_only() -> None:
    assert decide(OWNER, Action.APPROVE_ACCESS, Resource.of(OWN, target="pacs"))
    refused = decide(OWNER, Action.APPROVE_ACCESS, Resource.of(OWN, target="email"))
    assert refused.status == 403
    assert "approve" in refused.reason


def test_staff_and_managers_may_list_their_people_but_not_manage() -> None:
    assert decide(STAFF, Action.READ_PEOPLE).allowed
    assert decide(MANAGER, Action.READ_ACCESS).allowed
    assert decide(STAFF, Action.READ_AUDIT).status == 403
    assert decide(MANAGER, Action.MANAGE_POLICY).status == 403


def test_a_manager_reaches_a_report_in_another_organisation_only_through_that_report() -> None:
    manager = Principal(
        "m@nhs.net",
        person_id=ME,
        person_organisations=frozenset({OWN}),
        reports={REPORT: frozenset({OTHER})},
    )
    assert decide(manager, Action.READ_ACCESS, Resource.of(OTHER, person_id=REPORT))
    assert decide(manager, Action.READ_ACCESS, Resource.of(OTHER, person_id=STRANGER)).status == 404


def test_scopes_parse_with_a_clear_error() -> None:
    assert parse_scopes(["scim", " api:read"]) == {Scope.SCIM, Scope.API_READ}
    with pytest.raises(ValueError, match=r"unknown scope 'admin'.*scim, api:read"):
        parse_scopes(["admin"])
    with pytest.raises(ValueError, match="at least one scope"):
        parse_scopes([])


orgs = st.sampled_from(["RXL", "RYJ", "R1H", "RRK"])
bindings = st.builds(
    Binding,
    st.sampled_from([Role.ORG_ADMIN, Role.AUDITOR, Role.SYSTEM_OWNER]),
    orgs,
    st.sampled_from([None, "pacs", "email"]),
)
users = st.builds(
    Principal,
    st.just("someone@nhs.net"),
    person_id=st.none() | st.integers(1, 5),
    person_organisations=st.frozensets(orgs, max_size=2),
    bindings=st.frozensets(bindings, max_size=3),
    reports=st.dictionaries(st.integers(1, 5), st.frozensets(orgs, min_size=1, max_size=2)),
)
tokens = st.builds(
    Principal,
    st.just("token:9"),
    scopes=st.frozensets(st.sampled_from(list(Scope)), min_size=1),
    token_organisation=orgs,
)
resources = st.builds(
    Resource,
    st.frozensets(orgs, min_size=1, max_size=2),
    st.none() | st.integers(1, 5),
    st.none() | st.sampled_from(["pacs", "email"]),
)


@given(principal=users | tokens, action=st.sampled_from(list(Action)), resource=resources)
def test_nothing_is_allowed_outside_ones_organisations(
    principal: Principal, action: Action, resource: Resource
) -> None:
    decision = decide(principal, action, resource)
    visible = principal.organisations()
    assert visible is not None
    if not resource.organisations & visible:
        assert decision.status == 404


@given(principal=users, action=st.sampled_from(sorted(WRITES)), resource=resources)
def test_auditors_and_staff_never_change_anything_but_their_requests(
    principal: Principal, action: Action, resource: Resource
) -> None:
    powerless = Principal(
        principal.subject,
        person_id=principal.person_id,
        person_organisations=principal.person_organisations,
        bindings=frozenset(Binding(Role.AUDITOR, b.organisation) for b in principal.bindings),
    )
    decision = decide(powerless, action, resource)
    if decision.allowed:
        assert action is Action.REQUEST_ACCESS
        assert resource.person_id == principal.person_id


@given(principal=tokens, action=st.sampled_from(list(Action)), resource=resources)
def test_a_token_does_only_what_its_scopes_say(
    principal: Principal, action: Action, resource: Resource
) -> None:
    assert principal.scopes is not None
    allowed_by_scope = any(action in SCOPE_ACTIONS[s] for s in principal.scopes)
    if decide(principal, action, resource).allowed:
        assert allowed_by_scope
        assert principal.token_organisation in resource.organisations
