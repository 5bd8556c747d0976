"""Fixtures of the fault tests: a fresh PostgreSQL hub database per test, real servers.

The servers come from the connector tests' helpers (``tests/connectors/slapd_server.py``,
``scim_server.py``), which are plain modules on that directory's path.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine

from pasa.store.db import make_engine

from .fault_helpers import postgres_database, sqlite_hub

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "connectors"))

POSTGRES_URL = os.environ.get("PASA_TEST_POSTGRES_URL")


@pytest.fixture
def pg_hub_url() -> Iterator[str]:
    """A fresh, migrated PostgreSQL database of its own for this test (dropped after)."""
    if not POSTGRES_URL:
        pytest.skip("PASA_TEST_POSTGRES_URL not set (make test sets it)")
    with postgres_database(POSTGRES_URL) as url:
        yield url


@pytest.fixture(params=["postgresql", "sqlite"])
def hub_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh hub on each backend (PostgreSQL: a database of its own for this test)."""
    if request.param == "sqlite":
        return sqlite_hub(tmp_path / "hub.db")
    return str(request.getfixturevalue("pg_hub_url"))


@pytest.fixture
def hub(hub_url: str) -> Iterator[Engine]:
    engine = make_engine(hub_url)
    yield engine
    engine.dispose()
