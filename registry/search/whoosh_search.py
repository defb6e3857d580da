"""Searching the Whoosh index: one searcher per thread, kept open and reopened only when the index changed;
facet counts by set intersections on posting lists cached per index version; snippets for shown hits only."""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import functools
import heapq
import itertools
import logging
import operator
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from whoosh.classify import Bo1Model
from whoosh.collectors import TopCollector
from whoosh.query import And, Not, Or, Phrase, Query, Term
from whoosh.reading import IndexReader, TermNotFound
from whoosh.scoring import BM25F
from whoosh.searching import Searcher

from registry.search import snippets, spelling, whoosh_similar
from registry.search.analysis import analyzer, fold
from registry.search.backend import BATCH, KEPT, MAX_AGE
from registry.search.bits import bitmask, counted
from registry.search.documents import Doc
from registry.search.fields import NO, OVERDUE, YES, facet_names, overdue
from registry.search.model import Hit, Results, SearchRequest
from registry.search.query import Clause, ParsedQuery, parse
from registry.search.whoosh_index import FORMAT, IndexBusy, IndexFolder
from registry.standard import Standard

log = logging.getLogger(__name__)
TEXT_FIELDS = ("intitule", "nom_porteur", "texte")
RECHECK = 0.5  # seconds between two checks that the index has not changed
SIMILAR_FIELD, SIMILAR_TERMS = "texte", 5  # what Whoosh's more_like(docnum, "texte") uses
DENSE_SHARE = 4  # a key term found in more than a quarter of the records is kept as a table (see `similar`)
SORT_FIELDS = {"date_maj": ("date_maj", True), "date_debut": ("date_debut", True), "cout": ("cout", True)}


class _Recording(TopCollector):
    """The top N by score, and every matching document on the way: one pass instead of two."""

    def __init__(self, limit: int, allowed: frozenset[int] | None) -> None:
        # no block skipping and no matcher replacement (which drops the branches that cannot reach the top N):
        # every match is seen
        super().__init__(limit=limit, usequality=False, replace=0)
        self.seen: set[int] = set()
        self.allowed = allowed  # only these may be in the top N (the facet filters); all are recorded

    def _collect(self, global_docnum: int, score: float) -> float:
        self.seen.add(global_docnum)
        if self.allowed is not None and global_docnum not in self.allowed:
            return 0
        return super()._collect(global_docnum, score)


@dataclass
class _Cache:
    """What does not change until the index does: posting sets of every facet value, sort columns."""

    all: frozenset[int]
    postings: dict[str, dict[str, frozenset[int]]]
    due: list[tuple[str, frozenset[int]]]
    unpublished: frozenset[int]
    sort_keys: dict[str, list[Any]]
    size: int = 0  # document numbers are below this
    bits: dict[str, dict[str, int]] = dataclasses.field(default_factory=dict)  # the postings as bitmasks (counts)
    all_bits: int = 0
    overdue: dict[str, dict[str, frozenset[int]]] = dataclasses.field(default_factory=dict)  # by day (one kept)
    orders: dict[tuple[str, bool], list[int]] = dataclasses.field(default_factory=dict)  # see `_page`
    length_norm: dict[str, list[float]] = dataclasses.field(default_factory=dict)  # by field: see `_norm`
    dense: dict[str, tuple[list[float], float]] = dataclasses.field(default_factory=dict)  # see `similar`
    frequency: dict[str, float | None] = dataclasses.field(default_factory=dict)  # see `_key_terms`


class WhooshSearch:
    def __init__(self, folder: IndexFolder, std: Standard) -> None:
        self.folder = folder
        self.std = std
        self.facets = facet_names(std)
        self.analyzer = analyzer()
        self._local = threading.local()
        self.lists = whoosh_similar.Lists()  # similar experiences, made in the background (`make_similar`)

    # ---------------------------------------------------------------- writing (the Backend protocol)
    def writing(self, wait: float) -> contextlib.AbstractContextManager[None]:
        return self.folder.locked(wait)

    def exists(self) -> bool:
        """An index of this format (one of another is rebuilt by the next sync, as PostgreSQL's)."""
        return self.folder.current_format() == FORMAT

    def apply(self, docs: Iterable[Doc | str]) -> int:
        return self.folder.apply(docs)

    def rebuild(self, docs: Iterable[Doc | str]) -> int:
        return self.folder.rebuild(docs)

    # ---------------------------------------------------------------- searcher
    def searcher(self) -> Searcher | None:
        """This thread's searcher, refreshed when the index changed (checked at most every RECHECK s)."""
        local = self._local
        now = time.monotonic()
        fresh = getattr(local, "writes", -1) == IndexFolder.writes
        if getattr(local, "searcher", None) is not None and fresh and now - local.checked < RECHECK:
            return local.searcher
        current = self.folder.current()
        if current is None:
            return None
        if getattr(local, "searcher", None) is None or local.generation != current:
            if getattr(local, "searcher", None) is not None:
                local.searcher.close()
            ix = self.folder.open()
            if ix is None:
                return None
            local.searcher, local.generation, local.cache = ix.searcher(), current, None
        elif not local.searcher.up_to_date():
            local.searcher, local.cache = local.searcher.refresh(), None
        local.checked, local.writes = now, IndexFolder.writes
        return local.searcher

    def version(self) -> str | None:
        """Changes whenever this thread's searcher does (new generation or commit): a key for caching answers."""
        s = self.searcher()
        return None if s is None else f"{self._local.generation}:{s.reader().generation()}"

    def _cache(self, s: Searcher) -> _Cache:
        if getattr(self._local, "cache", None) is not None:
            return self._local.cache
        reader = s.reader()
        live = frozenset(reader.all_doc_ids())
        postings = {name: {term.decode("utf-8"): frozenset(reader.postings(name, term).all_ids()) & live
                           for term in reader.lexicon(name)} for name in self.facets if name != OVERDUE}
        due = [(t.decode("utf-8"), frozenset(reader.postings("results_due", t).all_ids()) & live)
               for t in reader.lexicon("results_due")]
        unpublished = frozenset(reader.postings("results_published", b"non").all_ids()) & live \
            if b"non" in set(reader.lexicon("results_published")) else frozenset()
        sort_keys = {field: list(reader.column_reader(field)) for field, _ in SORT_FIELDS.values()}
        size = reader.doc_count_all()
        bits = {name: {code: bitmask(docs, size) for code, docs in values.items()} for name, values in postings.items()}
        self._local.cache = _Cache(live, postings, due, unpublished, sort_keys, size, bits, bitmask(live, size))
        return self._local.cache

    # ---------------------------------------------------------------- query
    def _terms(self, clause: Clause) -> list[str]:
        return [t.text for w in clause.words for t in self.analyzer(w)]

    def _clause_query(self, clause: Clause) -> Query | None:
        terms = self._terms(clause)
        if not terms:
            return None
        per_field = [Term(f, terms[0]) if len(terms) == 1 else Phrase(f, terms) for f in TEXT_FIELDS]
        return Or(per_field)

    def to_query(self, parsed: ParsedQuery) -> Query | None:
        groups = []
        for group in parsed.must:
            options = [q for q in (self._clause_query(c) for c in group) if q is not None]
            if options:
                groups.append(Or(options) if len(options) > 1 else options[0])
        if not groups:
            return None
        excluded = [q for q in (self._clause_query(c) for c in parsed.exclude) if q is not None]
        query: Query = And(groups) if len(groups) > 1 else groups[0]
        return And([query, Not(Or(excluded))]) if excluded else query

    # ---------------------------------------------------------------- facets
    def _value_sets(self, cache: _Cache, name: str) -> dict[str, frozenset[int]]:
        if name != OVERDUE:
            return cache.postings.get(name, {})
        today = dt.date.today().isoformat()
        if today not in cache.overdue:  # the same all day long, for this version of the index
            past = frozenset().union(*[docs for due, docs in cache.due if due < today])
            late = past & cache.unpublished
            cache.overdue = {today: {YES: late, NO: cache.all - late}}
            cache.bits[OVERDUE] = {code: bitmask(docs, cache.size) for code, docs in cache.overdue[today].items()}
        return cache.overdue[today]

    def _value_bits(self, cache: _Cache, name: str) -> dict[str, int]:
        self._value_sets(cache, name)  # OVERDUE's of today
        return cache.bits.get(name, {})

    # ---------------------------------------------------------------- search
    def search(self, req: SearchRequest) -> Results:
        s = self.searcher()
        if s is None:
            return Results(0, [], {name: {} for name in self.facets}, None, req)
        cache = self._cache(s)
        parsed = parse(req.text)
        query = None if parsed.empty else self.to_query(parsed)
        chosen = {name: frozenset().union(*[self._value_sets(cache, name).get(v, frozenset()) for v in values])
                  for name, values in req.filters.items() if name in self.facets and values}
        top: list[tuple[int, float]] | None = None
        if not parsed.empty and query is None:  # only stop words: nothing to look for
            matched: frozenset[int] = frozenset()
        elif query is None:
            matched = cache.all
        elif req.sort == "pertinence" and (scored := self._scored(s, cache, parsed)) is not None:
            matched = frozenset(scored)
            allowed = frozenset.intersection(*chosen.values()) if chosen else None
            candidates = scored.items() if allowed is None else ((d, v) for d, v in scored.items() if d in allowed)
            top = heapq.nsmallest(req.offset + req.limit, candidates, key=lambda dv: (-dv[1], dv[0]))[req.offset:]
        elif req.sort == "pertinence":  # one scored pass gives the matches and the top N
            allowed = frozenset.intersection(*chosen.values()) if chosen else None
            collector = _Recording(req.offset + req.limit, allowed)
            s.search_with_collector(query, collector)
            matched = frozenset(collector.seen)
            top = [(hit.docnum, hit.score or 0.0) for hit in collector.results()][req.offset:]
        else:
            matched = frozenset(s.search(query, limit=None, scored=False).docs())
        final = matched.intersection(*chosen.values()) if chosen else matched
        matched_bits = cache.all_bits if matched is cache.all else bitmask(matched, cache.size)
        chosen_bits = {name: functools.reduce(operator.or_, [self._value_bits(cache, name).get(v, 0) for v in values],
                                              0) for name, values in req.filters.items() if name in chosen}
        facets = {}
        for name in self.facets:
            base = matched_bits
            for other, docs in chosen_bits.items():
                if other != name:
                    base &= docs
            facets[name] = counted(base, self._value_bits(cache, name))
        hits = self._hits(s, query, final, req, top)
        suggestion = self._suggest(s, parsed) if len(final) < 3 and not parsed.empty else None
        return Results(len(final), hits, facets, suggestion, req)

    def _scored(self, s: Searcher, cache: _Cache, parsed: ParsedQuery) -> dict[int, float] | None:
        """document -> score of every match of a query made of single words (each must match: no phrase, OR or
        exclusion), as Whoosh's scored pass over `to_query` gives them (BM25F: for each word, the sum over the text
        fields holding it, ties by document number), computed from the posting lists' blocks without Whoosh's
        matcher tree (its pass cost ~8 ms a text search at 10,000 records); None for any other query."""
        weighting = s.weighting
        if parsed.exclude or not isinstance(weighting, BM25F):
            return None
        words = []
        for group in parsed.must:
            options = [terms for terms in (self._terms(c) for c in group) if terms]
            if len(options) > 1 or (options and len(options[0]) > 1):
                return None
            words += options[0] if options else []
        if not words:
            return None
        reader = s.reader()
        live = cache.all
        scores: dict[int, float] | None = None
        for word in words:
            part: dict[int, float] = {}
            for name in TEXT_FIELDS:
                if not s.schema[name].scorable:
                    return None
                _add_bm25(part, reader, name, word, s.idf(name, word) * (weighting.K1 + 1),
                          self._norm(s, weighting, name))
            scores = part if scores is None else {d: v + part[d] for d, v in scores.items() if d in part}
        return {d: v for d, v in (scores or {}).items() if d in live}

    def _page(self, s: Searcher, query: Query | None, final: frozenset[int], req: SearchRequest) -> list[tuple[int,
                                                                                                          float]]:
        end = req.offset + req.limit
        if req.sort == "pertinence" and query is not None:
            found = s.search(query, limit=end, filter=set(final))
            return [(hit.docnum, hit.score or 0.0) for hit in found][req.offset:end]
        field, reverse = SORT_FIELDS.get(req.sort, ("date_maj", True))
        cache = self._cache(s)
        if len(final) * 8 < len(cache.all):  # a few: sorted here
            keys = cache.sort_keys[field]
            pick = heapq.nlargest if reverse else heapq.nsmallest
            ordered = pick(end, final, key=lambda d: (keys[d], -d))
        else:  # many: the first of every live document in that order (sorted once per index version)
            order = cache.orders.get((field, reverse))
            if order is None:
                keys = cache.sort_keys[field]
                order = cache.orders[(field, reverse)] = sorted(cache.all, key=lambda d: (keys[d], -d),
                                                                reverse=reverse)
            ordered = list(itertools.islice((d for d in order if d in final), end))
        return [(d, 0.0) for d in ordered[req.offset:end]]

    def _hits(self, s: Searcher, query: Query | None, final: frozenset[int], req: SearchRequest,
              top: list[tuple[int, float]] | None) -> list[Hit]:
        page = top if top is not None else self._page(s, query, final, req) if final else []
        terms = {t for _, t in query.iter_all_terms() if isinstance(t, str)} if query is not None else set()
        terms |= {t.decode() for _, t in query.iter_all_terms() if isinstance(t, bytes)} if query else set()
        today = dt.date.today().isoformat()
        hits = []
        for docnum, score in page:
            stored = s.stored_fields(docnum)
            snippet = snippets.snippet(stored.get("texte", ""), terms, self.analyzer) if req.snippets else ""
            facets = {n: tuple(stored.get(n, "").split()) for n in self.facets if n != OVERDUE}
            facets[OVERDUE] = (overdue(stored.get("results_due"), stored.get("results_published") == YES, today),)
            hits.append(Hit(stored["id"], stored["intitule"], stored["nom_porteur"], stored.get("date_maj", ""),
                            stored.get("date_debut", ""), facets, snippet, score))
        return hits

    def _suggest(self, s: Searcher, parsed: ParsedQuery) -> str | None:
        """For each query word found in no record, the closest word of the index (`spelling.closest`)."""
        reader, field = s.reader(), s.schema["texte"].spelling_fieldname("texte")  # its words, not stemmed
        text, changed = parsed.text, False
        for word in dict.fromkeys(parsed.words()):
            stems = self._terms(Clause((word,)))
            if not stems or any(s.doc_frequency(f, stems[0]) for f in TEXT_FIELDS):
                continue
            # (Whoosh's own corrector ranks every word within reach alike, whatever its distance: by name)
            folded = fold(word)
            better = spelling.closest(folded, [(w, reader.doc_frequency(field, w))
                                               for w in reader.terms_within(field, folded, spelling.MOST)])
            if better:
                text, changed = text.replace(word, better), True
        return text if changed else None

    def make_similar(self, seconds: float, stop: Callable[[], bool] = lambda: False) -> int:
        """Makes and stores the lists not made yet, then those older than MAX_AGE (`whoosh_similar`), a batch at a
        time under the writers' lock from a searcher of the last commit, for about `seconds` or until `stop()`
        (asked between batches); how many were made."""
        deadline, count = time.monotonic() + seconds, 0
        while True:
            try:
                with self.folder.locked(wait=0.5):
                    self._local.checked = float("-inf")  # the last commit, of any process
                    s = self.searcher()
                    if s is None:
                        return count
                    generation = self._local.generation
                    try:
                        have = self.lists.stored(generation)
                    except sqlite3.DatabaseError as exc:
                        log.error("similar experiences: %s replaced (%s)", generation / whoosh_similar.FILE, exc)
                        self.lists.forget(generation)
                        whoosh_similar.discard(generation)
                        have = self.lists.stored(generation)
                    old = time.time() - MAX_AGE
                    ids = sorted((t.decode("utf-8") for t in s.reader().lexicon("id")), key=lambda i: have.get(i, 0))
                    todo = [i for i in ids if have.get(i, 0) < old and s.document_number(id=i) is not None]
                    todo = todo[:BATCH]
                    if not todo:
                        return count
                    self.lists.write(generation, {i: self._made_ids(s, i) for i in todo})
            except IndexBusy:
                return count
            count += len(todo)
            if time.monotonic() >= deadline or stop():
                return count

    def _made_ids(self, s: Searcher, exp_id: str) -> list[str]:
        """A list to store; empty (logged) when making it fails: one record must not stop every other's."""
        try:
            return [i for i, _ in self._made(s, exp_id, KEPT)]
        except Exception:
            log.exception("similar experiences of %s not made", exp_id)
            return []

    def similar(self, exp_id: str, limit: int = 5) -> list[tuple[str, str]]:
        """The record's stored list (`make_similar`), the records no longer indexed left out; made now while it is
        not stored."""
        s = self.searcher()
        if s is None:
            return []
        ids = self.lists.read(self._local.generation, exp_id) if limit <= KEPT else None
        if ids is None:
            return self._made(s, exp_id, limit)
        found = ((i, s.document_number(id=i)) for i in ids)
        return [(i, s.stored_fields(d)["intitule"]) for i, d in found if d is not None][:limit]

    def _made(self, s: Searcher, exp_id: str, limit: int) -> list[tuple[str, str]]:
        """(id, title) of the experiences whose text is closest to this one's: the same answer as Whoosh's
        `more_like(docnum, "texte", top=limit)` (its 5 key terms by the Bo1 model, each a BM25F term boosted by
        its weight, ties by document number), computed here from the posting lists instead of Whoosh's tree of
        matchers, which cost ~10 ms a record page at 10,000 records: a key term found in most records (« don »,
        from « données », is one in 10,000) is read once per index version into a table by document number, and a
        record found by none of the rarer key terms is not looked at when the common terms alone cannot lift it
        into the top `limit` (exact: otherwise every record is scored)."""
        docnum = s.document_number(id=exp_id)
        if docnum is None:
            return []
        weighting = s.weighting
        if not isinstance(weighting, BM25F):  # another model: Whoosh's own pass
            return [(hit["id"], hit["intitule"]) for hit in s.more_like(docnum, SIMILAR_FIELD, top=limit)]
        cache = self._cache(s)
        norm = self._norm(s, weighting, SIMILAR_FIELD)
        reader = s.reader()
        count = reader.doc_count_all()
        scores: dict[int, float] = {}
        get = scores.get
        dense: list[tuple[float, list[float], float]] = []  # (factor, part by document, largest part)
        for word, boost in _key_terms(s, cache, docnum):
            factor = boost * s.idf(SIMILAR_FIELD, word) * (weighting.K1 + 1)
            if s.doc_frequency(SIMILAR_FIELD, word) * DENSE_SHARE > count:
                parts = cache.dense.get(word)
                if parts is None:
                    parts = [0.0] * count
                    for ids, weights in _posting_blocks(reader, SIMILAR_FIELD, word):
                        for d, tf in zip(ids, weights, strict=True):
                            parts[d] = tf / (tf + norm[d])
                    cache.dense[word] = parts = (parts, max(parts))
                dense.append((factor, *parts))
                continue
            _add_bm25(scores, reader, SIMILAR_FIELD, word, factor, norm)
        def total(d: int) -> float:  # the rare terms' part (`scores`) and the common terms'
            return get(d, 0.0) + sum(factor * parts[d] for factor, parts, _ in dense)

        live = cache.all
        order = lambda dv: (-dv[1], dv[0])  # noqa: E731  (score, then document number, as Whoosh)
        top = heapq.nsmallest(limit, ((d, total(d)) for d in scores if d != docnum and d in live), key=order)
        reach = sum(factor * largest for factor, _, largest in dense)  # the best a record not in `scores` can do
        if dense and (len(top) < limit or top[-1][1] <= reach):
            everyone = ((d, total(d)) for d in live if d != docnum)
            top = heapq.nsmallest(limit, ((d, v) for d, v in everyone if v > 0), key=order)
        return [(f["id"], f["intitule"]) for f in (s.stored_fields(d) for d, _ in top)]

    def _norm(self, s: Searcher, weighting: BM25F, name: str) -> list[float]:
        """BM25's length part, K1 * (1 - B + B * length / average length), of every document's field `name`."""
        cache = self._cache(s)
        if name not in cache.length_norm:
            reader = s.reader()
            b = weighting._field_B.get(name, weighting.B)
            average = s.avg_field_length(name) or 1
            # Whoosh 2.7 answers None, not the default, for a field with no term (a title of stop words only)
            cache.length_norm[name] = [weighting.K1 * ((1 - b) + b * (reader.doc_field_length(d, name, 0) or 0)
                                                       / average) for d in range(reader.doc_count_all())]
        return cache.length_norm[name]

    def indexed(self) -> dict[str, str]:
        """id -> content hash of every indexed document (for `registry index check`)."""
        s = self.searcher()
        if s is None:
            return {}
        return {f["id"]: f.get("content_hash", "") for f in s.all_stored_fields()}


def _add_bm25(scores: dict[int, float], reader: IndexReader, field: str, word: str, factor: float,
              norm: list[float]) -> None:
    """Adds a term's BM25 part to each document holding it: factor (idf x (K1 + 1), boost) x tf / (tf + norm)."""
    get = scores.get
    for ids, weights in _posting_blocks(reader, field, word):
        for d, tf in zip(ids, weights, strict=True):
            scores[d] = get(d, 0.0) + factor * tf / (tf + norm[d])


def _posting_blocks(reader: IndexReader, field: str, word: str) -> Iterable[tuple[Any, Any]]:
    """(document numbers, term frequencies) of a term's postings, a block at a time, across the index's segments
    (deleted documents included: the caller drops them). Whoosh 2.7's W3LeafMatcher keeps a block's numbers and
    frequencies in arrays; any other matcher is read a posting at a time."""
    for leaf, base in reader.leaf_readers():
        try:
            m = leaf.postings(field, word)
        except TermNotFound:
            continue
        m = getattr(m, "child", m)  # a FilterMatcher hiding the segment's deleted documents
        if all(hasattr(m, a) for a in ("_read_ids", "_read_weights", "_next_block")):
            while m.is_active():
                m._read_ids()
                m._read_weights()
                ids = m._ids if not base else [d + base for d in m._ids]
                yield ids, m._weights
                m._next_block()
        else:
            ids, weights = [], []
            while m.is_active():
                ids.append(m.id() + base)
                weights.append(m.weight())
                m.next()
            yield ids, weights


def _key_terms(s: Searcher, cache: _Cache, docnum: int) -> list[tuple[str, float]]:
    """Whoosh's `key_terms([docnum], SIMILAR_FIELD, numterms=SIMILAR_TERMS)` (Bo1, normalised), the same
    operations in the same order, with each word's collection frequency read once per index version (`cache`):
    Whoosh looks two terms up in the index for every word of the record, ~2 ms of a record page at 10,000."""
    reader = s.reader()
    field = reader.schema[SIMILAR_FIELD]
    if reader.has_vector(docnum, SIMILAR_FIELD):
        vector: Iterable[tuple[str, float]] = reader.vector_as("weight", docnum, SIMILAR_FIELD)
    else:
        text = reader.stored_fields(docnum).get(SIMILAR_FIELD)
        vector = ((field.from_bytes(t), w) for t, _, w, _ in field.index(text))
    weights: dict[str, float] = {}
    total = 0.0
    for word, weight in vector:
        total += weight
        weights[word] = weights.get(word, 0.0) + weight
    if not weights:
        return []
    model = Bo1Model(reader.doc_count_all(), reader.field_length(SIMILAR_FIELD))
    scored, best = [], 0.0
    for word, weight in weights.items():
        if word not in cache.frequency:
            btext = field.to_bytes(word)
            cache.frequency[word] = reader.frequency(SIMILAR_FIELD, btext) if (SIMILAR_FIELD, btext) in reader else None
        frequency = cache.frequency[word]
        if frequency is None:
            continue
        score = model.score(weight, frequency, total)
        best = max(best, score)
        scored.append((score, word))
    norm = model.normalizer(best, total)
    ranked = sorted(((score / norm, word) for score, word in scored), key=lambda x: (0 - x[0], x[1]))
    return [(word, score) for score, word in ranked[:SIMILAR_TERMS]]
