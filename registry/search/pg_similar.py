"""Similar experiences on PostgreSQL: made in the background, read by the record page.

Making a record's list reads its text, weighs its words against the whole index and ranks candidates by their
tsvectors: ~5 ms of database time and ~2 ms of the web server's CPU at 100,000 records, the dearest part of a
record page. So the background work (`registry.jobs`, `registry index similar`) keeps each indexed record's
list in `search_similar`: a record indexed again, or new, has its list made again (its row's `generation`
moves and its list is emptied in the same transaction), and every list is made again after MAX_AGE (records
published since then are candidates too). A page reads the list in one statement and drops the records no
longer indexed; it makes the list itself (without storing it: a page view never writes) only while it is not
made yet.
"""

from __future__ import annotations

import logging
import math
import time
from collections import Counter
from collections.abc import Callable, Iterable

from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError

from registry.search.backend import BATCH, KEPT, MAX_AGE
from registry.search.pg_text import folded_words, quote

log = logging.getLogger(__name__)
SIMILAR_CANDIDATES = 200  # records ranked for "similar experiences"
SIMILAR_WORDS = 8  # a record's most distinctive words, for "similar experiences"
SIMILAR_SHARE = 100  # a word found in more than 1 % of the records does not choose similar candidates
LOCK_KEY = 7_246_032  # one process makes lists at a time (the index writers' key + 1)
DDL = (
    # generation: moved by each indexing of the record, so that a list made from its former text is not stored
    "CREATE TABLE IF NOT EXISTS search_similar (id varchar(40) PRIMARY KEY, generation integer NOT NULL DEFAULT 0, "
    "made double precision, similar_ids varchar(40)[])",
    "CREATE INDEX IF NOT EXISTS search_similar_made ON search_similar (made NULLS FIRST)",
    # an index made before the lists existed: every record's list to make
    "INSERT INTO search_similar (id) SELECT id FROM search_documents ON CONFLICT (id) DO NOTHING",
)
Analyzer = Callable[[str], Iterable[object]]


def stored(conn: Connection, exp_id: str, limit: int) -> list[tuple[str, str]] | None:
    """The stored list of a record, the records no longer indexed left out; None when it is not made yet."""
    if limit > KEPT:
        return None
    rows = conn.execute(text(
        "SELECT s.similar_ids IS NULL AS todo, d.id, d.intitule FROM search_similar s LEFT JOIN LATERAL "
        "unnest(s.similar_ids) WITH ORDINALITY u(id, n) ON true LEFT JOIN search_documents d ON d.id = u.id "
        "WHERE s.id = :id ORDER BY u.n"), {"id": exp_id}).all()
    if not rows or rows[0].todo:
        return None
    return [(r.id, r.intitule) for r in rows if r.id is not None][:limit]


def made(conn: Connection, analyzer: Analyzer, exp_id: str, size: float, limit: int) -> list[tuple[str, str]]:
    """The records sharing most of this one's distinctive words: its words weighted by their count in it and
    their rarity in the registry (tf-idf, from `search_words`; `size` records in all), the best SIMILAR_WORDS of
    them. The candidates are the records holding one of those words found in at most 1 % of the records (a
    common word finds thousands: it does not choose), or every record holding a chosen word when none is that
    rare; at most SIMILAR_CANDIDATES of them, ranked by `ts_rank_cd` over the best half of the chosen words (it
    weighs the words of its query alike: a common word shared many times would outrank the distinctive ones)."""
    row = conn.execute(text("SELECT d.intitule, t.texte FROM search_documents d JOIN search_texts t "
                            "USING (id) WHERE d.id = :id"), {"id": exp_id}).first()
    if row is None:
        return []
    counts = Counter(w for w in folded_words(f"{row.intitule} {row.intitule} {row.texte}") if len(w) > 3)
    if not counts:
        return []
    known = dict(conn.execute(text("SELECT word, docs FROM search_words WHERE word = ANY(:w)"),
                              {"w": list(counts)}).all())
    weight = {w: n * math.log(1 + size / max(known.get(w, 1), 1)) for w, n in counts.items()
              if known.get(w, 0) > 1}  # a word of this record only leads nowhere
    chosen = sorted(weight, key=lambda w: (-weight[w], w))[:SIMILAR_WORDS]
    stems_of = {w: [t.text for t in analyzer(w)] for w in chosen}  # type: ignore[attr-defined]
    stems = sorted({t for w in chosen for t in stems_of[w]})
    if not stems:
        return []
    rare = sorted({t for w in chosen if known[w] * SIMILAR_SHARE <= size for t in stems_of[w]})
    # ts_rank_cd weighs every word of its query alike: it ranks by the best half of them only
    best = sorted({t for w in chosen[:SIMILAR_WORDS // 2] for t in stems_of[w]})
    if not rare:  # every chosen word is common: the candidates come from a scan, the same on every call
        conn.execute(text("SET LOCAL synchronize_seqscans = off"))
    rows = conn.execute(text(
        "SELECT id, intitule FROM (SELECT id, intitule, ts_rank_cd(tsv, CAST(:q AS tsquery)) AS rank "
        "FROM search_documents WHERE tsv @@ CAST(:among AS tsquery) AND id <> :id LIMIT :c) c "
        "ORDER BY rank DESC, id LIMIT :n"),
        {"q": " | ".join(map(quote, best)), "among": " | ".join(map(quote, rare or stems)), "id": exp_id,
         "n": limit, "c": SIMILAR_CANDIDATES}).all()
    return [(r.id, r.intitule) for r in rows]


def _made(conn: Connection, analyzer: Analyzer, exp_id: str, size: float) -> list[str]:
    """A record's list to store; empty (logged) when PostgreSQL refuses to make it: one record must not stop the
    lists of every other (it is tried again after MAX_AGE)."""
    try:
        with conn.begin_nested():
            return [i for i, _ in made(conn, analyzer, exp_id, size, KEPT)]
    except DBAPIError as exc:
        log.error("similar experiences of %s not made: %s", exp_id, str(exc.orig).splitlines()[0])
        return []


def make_lists(conn: Connection, analyzer: Analyzer, size: Callable[[], float], seconds: float,
               stop: Callable[[], bool]) -> int:
    """Makes the lists not made yet, then those older than MAX_AGE, for about `seconds` (whole batches) or until
    `stop()`, asked between batches; the number made. One process at a time (an advisory lock: another is making
    them, 0). A list whose record was indexed again meanwhile is not stored (its generation moved): the next
    round makes it. The count says lists made, stored or not."""
    if not conn.scalar(text("SELECT pg_try_advisory_lock(:k)"), {"k": LOCK_KEY}):
        conn.rollback()
        return 0
    try:
        deadline, count, tried = time.monotonic() + seconds, 0, []
        while True:  # (a list not stored, its record indexed again meanwhile, waits for the next round)
            work = conn.execute(text("SELECT id, generation FROM search_similar WHERE (made IS NULL OR made < :old) "
                                     "AND id <> ALL(:tried) ORDER BY made NULLS FIRST LIMIT :n"),
                                {"old": time.time() - MAX_AGE, "n": BATCH, "tried": tried}).all()
            tried += [w.id for w in work]
            if not work:
                conn.commit()
                return count
            total = size()
            lists = [{"id": w.id, "g": w.generation, "at": time.time(), "s": _made(conn, analyzer, w.id, total)}
                     for w in work]
            conn.execute(text("UPDATE search_similar SET similar_ids = CAST(:s AS varchar(40)[]), made = :at "
                              "WHERE id = :id AND generation = :g"), lists)
            conn.commit()
            count += len(lists)
            if time.monotonic() >= deadline or stop():
                return count
    finally:
        conn.rollback()  # (a statement that failed: the lock is released all the same)
        conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": LOCK_KEY})
        conn.commit()
