"""Storage adapter: SQLAlchemy tables, engine set-up, Alembic migrations and repositories."""
