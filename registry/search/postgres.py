"""PostgreSQL full-text backend: several web servers share one search through the database.

The words are analysed by the same analyser as the Whoosh backend (accents folded, French stems), in Python,
and stored as a `tsvector` with their positions (title A, bearer B, text D); the query is the same parsed
query written as a `tsquery`. So both backends find the same records; only the ranking formula differs
(`ts_rank_cd` here). Facets are one `text[]` column (`name=value`), counted in SQL or, once a process has read
them, from its bitmasks (`pg_memory.py`); the same values are also
lexemes of the `tsvector` (without position; the analyser never makes a word with "="), so that words and
facet filters are one `tsquery` answered by one GIN index (a filter on a second index made PostgreSQL read
each candidate's whole tsvector, stored out of line: 130 ms instead of 40 for a common word and value at
100,000 records). The tables
are derived data, like the Whoosh folder: created by the first writer, rebuilt from the database at will.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import itertools
import json
import logging
import os
import threading
import time
from collections import Counter, OrderedDict
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DBAPIError

from registry.db import make_engine, reading
from registry.search import pg_similar, snippets, spelling
from registry.search.analysis import analyzer, fold, stem_places
from registry.search.bits import first_positions
from registry.search.documents import Doc
from registry.search.fields import NO, OVERDUE, YES, facet_names, facets, overdue
from registry.search.model import Hit, Results, SearchRequest
from registry.search.pg_memory import VERSION, FacetMemory, Snapshot, version_name
from registry.search.pg_text import folded_words, quote
from registry.search.query import Clause, ParsedQuery, parse
from registry.search.whoosh_index import IndexBusy
from registry.shared_files import SharedFiles
from registry.standard import Standard

log = logging.getLogger(__name__)
LOCK_KEY = 7_246_031  # the writers' advisory lock (released with the transaction, or the session's death)
FIELD_GAP = 100  # positions between fields, so that a phrase never spans two of them
MAX_POSITION = 16383
# bytes of a record's lexemes and positions indexed at most (PostgreSQL refuses a tsvector over 1 MiB: one record
# of 100 long lessons failed its indexing, and every sync after it); the rest of its text is not indexed
TSVECTOR_BUDGET = 900_000
BATCH = 500
DDL = (
    """CREATE TABLE IF NOT EXISTS search_documents (
        id varchar(40) PRIMARY KEY, content_hash varchar(64) NOT NULL, intitule text NOT NULL,
        nom_porteur text NOT NULL, date_maj varchar(10) NOT NULL, date_debut varchar(10) NOT NULL,
        cout double precision, results_due varchar(10), results_published boolean NOT NULL,
        facet_values text[] NOT NULL, tsv tsvector NOT NULL, tsv_title tsvector)""",
    # the title and bearer words alone (small, stored in the row): the candidates a broad query ranks first
    "ALTER TABLE search_documents ADD COLUMN IF NOT EXISTS tsv_title tsvector",
    "CREATE INDEX IF NOT EXISTS search_documents_tsv_title ON search_documents USING gin (tsv_title)",
    "CREATE TABLE IF NOT EXISTS search_texts (id varchar(40) PRIMARY KEY, texte text NOT NULL)",
    "CREATE INDEX IF NOT EXISTS search_documents_tsv ON search_documents USING gin (tsv)",
    "DROP INDEX IF EXISTS search_documents_facets",  # format 2: facet filters are lexemes of tsv since 3
    "CREATE INDEX IF NOT EXISTS search_documents_date_maj ON search_documents (date_maj DESC, id)",
    "CREATE TABLE IF NOT EXISTS search_meta (id integer PRIMARY KEY, version bigint NOT NULL)",
    # the index's own words, accents folded, not stemmed: for "did you mean"
    "CREATE TABLE IF NOT EXISTS search_words (word text PRIMARY KEY, head text NOT NULL, size integer NOT NULL)",
    "CREATE INDEX IF NOT EXISTS search_words_head ON search_words (head, size)",
    # in how many records each word was indexed (counted again when a record is indexed again; exact after a
    # rebuild): the distinctive words of a record, for "similar experiences"
    "ALTER TABLE search_words ADD COLUMN IF NOT EXISTS docs integer NOT NULL DEFAULT 0",
    "INSERT INTO search_meta VALUES (1, 0) ON CONFLICT (id) DO NOTHING",
    "INSERT INTO search_meta VALUES (2, 0) ON CONFLICT (id) DO NOTHING",  # the format of the rows (FORMAT)
    *pg_similar.DDL,  # each record's similar experiences, made in the background
)
EXACT_UP_TO = 10_000  # matches counted exactly below this; from it on, "10,000 or more" (Elasticsearch's default)
SIZE_ESTIMATED = 10_000  # from this many records on, the planner's estimate of their number is enough
RANKED = 1_000  # a query with more matches ranks this many candidates only (see `_hits`)
FORMAT = 7  # 2: word pairs, tsv_title; 3: facet values as lexemes; 4: single-valued facets at fixed places;
# 5: search_words.docs; 6: the due date of unpublished results as a lexeme (DUE); 7: the words of
# whoosh_index.FORMAT 2 (NFKC, ligatures written out, « -os » as « -o », compounds also written together).
# Rows of an older format are rebuilt by the next sync.
DUE = "*due="  # + the due date of results not published (never a word: the analyser makes no "=")
MAX_VALUE = 200  # a facet value filtered on is at most this long (a lexeme is at most 2,047 bytes)
RECHECK = 0.5  # seconds between two reads of the index's version (as Whoosh's searchers)
CACHE_SIZE = 512  # totals and facet counts per (index version, query, filters), per process
SHARED_PASSES = 20_000  # counting passes shared by a server's processes, per index version (files of ~1 KB)
# a query's matches kept as a mask (see `_kept_matches`): listed only when they are at most this many
MATCHES_UP_TO = 200_000
MATCHES_KEPT = 128  # masks per process (12.5 KB each at 100,000 records)
SCORES_KEPT = 100_000  # ranked records' scores kept per process (see `_scores_of`; ~100 bytes each)
Pass = tuple[int, dict[str, dict[str, int]]]  # matches counted, and facet → value → count
HIT_COLUMNS = "id, intitule, nom_porteur, date_maj, date_debut, cout, facet_values, results_due, results_published"
ORDER = {"date_maj": "date_maj DESC, id", "date_debut": "date_debut DESC, id", "cout": "cout DESC NULLS LAST, id"}


def late(today: str) -> str | None:
    """Results overdue on `today` as a tsquery: the unpublished results' due dates (lexemes DUE + ISO date) before
    it, as prefixes: "2026-11-30" → 0*, 1*, 200*, 201*, 2020* … 2025*, 2026-0*, 2026-10*, 2026-11-0*, 2026-11-1*,
    2026-11-2*."""
    prefixes = [today[:i] + digit for i, c in enumerate(today) if c.isdigit() for digit in "0123456789"[:int(c)]]
    return "(" + " | ".join(f"{quote(DUE + p)}:*" for p in prefixes) + ")" if prefixes else None


SETTINGS = {  # the planner settings of a search's reads: given when each of their connections opens (`make_engine`)
    # a plan for these very parameters: a generic plan made for a rare word is slow on a common one
    "plan_cache_mode": "force_custom_plan",
    # words are matched through the GIN index (the matches then need no tsvector read, which is
    # stored out of line): a sequential scan would read every record's tsvector
    "enable_seqscan": "off",
    "max_parallel_workers_per_gather": "0",  # or it scans the primary key
    "enable_memoize": "off",  # a cache of unnest() per facet array: slower
    # a plan that must scan (no words) costs 1e10 with enable_seqscan off, far above jit_above_cost:
    # compiling it took 80 ms for a 30 ms query
    "jit": "off",
}


class PostgresSearch:
    writes = 0  # index writes made by this process: its own readers see them at once (see `version`)

    def __init__(self, engine: Engine, std: Standard, home: str | None = None) -> None:
        self.engine = engine
        # the reads on pools of their own, in autocommit, their planner settings set once a connection: a
        # search's statements without a BEGIN, a SET and a ROLLBACK around them (three round trips)
        self.readers = make_engine(engine.url, SETTINGS)
        # facet values counted in a hash table (a few hundred values), not by sorting a million (the planner's
        # choice without words: 645 ms, not 215, at 100,000)
        self.counters = make_engine(engine.url, {**SETTINGS, "enable_sort": "off"})
        self.std = std
        # the counting passes of this server's other processes (`_shared_pass`): files under the instance folder
        self.home, self.shared_passes = home, SharedFiles("search-passes", SHARED_PASSES)
        self._database = engine.url.render_as_string(hide_password=True)
        self.facets = facet_names(std)
        # the place (from 1) in `facet_values` of each single-valued facet stored with the record
        self.places = {f.name: i for i, f in enumerate(
            (f for f in facets(std) if not f.multi and f.name != OVERDUE), 1)}
        self.analyzer = analyzer()
        self.stemmed = stem_places(self.analyzer)  # a text's (place, stem) pairs, for tsvectors
        self._local = threading.local()
        self._counts: OrderedDict[tuple[Any, ...], tuple[int, bool, bool, dict[str, dict[str, int]]]] = OrderedDict()
        self._counts_lock = threading.Lock()  # for `_passes`, `_matches` and `_listing` too
        self._passes: OrderedDict[tuple[Any, ...], Pass] = OrderedDict()  # see `_count_apart`
        self._matches: OrderedDict[tuple[str, str], int | None] = OrderedDict()  # see `_kept_matches`
        self._scores: OrderedDict[tuple[str, str], dict[str, float]] = OrderedDict()  # see `_scores_of`
        self._scored = 0  # scores kept in `_scores`
        self.shared_matches = SharedFiles("search-matches", MATCHES_KEPT * 8)
        self._listing: set[tuple[str, str]] = set()  # matches being listed (by a search of this process)
        self.exact_up_to, self.ranked = EXACT_UP_TO, RANKED
        self._pool: tuple[int, ThreadPoolExecutor] | None = None  # (process id, its threads)
        self.memory = FacetMemory(engine, self._threads)  # searches without words, counted in this process

    # ---------------------------------------------------------------- writing
    @contextlib.contextmanager
    def writing(self, wait: float) -> Iterator[None]:
        with self.engine.begin() as conn:
            deadline = time.monotonic() + wait
            while not conn.scalar(text("SELECT pg_try_advisory_xact_lock(:k)"), {"k": LOCK_KEY}):
                if time.monotonic() >= deadline:
                    raise IndexBusy("index PostgreSQL en cours d'écriture par un autre processus")
                time.sleep(0.05)
            # the tables of this format (ALTER TABLE takes an exclusive lock, even when there is nothing to do:
            # every reader would wait for the end of every write)
            if not conn.scalar(text("SELECT to_regclass('search_meta') IS NOT NULL AND to_regclass("
                                    "'search_similar') IS NOT NULL")) or \
                    conn.scalar(text("SELECT version FROM search_meta WHERE id = 2")) != FORMAT:
                for statement in DDL:
                    conn.execute(text(statement))
            self._local.conn, self._local.dirty = conn, False
            try:
                yield
                if self._local.dirty:  # the readers' cached counts are of an older version now
                    conn.execute(text("UPDATE search_meta SET version = version + 1 WHERE id = 1"))
            finally:
                self._local.conn = None
        PostgresSearch.writes += 1

    def version(self) -> str | None:
        """The index's version (it changes with every write): read at most every RECHECK s, and at once after
        a write of this process; None before the first write. A key for caching answers, as Whoosh's."""
        local, now = self._local, time.monotonic()
        if getattr(local, "writes", -1) == PostgresSearch.writes and now - local.checked < RECHECK:
            return local.version
        with self.engine.connect() as conn:
            exists = conn.scalar(text("SELECT to_regclass('search_meta') IS NOT NULL"))
            found = conn.scalar(text(VERSION)) if exists else None
        local.version = None if found is None else version_name(found)
        local.checked, local.writes = now, PostgresSearch.writes
        return local.version

    def _conn(self) -> Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            raise RuntimeError("write outside `writing`")
        return conn

    def exists(self) -> bool:
        conn = self._conn()
        if conn.scalar(text("SELECT version FROM search_meta WHERE id = 2")) != FORMAT:
            return False  # built by an older version: the next sync rebuilds it
        return bool(conn.scalar(text("SELECT EXISTS (SELECT 1 FROM search_documents) OR NOT EXISTS "
                                     "(SELECT 1 FROM experiences WHERE status = 'published')")))

    def tsvector(self, doc: Doc, title_only: bool = False) -> str:
        """The stems with their positions, and each pair of consecutive stems as one lexeme "a b" (its first
        position): a two-word phrase is then found by the GIN index alone, without reading any tsvector. A
        compound written together shares the place of its first part (`NormalizingTokenizer`): it pairs with
        the word before, and the word after pairs with that part."""
        positions: dict[str, list[str]] = {}
        room = TSVECTOR_BUDGET

        def add(lexeme: str, at: str) -> bool:  # False once the budget is spent: the rest is not indexed
            nonlocal room
            held = positions.get(lexeme)
            room -= 2 if held is not None else len(lexeme.encode()) + 10
            if room < 0:
                return False
            if held is None:
                held = positions[lexeme] = []
            if len(held) < 256:  # PostgreSQL keeps 256 positions a lexeme
                held.append(at)
            return True

        start = 1
        for value, weight in ((doc.intitule, "A"), (doc.nom_porteur, "B"), ("" if title_only else doc.texte, "D")):
            last, place, previous, here = start, None, None, None  # (here: the first word at this place)
            for at, stem in self.stemmed(value):  # (what `self.analyzer(value, positions=True)` gives)
                pos = min(start + at, MAX_POSITION)
                if not add(stem, f"{pos}{weight}"):
                    break
                if at != place:
                    place, previous, here = at, here, stem
                if previous is not None and not title_only and f"{previous} {stem}" not in positions:
                    add(f"{previous} {stem}", f"{pos}{weight}")
                last = pos
            start = last + FIELD_GAP
        words = [f"{quote(word)}:{','.join(p)}" for word, p in positions.items()]
        if not title_only:
            words += [quote(value) for value in self._values(doc)]
            if doc.results_due and not doc.results_published:  # overdue from the due date on: see `late`
                words.append(quote(DUE + doc.results_due))
        return " ".join(words)

    def _values(self, doc: Doc) -> list[str]:
        """The facet values of a record, single-valued facets first, each at its place (`places`)."""
        return [f"{name}={doc.facets[name][0]}" for name in self.places] + [
            f"{name}={v}" for name, vs in doc.facets.items() if name not in self.places for v in vs]

    def _row(self, doc: Doc) -> dict[str, Any]:
        values = self._values(doc)
        return {"id": doc.id, "h": doc.content_hash, "t": doc.intitule, "p": doc.nom_porteur, "m": doc.date_maj,
                "d": doc.date_debut, "c": doc.cout, "due": doc.results_due or None, "pub": doc.results_published,
                "f": values, "v": self.tsvector(doc), "vt": self.tsvector(doc, title_only=True), "x": doc.texte}

    def _write(self, docs: Iterable[Doc | str]) -> int:
        conn, count, batch = self._conn(), 0, []
        self._local.dirty = True
        for doc in docs:
            count += 1
            if isinstance(doc, str):
                conn.execute(text("DELETE FROM search_documents WHERE id = :id"), {"id": doc})
                conn.execute(text("DELETE FROM search_texts WHERE id = :id"), {"id": doc})
                conn.execute(text("DELETE FROM search_similar WHERE id = :id"), {"id": doc})
                continue
            batch.append(self._row(doc))
            if len(batch) >= BATCH:
                self._upsert(conn, batch)
                batch = []
        if batch:
            self._upsert(conn, batch)
        return count

    def _words(self, conn: Connection, rows: list[dict[str, Any]]) -> None:
        counts: Counter[str] = Counter()
        for r in rows:
            counts.update(set(folded_words(f"{r['t']} {r['x']}")))
        if counts:
            conn.execute(text("INSERT INTO search_words AS w VALUES (:w, :h, :n, :d) ON CONFLICT (word) DO UPDATE "
                              "SET docs = w.docs + excluded.docs"),
                         [{"w": w, "h": w[:2], "n": len(w), "d": n} for w, n in sorted(counts.items())])

    def _upsert(self, conn: Connection, rows: list[dict[str, Any]]) -> None:
        """Writes a batch of rows; a batch PostgreSQL refuses is written row by row, and a row it refuses is left
        out (logged; `registry index check` lists it as missing): one record must not stop the index from
        following every other."""
        try:
            with conn.begin_nested():
                self._upsert_rows(conn, rows)
        except DBAPIError as exc:
            if len(rows) == 1:
                log.error("search index: record %s left out: %s", rows[0]["id"], str(exc.orig).splitlines()[0])
                return
            for row in rows:
                self._upsert(conn, [row])

    def _upsert_rows(self, conn: Connection, rows: list[dict[str, Any]]) -> None:
        self._words(conn, rows)
        columns = ("content_hash", "intitule", "nom_porteur", "date_maj", "date_debut", "cout", "results_due",
                   "results_published", "facet_values", "tsv", "tsv_title")
        updates = ", ".join(f"{c} = excluded.{c}" for c in columns)
        conn.execute(text(
            f"INSERT INTO search_documents (id, {', '.join(columns)}) VALUES (:id, :h, :t, :p, :m, :d, :c, :due, "
            f":pub, CAST(:f AS text[]), CAST(:v AS tsvector), CAST(:vt AS tsvector)) "
            f"ON CONFLICT (id) DO UPDATE SET {updates}"), rows)
        conn.execute(text("INSERT INTO search_texts (id, texte) VALUES (:id, :x) ON CONFLICT (id) DO UPDATE SET "
                          "texte = excluded.texte"), [{"id": r["id"], "x": r["x"]} for r in rows])
        # its similar experiences to make again (the list made from its former text is dropped now)
        conn.execute(text("INSERT INTO search_similar AS s (id) VALUES (:id) ON CONFLICT (id) DO UPDATE SET "
                          "generation = s.generation + 1, made = NULL, similar_ids = NULL"),
                     [{"id": r["id"]} for r in rows])

    def apply(self, docs: Iterable[Doc | str]) -> int:
        return self._write(docs)

    def rebuild(self, docs: Iterable[Doc | str]) -> int:
        """In one transaction: readers see the old rows until the commit, never an empty or partial index."""
        conn = self._conn()
        conn.execute(text("DELETE FROM search_documents"))
        conn.execute(text("DELETE FROM search_texts"))
        conn.execute(text("DELETE FROM search_words"))
        conn.execute(text("DELETE FROM search_similar"))
        conn.execute(text("UPDATE search_meta SET version = :f WHERE id = 2"), {"f": FORMAT})
        return self._write(d for d in docs if not isinstance(d, str))

    # ---------------------------------------------------------------- query
    def _clause(self, clause: Clause) -> str | None:
        terms = [t.text for w in clause.words for t in self.analyzer(w)]
        if not terms:
            return None
        if len(terms) == 1:
            return quote(terms[0])
        pairs = [quote(f"{a} {b}") for a, b in itertools.pairwise(terms)]
        if len(terms) == 2:  # exactly the two words one after the other
            return pairs[0]
        return "(" + " & ".join(pairs) + " & (" + " <-> ".join(quote(t) for t in terms) + "))"

    def tsquery(self, parsed: ParsedQuery) -> str | None:
        groups = []
        for group in parsed.must:
            options = [c for c in (self._clause(x) for x in group) if c]
            if options:
                groups.append("(" + " | ".join(f"({o})" for o in options) + ")")
        if not groups:
            return None
        excluded = [c for c in (self._clause(x) for x in parsed.exclude) if c]
        return " & ".join(groups + [f"!({e})" for e in excluded])

    def any_term(self, parsed: ParsedQuery) -> str | None:
        """Any of the query's wanted words: a record whose title or bearer holds one is a ranking candidate."""
        terms = {t.text for group in parsed.must for c in group for w in c.words for t in self.analyzer(w)}
        return " | ".join(quote(t) for t in sorted(terms)) or None

    def _where(self, req: SearchRequest, words: str | None, skip: str | None, params: dict[str, Any]) -> str:
        """The matches as SQL: the query's words (`words`: None for no words, "" for words that analyse to
        nothing) and the facet filters but `skip`'s, as one tsquery (:m) for the GIN index; OR within a facet,
        AND across. Results overdue depend on today's date: « oui » is a tsquery of due-date prefixes (`late`),
        « non » a condition on two columns of the row."""
        parts, where = [] if not words else [f"({words})"], [] if words is None or words else ["false"]
        for name, values in req.filters.items():
            if name == skip or name not in self.facets:
                continue
            if name == OVERDUE:
                if YES in values and NO in values:
                    continue
                if YES in values and (overdue := late(params["today"])):  # from the GIN index, as the other filters
                    parts.append(overdue)
                elif YES in values:
                    where.append("false")
                else:  # a record with no due date is not late
                    where.append("NOT (coalesce(results_due < :today, false) AND NOT results_published)"
                                 if NO in values else "false")
                continue
            known = [quote(f"{name}={v}") for v in values if len(v) <= MAX_VALUE]  # a longer one matches nothing
            if known:
                parts.append("(" + " | ".join(known) + ")")
            else:
                where.append("false")
        if parts:
            params["m"] = " & ".join(parts)
            where.insert(0, "tsv @@ CAST(:m AS tsquery)")
        return " AND ".join(where) or "true"

    def search(self, req: SearchRequest) -> Results:
        parsed = parse(req.text)
        query = None if parsed.empty else self.tsquery(parsed)
        params: dict[str, Any] = {"today": dt.date.today().isoformat(), "q": query,
                                  "qt": None if query is None else self.any_term(parsed)}
        words = None if parsed.empty else (query or "")
        clause = self._where(req, words, None, params)
        version = self.version()  # the cache key: the same read as the site's page memory
        if version is None:
            return Results(0, [], {n: {} for n in self.facets}, None, req)
        if parsed.empty and (snap := self.memory.get(version)) is not None:
            return self._browse(snap, req, clause, params)
        if query and (kept := self._kept_matches(version, query)) is not None:
            return self._among_matches(*kept, req, clause, params, query, parsed)
        key = (version, params["today"], query, parsed.empty, tuple(sorted(req.filters.items())))
        with self._reading() as conn:
            with self._counts_lock:
                cached = self._counts.get(key)
            hits: list[Hit] | None = None
            if cached is None:
                # the counts on connections of their own while this one makes the page: a search's latency is
                # then its slowest part, not their sum (PostgreSQL runs each on a core)
                counting = self._count_apart(req, clause, words, params, version)
                cap = max(int(self.ranked), req.offset + req.limit)  # all the page needs: more than `cap`?
                n = counting[0].result()[0] if counting[0].done() else None  # (a pass kept: known)
                if n is not None and (words is None or n < self.exact_up_to or n > cap):
                    seen = min(n, cap + 1)
                else:
                    seen = conn.scalar(text(f"SELECT count(*) FROM (SELECT 1 FROM search_documents WHERE "
                                            f"{clause} LIMIT :n) m"), {**params, "n": cap + 1})
                hits = self._hits(conn, req, clause, params, query, seen, version) if seen else []
                # (no transaction, no lock held while waiting for the other connections: a writer asking for an
                # exclusive lock, as a format change or an operator's VACUUM FULL, would queue the counts behind
                # it, and itself wait for this page's transaction: a deadlock PostgreSQL cannot see)
                cached = self._counted(req, words, [c.result() for c in counting])
                self._remember(self._counts, key, cached, CACHE_SIZE)
            total, exact, facets_exact, facets = cached
            if hits is None:
                hits = self._hits(conn, req, clause, params, query, total, version) if total else []
            suggestion = self._suggest(conn, parsed) if total < 3 and not parsed.empty else None
        return Results(total, hits, facets, suggestion, req, exact, facets_exact)

    def _browse(self, snap: Snapshot, req: SearchRequest, clause: str, params: dict[str, Any]) -> Results:
        """A search without words from this process's snapshot (`pg_memory`): the counts, and the page when in
        the snapshot's order (by update date); the page's rows then read by their keys."""
        total, facets, matches = snap.counts(self.facets, req.filters, params["today"])
        with self._reading() as conn:
            if not total:
                hits: list[Hit] = []
            elif ORDER.get(req.sort, ORDER["date_maj"]) == ORDER["date_maj"]:
                hits = self._hits_in_order(conn, snap, matches, req)
            else:
                hits = self._hits(conn, req, clause, params, None, total, snap.version)
        return Results(total, hits, facets, None, req)

    def _hits_in_order(self, conn: Connection, snap: Snapshot, matches: int, req: SearchRequest) -> list[Hit]:
        """The page of `matches` in the snapshot's order (by update date): its rows read by their keys."""
        return self._page_of(conn, [snap.ids[p] for p in first_positions(matches, req.offset, req.limit)], req)

    def _page_of(self, conn: Connection, wanted: list[str], req: SearchRequest,
                 scores: Mapping[str, float] | None = None) -> list[Hit]:
        """The hits of these keys, in this order: their rows and texts read by key (a record removed meanwhile is
        left out)."""
        rows = conn.execute(text(f"SELECT {HIT_COLUMNS}, 0.0 AS score, t.texte FROM search_documents d "
                                 "JOIN search_texts t USING (id) WHERE d.id = ANY(:ids)"), {"ids": wanted}).all()
        place = {doc_id: i for i, doc_id in enumerate(wanted)}
        return self._hit_list(sorted(rows, key=lambda r: place[r.id]), req, scores)

    def _kept_matches(self, version: str, query: str) -> tuple[Snapshot, int] | None:
        """The matches of the words `query` as a mask of the process's snapshot: listed once, in full (up to
        MATCHES_UP_TO), by the first search of these words on this index version, and shared with the other
        processes (files under <home>/search-matches); that search and every later one of these words, whatever
        its filters, is counted from them, exactly, with no SQL pass (`_among_matches`). Listing the matches of
        a common word costs two or three passes (~75 ms for 100,000 matches, a pass stopping at `exact_up_to`),
        and a search refining it by facets would count one pass a filter, more at each click. None: the passes'
        way (too many matches, the snapshot not read yet, or another thread of the process listing them)."""
        key = (version, query)
        with self._counts_lock:
            known = key in self._matches
            if known:
                self._matches.move_to_end(key)
                mask = self._matches[key]
        snap = self.memory.get(version)
        if snap is None:
            return None
        if known:
            return None if mask is None else (snap, mask)
        shared = self.shared_matches.get(self.home, version, (self._database, query)) if self.home else None
        if shared is not None:  # (b"": too many; a file's bits beyond the records are not read)
            return self._keep_matches(key, snap, int.from_bytes(shared, "little") & snap.all if shared else None)
        with self._counts_lock:
            if key in self._listing:
                return None
            self._listing.add(key)
        return self._list_matches(key, snap)

    def _list_matches(self, key: tuple[str, str], snap: Snapshot) -> tuple[Snapshot, int] | None:
        version, query = key
        try:
            with self._reading() as conn:  # the index's version read by the same statement: the same snapshot
                row = conn.execute(text(
                    "SELECT (SELECT version FROM search_meta WHERE id = 1), array_agg(id) FROM (SELECT id FROM "
                    "search_documents WHERE tsv @@ CAST(:q AS tsquery) LIMIT :n) m"),
                    {"q": query, "n": MATCHES_UP_TO + 1}).one()
            if version_name(row[0]) != version:
                return None  # written meanwhile: the passes answer, the next version gets its own mask
            ids = row[1] or []
            mask = snap.mask_of(ids) if len(ids) <= MATCHES_UP_TO else None  # (None: too many, kept as such)
            if self.home is not None:
                data = b"" if mask is None else mask.to_bytes((mask.bit_length() + 7) // 8 or 1, "little")
                self.shared_matches.put(self.home, version, (self._database, query), data)
            return self._keep_matches(key, snap, mask)
        except DBAPIError as exc:  # (the page counted by its passes instead: a search never fails for this)
            log.error("search: matches of %s not listed: %s", query[:200], str(exc.orig).splitlines()[0])
            return None
        finally:
            with self._counts_lock:
                self._listing.discard(key)

    def _keep_matches(self, key: tuple[str, str], snap: Snapshot, mask: int | None) -> tuple[Snapshot, int] | None:
        self._remember(self._matches, key, mask, MATCHES_KEPT)
        return None if mask is None else (snap, mask)

    def _remember(self, table: OrderedDict[Any, Any], key: Any, value: Any, size: int) -> None:
        """Kept in one of this process's tables (totals, passes, matches), the least recently kept dropped."""
        with self._counts_lock:
            table[key] = value
            table.move_to_end(key)
            while len(table) > size:
                table.popitem(last=False)

    def _among_matches(self, snap: Snapshot, mask: int, req: SearchRequest, clause: str, params: dict[str, Any],
                       query: str, parsed: ParsedQuery) -> Results:
        """A search with words whose matches are kept (`_kept_matches`): every count from the snapshot, exact at
        any number of matches; the page in the snapshot's order by update date, else ranked or sorted in SQL."""
        total, facets, matches = snap.counts(self.facets, req.filters, params["today"], mask)
        with self._reading() as conn:
            if not total:
                hits: list[Hit] = []
            elif req.sort == "date_maj":
                hits = self._hits_in_order(conn, snap, matches, req)
            else:
                hits = self._hits(conn, req, clause, params, query, total, snap.version)
            suggestion = self._suggest(conn, parsed) if total < 3 else None
        return Results(total, hits, facets, suggestion, req)

    def _threads(self) -> ThreadPoolExecutor:
        """This process's counting threads (made here: threads do not survive a fork)."""
        if self._pool is None or self._pool[0] != os.getpid():
            self._pool = (os.getpid(), ThreadPoolExecutor(max_workers=4, thread_name_prefix="search-counts"))
        return self._pool[1]

    @contextlib.contextmanager
    def _reading(self, counting: bool = False) -> Iterator[Connection]:
        """A connection with the search's planner settings, in autocommit: each statement sees what was committed
        before it (as in a READ COMMITTED transaction)."""
        with (self.counters if counting else self.readers).connect() as conn:
            yield conn

    def close(self) -> None:
        """The connections of the search's reads closed (with the registry's: `Registry.close`)."""
        self.readers.dispose()
        self.counters.dispose()

    def _suggest(self, conn: Connection, parsed: ParsedQuery) -> str | None:
        """For each query word found in no record, the closest word of the index (`spelling.closest`)."""
        text_out, changed = parsed.text, False
        for word in dict.fromkeys(parsed.words()):
            query = self._clause(Clause((word,)))
            if not query or conn.scalar(text("SELECT EXISTS (SELECT 1 FROM search_documents WHERE "
                                             "tsv @@ CAST(:q AS tsquery))"), {"q": query}):
                continue
            folded = fold(word)
            options = conn.execute(text("SELECT word, docs FROM search_words WHERE head = :h AND size BETWEEN :a "
                                        "AND :b"), {"h": folded[:2], "a": len(folded) - 2, "b": len(folded) + 2}).all()
            better = spelling.closest(folded, [(o.word, o.docs) for o in options])
            if better:
                text_out, changed = text_out.replace(word, better), True
        return text_out if changed else None

    def _count_apart(self, req: SearchRequest, clause: str, words: str | None, params: dict[str, Any],
                     version: str) -> list[Future[Pass]]:
        """The counting passes, each on a connection of its own, all at once: a search with two filters costs
        its slowest pass, not the sum of three (`_counted` puts them together). With words, matches are
        counted up to `exact_up_to`; without (browsing by facets, the compliance pages), every one. A pass is
        the matches of the words and some filters: the same pass serves the search with those filters (all
        its counts) and, for a facet, every search adding a filter on it (its counts without its own filter):
        kept per process (`_passes`), a user refining a search by facets costs one new pass a click."""
        cap = self.exact_up_to if words is not None else None
        passes = [(req.filters, clause, params, None)]
        for name in req.filters:  # a filtered facet counts as if it were not filtered
            if name in self.facets:
                own = dict(params)
                passes.append(({k: v for k, v in req.filters.items() if k != name},
                               self._where(req, words, name, own), own, name))
        snap = self.memory.get(version) if words is not None else None
        out: list[Future[Pass]] = []
        for filters, c, p, only in passes:
            key = (version, params["today"], words, tuple(sorted((k, tuple(sorted(set(v))))
                                                                 for k, v in filters.items() if k in self.facets)))
            with self._counts_lock:
                found = self._passes.get((*key, None)) or (self._passes.get((*key, only)) if only else None)
            if found is None:
                found = self._shared_pass(key, only)
            if found is not None:
                done: Future[Pass] = Future()
                done.set_result(found)
                out.append(done)
            else:
                out.append(self._threads().submit(self._pass_apart, c, p, cap, only, snap, key))
        return out

    def _pass_apart(self, clause: str, params: dict[str, Any], cap: int | None, only: str | None,
                    snap: Snapshot | None, key: tuple[Any, ...]) -> Pass:
        """One counting pass on a connection of its own, kept under `key`. Every facet's counts from the
        process's snapshot when there is one of this version: SQL then only lists the matches' keys, where
        unnesting and hashing their values took two thirds of the pass (~30 → 10 ms of database time for 10,000
        matches); else in SQL, the facet `only`'s (None: every facet's)."""
        with self._reading(counting=True) as conn:
            found: Pass | None = None
            if snap is not None:
                limit = "LIMIT :cap" if cap is not None else ""
                # the keys as one array: a third of the CPU of as many rows
                ids = conn.scalar(text(f"SELECT array_agg(id) FROM (SELECT id FROM search_documents WHERE "
                                       f"{clause} {limit}) m"), {**params, "cap": cap}) or []
                facets = snap.among(ids, self.facets, params["today"])
                if facets is not None:
                    found, only = (len(ids), facets), None
            if found is None:
                found = self._facet_pass(conn, clause, params, cap, only)
        self._remember(self._passes, (*key, only), found, CACHE_SIZE)
        if self.home is not None:
            self.shared_passes.put(self.home, key[0], (self._database, *key, only), json.dumps(found).encode())
        return found

    def _shared_pass(self, key: tuple[Any, ...], only: str | None) -> Pass | None:
        """A pass counted by another process of this server (kept in this one from now on): in the plan of the
        site benchmark, a third of the passes a process would count. A damaged file is counted again."""
        if self.home is None:
            return None
        for which in (None, only) if only else (None,):
            data = self.shared_passes.get(self.home, key[0], (self._database, *key, which))
            try:
                total, facets = json.loads(data) if data is not None else (None, None)
            except ValueError:
                continue
            if isinstance(total, int) and isinstance(facets, dict) and all(
                    isinstance(counts, dict) for counts in facets.values()):
                self._remember(self._passes, (*key, which), (total, facets), CACHE_SIZE)
                return total, facets
        return None

    def _counted(self, req: SearchRequest, words: str | None, passes: list[Pass]
                 ) -> tuple[int, bool, bool, dict[str, dict[str, int]]]:
        """(total, exact, facets_exact, facets). When `exact_up_to` matches are found, counting stopped: the total
        says "at least that many" (exact False, Elasticsearch's "gte") and the facets count those matches only.
        A filtered facet is counted without its own filter, so its counts can stop while the total is exact
        (facets_exact False)."""
        cap = self.exact_up_to if words is not None else None
        (total, kept), own = passes[0], passes[1:]
        facets = dict(kept)  # (a pass is kept for other searches: never changed)
        exact = cap is None or total < cap
        facets_exact = exact
        for name, (n, counted) in zip([n for n in req.filters if n in self.facets], own, strict=True):
            facets_exact = facets_exact and (cap is None or n < cap)
            facets[name] = counted[name]
        return total, exact, facets_exact, facets

    def _facet_pass(self, conn: Connection, clause: str, params: dict[str, Any], cap: int | None,
                    only: str | None) -> tuple[int, dict[str, dict[str, int]]]:
        """One pass over the matches (the first `cap` of them): how many, and every facet's counts (or the
        facet `only`'s). A single-valued facet is read at its place in the array (no unnest); "*" counts the
        rows, "*late" those whose results are overdue."""
        limit = "LIMIT :cap" if cap is not None else ""
        matches = (f"SELECT facet_values f, results_due < :today AND NOT results_published AS late "
                   f"FROM search_documents WHERE {clause} {limit}")
        args = {**params, "cap": cap}
        facets: dict[str, dict[str, int]] = {n: {} for n in self.facets}
        if only is not None and only != OVERDUE:
            place = self.places.get(only)
            sql = (f"SELECT f[{place}] v, count(*) FROM ({matches}) m GROUP BY ROLLUP (1)" if place else
                   f"SELECT v, count(*) FROM (SELECT unnest(f || ARRAY['*']) v FROM ({matches}) m) x "
                   f"WHERE v = '*' OR starts_with(v, :prefix) GROUP BY v")
            rows = conn.execute(text(sql), {**args, "prefix": f"{only}="})
            total = 0
            for value, n in rows:
                if value is None or value == "*":
                    total = n
                else:
                    facets[only][value.partition("=")[2]] = n
            return total, facets
        # the values of every row as one set-returning list, counted by one hash aggregate
        rows = conn.execute(text(
            f"SELECT v, count(*) FROM (SELECT unnest(f || CASE WHEN late THEN ARRAY['*', '*late'] ELSE ARRAY['*'] "
            f"END) v FROM ({matches}) m) x GROUP BY v"), args)
        total = late = 0
        for value, n in rows:
            if value == "*":
                total = n
            elif value == "*late":
                late = n
            else:
                name, _, code = value.partition("=")
                if name in facets:
                    facets[name][code] = n
        facets[OVERDUE] = {k: v for k, v in ((YES, late), (NO, total - late)) if v}
        return total, facets

    def _hits(self, conn: Connection, req: SearchRequest, clause: str, params: dict[str, Any],
              query: str | None, total: int, version: str) -> list[Hit]:
        """The page: by relevance (`_ranked`), else in the order of the sort, read with its texts only."""
        if req.sort == "pertinence" and query:
            return self._ranked(conn, req, clause, params, query, total, version)
        order = ORDER.get(req.sort, ORDER["date_maj"])
        rows = conn.execute(text(f"SELECT d.*, t.texte FROM (SELECT {HIT_COLUMNS}, 0.0 AS score FROM search_documents "
                                 f"d WHERE {clause} ORDER BY {order} LIMIT :limit OFFSET :offset) d JOIN search_texts "
                                 f"t USING (id) ORDER BY {order}"), {**params, "limit": req.limit,
                                                                    "offset": req.offset}).all()
        return self._hit_list(rows, req)

    def _ranked(self, conn: Connection, req: SearchRequest, clause: str, params: dict[str, Any], query: str,
                total: int, version: str) -> list[Hit]:
        """The page by relevance (`ts_rank_cd`, ties by key). It ranks every match when there are `ranked` or
        fewer; beyond, `ranked` candidates: the matches with a wanted word in their title or bearer, else (too
        few of them for the page) the first matches. Ranking reads each candidate's whole tsvector (stored out
        of line: ~12 µs each, most of the page's time): a record's score for these words is kept
        (`_scores_of`), and every search refining them by facets ranks only the candidates not scored yet."""
        cap = max(int(self.ranked), req.offset + req.limit)
        wheres = [clause] if total <= cap else [f"{clause} AND tsv_title @@ CAST(:qt AS tsquery)", clause]
        ids: list[str] = []
        for where in wheres:
            ids = conn.scalar(text(f"SELECT array_agg(id) FROM (SELECT id FROM search_documents WHERE {where} "
                                   f"LIMIT {cap}) m"), params) or []
            if len(ids) >= req.offset + req.limit:
                break
        scores = self._scores_of(conn, version, query, ids)
        # by score, then key (a stable sort: the keys' order kept among equal scores)
        page = sorted(sorted(ids), key=scores.__getitem__, reverse=True)[req.offset:req.offset + req.limit]
        return self._page_of(conn, page, req, scores)

    def _scores_of(self, conn: Connection, version: str, query: str, ids: list[str]) -> dict[str, float]:
        """These records' scores for the words `query`: those kept (per index version, SCORES_KEPT in all, the
        words least recently ranked dropped first), the others ranked now and kept."""
        key = (version, query)
        with self._counts_lock:
            kept = self._scores.get(key, {})
            missing = [i for i in ids if i not in kept]
            known = {i: kept[i] for i in ids if i in kept}
        if missing:
            found = {i: float(score) for i, score in conn.execute(text(
                "SELECT id, ts_rank_cd(tsv, CAST(:q AS tsquery)) FROM search_documents WHERE id = ANY(:ids)"),
                {"q": query, "ids": missing})}
            known.update(found)
            known.update((i, 0.0) for i in missing if i not in found)  # (removed meanwhile: not on the page read)
            with self._counts_lock:
                table = self._scores.setdefault(key, {})
                before = len(table)
                table.update(found)
                self._scored += len(table) - before
        with self._counts_lock:
            if key in self._scores:
                self._scores.move_to_end(key)
            while self._scored > SCORES_KEPT and len(self._scores) > 1:
                self._scored -= len(self._scores.popitem(last=False)[1])
        return known

    def _hit_list(self, rows: Iterable[Any], req: SearchRequest,
                  scores: Mapping[str, float] | None = None) -> list[Hit]:
        terms = {t.text for w in parse(req.text).words() for t in self.analyzer(w)}
        today = dt.date.today().isoformat()
        hits = []
        for row in rows:
            facets: dict[str, tuple[str, ...]] = {}
            for value in row.facet_values:
                name, _, code = value.partition("=")
                facets[name] = (*facets.get(name, ()), code)
            facets[OVERDUE] = (overdue(row.results_due, row.results_published, today),)  # (of today: not stored)
            snippet = snippets.snippet(row.texte, terms, self.analyzer) if req.snippets else ""
            hits.append(Hit(row.id, row.intitule, row.nom_porteur, row.date_maj, row.date_debut, facets, snippet,
                            scores[row.id] if scores is not None else float(row.score)))
        return hits

    def similar(self, exp_id: str, limit: int = 5) -> list[tuple[str, str]]:
        """The record's stored list (`pg_similar`), or made now while it is not stored yet."""
        version = self.version()
        if version is None:
            return []
        with reading(self.engine) as conn:  # (one statement: no transaction)
            found = pg_similar.stored(conn, exp_id, limit) if self._has_lists(conn, version) else None
        if found is not None:
            return found
        with self.engine.connect() as conn:
            try:
                return pg_similar.made(conn, self.analyzer, exp_id, self._size(conn, version), limit)
            except DBAPIError as exc:  # the page without them, rather than an error page
                log.error("similar experiences of %s not made: %s", exp_id, str(exc.orig).splitlines()[0])
                return []

    def make_similar(self, seconds: float, stop: Callable[[], bool] = lambda: False) -> int:
        """Makes the similar lists to make for about `seconds`, or until `stop()` (the background work); how many
        were made."""
        version = self.version()
        if version is None:
            return 0
        with self.engine.connect() as conn:
            missing = not self._has_lists(conn, version)
        if missing:  # an index made before the lists: their table, every record's list to make (`writing`)
            try:
                with self.writing(wait=0.5):
                    pass
            except IndexBusy:
                return 0
            self._local.lists = None
        with self.engine.connect() as conn:
            return pg_similar.make_lists(conn, self.analyzer, lambda: self._size(conn, version), seconds, stop)

    def _has_lists(self, conn: Connection, version: str) -> bool:
        """The lists' table exists (an index made before it has it after its next write), read once a version."""
        known = getattr(self._local, "lists", None)
        if known is None or known[0] != version:
            known = self._local.lists = (version, bool(conn.scalar(text(
                "SELECT to_regclass('search_similar') IS NOT NULL"))))
        return known[1]

    def _size(self, conn: Connection, version: str) -> float:
        """The number of indexed records, read once per index version: the planner's estimate (`reltuples`) from
        SIZE_ESTIMATED on, counted below it (a table never analysed yet says -1)."""
        known = getattr(self._local, "size", None)
        if known is None or known[0] != version:
            found = conn.scalar(text("SELECT reltuples FROM pg_class WHERE relname = 'search_documents'")) or 0
            if found < SIZE_ESTIMATED:
                found = conn.scalar(text("SELECT count(*) FROM search_documents")) or 0
            known = self._local.size = (version, max(float(found), 1.0))
        return known[1]

    def indexed(self) -> dict[str, str]:
        with self.engine.connect() as conn:
            if not conn.scalar(text("SELECT to_regclass('search_documents') IS NOT NULL")):
                return {}
            return dict(conn.execute(text("SELECT id, content_hash FROM search_documents")).all())
