"""The PostgreSQL backend's own ways: browsing by facets answered from the process's bitmasks
(`registry/search/pg_memory.py`), the same answers as SQL for every kind of filter, sort and page and never those
of an older index version; results overdue filtered through the GIN index (due dates as prefixed lexemes)."""

from __future__ import annotations

import datetime as dt
import importlib.util
import itertools
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from registry import search
from registry.actions import Caller, experiences
from registry.actions import index as search_index
from registry.paths import DEMO_DIR
from registry.search import bits, pg_memory, postgres
from registry.search.analysis import fold
from registry.search.fields import text_fields
from registry.search.model import Results, SearchRequest
from registry.search.postgres import late
from registry.search.query import parse
from registry.standard import get_standard
from registry.store import Registry
from tests.helpers import csv_bytes, example, in_forked_child

ROOT = Path(__file__).resolve().parents[1]
OPERATOR = Caller.operator()
on_postgres = pytest.mark.parametrize("search_registry", [("postgresql", "postgresql")], indirect=True,
                                     ids=["postgresql-fts"])


@pytest.fixture
def browsing(search_registry: Registry, tmp_path: Path) -> Iterator[Registry]:
    """The demo records and 120 synthetic ones (many dates, statuses, overdue results, several values per
    record in the list facets)."""
    spec = importlib.util.spec_from_file_location("synthetic_data", ROOT / "data" / "synthetic.py")
    assert spec is not None and spec.loader is not None
    synthetic = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(synthetic)
    synthetic.generate(tmp_path / "synthetic", 120, seed=3)
    for folder in (DEMO_DIR, tmp_path / "synthetic"):
        result = experiences.publish_file(search_registry, OPERATOR, folder)
        assert result.accepted, result.report.to_text()
    yield search_registry


def answer(reg: Registry, req: SearchRequest) -> tuple[Any, ...]:
    r = search_index.search(reg, OPERATOR, req)
    return r.total, r.exact, r.facets_exact, r.facets, [(h.id, h.intitule, h.date_maj, h.facets) for h in r.hits]


def forget(backend: Any) -> None:
    """Nothing counted kept: this process's totals, passes and matches, and those shared by the server's
    processes."""
    for kept in (backend._counts, backend._passes, backend._matches):
        kept.clear()
    backend.shared_passes.clear(backend.home)
    backend.shared_matches.clear(backend.home)


def requests(every: Results) -> list[SearchRequest]:
    """Word-less searches built from the data: each facet's values alone and two at a time (OR), facets two at a
    time (AND), results overdue or not, values no record has, every sort, pages beyond the first and the last."""
    filters: list[dict[str, tuple[str, ...]]] = [{}]
    for name, counts in every.facets.items():
        codes = sorted(counts, key=lambda c: (-counts[c], c))
        filters += [{name: (c,)} for c in codes[:4]] + [{name: tuple(codes[:2])}]
    named = [(n, sorted(c)[0]) for n, c in every.facets.items() if c]
    filters += [{a: (x,), b: (y,)} for (a, x), (b, y) in itertools.combinations(named, 2)][:40]
    filters += [{"resultats_en_retard": ("oui",), "statut": ("termine", "abandonne")},
                {"resultats_en_retard": ("non",)}, {"resultats_en_retard": ("peut-etre",)},
                {"statut": ("x" * 5000,)}, {"statut": ("abandonne' | 'termine",)}, {"technologies": ("é" * 300,)}]
    out = [search_index.request("", f, limit=7) for f in filters]
    for sort, offset in itertools.product(("pertinence", "date_maj", "date_debut", "cout"), (0, 7, 150, 10_000)):
        out += [search_index.request("", {}, sort, 10, offset),
                search_index.request("", {"statut": ("termine",)}, sort, 3, offset)]
    return out


@on_postgres
def test_browsing_from_memory_answers_exactly_as_sql(browsing: Registry, monkeypatch: pytest.MonkeyPatch) -> None:
    backend: Any = search.backend(browsing)
    every = search_index.search(browsing, OPERATOR, search_index.request(limit=1))
    assert every.total == 163 and every.facets["resultats_en_retard"].get("oui", 0) > 0
    asked = requests(every)
    with monkeypatch.context() as m:
        m.setattr(backend.memory, "get", lambda version: None)  # every count in SQL
        expected = [answer(browsing, req) for req in asked]
    used: list[SearchRequest] = []
    browse = backend._browse
    monkeypatch.setattr(backend, "_browse", lambda snap, req, *a: used.append(req) or browse(snap, req, *a))
    backend.memory.background = False  # read at the first search, not in a thread
    for req, wanted in zip(asked, expected, strict=True):
        assert answer(browsing, req) == wanted, req
    assert used == asked and backend.memory.reads == 1  # one read for one index version
    assert sum(1 for _, _, _, _, hits in expected if hits) > len(asked) // 2  # pages were compared, not empties
    # a search with words stays in SQL
    assert search_index.search(browsing, OPERATOR, search_index.request("capteurs")).total > 0
    assert used == asked


WORDS = ("capteurs", "données", "éclairage public", "eau -air", "synthétique", "zeppelin")


@on_postgres
def test_ranked_pages_reuse_the_scores_of_their_words(browsing: Registry, monkeypatch: pytest.MonkeyPatch) -> None:
    """A record's score for some words is kept per index version: searches refining them by facets rank only
    the records not scored yet, with the same pages as ranking every one; a write (a new version) ranks again,
    the record's new text with it; the scores kept are bounded (SCORES_KEPT)."""
    from sqlalchemy import event

    from registry.search import postgres

    backend: Any = search.backend(browsing)
    scored: list[int] = []  # the records each ranking statement scored
    event.listen(backend.readers, "before_cursor_execute", lambda _c, _cur, statement, params, *_a: scored.append(
        len(params["ids"])) if "ts_rank_cd" in statement else None)
    every = search_index.search(browsing, OPERATOR, search_index.request(limit=1))
    name, counts = next((n, c) for n, c in every.facets.items() if len(c) > 2)
    asked = [search_index.request("capteurs", f, "pertinence", limit=10)
             for f in ({}, *({name: (v,)} for v in sorted(counts)[:3]))]
    first = [answer(browsing, req) for req in asked]
    assert first[0][0] > 10 and scored[0] == first[0][0] and scored[1:] == []  # refinements: none scored again
    for req, expected in zip(asked, first, strict=True):  # the same pages as ranking from nothing
        backend._scores.clear()
        backend._scored = 0
        assert answer(browsing, req) == expected
    # a write: the new version's scores, the record's new words with them
    paris = example("217500016-2023-001")  # (« Capteurs de qualité de l'air… »: a record of the examples)
    assert experiences.publish_upload(browsing, OPERATOR, csv_bytes([paris]), "e.csv").accepted
    ranked = [h for offset in range(0, first[0][0] + 1, 50) for h in search_index.search(
        browsing, OPERATOR, search_index.request("capteurs", {}, "pertinence", 50, offset)).hits]
    before = next(h for h in ranked if h.id == paris["id_experience"])  # (scored: kept for this version)
    assert before is not ranked[0]
    row = {**paris, "resume": "Capteurs, capteurs et capteurs. " * 20}
    assert experiences.publish_upload(browsing, OPERATOR, csv_bytes([row]), "e.csv").accepted
    after = search_index.search(browsing, OPERATOR, search_index.request("capteurs", {}, "pertinence", limit=10))
    assert after.hits[0].id == before.id and after.hits[0].score > before.score
    # bounded: the words least recently ranked dropped first, the same pages
    expected = [answer(browsing, search_index.request(w, {}, "pertinence", limit=10)) for w in WORDS]
    assert backend._scored == sum(len(t) for t in backend._scores.values()) > 30
    monkeypatch.setattr(postgres, "SCORES_KEPT", 30)
    backend._scores.clear()
    backend._scored = 0
    for _ in range(2):
        assert [answer(browsing, search_index.request(w, {}, "pertinence", limit=10)) for w in WORDS] == expected
        assert backend._scored == sum(len(t) for t in backend._scores.values())
        assert backend._scored <= 30 or len(backend._scores) == 1


@on_postgres
def test_word_searches_count_from_memory_exactly_as_sql(browsing: Registry, monkeypatch: pytest.MonkeyPatch) -> None:
    """With words, two ways count from the process's snapshot: SQL lists each pass's matching keys (`among`), or,
    at the first search of some words, all their matches once, kept as a mask that it and every later search of
    them is counted in (`_kept_matches`). Both give the same totals, counts and pages as SQL's own passes below
    the counting threshold; from it, the passes give a lower bound that adds up, the kept matches the exact
    count."""
    backend: Any = search.backend(browsing)
    every = search_index.search(browsing, OPERATOR, search_index.request(limit=1))
    named = [(n, sorted(c, key=lambda k: -c[k])[0]) for n, c in every.facets.items() if c][:6]
    asked = [search_index.request(w, f, sort, limit=10) for w in WORDS
             for f in [{}, *({n: (v,)} for n, v in named), {"resultats_en_retard": ("oui",), named[0][0]:
                                                                  (named[0][1],)}]
             for sort in ("pertinence", "date_maj")]

    def answers() -> list[tuple[Any, ...]]:
        forget(backend)
        return [answer(browsing, req) for req in asked]

    with monkeypatch.context() as m:
        m.setattr(backend.memory, "get", lambda version: None)
        expected = answers()
    assert sum(1 for e in expected if e[0]) > len(asked) // 2 and not backend._matches
    counted: list[int] = []
    among = pg_memory.Snapshot.among
    monkeypatch.setattr(pg_memory.Snapshot, "among", lambda self, ids, *a: counted.append(len(ids)) or among(
        self, ids, *a))
    backend.memory.background = False
    with monkeypatch.context() as m:  # every pass's keys listed in SQL
        m.setattr(backend, "_kept_matches", lambda *a: None)
        assert answers() == expected
    assert len(counted) >= len(asked) // 2  # (the same counts serve both sorts)
    kept: list[SearchRequest] = []
    among_matches = backend._among_matches
    monkeypatch.setattr(backend, "_among_matches", lambda snap, mask, req, *a: kept.append(req) or among_matches(
        snap, mask, req, *a))
    counted.clear()
    assert answers() == expected
    assert kept == asked and counted == []  # every search of words from their matches, listed once
    snap = backend.memory.snapshot  # a match written after the snapshot was read: SQL counts that pass
    assert snap.among([snap.ids[0], "217500016-2099-999"], backend.facets, "2026-12-01") is None
    monkeypatch.setattr(backend, "_among_matches", among_matches)
    full = answer(browsing, search_index.request("synthétique", {}, "date_maj"))  # (from the kept matches)
    assert full[0] > 5 and full[1] and full[2]
    backend.exact_up_to = 5  # counting stops: lower bounds, adding up, on both ways; kept matches are exact
    for way in ("memory", "sql"):
        if way == "sql":
            monkeypatch.setattr(backend.memory, "get", lambda version: None)
        forget(backend)
        with monkeypatch.context() as m:  # matches listed, but not kept beyond MATCHES_UP_TO: the passes count
            m.setattr(postgres, "MATCHES_UP_TO", 5)
            capped = search_index.search(browsing, OPERATOR, search_index.request("synthétique", {}, "date_maj"))
        assert (capped.total, capped.exact, capped.facets_exact) == (5, False, False), way
        assert sum(capped.facets["statut"].values()) == 5
        refined = search_index.search(browsing, OPERATOR, search_index.request(
            "synthétique", {named[0][0]: (named[0][1],)}, "date_maj"))  # (too many: kept as such, passes again)
        assert not refined.exact and refined.total <= 5, way
        assert answer(browsing, search_index.request("synthétique", {}, "date_maj"))[:2] == (5, False), way
        backend._matches.clear()
        backend.shared_matches.clear(backend.home)
        again = answer(browsing, search_index.request("synthétique", {}, "date_maj"))  # listed, kept (with a snapshot)
        assert again == full if way == "memory" else again[:2] == (5, False), way


@on_postgres
def test_kept_matches_are_of_their_index_version(browsing: Registry, monkeypatch: pytest.MonkeyPatch) -> None:
    """Matches listed after a write (the snapshot is of the version before) are not kept: the passes count that
    search; the next version keeps its own."""
    backend: Any = search.backend(browsing)
    backend.memory.background = False
    words = search_index.request("synthétique", {"statut": ("termine",)})
    for _ in range(2):
        before = search_index.search(browsing, OPERATOR, words)
    version, snap, query = backend.version(), backend.memory.snapshot, backend.tsquery(parse("synthétique"))
    assert snap.version == version and backend._matches[(version, query)]
    forget(backend)
    row = example()
    row.update(id_experience=f"{row['siren_porteur']}-2026-777", intitule="Capteurs synthétiques, écrits après",
               statut="termine")
    assert experiences.publish_upload(browsing, OPERATOR, csv_bytes([row]), "a.csv").accepted
    monkeypatch.setattr(backend.memory, "get", lambda version: snap)  # read before the write
    for _ in range(2):
        assert backend._kept_matches(version, query) is None
    assert not backend._matches and not (Path(browsing.settings.home) / "search-matches").exists()
    monkeypatch.undo()
    backend.memory.background = False
    for _ in range(2):
        after = search_index.search(browsing, OPERATOR, words)
    assert after.total == before.total + 1 and after.exact
    assert backend._matches and all(v == backend.version() for v, _ in backend._matches)


@on_postgres
def test_the_first_search_of_words_lists_their_matches_once(browsing: Registry,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """In a server (background work on), once the snapshot is read: the first search of some words lists their
    matches once (one statement) and is counted from them, as every later search of them, filtered or not, with
    no pass — the same answers as SQL's own passes; before the snapshot is read, passes count."""
    from registry.search import postgres

    backend: Any = search.backend(browsing)
    passes: list[object] = []
    count = postgres.PostgresSearch._pass_apart
    monkeypatch.setattr(postgres.PostgresSearch, "_pass_apart", lambda self, *a: passes.append(a) or count(self, *a))
    with monkeypatch.context() as m:  # no snapshot yet: the passes' way
        m.setattr(backend.memory, "get", lambda version: None)
        search_index.search(browsing, OPERATOR, search_index.request("données"))
    assert passes and not backend._matches
    deadline = time.monotonic() + 30
    while (snap := backend.memory.snapshot) is None or snap.version != backend.version():
        assert time.monotonic() < deadline, "no snapshot read in 30 s"
        search_index.search(browsing, OPERATOR, search_index.request())
        time.sleep(0.05)
    passes.clear()
    used: list[SearchRequest] = []
    among_matches = backend._among_matches
    monkeypatch.setattr(backend, "_among_matches", lambda snap, mask, req, *a: used.append(req) or among_matches(
        snap, mask, req, *a))
    listed: list[str] = []
    list_matches = backend._list_matches
    monkeypatch.setattr(backend, "_list_matches", lambda key, snap: listed.append(key[1]) or list_matches(key, snap))
    every = search_index.search(browsing, OPERATOR, search_index.request(limit=1))
    named = [(n, sorted(c, key=lambda k: -c[k])[0]) for n, c in every.facets.items() if c][:3]
    asked = [search_index.request("capteurs"), *(search_index.request("capteurs", {n: (v,)}) for n, v in named)]
    got = [search_index.search(browsing, OPERATOR, req) for req in asked]
    assert used == asked and passes == [] and len(listed) == 1 and all(r.exact for r in got)
    with monkeypatch.context() as m:  # the same answers as SQL's own passes
        m.setattr(backend.memory, "get", lambda version: None)
        forget(backend)
        assert [search_index.search(browsing, OPERATOR, req) for req in asked] == got
    assert passes


@on_postgres
def test_a_write_is_counted_at_once_never_from_an_older_snapshot(browsing: Registry) -> None:
    backend: Any = search.backend(browsing)
    before = search_index.search(browsing, OPERATOR, search_index.request())
    deadline = time.monotonic() + 30  # the snapshot is read in the background, after the first search
    while (snap := backend.memory.snapshot) is None or snap.version != backend.version():
        assert time.monotonic() < deadline, "no snapshot read in 30 s"
        search_index.search(browsing, OPERATOR, search_index.request())
        time.sleep(0.05)
    old = backend.memory.snapshot
    gone = before.hits[0].id
    experiences.withdraw(browsing, OPERATOR, gone, "Doublon d'une autre fiche.")
    after = search_index.search(browsing, OPERATOR, search_index.request(limit=200))
    assert after.total == before.total - 1 and gone not in {h.id for h in after.hits}
    statut = before.hits[0].facets["statut"][0]
    assert after.facets["statut"][statut] == before.facets["statut"][statut] - 1
    assert backend.memory.snapshot is old or backend.memory.snapshot.version == backend.version()
    deadline = time.monotonic() + 30
    while backend.memory.snapshot is old:  # the new version is read in turn
        assert time.monotonic() < deadline, "the new version was never read"
        time.sleep(0.05)
        search_index.search(browsing, OPERATOR, search_index.request())
    again = search_index.search(browsing, OPERATOR, search_index.request(limit=200))
    assert (again.total, again.facets, [h.id for h in again.hits]) == (
        after.total, after.facets, [h.id for h in after.hits])


@on_postgres
def test_a_registry_too_large_for_bitmasks_is_counted_in_sql(browsing: Registry,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    backend: Any = search.backend(browsing)
    monkeypatch.setattr(pg_memory, "MAX_BYTES", 100)
    backend.memory.background = False
    first = answer(browsing, search_index.request("", {"statut": ("termine",)}))
    assert backend.memory.snapshot is None and backend.memory.reads == 0
    assert answer(browsing, search_index.request("", {"statut": ("termine",)})) == first and first[0] > 0
    assert backend.memory.reads == 0  # not read again for the same version


@on_postgres
def test_a_value_holding_the_separator_is_counted_in_sql(browsing: Registry,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """The snapshot reads each record's values joined by a control character the standard's codes never hold; a
    stored value holding it (written by hand, or by a future facet) sends that version to SQL, never miscounted."""
    from sqlalchemy import text

    backend: Any = search.backend(browsing)
    odd = "x" + pg_memory.SEPARATOR + "y"
    with browsing.engine.begin() as conn:
        conn.execute(text("UPDATE search_documents SET facet_values = facet_values || CAST(:v AS text[]), "
                          "tsv = tsv || array_to_tsvector(CAST(:v AS text[])) "
                          "WHERE id = (SELECT min(id) FROM search_documents)"), {"v": [f"technologies={odd}"]})
        conn.execute(text("UPDATE search_meta SET version = version + 1 WHERE id = 1"))
    monkeypatch.setattr(pg_memory, "MAX_BYTES", 2**40)
    backend.memory.background = False
    backend._local.checked = 0.0  # read the new version now, not within 0.5 s
    got = search_index.search(browsing, OPERATOR, search_index.request())
    assert got.facets["technologies"][odd] == 1 and backend.memory.snapshot is None and backend.memory.reads == 0
    assert search_index.search(browsing, OPERATOR, search_index.request("", {"technologies": (odd,)})).total == 1


@on_postgres
def test_browsing_in_a_process_forked_while_reading(browsing: Registry, monkeypatch: pytest.MonkeyPatch) -> None:
    """gunicorn --preload forks after the application has run: a child never waits for its parent's read."""
    backend: Any = search.backend(browsing)
    backend.memory.background = False
    expected = answer(browsing, search_index.request("", {"statut": ("termine",)}))
    assert backend.memory.reads == 1
    # the parent is reading when the child is made: no snapshot yet, its thread holding the lock
    backend.memory.snapshot, backend.memory.reads, backend.memory._reading = None, 0, os.getpid()
    assert backend.memory._lock.acquire(blocking=False)

    def child() -> int:
        backend.memory.background = False
        if answer(browsing, search_index.request("", {"statut": ("termine",)})) != expected:
            return 2
        return 0 if backend.memory.reads == 1 else 3

    try:
        assert in_forked_child(browsing.engine, child) == 0
    finally:
        backend.memory._lock.release()


def test_first_positions_walks_the_bits_in_order() -> None:
    mask = sum(1 << p for p in (0, 3, 64, 40_000, 40_001, 99_999))
    assert bits.first_positions(mask, 0, 3) == [0, 3, 64]
    assert bits.first_positions(mask, 3, 10) == [40_000, 40_001, 99_999]
    assert bits.first_positions(mask, 6, 10) == [] and bits.first_positions(0, 0, 5) == []
    assert bits.bitmask([0, 3, 64], 100) == (1 | 8 | 1 << 64)
    for every in (2, 7, 40, 500):  # many positions (set as bytes) and few (bit by bit): the same masks
        positions = list(range(every // 2, 100_000, every))
        assert bits.bitmask(positions, 100_000) == sum(1 << p for p in positions), every


def test_results_overdue_are_the_due_dates_before_today_as_prefixes() -> None:
    for today in ("2026-11-30", "2026-01-01", "2000-01-01", "2029-12-31", "2026-10-09", "2031-07-20"):
        query = late(today)
        assert query is not None
        prefixes = [p.strip("()").removesuffix(":*").strip("'").removeprefix("*due=") for p in query.split(" | ")]
        for day in range(0, 16_000, 3):  # 1990 to 2033
            due = (dt.date(1990, 1, 1) + dt.timedelta(days=day)).isoformat()
            assert any(due.startswith(p) for p in prefixes) == (due < today), (today, due)
    assert late("0000-00-00") is None  # nothing is due before the first day


@on_postgres
def test_results_overdue_with_words_are_those_of_the_due_date(browsing: Registry) -> None:
    """The overdue filter is a tsquery of due-date prefixes: the records it finds with words are exactly those
    whose unpublished results were due before today, read from the rows' own columns."""
    from sqlalchemy import text

    today = dt.date.today().isoformat()
    with browsing.engine.connect() as conn:
        overdue = set(conn.scalars(text("SELECT id FROM search_documents WHERE results_due < :t "
                                        "AND NOT results_published"), {"t": today}))
    assert overdue
    checked = 0
    for words in ("capteurs", "données", "éclairage", "eau", "mobilité", "synthétique"):
        every = search_index.search(browsing, OPERATOR, search_index.request(words, limit=200))
        matched = {h.id for h in every.hits}
        assert len(matched) == every.total
        # each hit says whether its results are overdue (the result cards' badge): from the same columns
        assert {h.id for h in every.hits if h.facets["resultats_en_retard"] == ("oui",)} == matched & overdue
        for code, expected in (("oui", matched & overdue), ("non", matched - overdue)):
            got = search_index.search(browsing, OPERATOR,
                                      search_index.request(words, {"resultats_en_retard": (code,)}, limit=200))
            assert {h.id for h in got.hits} == expected and got.total == len(expected), (words, code)
            assert every.facets["resultats_en_retard"].get(code, 0) == len(expected), (words, code)
            checked += len(expected)
    assert checked > 50


@on_postgres
def test_similar_candidates_are_chosen_by_rare_words(search_registry: Registry,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """Record 1 shares its common words with eight records written before the one sharing its rare words: with
    room for two candidates only, those two are the records holding a rare word, not the first common ones; a word
    held by every record still ranks them. The number of records is counted (never analysed: reltuples -1)."""
    from registry.search import pg_similar

    common = "Le projet a permis de déployer un réseau de capteurs ; le projet et le réseau ont permis {}."
    texts = {1: common.format("le suivi de la nappe phréatique du marais salant"),
             **{n: common.format(f"la mesure numéro {n}") for n in range(2, 10)},
             10: "Suivi de la nappe phréatique, marais salant et réseau de capteurs.",
             11: "Sondes dans la nappe phréatique."}
    main = example("217500016-2023-001") | {"objectifs": "Voir ci-dessus.", "statut": "termine", "motif_arret": "",
                                            "suite_donnee": "", "date_fin": ""}
    main |= {f: "" for f in text_fields(get_standard().main) if not get_standard().main.by_name[f].required}
    rows = [{**main, "id_experience": f"217500016-2023-{n:03d}", "intitule": f"Expérience {n}", "resume": text}
            for n, text in texts.items()]
    result = experiences.publish_upload(search_registry, OPERATOR, csv_bytes(rows), "e.csv")
    assert result.accepted, result.report.to_text()
    monkeypatch.setattr(pg_similar, "SIMILAR_CANDIDATES", 2)
    monkeypatch.setattr(pg_similar, "SIMILAR_SHARE", 3)  # words of at most 1 record in 3 choose the candidates
    similar = [i for i, _ in search_index.similar(search_registry, OPERATOR, "217500016-2023-001")]
    assert similar == ["217500016-2023-010", "217500016-2023-011"]  # 10 shares more of record 1's words


@on_postgres
def test_did_you_mean_is_looked_for_with_the_search_settings(browsing: Registry,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """The words found nowhere are looked for through the GIN index, first view or not: the counts end the
    page's transaction, and its planner settings with it; without them, « is this word anywhere? » scanned every
    record's vector (330 ms a word at 100,000, most of the database's time under load)."""
    from sqlalchemy import text

    from registry.search import postgres

    seen: list[str] = []
    suggest = postgres.PostgresSearch._suggest

    def spy(self: Any, conn: Any, parsed: Any) -> str | None:
        seen.append(conn.scalar(text("SELECT current_setting('enable_seqscan')")))
        return suggest(self, conn, parsed)

    monkeypatch.setattr(postgres.PostgresSearch, "_suggest", spy)
    for _ in range(2):  # computed, then its counts from the cache
        assert search_index.search(browsing, OPERATOR, search_index.request("capteurs zzyzxq")).total == 0
    assert seen == ["off", "off"]


@on_postgres
def test_the_searchs_reads_have_their_settings_outside_any_transaction(browsing: Registry) -> None:
    """A search reads on connections of its own, opened with its planner settings (counting passes: no sort
    either), each statement on its own (no BEGIN, SET or ROLLBACK round trips); the registry's own connections
    keep PostgreSQL's defaults; closing the registry closes them all."""
    from sqlalchemy import text

    backend: Any = search.backend(browsing)
    backend.memory.background = False  # (no thread reading when the registry is closed)
    assert answer(browsing, search_index.request("capteurs", {"statut": ("termine",)}))[0] > 0
    for counting, sort in ((False, "on"), (True, "off")):
        with backend._reading(counting) as conn:
            assert conn.scalar(text("SELECT current_setting('enable_seqscan') || current_setting('jit') || "
                                    "current_setting('enable_sort')")) == "offoff" + sort
            conn.scalar(text("SELECT 1"))
            assert not conn.scalar(text("SELECT now() < statement_timestamp()"))  # a transaction of its own
    with browsing.engine.connect() as conn:
        assert conn.scalar(text("SELECT current_setting('enable_seqscan')")) == "on"
    database = browsing.engine.url.database

    def connected() -> int:
        with psycopg.connect(browsing.engine.url.set(drivername="postgresql").render_as_string(False),
                             autocommit=True) as admin:
            row = admin.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = %s AND pid <> "
                                "pg_backend_pid()", (database,)).fetchone()
            return int(row[0]) if row else -1

    assert connected() >= 2
    browsing.close()
    deadline = time.monotonic() + 10
    while connected():  # (a server process ends a moment after its client leaves)
        assert time.monotonic() < deadline, "connections still open 10 s after the registry was closed"
        time.sleep(0.05)


@pytest.mark.parametrize("search_registry", [("sqlite", "whoosh"), ("postgresql", "postgresql")], indirect=True,
                         ids=["sqlite-whoosh", "postgresql-fts"])
@pytest.mark.parametrize("frequent,rare", [("mobilité", "mobile"), ("mobile", "mobilité")])
def test_did_you_mean_prefers_the_word_of_most_records(search_registry: Registry, frequent: str,
                                                       rare: str) -> None:
    """« mobilte » is one letter away from « mobile » and from « mobilité »: the word of more records is offered."""
    main = example("217500016-2023-001") | {"objectifs": "Voir ci-dessus.", "statut": "termine", "motif_arret": "",
                                            "suite_donnee": "", "date_fin": ""}
    main |= {f: "" for f in text_fields(get_standard().main) if not get_standard().main.by_name[f].required}
    rows = [{**main, "id_experience": f"217500016-2023-{n:03d}", "intitule": f"Expérience {n}",
             "resume": f"Une affaire de {frequent if n < 4 else rare}."} for n in range(1, 5)]
    assert experiences.publish_upload(search_registry, OPERATOR, csv_bytes(rows), "e.csv").accepted
    results = search_index.search(search_registry, OPERATOR, search_index.request("mobilte"))
    assert results.total == 0 and results.suggestion == fold(frequent)


@on_postgres
def test_a_record_postgresql_refuses_is_left_out_and_the_index_follows_the_others(
        browsing: Registry, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    """Whatever makes PostgreSQL refuse one record's row (here a vector it cannot read), the others of its batch
    and every later write are indexed; the refused one is logged and listed by `index check` as missing."""
    from registry.search import postgres

    first, second = (h.id for h in search_index.search(browsing, OPERATOR, search_index.request(limit=2)).hits)
    bad = first
    vector = postgres.PostgresSearch.tsvector
    monkeypatch.setattr(postgres.PostgresSearch, "tsvector", lambda self, doc, title_only=False: (
        "'unterminated" if doc.id == bad else vector(self, doc, title_only)))
    assert search.rebuild(browsing) == 163  # every record read, one refused
    assert f"{bad} left out" in caplog.text
    missing, _, _ = search.check(browsing)
    assert missing == {bad}
    assert search_index.search(browsing, OPERATOR, search_index.request(limit=1)).total == 162
    monkeypatch.setattr(postgres.PostgresSearch, "tsvector", vector)
    experiences.withdraw(browsing, OPERATOR, second, "Publiée deux fois par erreur.")
    assert search_index.search(browsing, OPERATOR, search_index.request(limit=1)).total == 161


def _lists(reg: Registry) -> dict[str, tuple[float | None, list[str] | None]]:
    from sqlalchemy import text

    with reg.engine.connect() as conn:
        return {r.id: (r.made, r.similar_ids) for r in conn.execute(text("SELECT * FROM search_similar"))}


@on_postgres
def test_similar_lists_are_made_in_the_background_and_read_by_record_pages(
        browsing: Registry, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each indexed record's similar experiences are made by the background work (`registry index similar`, the
    worker's rounds), stored, and read by the record page: the same lists as made on the spot; a record indexed
    again, or older than MAX_AGE, has its list made again; a withdrawn record leaves every list read."""
    from sqlalchemy import text

    from registry import jobs
    from registry.search import pg_similar

    ids = sorted(h.id for h in search_index.search(browsing, OPERATOR, search_index.request(limit=200)).hits)
    assert len(ids) == 163 and all(made is None for made, _ in _lists(browsing).values())
    live = {i: search_index.similar(browsing, OPERATOR, i) for i in ids}  # made on the spot: nothing stored
    assert all(made is None for made, _ in _lists(browsing).values())
    assert search_index.make_similar(browsing, OPERATOR, 60.0) == 163
    assert search_index.make_similar(browsing, OPERATOR, 60.0) == 0  # none left
    stored = _lists(browsing)
    assert set(stored) == set(ids) and all(made is not None for made, _ in stored.values())
    assert {i: search_index.similar(browsing, OPERATOR, i) for i in ids} == live
    assert sum(len(v) for v in live.values()) > 600

    # the page reads the stored list (a list put there by hand is what it shows), its first `limit`
    first, second, third = ids[:3]
    with browsing.engine.begin() as conn:
        conn.execute(text("UPDATE search_similar SET similar_ids = :s WHERE id = :id"),
                     {"s": [third, second], "id": first})
    titles = {h.id: h.intitule for h in search_index.search(browsing, OPERATOR,
                                                            search_index.request(limit=200)).hits}
    assert search_index.similar(browsing, OPERATOR, first) == [(third, titles[third]), (second, titles[second])]
    assert search_index.similar(browsing, OPERATOR, first, limit=1) == [(third, titles[third])]

    # withdrawn: gone from the lists read, and its own list with it
    experiences.withdraw(browsing, OPERATOR, third, "Fiche publiée deux fois par erreur.")
    assert search_index.similar(browsing, OPERATOR, first) == [(second, titles[second])]
    assert third not in _lists(browsing)

    # indexed again: its list is to make again (made on the spot meanwhile), then made by the next round
    record = experiences.get(browsing, OPERATOR, first)
    assert record is not None
    row = {k: v for k, v in record.main.items()} | {"intitule": record.main["intitule"] + " (mise à jour)"}
    result = experiences.publish_upload(browsing, OPERATOR, csv_bytes([row]), "maj.csv")
    assert result.accepted, result.report.to_text()
    assert _lists(browsing)[first] == (None, None)
    now = search_index.similar(browsing, OPERATOR, first)  # made on the spot, from its new title
    assert len(now) == 5 and third not in dict(now)
    jobs.run_once(browsing)
    assert _lists(browsing)[first][1] is not None
    assert search_index.similar(browsing, OPERATOR, first) == now

    # older than MAX_AGE: made again
    with browsing.engine.begin() as conn:
        conn.execute(text("UPDATE search_similar SET made = made - :age WHERE id = :id"),
                     {"age": pg_similar.MAX_AGE + 1, "id": second})
    search.similar_idle.clear()
    before = _lists(browsing)
    assert search_index.make_similar(browsing, OPERATOR, 60.0) == 1
    after = _lists(browsing)
    assert after[second][0] > before[second][0] and {k: v for k, v in after.items() if k != second} == \
        {k: v for k, v in before.items() if k != second}


@on_postgres
def test_a_similar_list_made_from_a_former_text_is_not_stored(browsing: Registry,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """A record indexed again while its list is being made (the writer commits in between): that list, made from
    its former text, is not stored; the next round makes it from the new one."""
    from sqlalchemy import text

    from registry.search import pg_similar

    made = pg_similar.made
    victim = sorted(_lists(browsing))[0]

    def writer_in_between(conn: Any, analyzer: Any, exp_id: str, size: float, limit: int) -> list[tuple[str, str]]:
        found = made(conn, analyzer, exp_id, size, limit)
        if exp_id == victim:
            with browsing.engine.begin() as other:  # as `_upsert_rows` does when the record is indexed again
                other.execute(text("UPDATE search_similar SET generation = generation + 1, made = NULL, "
                                   "similar_ids = NULL WHERE id = :id"), {"id": victim})
        return found

    monkeypatch.setattr(pg_similar, "made", writer_in_between)
    assert search_index.make_similar(browsing, OPERATOR, 60.0) == 163
    lists = _lists(browsing)
    assert lists[victim] == (None, None) and sum(made is None for made, _ in lists.values()) == 1
    monkeypatch.setattr(pg_similar, "made", made)
    search.similar_idle.clear()
    assert search_index.make_similar(browsing, OPERATOR, 60.0) == 1 and _lists(browsing)[victim][0] is not None


@on_postgres
def test_an_index_made_before_similar_lists_gets_them(browsing: Registry) -> None:
    """An index built by a version without stored lists (no table): pages make them on the spot; the background
    work (or the next index write) adds the table with every record's list to make, and makes them."""
    from sqlalchemy import text

    first = sorted(_lists(browsing))[0]
    live = search_index.similar(browsing, OPERATOR, first)
    with browsing.engine.begin() as conn:
        conn.execute(text("DROP TABLE search_similar"))
    browsing._search_backend = None  # type: ignore[attr-defined]  # a process started on that index
    assert search_index.similar(browsing, OPERATOR, first) == live
    assert search_index.make_similar(browsing, OPERATOR, 60.0) == 163
    assert search_index.similar(browsing, OPERATOR, first) == live
    with browsing.engine.begin() as conn:
        conn.execute(text("DROP TABLE search_similar"))
    browsing._search_backend = None  # type: ignore[attr-defined]
    result = experiences.publish_upload(browsing, OPERATOR, csv_bytes([example("217500016-2023-001")]), "e.csv")
    assert result.accepted, result.report.to_text()
    assert len(_lists(browsing)) == 164  # (one more record)
    search.similar_idle.clear()
    assert search_index.make_similar(browsing, OPERATOR, 60.0) == 164
    assert search_index.similar(browsing, OPERATOR, first) == live


@on_postgres
def test_registry_index_similar_makes_every_list(browsing: Registry) -> None:
    import subprocess
    import sys

    env = {**os.environ, "REGISTRY_HOME": str(browsing.settings.home), "REGISTRY_DATABASE_URL":
           browsing.settings.db_url, "REGISTRY_SEARCH_BACKEND": "postgresql"}
    proc = subprocess.run([sys.executable, "-m", "registry", "index", "similar"], capture_output=True, text=True,
                          env=env, timeout=300, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().endswith("Expériences similaires à jour (163 liste(s) faite(s)).")
    assert all(made is not None and ids for made, ids in _lists(browsing).values())


@on_postgres
@pytest.mark.parametrize("memory", [True, False], ids=["snapshot", "sql"])
def test_a_refined_search_counts_one_new_pass_with_the_same_answers(browsing: Registry, memory: bool,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """A user refining a word search by facets: each click counts the matches of the words and its filters once;
    the counts of a filtered facet come from the pass without that filter, kept from an earlier search. The
    answers are those of searches counted from nothing; a write makes every kept pass of no use."""
    from registry.search import postgres

    backend: Any = search.backend(browsing)
    monkeypatch.setattr(backend, "_kept_matches", lambda *a: None)  # (words searched again: their other way)
    if memory:
        backend.memory.background = False
    else:
        monkeypatch.setattr(backend.memory, "get", lambda version: None)
    passes: list[tuple[str, str | None]] = []
    count = postgres.PostgresSearch._pass_apart
    monkeypatch.setattr(postgres.PostgresSearch, "_pass_apart", lambda self, clause, params, cap, only, *a: (
        passes.append((clause, only)), count(self, clause, params, cap, only, *a))[1])
    every = search_index.search(browsing, OPERATOR, search_index.request(limit=1))
    (a, x), (b, y) = [(n, sorted(c, key=lambda k: -c[k])[0]) for n, c in every.facets.items() if c][:2]
    # (in SQL, the pass without a filter counted for one facet only: not the counts of a search)
    steps = [({}, 1), ({a: (x,)}, 1), ({a: (x,), b: (y,)}, 2), ({b: (y,)}, 0 if memory else 1), ({a: (x,)}, 0),
             ({a: (x, "zzz")}, 1), ({a: ("zzz", x), b: (y,)}, 1)]  # (the same values in another order: kept)
    got = []
    for filters, new in steps:
        passes.clear()
        got.append(answer(browsing, search_index.request("capteurs", filters, limit=10)))
        assert len(passes) == new, (filters, passes)
    fresh = []
    for filters, _ in steps:
        forget(backend)
        fresh.append(answer(browsing, search_index.request("capteurs", filters, limit=10)))
    assert got == fresh and got[0][0] > got[1][0] > got[2][0] > 0
    assert got[1][3][a] == got[0][3][a] and got[2][3][b] == got[1][3][b]  # a filtered facet: without its filter

    # a write: a new version, every pass counted again
    assert answer(browsing, search_index.request("capteurs", {}, limit=10)) == got[0]  # (its pass kept)
    backend._counts.clear()  # (the search's own memory: keyed by version too)
    passes.clear()
    assert answer(browsing, search_index.request("capteurs", {}, limit=10)) == got[0] and passes == []
    assert "capteurs" in example("217500016-2023-001")["resume"]
    assert experiences.publish_upload(browsing, OPERATOR, csv_bytes([example("217500016-2023-001")]),
                                      "e.csv").accepted
    passes.clear()
    after = answer(browsing, search_index.request("capteurs", {}, limit=10))
    assert len(passes) == 1 and after[0] == got[0][0] + 1


@on_postgres
def test_passes_and_matches_counted_by_one_process_are_read_by_the_others(browsing: Registry,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """A server's processes share their counting passes and the matches of words (files under
    <home>/search-passes and <home>/search-matches): another process (another backend on the same database and
    folder) counts and lists nothing the first one did, with the same answers; never across index versions; a
    damaged file is counted again. (MATCHES_UP_TO between the two words' numbers of matches: the matches of one
    are kept, the other's too many, kept as such, and its searches counted by passes.)"""
    from sqlalchemy import event

    from registry.standard import get_standard

    first: Any = search.backend(browsing)
    first.memory.background = False
    every = search_index.search(browsing, OPERATOR, search_index.request(limit=1))
    (a, x), (b, y) = [(n, sorted(c, key=lambda k: -c[k])[0]) for n, c in every.facets.items() if c][:2]
    with monkeypatch.context() as m:
        m.setattr(first.memory, "get", lambda version: None)
        totals = {w: first.search(search_index.request(w, limit=1)).total for w in ("capteurs", "éclairage")}
    forget(first)
    assert 0 < totals["éclairage"] < totals["capteurs"]
    monkeypatch.setattr(postgres, "MATCHES_UP_TO", totals["éclairage"])
    asked = [search_index.request(w, f, limit=10) for w in ("capteurs", "éclairage")
             for f in ({}, {a: (x,)}, {a: (x,), b: (y,)})]
    expected = [first.search(req) for req in asked]
    home = Path(browsing.settings.home)
    files = [*(home / "search-passes").rglob("*"), *(home / "search-matches").rglob("*")]
    assert len({f.parent.parent.name for f in files if f.is_file()}) == 2  # both kinds written
    assert not any(f.name.startswith(".tmp-") for f in files)
    passes: list[object] = []
    count = postgres.PostgresSearch._pass_apart
    monkeypatch.setattr(postgres.PostgresSearch, "_pass_apart", lambda self, *a: passes.append(a) or count(self, *a))
    listed: list[str] = []  # the statements listing every match of some words

    def other() -> Any:  # another process of the same server: nothing in its memory
        backend = postgres.PostgresSearch(browsing.engine, get_standard(), str(browsing.settings.home))
        backend.memory.background = False
        event.listen(backend.readers, "before_cursor_execute", lambda _c, _cur, statement, *_a: listed.append(
            statement) if "LIMIT %(n)s" in statement else None)
        browsing.on_close(backend.close)
        return backend

    second = other()
    assert [second.search(req) for req in reversed(asked)][::-1] == expected and passes == [] and listed == []
    import zlib

    for stored in (home / "search-matches").rglob("*"):  # bits beyond the records (a file written by hand)
        if stored.is_file():
            stored.write_bytes(zlib.compress(b"\xff" * 100_000))
    size = len(second.memory.snapshot.ids)
    tampered = other().search(search_index.request("éclairage", {}, "date_maj", 50, size - 20))
    assert tampered.total <= size and tampered.hits and all(h.id in second.memory.snapshot.ids
                                                            for h in tampered.hits)
    second.shared_matches.clear(str(home))
    for stored in files:
        if stored.is_file():
            stored.write_bytes(stored.read_bytes()[:-3])  # damaged: counted again, the same answers
    third = other()
    assert [third.search(req) for req in asked] == expected and passes and listed
    # a write: a new index version, whose passes are counted again
    row = {**example("217500016-2023-001"), "intitule": "Capteurs, encore"}
    assert experiences.publish_upload(browsing, OPERATOR, csv_bytes([row]), "e.csv").accepted
    passes.clear()
    after = other().search(asked[0])
    assert passes and after.total == expected[0].total + 1  # (a record of the examples, not of the demo)


@on_postgres
def test_a_record_whose_list_fails_stops_no_other(browsing: Registry, monkeypatch: pytest.MonkeyPatch,
                                                  caplog: pytest.LogCaptureFixture) -> None:
    """A record whose similar list PostgreSQL refuses to make: logged, stored empty (made again after MAX_AGE),
    and every other list is made, in the same round and the next ones; a round that fails releases its lock."""
    from sqlalchemy import text

    from registry.search import pg_similar

    made = pg_similar.made
    poison = sorted(_lists(browsing))[0]

    def refusing(conn: Any, analyzer: Any, exp_id: str, size: float, limit: int) -> list[tuple[str, str]]:
        if exp_id == poison:
            conn.execute(text("SELECT CAST('zz' AS integer)"))  # refused, as a corrupt row would be
        return made(conn, analyzer, exp_id, size, limit)

    monkeypatch.setattr(pg_similar, "made", refusing)
    assert search_index.similar(browsing, OPERATOR, poison) == []  # its page, before its list is stored
    assert search_index.make_similar(browsing, OPERATOR, 60.0) == 163
    lists = _lists(browsing)
    assert lists[poison][1] == [] and all(made is not None for made, _ in lists.values())
    assert f"similar experiences of {poison} not made" in caplog.text

    def broken(conn: Any, analyzer: Any, exp_id: str, size: float, limit: int) -> list[tuple[str, str]]:
        raise RuntimeError("not a database error")

    with browsing.engine.begin() as conn:
        conn.execute(text("UPDATE search_similar SET made = NULL"))
    monkeypatch.setattr(pg_similar, "made", broken)
    search.similar_idle.clear()
    with pytest.raises(RuntimeError):
        search_index.make_similar(browsing, OPERATOR, 60.0)
    monkeypatch.setattr(pg_similar, "made", made)
    assert search_index.make_similar(browsing, OPERATOR, 60.0) == 163  # the lock was released


@on_postgres
def test_making_similar_lists_gives_way_to_a_write(browsing: Registry) -> None:
    """The background work makes lists between index syncs: a write waiting for the index stops it at the end
    of the batch, so the index follows the database first."""
    from registry import jobs
    from registry.search import outbox, pg_similar
    from registry.service import Provenance, publish_bytes

    assert not outbox.waiting(browsing)
    assert search_index.make_similar(browsing, OPERATOR, 0.0) == pg_similar.BATCH  # (at least one batch)
    row = {**example("217500016-2023-001"), "intitule": "Hydroliennes fluviales"}
    assert publish_bytes(browsing, csv_bytes([row]), "x.csv", Provenance("api")).accepted  # no sync here
    assert outbox.waiting(browsing)
    assert search_index.make_similar(browsing, OPERATOR, 60.0) == pg_similar.BATCH
    jobs.run_once(browsing)
    assert not outbox.waiting(browsing)
    assert search_index.search(browsing, OPERATOR, search_index.request("hydroliennes")).total == 1
