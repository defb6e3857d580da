"""Pooled PostgreSQL connections: pinged only after they sat idle, replaced when their server dropped them."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError

from registry import db
from registry.config import load_settings
from registry.queries import get_with_history
from registry.service import Provenance, publish_bytes
from registry.store import Registry
from tests.conftest import Clock, unavailable
from tests.helpers import csv_bytes, example, in_forked_child
from tests.services import PostgresServer, _connect

PARIS = "217500016-2023-001"
FORM = Provenance("form", actor="agent@ville.example.fr")


@pytest.fixture
def pg_registry(postgres: PostgresServer | None, tmp_path: Path, clock: Clock) -> Iterator[Registry]:
    if postgres is None:
        unavailable("PostgreSQL", RuntimeError("no server could be started"))
    assert postgres is not None
    reg = Registry(load_settings(home=str(tmp_path / "instance"),
                                 database_url=postgres.create_database(f"conn_{abs(hash(tmp_path)) % 10**8}")),
                   clock=clock)
    reg.migrate()
    assert publish_bytes(reg, csv_bytes([example(PARIS)]), "rex.csv", FORM).accepted
    yield reg
    reg.close()


def _drop_connections(server: PostgresServer, reg: Registry) -> int:
    """What a restart does to the registry's pooled connections: every backend of its database ended."""
    with _connect(make_url(server.admin_url), dbname="postgres") as admin:
        row = admin.execute("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname = %s "
                            "AND pid <> pg_backend_pid()", (reg.engine.url.database,)).fetchone()
    assert row is not None
    return int(row[0])


def _pings(monkeypatch: pytest.MonkeyPatch, reg: Registry) -> list[Any]:
    seen: list[Any] = []
    ping = reg.engine.dialect.do_ping
    monkeypatch.setattr(reg.engine.dialect, "do_ping", lambda conn: seen.append(conn) or ping(conn))
    return seen


def test_a_connection_used_again_soon_is_not_pinged(pg_registry: Registry, monkeypatch: pytest.MonkeyPatch) -> None:
    pings = _pings(monkeypatch, pg_registry)
    for _ in range(3):
        assert get_with_history(pg_registry, PARIS)[0].id == PARIS
    assert pings == []
    monkeypatch.setattr(db, "PING_AFTER", 0.0)  # as if it had been idle long enough
    get_with_history(pg_registry, PARIS)
    assert len(pings) == 1


def test_a_connection_dropped_while_idle_is_replaced_without_error(
        pg_registry: Registry, postgres: PostgresServer, monkeypatch: pytest.MonkeyPatch) -> None:
    get_with_history(pg_registry, PARIS)
    assert _drop_connections(postgres, pg_registry) >= 1
    monkeypatch.setattr(db, "PING_AFTER", 0.0)
    view, revisions = get_with_history(pg_registry, PARIS)
    assert (view.id, [r.number for r in revisions]) == (PARIS, [1])


def test_a_connection_dropped_while_in_use_is_one_error_then_replaced(
        pg_registry: Registry, postgres: PostgresServer) -> None:
    get_with_history(pg_registry, PARIS)
    assert _drop_connections(postgres, pg_registry) >= 1
    with pytest.raises(OperationalError):  # used again at once: not pinged (what PING_AFTER saves)
        get_with_history(pg_registry, PARIS)
    assert get_with_history(pg_registry, PARIS)[0].id == PARIS  # the pool's connections were replaced


def test_a_forked_process_opens_connections_of_its_own(pg_registry: Registry) -> None:
    """gunicorn --preload forks workers whose pools hold their parent's connections: a child opens its own and
    leaves the parent's as they were (using one would mix two processes' statements on one session)."""
    from sqlalchemy import text

    def backend() -> int:
        with pg_registry.engine.connect() as conn:
            return int(conn.scalar(text("SELECT pg_backend_pid()")) or 0)

    parent = backend()
    assert in_forked_child(pg_registry.engine, lambda: 0 if backend() not in (0, parent) else 2, dispose=False) == 0
    assert backend() == parent and get_with_history(pg_registry, PARIS)[0].id == PARIS
