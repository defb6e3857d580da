"""« Expériences similaires » on Whoosh: the answer of `WhooshSearch.similar`, computed from the posting lists,
is the one Whoosh's `more_like(docnum, "texte")` gives, record by record, with a key term found in nearly every
record (read as a table), records withdrawn and one updated (deleted documents still in the segment)."""

from __future__ import annotations

import random

import pytest
from whoosh.searching import Searcher

from registry import search
from registry.actions import Caller, experiences
from registry.actions import index as search_index
from registry.store import Registry
from tests.helpers import csv_bytes
from tests.test_search import row

OPERATOR = Caller.operator()
COMMON = "données ouvertes"  # in every record: a key term of many, and a « dense » one (> 1/4 of the records)
WORDS = ["capteurs", "stationnement", "éclairage", "compteurs", "arrosage", "déchets", "vélos", "bus", "écoles",
         "chaleur", "inondation", "parking", "lampadaires", "fuite", "recyclage", "trottinettes", "bruit", "wifi"]


def exp_id(n: int) -> str:
    return f"217500016-2023-{n:03d}"


def records(count: int, seed: int = 3) -> list[dict[str, str]]:
    rng = random.Random(seed)
    out = []
    for n in range(1, count + 1):
        words = rng.sample(WORDS, rng.randint(2, 5))
        text = " ; ".join(f"{COMMON} sur les {w}" if rng.random() < 0.5 else w for w in words * rng.randint(1, 3))
        out.append({**row(1), "id_experience": exp_id(n), "intitule": f"Projet {n} : {words[0]}",
                    "resume": f"{text}."})
    return out


def whoosh_more_like(reg: Registry, exp: str) -> list[tuple[str, str]]:
    backend = search.backend(reg)
    s = backend.searcher()
    docnum = s.document_number(id=exp)
    return [(hit["id"], hit["intitule"]) for hit in s.more_like(docnum, "texte", top=5)]


def test_similar_is_whoosh_more_like(sqlite_registry: Registry) -> None:
    reg = sqlite_registry
    rows = records(48)
    assert experiences.publish_upload(reg, OPERATOR, csv_bytes(rows), "corpus.csv").accepted
    for n in (5, 17):
        experiences.withdraw(reg, OPERATOR, exp_id(n), "Fiche publiée deux fois par erreur.")
    renamed = {**rows[8], "resume": "Capteurs de bruit et wifi public ; données ouvertes sur le bruit."}
    assert experiences.publish_upload(reg, OPERATOR, csv_bytes([renamed]), "v2.csv").accepted
    backend = search.backend(reg)
    assert backend.searcher().reader().has_deletions()  # withdrawn and replaced documents are still in the segment
    compared = 0
    for n in range(1, 49):
        if n in (5, 17):
            assert search_index.similar(reg, OPERATOR, exp_id(n)) == []
            continue
        got = search_index.similar(reg, OPERATOR, exp_id(n))
        assert got == whoosh_more_like(reg, exp_id(n)), exp_id(n)
        assert exp_id(n) not in dict(got) and not {exp_id(5), exp_id(17)} & set(dict(got))
        compared += 1
    assert compared == 46
    assert backend._cache(backend.searcher()).dense  # the common term was read as a table
    # the key terms, their weights included, are Whoosh's own, with the collection frequencies read once
    from registry.search.whoosh_search import SIMILAR_FIELD, SIMILAR_TERMS, _key_terms

    s = backend.searcher()
    live = [d for d in range(s.reader().doc_count_all()) if not s.reader().is_deleted(d)]
    assert len(live) == 46
    for d in live:
        assert _key_terms(s, backend._cache(s), d) == s.key_terms([d], SIMILAR_FIELD, numterms=SIMILAR_TERMS), d
    assert backend._cache(s).frequency


def test_similar_does_not_run_whoosh_more_like(sqlite_registry: Registry, monkeypatch: pytest.MonkeyPatch) -> None:
    """Whoosh's more_like scored every record sharing a key term through its tree of matchers: ~10 ms of a
    record page's ~14 ms at 10,000 records (benchmarks/site_benchmark.py)."""
    assert experiences.publish_upload(sqlite_registry, OPERATOR, csv_bytes(records(12)), "c.csv").accepted
    expected = {exp_id(n): whoosh_more_like(sqlite_registry, exp_id(n)) for n in range(1, 13)}

    def refused(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("more_like called")

    monkeypatch.setattr(Searcher, "more_like", refused)
    for n in range(1, 13):
        assert search_index.similar(sqlite_registry, OPERATOR, exp_id(n)) == expected[exp_id(n)]
