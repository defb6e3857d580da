"""Alembic migrations from the first version: they build exactly the schema the models describe."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from registry.db import Base
from registry.store import Registry


def test_migrations_match_the_models(registry: Registry) -> None:
    with registry.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert diff == []
    assert registry.schema_is_current()


def test_migrating_twice_is_harmless(registry: Registry) -> None:
    registry.migrate()
    assert registry.schema_is_current()
