"""The registry's handle: settings, database engine, migrations, sessions and a clock."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.orm import Session, sessionmaker

from registry.config import Settings, load_settings
from registry.db import make_engine, reading, utcnow

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


def alembic_config(engine: Engine) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["engine"] = engine
    return cfg


class Registry:
    """Everything the services need; one per process (or per test)."""

    def __init__(self, settings: Settings | None = None, clock: Callable[[], dt.datetime] = utcnow) -> None:
        self.settings = settings or load_settings()
        self.clock = clock
        if self.settings.db_url.startswith("sqlite"):
            self.settings.home.mkdir(parents=True, exist_ok=True)
        self.engine = make_engine(self.settings.db_url)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        self._closing: list[Callable[[], None]] = []

    @contextmanager
    def reading(self) -> Iterator[Connection]:
        """A connection for reads outside any transaction (`registry.db.reading`)."""
        with reading(self.engine) as conn:
            yield conn

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A session in one transaction: committed at the end, rolled back on any error."""
        with self._sessions() as session, session.begin():
            yield session

    def migrate(self) -> None:
        """Brings the database schema to the latest version (creating it if needed)."""
        cfg = alembic_config(self.engine)
        with self.engine.begin() as conn:
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "head")

    def schema_is_current(self) -> bool:
        head = ScriptDirectory.from_config(alembic_config(self.engine)).get_current_head()
        with self.engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision() == head

    def on_close(self, do: Callable[[], None]) -> None:
        """`do` done by `close` (a search backend's own connections closed)."""
        self._closing.append(do)

    def close(self) -> None:
        for do in self._closing:
            do()
        self.engine.dispose()
