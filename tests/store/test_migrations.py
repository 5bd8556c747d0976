"""Alembic migrations and the SQLAlchemy schema never drift apart, on either engine."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Engine

from pasa.store.db import alembic_config, migrate
from pasa.store.schema import metadata


def test_migrated_database_matches_the_schema(engine: Engine) -> None:
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        diff = compare_metadata(context, metadata)
    assert diff == []


def test_migrating_twice_is_harmless(engine: Engine) -> None:
    migrate(engine)
    migrate(engine)
    head = ScriptDirectory.from_config(alembic_config(engine)).get_current_head()
    assert head is not None and head >= "0004"
    with engine.connect() as conn:
        assert MigrationContext.configure(conn).get_current_revision() == head
