"""Shared fixtures: a fresh real database per test (SQLite, and PostgreSQL started by the suite itself),
a controllable clock, the Flask app.

Storage tests take the `registry` fixture and run once per backend. PostgreSQL and Chromium are started
by the tests; when they are missing the tests FAIL (REGISTRY_ALLOW_MISSING_SERVICES=1 skips them, locally only).
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from registry.config import load_settings
from registry.store import Registry
from tests.services import (
    CHROMIUM_ARGS,
    PostgresServer,
    ServiceUnavailable,
    chromium_path,
    services_required,
    start_postgres,
)

ROOT = Path(__file__).resolve().parents[1]
_db_counter = itertools.count()


class Clock:
    """A clock the test sets and moves; the registry stamps revisions with it."""

    def __init__(self, start: dt.datetime = dt.datetime(2026, 1, 15, 9, 0, tzinfo=dt.UTC)) -> None:
        self.now = start

    def __call__(self) -> dt.datetime:
        return self.now

    def set(self, day: str) -> None:
        self.now = dt.datetime.fromisoformat(day).replace(tzinfo=dt.UTC)

    def advance(self, **delta: float) -> None:
        self.now += dt.timedelta(**delta)


def unavailable(what: str, exc: Exception) -> None:
    if services_required():
        pytest.fail(f"{what} is required and unavailable (REGISTRY_ALLOW_MISSING_SERVICES=1 skips, locally): {exc}")
    pytest.skip(f"{what} unavailable: {exc}")


@pytest.fixture(scope="session")
def postgres(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PostgresServer | None]:
    try:
        server = start_postgres(tmp_path_factory.mktemp("pg"))
    except ServiceUnavailable as exc:
        server = None
        error = exc
    if server is None:
        yield None
        if services_required():
            raise RuntimeError(f"PostgreSQL unavailable: {error}")
        return
    yield server
    server.stop()


@pytest.fixture
def clock() -> Clock:
    return Clock()


def _make_registry(url: str, home: Path, clock: Clock) -> Registry:
    reg = Registry(load_settings(home=str(home), database_url=url), clock=clock)
    reg.migrate()
    return reg


@pytest.fixture(params=["sqlite", "postgresql"])
def registry(request: pytest.FixtureRequest, tmp_path: Path, clock: Clock) -> Iterator[Registry]:
    """A fresh, migrated, empty registry on each backend."""
    if request.param == "sqlite":
        url = ""
    else:
        server: PostgresServer | None = request.getfixturevalue("postgres")
        if server is None:
            unavailable("PostgreSQL", RuntimeError("no server could be started"))
        assert server is not None
        url = server.create_database(f"t{next(_db_counter)}_{abs(hash(request.node.nodeid)) % 10**8}")
    reg = _make_registry(url, tmp_path / "instance", clock)
    yield reg
    reg.close()


@pytest.fixture
def sqlite_registry(tmp_path: Path, clock: Clock) -> Iterator[Registry]:
    """For tests about files and pages rather than storage: SQLite only."""
    reg = _make_registry("", tmp_path / "instance", clock)
    yield reg
    reg.close()


@pytest.fixture(params=[("sqlite", "whoosh"), ("postgresql", "whoosh"), ("postgresql", "postgresql")],
                ids=["sqlite-whoosh", "postgresql-whoosh", "postgresql-fts"])
def search_registry(request: pytest.FixtureRequest, tmp_path: Path, clock: Clock) -> Iterator[Registry]:
    """A fresh registry on each database with each search backend it can use."""
    database, backend = request.param
    url = ""
    if database == "postgresql":
        server: PostgresServer | None = request.getfixturevalue("postgres")
        if server is None:
            unavailable("PostgreSQL", RuntimeError("no server could be started"))
        assert server is not None
        url = server.create_database(f"s{next(_db_counter)}_{abs(hash(request.node.nodeid)) % 10**8}")
    reg = Registry(load_settings(home=str(tmp_path / "instance"), database_url=url, search_backend=backend),
                   clock=clock)
    reg.migrate()
    yield reg
    reg.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Debian's Chromium driven by Playwright (never a downloaded browser); missing, it fails the test."""
    try:
        executable = chromium_path()
        from playwright.sync_api import sync_playwright
    except (ServiceUnavailable, ImportError) as exc:
        unavailable("Chromium with Playwright", exc)
    with sync_playwright() as pw:
        found = pw.chromium.launch(executable_path=executable, args=list(CHROMIUM_ARGS))
        try:
            yield found
        finally:
            found.close()
