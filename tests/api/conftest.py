"""Fixtures of the REST API tests: the two-organisation world and a client of the app."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from api_world import World, build_app, build_world
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine

# The ESR row builder of the HR tests (valid extract rows for HR push).
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "hr"))


@pytest.fixture
def world(engine: Engine) -> World:
    return build_world(engine)


@pytest.fixture
def client(engine: Engine, world: World) -> Iterator[TestClient]:
    with TestClient(build_app(engine)) as c:
        yield c
