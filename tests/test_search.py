"""French full-text search fed by the outbox: nothing committed is missed, withdrawals leave the index,
re-processing is harmless; on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from registry import search
from registry.db import OutboxEvent
from registry.paths import SCHEMAS_DIR
from registry.service import Provenance, publish_bytes, publish_path, withdraw
from registry.standard import get_standard
from registry.store import Registry
from tests.helpers import csv_bytes, example

CLI = Provenance("cli")
LYON = "216901231-2021-001"


def pending(reg: Registry) -> int:
    with reg.session() as s:
        return s.scalar(select(func.count()).select_from(OutboxEvent).where(OutboxEvent.processed_at.is_(None))) or 0


def ids(results: search.Results) -> set[str]:
    return {h.id for h in results.hits}


def test_outbox_feeds_the_index(registry: Registry) -> None:
    assert publish_path(registry, SCHEMAS_DIR / "datapackage.json", CLI).accepted
    assert pending(registry) == 4
    assert search.sync(registry) == 4 and pending(registry) == 0
    assert search.search(registry).total == 4
    assert search.search(registry, "stationnements").hits[0].id == LYON  # stemmed; the title counts most
    assert ids(search.search(registry, "ECLAIRAGE")) == ids(search.search(registry, "éclairage"))  # folded
    lesson_only = "fiabilité"  # words from child rows are searchable too
    assert search.search(registry, lesson_only).total >= 1


def test_updates_and_withdrawals_reach_the_index(registry: Registry) -> None:
    assert publish_path(registry, SCHEMAS_DIR / "datapackage.json", CLI).accepted
    search.sync(registry)
    renamed = {**example(LYON), "intitule": "Stationnement intelligent : retour sur un abandon instructif"}
    assert publish_bytes(registry, csv_bytes([renamed]), "x.csv", CLI).accepted
    withdraw(registry, "217500016-2023-001", "Doublon de la fiche métropolitaine.", CLI)
    assert search.sync(registry) == 2
    assert ids(search.search(registry, "instructif")) == {LYON}
    assert search.search(registry).total == 3
    assert search.sync(registry) == 0


def test_rebuild_and_reprocessing_are_idempotent(registry: Registry) -> None:
    assert publish_path(registry, SCHEMAS_DIR / "datapackage.json", CLI).accepted
    assert search.rebuild(registry) == 4 and pending(registry) == 0
    with registry.session() as s:  # as if the process died after the index commit, before marking
        s.execute(OutboxEvent.__table__.update().values(processed_at=None))
    assert search.sync(registry) == 4
    assert search.search(registry).total == 4


def test_facets_come_from_the_schema(registry: Registry) -> None:
    assert publish_path(registry, SCHEMAS_DIR / "datapackage.json", CLI).accepted
    search.sync(registry)
    results = search.search(registry)
    enum_fields = {f.name for f in get_standard().main.fields if f.enum}
    assert set(results.facets) == enum_fields
    assert sum(results.facets["statut"].values()) == 4
    assert search.search(registry, "", {"domaine": "mobilite_stationnement"}).total == 1


def test_many_changes_rebuild_the_index_without_losing_later_ones(registry: Registry,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(search, "BULK", 2)  # "many" = 2 here, so the rebuild path runs on a small registry
    assert publish_path(registry, SCHEMAS_DIR / "datapackage.json", CLI).accepted
    assert search.sync(registry) == 4 and pending(registry) == 0
    assert search.search(registry).total == 4
    renamed = {**example(LYON), "intitule": "Stationnement : un abandon instructif"}
    assert publish_bytes(registry, csv_bytes([renamed]), "x.csv", CLI).accepted
    search.rebuild(registry, upto=0)  # a rebuild that saw no event leaves the new one pending
    assert pending(registry) == 1
    assert search.sync(registry) == 1 and ids(search.search(registry, "instructif")) == {LYON}
