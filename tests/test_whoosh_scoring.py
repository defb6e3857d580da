"""Text search on Whoosh: a query of single words is scored from the posting lists (`WhooshSearch._scored`); its
matches, order and scores are those of Whoosh's own scored pass over the same query, with deleted documents in
the segment, facet filters and pages; other queries (phrases, OR, exclusions) still take Whoosh's pass."""

from __future__ import annotations

import pytest
from whoosh.searching import Searcher

from registry import search
from registry.actions import Caller, experiences
from registry.actions import index as search_index
from registry.search.query import parse
from registry.search.whoosh_search import _Recording
from registry.store import Registry
from tests.helpers import csv_bytes
from tests.test_similar_whoosh import exp_id, records

OPERATOR = Caller.operator()
QUERIES = ["capteurs", "données", "bruit wifi", "capteurs stationnement bus", "ouvertes données", "Projet",
           "éclairage écoles", "inconnu"]


def whoosh_pass(reg: Registry, text: str, limit: int) -> tuple[set[str], list[tuple[str, float]]]:
    backend = search.backend(reg)
    s = backend.searcher()
    collector = _Recording(limit, None)
    s.search_with_collector(backend.to_query(parse(text)), collector)
    ids = {s.stored_fields(d)["id"] for d in collector.seen}
    return ids, [(hit["id"], hit.score) for hit in collector.results()]


@pytest.fixture
def published(sqlite_registry: Registry) -> Registry:
    rows = records(60, seed=5)
    assert experiences.publish_upload(sqlite_registry, OPERATOR, csv_bytes(rows), "corpus.csv").accepted
    experiences.withdraw(sqlite_registry, OPERATOR, exp_id(7), "Fiche publiée deux fois par erreur.")
    changed = {**rows[10], "resume": "Capteurs de bruit ; wifi ; données ouvertes sur le bruit des bus."}
    empty_title = {**rows[11], "intitule": "Et pour ce qui est de la"}  # stop words only: no term in the field
    assert experiences.publish_upload(sqlite_registry, OPERATOR, csv_bytes([changed, empty_title]), "v2.csv").accepted
    return sqlite_registry


@pytest.mark.parametrize("text", QUERIES)
def test_single_word_queries_score_as_whoosh(published: Registry, text: str) -> None:
    expected_ids, expected_top = whoosh_pass(published, text, 100)
    results = search_index.search(published, OPERATOR, search_index.request(text, limit=100))
    assert results.total == len(expected_ids)
    assert [h.id for h in results.hits] == [i for i, _ in expected_top]
    assert [h.score for h in results.hits] == pytest.approx([v for _, v in expected_top], rel=1e-9)
    page = search_index.search(published, OPERATOR, search_index.request(text, {"statut": ("termine",)}, limit=5,
                                                                         offset=5))
    assert [h.id for h in page.hits] == [h.id for h in results.hits if h.facets["statut"] == ("termine",)][5:10]


def test_only_other_queries_take_whooshs_pass(published: Registry, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []
    inner = Searcher.search_with_collector

    def counted(self: Searcher, q: object, collector: object, **kwargs: object) -> None:
        calls.append(str(q))
        return inner(self, q, collector, **kwargs)

    monkeypatch.setattr(Searcher, "search_with_collector", counted)
    for text in ("capteurs stationnement", "données"):
        assert search_index.search(published, OPERATOR, search_index.request(text)).total
    assert calls == []  # ~8 ms of a text search at 10,000 records (benchmarks/site_benchmark.py)
    for text in ('"données ouvertes"', "bruit OU wifi", "capteurs -bus"):
        search_index.search(published, OPERATOR, search_index.request(text))
    assert len(calls) == 3
