"""Concurrent writers and the who/why of a change, on a real PostgreSQL (and SQLite where it applies):
races are recognised by the database's error codes and redone; bad provenance is refused before any write."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

import registry.service as service
from registry.actions import Caller, experiences
from registry.config import load_settings
from registry.queries import history
from registry.service import InvalidProvenance, Provenance, publish_bytes
from registry.store import Registry
from tests.conftest import Clock, unavailable
from tests.helpers import csv_bytes, example, example_rows

PARIS = "217500016-2023-001"


@pytest.fixture
def pg_registry(request: pytest.FixtureRequest, tmp_path: Path, clock: Clock) -> Iterator[Registry]:
    """PostgreSQL only: SQLite serialises writers (no row locks, so no deadlock; see test_write_path)."""
    server = request.getfixturevalue("postgres")
    if server is None:
        unavailable("PostgreSQL", RuntimeError("no server could be started"))
    reg = Registry(load_settings(home=str(tmp_path / "i"), database_url=server.create_database(
        f"deadlock_{os.getpid()}_{abs(hash(request.node.nodeid)) % 10**6}")), clock=clock)
    reg.migrate()
    yield reg
    reg.close()


def test_two_imports_in_opposite_orders_deadlock_and_are_redone(pg_registry: Registry,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """Each import locks its first experience, then wants the other's: PostgreSQL detects the deadlock
    (SQLSTATE 40P01), one transaction is chosen as victim and redone; both imports succeed."""
    registry = pg_registry
    rows = example_rows("experiences")[:2]
    assert publish_bytes(registry, csv_bytes(rows), "base.csv", Provenance("cli")).accepted
    barrier = threading.Barrier(2, timeout=30)
    local = threading.local()
    real_write, real_conflict = service._write_chunk, service._conflict
    codes: list[str | None] = []

    def write(*args, **kwargs):  # after the first row is locked, wait for the other import to lock its own
        out = real_write(*args, **kwargs)
        if not getattr(local, "waited", False):
            local.waited = True
            barrier.wait()
        return out

    def conflict(exc):
        codes.append(getattr(exc.orig, "sqlstate", None))
        return real_conflict(exc)

    monkeypatch.setattr(service, "CHUNK", 1)  # one experience per batch: each import locks row by row, in its order
    monkeypatch.setattr(service, "_write_chunk", write)
    monkeypatch.setattr(service, "_conflict", conflict)
    results: dict[str, service.PublishResult] = {}

    def run(name: str, order: list[dict[str, str]]) -> None:
        changed = [{**r, "intitule": f"{r['intitule']} ({name})"} for r in order]
        results[name] = publish_bytes(registry, csv_bytes(changed), f"{name}.csv", Provenance("api", actor=name))

    threads = [threading.Thread(target=run, args=("a", rows)), threading.Thread(target=run, args=("b", rows[::-1]))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(90)
    assert "40P01" in codes  # a real deadlock happened, and was recognised by its code
    assert sorted(results) == ["a", "b"]
    assert all(o.action == "updated" for r in results.values() for o in r.outcomes)
    for row in rows:
        assert history(registry, row["id_experience"])[0].actor is None
        assert len(history(registry, row["id_experience"])) == 3  # created, then one update by each import


@pytest.mark.parametrize("field,value,message", [
    ("actor", "x" * 201, "Auteur (--actor) trop long : 201 caractères, 200 au plus."),
    ("comment", "y" * 2001, "Commentaire trop long"),
    ("actor", "agent\x00nul", "caractère de contrôle"),
])
def test_provenance_that_cannot_be_stored_is_refused_before_any_write(registry: Registry, field: str, value: str,
                                                                      message: str) -> None:
    with pytest.raises(InvalidProvenance, match=message.replace("(", r"\(").replace(")", r"\)")):
        experiences.publish_upload(registry, Caller.operator(**({"actor": value} if field == "actor" else {})),
                                   csv_bytes([example(PARIS)]), "rex.csv", **({field: value} if field == "comment"
                                                                             else {}))
    assert experiences.listing(registry, Caller.anonymous()).total == 0


def test_the_command_line_says_why_an_actor_is_refused(registry: Registry, tmp_path: Path) -> None:
    env = {**os.environ, "REGISTRY_HOME": str(tmp_path / "i"), "REGISTRY_DATABASE_URL": registry.settings.db_url}
    csv_file = tmp_path / "rex.csv"
    csv_file.write_bytes(csv_bytes([example(PARIS)]))
    proc = subprocess.run([sys.executable, "-m", "registry", "import", str(csv_file), "--actor", "é" * 250],
                          env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1 and "Erreur : Auteur (--actor) trop long : 250 caractères" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert experiences.listing(registry, Caller.anonymous()).total == 0


def test_nul_characters_in_json_are_refused_on_every_backend(registry: Registry) -> None:
    """PostgreSQL's JSONB cannot hold U+0000: a JSON upload with one gets a report, not a crash."""
    record = {**example(PARIS), "resume": "avant\u0000après"}
    result = experiences.publish_upload(registry, Caller.operator(), json.dumps(record).encode(), "rex.json")
    assert not result.accepted
    assert any("U+0000" in i.message("fr") or "nul" in i.message("fr").lower() for i in result.report.errors())
    assert experiences.listing(registry, Caller.anonymous()).total == 0
