"""Access requests in the API tests' two-organisation world (see ``api_world``)."""

from __future__ import annotations

from api_world import NOW, POLICY, World

from pasa.domain.access import Principal
from pasa.policy.document import parse_policy
from pasa.service import access_requests
from pasa.store.policy_repo import load_active_policy, save_policy

# A catalogue for the world: a group on "ad" needing the line manager, then the system owner.
CATALOGUE = """
requestable:
  - key: research
    target: ad
    kind: group
    value: research
    approvers: [line_manager, system_owner]
    sla_hours: 24
"""
REQUESTER = "requester@nhs.net"  # nobody the matrix signs in as


def with_catalogue(world: World) -> None:
    with world.engine.begin() as conn:
        if not load_active_policy(conn).requestable:
            save_policy(conn, parse_policy(POLICY + CATALOGUE, "tests"), source="t", actor="t")


def new_request(world: World, org: str) -> int:
    """A request for the person of ``org``, waiting for their line manager."""
    with_catalogue(world)
    view = access_requests.submit(
        world.engine,
        Principal(REQUESTER),
        person_id=world.people[org],
        item_key="research",
        justification="research project",
        valid_from=None,
        valid_to=None,
        now=NOW,
        today=NOW.date(),
    )
    return view.id
