"""« Expériences similaires » on Whoosh: the answer of `WhooshSearch.similar`, computed from the posting lists,
is the one Whoosh's `more_like(docnum, "texte")` gives, record by record, with a key term found in nearly every
record (read as a table), records withdrawn and one updated (deleted documents still in the segment)."""

from __future__ import annotations

import random
from typing import Any

import pytest
from whoosh.searching import Searcher

from registry import search
from registry.actions import Caller, experiences
from registry.actions import index as search_index
from registry.search.backend import BATCH, KEPT, MAX_AGE
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


def _stored(reg: Registry) -> dict[str, tuple[float, list[str]]]:
    import json
    import sqlite3

    from registry.search.whoosh_similar import FILE

    backend: Any = search.backend(reg)
    path = backend.folder.current() / FILE
    with sqlite3.connect(path) as conn:
        return {i: (made, json.loads(ids)) for i, made, ids in conn.execute("SELECT id, made, ids FROM lists")}


def test_similar_lists_are_made_in_the_background_and_read_by_record_pages(sqlite_registry: Registry) -> None:
    """The background work stores each record's list beside the index generation: the same lists as made on the
    spot; the page reads them (a list put there by hand is what it shows), without the records no longer indexed;
    a record indexed again has its list made again, and so has a list older than MAX_AGE; a rebuild starts with
    none; the making gives way to a write waiting for the index."""
    import sqlite3

    from registry import jobs
    from registry.search import outbox, whoosh_similar
    from registry.service import Provenance, publish_bytes

    reg = sqlite_registry
    assert experiences.publish_upload(reg, OPERATOR, csv_bytes(records(48)), "corpus.csv").accepted
    live = {exp_id(n): search_index.similar(reg, OPERATOR, exp_id(n)) for n in range(1, 49)}
    assert all(live.values()) and live[exp_id(3)] == whoosh_more_like(reg, exp_id(3))
    assert search_index.make_similar(reg, OPERATOR, 60.0) == 48
    assert search_index.make_similar(reg, OPERATOR, 60.0) == 0
    stored = _stored(reg)
    assert set(stored) == set(live) and all(len(ids) == KEPT for _, ids in stored.values())
    assert {i: search_index.similar(reg, OPERATOR, i) for i in live} == live

    backend: Any = search.backend(reg)
    titles = {exp_id(n): f"Projet {n} : " for n in range(1, 49)}
    backend.lists.write(backend.folder.current(), {exp_id(1): [exp_id(9), exp_id(5), exp_id(2)]})
    shown = search_index.similar(reg, OPERATOR, exp_id(1))
    assert [i for i, _ in shown] == [exp_id(9), exp_id(5), exp_id(2)]
    assert all(title.startswith(titles[i]) for i, title in shown)
    assert search_index.similar(reg, OPERATOR, exp_id(1), limit=2) == shown[:2]
    experiences.withdraw(reg, OPERATOR, exp_id(5), "Fiche publiée deux fois par erreur.")
    assert [i for i, _ in search_index.similar(reg, OPERATOR, exp_id(1))] == [exp_id(9), exp_id(2)]
    assert exp_id(5) not in _stored(reg)

    # indexed again: made on the spot until the next round makes it
    changed = {**records(48)[6], "resume": "Capteurs de bruit et wifi public ; données ouvertes sur le bruit."}
    assert experiences.publish_upload(reg, OPERATOR, csv_bytes([changed]), "v2.csv").accepted
    assert exp_id(7) not in _stored(reg)
    now = search_index.similar(reg, OPERATOR, exp_id(7))
    assert now == whoosh_more_like(reg, exp_id(7)) and now != live[exp_id(7)]
    jobs.run_once(reg)
    assert exp_id(7) in _stored(reg) and search_index.similar(reg, OPERATOR, exp_id(7)) == now

    # older than MAX_AGE: made again, the others kept
    with sqlite3.connect(backend.folder.current() / whoosh_similar.FILE) as conn:
        conn.execute("UPDATE lists SET made = made - ? WHERE id = ?", (MAX_AGE + 1, exp_id(8)))
    before = _stored(reg)
    search.similar_idle.clear()
    assert search_index.make_similar(reg, OPERATOR, 60.0) == 1
    after = _stored(reg)
    assert after[exp_id(8)][0] > before[exp_id(8)][0]
    assert {k: v for k, v in after.items() if k != exp_id(8)} == {k: v for k, v in before.items() if k != exp_id(8)}

    # a write waiting for the index: one batch, then the index first
    search_index.rebuild(reg, OPERATOR)
    assert not (backend.folder.current() / whoosh_similar.FILE).exists()
    assert publish_bytes(reg, csv_bytes([{**records(48)[0], "intitule": "Hydroliennes"}]), "x.csv",
                         Provenance("api")).accepted  # no sync here
    assert outbox.waiting(reg)
    assert search_index.make_similar(reg, OPERATOR, 60.0) == BATCH
    jobs.run_once(reg)
    assert search_index.search(reg, OPERATOR, search_index.request("hydroliennes")).total == 1
    assert len(_stored(reg)) == 47  # (the rebuilt generation's lists, made by the round after the sync)


def test_a_record_whose_list_fails_stops_no_other(sqlite_registry: Registry, monkeypatch: pytest.MonkeyPatch,
                                                  caplog: pytest.LogCaptureFixture) -> None:
    from registry.search.whoosh_search import WhooshSearch

    assert experiences.publish_upload(sqlite_registry, OPERATOR, csv_bytes(records(30)), "c.csv").accepted
    made = WhooshSearch._made

    def failing(self: Any, s: Any, exp: str, limit: int) -> list[tuple[str, str]]:
        if exp == exp_id(4):
            raise ValueError("a corrupt record")
        return made(self, s, exp, limit)

    monkeypatch.setattr(WhooshSearch, "_made", failing)
    assert search_index.make_similar(sqlite_registry, OPERATOR, 60.0) == 30
    stored = _stored(sqlite_registry)
    assert stored[exp_id(4)][1] == [] and all(ids for i, (_, ids) in stored.items() if i != exp_id(4))
    assert f"similar experiences of {exp_id(4)} not made" in caplog.text


def test_a_damaged_lists_file_leaves_record_pages_working(sqlite_registry: Registry,
                                                          caplog: pytest.LogCaptureFixture) -> None:
    from registry.search import whoosh_similar

    assert experiences.publish_upload(sqlite_registry, OPERATOR, csv_bytes(records(12)), "c.csv").accepted
    live = search_index.similar(sqlite_registry, OPERATOR, exp_id(3))
    assert search_index.make_similar(sqlite_registry, OPERATOR, 60.0) == 12
    backend: Any = search.backend(sqlite_registry)
    path = backend.folder.current() / whoosh_similar.FILE
    backend.lists = whoosh_similar.Lists()  # (a process that opens it now)
    for suffix in ("-wal", "-shm"):
        path.with_name(path.name + suffix).unlink(missing_ok=True)
    path.write_bytes(b"not a database" * 100)
    assert search_index.similar(sqlite_registry, OPERATOR, exp_id(3)) == live
    assert "not read from" in caplog.text
    # the background work replaces it, and pages read from it again
    search.similar_idle.clear()
    assert search_index.make_similar(sqlite_registry, OPERATOR, 60.0) == 12 and "replaced" in caplog.text
    backend.lists.write(backend.folder.current(), {exp_id(3): [exp_id(5)]})
    assert [i for i, _ in search_index.similar(sqlite_registry, OPERATOR, exp_id(3))] == [exp_id(5)]
