"""Alembic environment: runs against the engine PASA passes in (no alembic.ini URL)."""

from __future__ import annotations

from alembic import context

from pasa.store.db import make_engine
from pasa.store.schema import metadata

config = context.config
engine = config.attributes.get("engine")
if engine is None:  # invoked from the alembic CLI: use the configured database
    from pasa.config import get_settings

    engine = make_engine(get_settings().database_url)

with engine.begin() as connection:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    context.run_migrations()
