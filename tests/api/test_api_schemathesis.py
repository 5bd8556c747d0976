"""Property-based: schemathesis drives every /api/v1 operation from the OpenAPI document.

With a token holding api:read and api:write, generated requests (valid and invalid) must
never cause a 5xx, and every response must match the schema the document promises for its
status and content type. Bounded: a few examples per operation, no per-example deadline.
"""

from __future__ import annotations

import schemathesis
from api_world import OWN, World, build_app
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)
from sqlalchemy.engine import Engine

from pasa.service import access

MAX_EXAMPLES = 6  # per operation: about 30 operations, well inside a minute


def test_api_never_fails_and_keeps_its_schema(engine: Engine, world: World) -> None:
    # A few objects of every kind, so that generated ids sometimes hit real ones.
    for _ in range(2):
        world.operation(OWN, status="parked")
        world.task(OWN)
        world.grant(OWN)
        world.held_import(OWN)
    token = access.create_token(
        engine, organisation=OWN, scopes=["api:read", "api:write"], name="both", actor="t"
    ).secret
    schema = schemathesis.openapi.from_asgi("/api/v1/openapi.json", build_app(engine))
    checks = [
        not_a_server_error,
        response_schema_conformance,
        status_code_conformance,
        content_type_conformance,
    ]
    # Only the REST API: the SCIM service provider has its own tests and error format.
    operations = [
        op
        for op in (result.ok() for result in schema.get_all_operations())
        if op.path.startswith("/api/v1/")
    ]
    assert len(operations) >= 29

    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=MAX_EXAMPLES,
            deadline=None,
            derandomize=True,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def check(case: schemathesis.Case) -> None:
            case.call_and_validate(headers={"Authorization": f"Bearer {token}"}, checks=checks)

        check()
