"""Fixtures of the REST API tests: the two-organisation world and a client of the app."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from api_world import World, build_app, build_world
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine


@pytest.fixture
def world(engine: Engine) -> World:
    return build_world(engine)


@pytest.fixture
def client(engine: Engine, world: World) -> Iterator[TestClient]:
    with TestClient(build_app(engine)) as c:
        yield c
