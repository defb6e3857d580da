"""Search benchmark: a realistic French corpus, relevance on judged queries, speed against SQLite FTS5.

    python benchmarks/search_benchmark.py --experiences 10000 [--backend whoosh|postgresql|both]
    python benchmarks/search_benchmark.py --relevance-only
    python benchmarks/search_benchmark.py --backend postgresql --home DIR --database-url URL  # queries again
    python benchmarks/search_benchmark.py --home DIR --database-url URL --copies 10  # Whoosh, documents x 10

1. Corpus: data/synthetic.py gives valid records; every free-text field is then rewritten with sentences
   drawn from a real French vocabulary (the demo records, the schema's descriptions and labels: thousands of
   word forms) with a Zipf-like frequency and varied sentence shapes, so that a word matches a realistic
   share of the records.
2. Relevance: one query per label of `domaine` and of `technologies` (the standard's own labels), judged
   relevant when the record carries that code, and the hand-judged queries of search_relevance.csv
   (queries as people type them, relevant demo records chosen by reading them); over the demo records plus
   a few hundred synthetic ones. Precision at 5 and nDCG at 10 per backend.
3. Speed: 200 mixed queries (1 to 3 words, phrases, exclusions, OR, facet filters), top 20 with the exact
   total, every facet and snippets; p50/p95, the p95 of queries matching more than 20 % of the records
   apart, index build time and size, peak memory of this process. Baseline in the same run: SQLite FTS5
   (unicode61, accents removed, no stemming) over the same texts: count, top 20 by bm25, facet counts by
   GROUP BY. Also the analyser's CPU a word, against the former chain of Whoosh's filters.
Everything listens on 127.0.0.1 (PostgreSQL is started by tests/services.py); loops are bounded.
"""

from __future__ import annotations

import argparse
import bisect
import csv
import itertools
import math
import random
import re
import resource
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from common import synthetic  # noqa: E402  (benchmarks/common.py)

from registry import search  # noqa: E402
from registry.config import load_settings  # noqa: E402
from registry.paths import DEMO_DIR, SCHEMAS_DIR  # noqa: E402
from registry.search.fields import facet_names, text_fields  # noqa: E402
from registry.search.model import SearchRequest  # noqa: E402
from registry.service import Provenance, publish_path  # noqa: E402
from registry.shared_files import FOLDERS  # noqa: E402
from registry.standard import get_standard  # noqa: E402
from registry.store import Registry  # noqa: E402
from registry.validation import Limits  # noqa: E402

BIG = Limits(max_bytes=1 << 40, max_rows=10**8, workers=2)

WORD = re.compile(r"[a-zàâäçéèêëîïôöùûüÿœæ][a-zàâäçéèêëîïôöùûüÿœæ'-]{2,}", re.IGNORECASE)
SHAPES = ("{a} {b} {c} {d}.", "Le projet {a} a permis de {b} {c}.", "{a}, {b} et {c} : {d} {e}.",
          "Malgré {a}, {b} {c} n'a pas {d}.", "Nous recommandons de {a} {b} avant {c}.", "{a} {b} {c} {d} {e} {f}.")


def vocabulary() -> list[str]:
    """French word forms from the demo records and the schema files, most frequent first."""
    counts: dict[str, int] = {}
    sources = [*DEMO_DIR.glob("*.csv"), *SCHEMAS_DIR.glob("*/schema.json"), *SCHEMAS_DIR.glob("*/README.md")]
    for path in sources:
        for word in WORD.findall(path.read_text(encoding="utf-8")):
            word = word.lower().strip("'-")
            if len(word) >= 3 and not word.startswith("http"):
                counts[word] = counts.get(word, 0) + 1
    return sorted(counts, key=lambda w: (-counts[w], w))


class Writer:
    def __init__(self, words: list[str], seed: int) -> None:
        self.words = words
        self.rng = random.Random(seed)
        weights = [1 / (rank + 1) ** 1.07 for rank in range(len(words))]  # Zipf-like
        total = sum(weights)
        acc, self.cum = 0.0, []
        for w in weights:
            acc += w / total
            self.cum.append(acc)

    def word(self) -> str:
        return self.words[min(bisect.bisect(self.cum, self.rng.random()), len(self.words) - 1)]

    def text(self, sentences: int) -> str:
        out = []
        for _ in range(sentences):
            shape = self.rng.choice(SHAPES)
            out.append(shape.format(**{k: self.word() for k in "abcdef"}).capitalize())
        return " ".join(out)


def corpus(out: Path, experiences: int, seed: int) -> Path:
    synthetic(out, experiences, seed)
    std, writer = get_standard(), Writer(vocabulary(), seed)
    for table in (std.main, *std.children):
        path = out / f"{table.name}.csv"
        names = [n for n in text_fields(table) if n not in ("nom_porteur", "nom_acteur")]
        with path.open(encoding="utf-8", newline="") as fh:
            rows = list(csv.DictReader(fh))
        for row in rows:
            for name in names:
                if row.get(name):
                    spec_max = table.by_name[name].max_length or 10_000
                    row[name] = writer.text(1 if name in ("intitule", "libelle_indicateur", "titre_document")
                                            else writer.rng.randint(2, 6))[:spec_max]
        with path.open("w", encoding="utf-8", newline="") as fh:
            w = csv.DictWriter(fh, fieldnames=list(table.field_names), lineterminator="\n")
            w.writeheader()
            w.writerows(rows)
    return out


def queries(words: list[str], n: int, seed: int) -> list[SearchRequest]:
    rng = random.Random(seed)
    common, rare = words[:300], words[300:3000] or words
    out = []
    for i in range(n):
        kind = i % 8
        a, b, c = rng.choice(common), rng.choice(rare), rng.choice(common)
        text = {0: a, 1: b, 2: f"{a} {b}", 3: f'"{a} {c}"', 4: f"{a} -{c}", 5: f"{b} OR {c}", 6: f"{a} {b} {c}",
                7: ""}[kind]
        filters = {"statut": ("abandonne",)} if i % 5 == 0 else {}
        out.append(SearchRequest(text, filters, "pertinence" if text else "date_maj", 20, 0))
    return out


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(p / 100 * len(ordered)) - 1))] if ordered else 0.0


def timed_search(reg: Registry, reqs: list[SearchRequest]) -> tuple[list[float], list[int], list[bool]]:
    times, totals, exact = [], [], []
    search.search(reg, SearchRequest("projet"))  # warm: open the searcher, fill the caches once
    for req in reqs:
        start = time.perf_counter()
        results = search.search(reg, req)
        times.append((time.perf_counter() - start) * 1000)
        totals.append(results.total)
        exact.append(results.exact)
    return times, totals, exact


def report_speed(backend: str, times: list[float], totals: list[int], exact: list[bool], count: int) -> None:
    # broad: more than 20 % of the records, or so many that counting stopped (PostgreSQL, 10,000)
    broad = [t for t, n, e in zip(times, totals, exact, strict=True) if n > 0.2 * count or not e]
    narrow = [t for t, n, e in zip(times, totals, exact, strict=True) if n <= 0.2 * count and e]
    matched = sorted(totals)
    print(f"[{backend}] {len(times)} queries (top 20, total, all facets, snippets): "
          f"p50 {percentile(times, 50):.1f} ms, p95 {percentile(times, 95):.1f} ms, max {max(times):.1f} ms; "
          f"broad (> 20 % of records or counting stopped, {len(broad)} queries): p95 {percentile(broad, 95):.1f} ms; "
          f"the others ({len(narrow)}): p95 {percentile(narrow, 95):.1f} ms")
    print(f"[{backend}] records matched: median {statistics.median(matched):.0f}, "
          f"p95 {percentile([float(m) for m in matched], 95):.0f}; counted exactly: {sum(exact)} of {len(exact)} "
          f"queries (the others: at least {min([n for n, e in zip(totals, exact, strict=True) if not e] or [0])})")


# ---------------------------------------------------------------- FTS5 baseline
def fts5(reg: Registry, folder: Path, reqs: list[SearchRequest]) -> tuple[float, list[float]]:
    std = get_standard()
    db = sqlite3.connect(folder / "fts5.sqlite3")
    facets = [f for f in facet_names(std) if f in std.main.by_name and not std.main.by_name[f].is_list]
    columns = ", ".join(f + " UNINDEXED" for f in facets)
    db.execute(f"CREATE VIRTUAL TABLE docs USING fts5(id UNINDEXED, intitule, texte, {columns}, "
               "tokenize = 'unicode61 remove_diacritics 2')")
    start = time.perf_counter()
    from registry.search import documents

    for doc in documents.load(reg, std):
        if isinstance(doc, str):
            continue
        db.execute(f"INSERT INTO docs VALUES ({', '.join('?' * (3 + len(facets)))})",
                   [doc.id, doc.intitule, doc.texte, *[doc.facets.get(f, ("",))[0] for f in facets]])
    db.commit()
    build = time.perf_counter() - start
    times = []
    for req in reqs:
        match = fts_query(req.text)
        where, params = ("docs MATCH ?", [match]) if match else ("1", [])
        if req.filters:
            where += " AND statut = ?"
            params.append("abandonne")
        t0 = time.perf_counter()
        db.execute(f"SELECT count(*) FROM docs WHERE {where}", params).fetchone()
        order = "bm25(docs)" if match else "rowid DESC"
        db.execute(f"SELECT id, intitule FROM docs WHERE {where} ORDER BY {order} LIMIT 20", params).fetchall()
        for f in facets:
            db.execute(f"SELECT {f}, count(*) FROM docs WHERE {where} GROUP BY {f}", params).fetchall()
        times.append((time.perf_counter() - t0) * 1000)
    db.close()
    return build, times


def fts_query(text: str) -> str:
    parts = []
    for token in re.findall(r'-?"[^"]*"|\S+', text):
        neg = token.startswith("-")
        body = token.lstrip("-")
        if body.upper() == "OR":
            parts.append("OR")
            continue
        words = re.findall(r"\w+", body)
        if not words:
            continue
        term = '"' + " ".join(words) + '"'
        parts.append(f"NOT {term}" if neg and parts else term)
    return " ".join(parts)


# ---------------------------------------------------------------- relevance
JUDGED = Path(__file__).with_name("search_relevance.csv")  # queries as people type them, judged by hand


def judged_queries(records: dict[str, dict[str, str]], demo: set[str]) -> list[tuple[str, str, set[str]]]:
    """(kind, query, relevant ids): one query per label of `domaine` and `technologies` (relevant: a demo
    record carrying the code), then the hand-judged queries of search_relevance.csv."""
    std, out = get_standard(), []
    for field in ("domaine", "technologies"):
        spec = std.main.by_name[field]
        for code in spec.codes or ():
            relevant = {i for i, r in records.items() if i in demo and (
                code in r.get(field, "").split("|")
                or (field == "domaine" and code in r.get("domaines_secondaires", "").split("|")))}
            if relevant:
                out.append(("label", spec.label(code), relevant))
    with JUDGED.open(encoding="utf-8", newline="") as fh:
        out += [("judged", r["query"], set(r["relevant"].split("|"))) for r in csv.DictReader(fh)]
    return out


def relevance(reg: Registry) -> dict[str, tuple[float, float, int]]:
    """P@5 and nDCG@10 per kind of query ("label", "judged") and over all ("all")."""
    with reg.session() as s:
        from sqlalchemy import select

        from registry.db import Experience, Status

        records = {e.id: e.record["experiences"] for e in s.scalars(select(Experience).where(
            Experience.status == Status.PUBLISHED))}
    with (DEMO_DIR / "experiences.csv").open(encoding="utf-8", newline="") as fh:
        demo = {r["id_experience"] for r in csv.DictReader(fh)}
    scores: dict[str, list[tuple[float, float]]] = {"label": [], "judged": [], "all": []}
    for kind, query, relevant in judged_queries(records, demo):
        assert relevant <= demo, (query, relevant - demo)  # synthetic records are distractors
        hits = [h.id for h in search.search(reg, SearchRequest(query, {}, "pertinence", 10, 0, False)).hits]
        p5 = sum(1 for h in hits[:5] if h in relevant) / 5
        dcg = sum(1 / math.log2(i + 2) for i, h in enumerate(hits[:10]) if h in relevant)
        ideal = sum(1 / math.log2(i + 2) for i in range(min(10, len(relevant))))
        for key in (kind, "all"):
            scores[key].append((p5, dcg / ideal))
    return {k: (statistics.mean(p for p, _ in v), statistics.mean(n for _, n in v), len(v))
            for k, v in scores.items() if v}


# ---------------------------------------------------------------- main
def make_registry(folder: Path, backend: str, pg: object | None) -> Registry:
    url = pg.create_database(f"bench_{time.time_ns()}") if backend == "postgresql" else ""  # type: ignore[attr-defined]
    reg = Registry(load_settings(home=str(folder / f"instance-{backend}"), database_url=url, search_backend=backend))
    reg.migrate()
    return reg


def rerun(args: argparse.Namespace) -> None:
    """The speed queries again on a registry built earlier (same corpus and seed), without importing it."""
    reg = Registry(load_settings(home=args.home, database_url=args.database_url, search_backend=args.backend))
    for shared in FOLDERS:  # what an earlier run's processes counted: every query is counted from nothing
        shutil.rmtree(reg.settings.shared_path / shared, ignore_errors=True)
    index = search.backend(reg)
    if args.exact_up_to:  # PostgreSQL: where counting stops, how many candidates a broad query ranks
        index.exact_up_to, index.ranked = args.exact_up_to, args.ranked  # type: ignore[attr-defined]
    count = len(index.indexed())
    reqs = queries(vocabulary(), args.queries, args.seed)
    print(f"[{args.backend}] {count} documents (built earlier), index size {index_size(reg) / 2**20:.1f} MiB")
    times, totals, exact = timed_search(reg, reqs)
    report_speed(args.backend, times, totals, exact, count)
    print(f"peak memory of this process: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")
    if args.baseline:  # SQLite FTS5 over the same records' texts, in the same run
        folder = Path(tempfile.mkdtemp(prefix="search-fts5-"))
        try:
            fbuild, ftimes = fts5(reg, folder, reqs)
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        print(f"[fts5 baseline] build {fbuild:.1f} s; p50 {percentile(ftimes, 50):.1f} ms, "
              f"p95 {percentile(ftimes, 95):.1f} ms")
        print(f"ratio p95 {args.backend} / fts5: {percentile(times, 95) / max(percentile(ftimes, 95), 1e-9):.2f}x")
    reg.close()


def copies(args: argparse.Namespace) -> None:
    """Whoosh over the documents of an instance built earlier, each indexed --copies times under new ids
    (100,000 documents from 10,000 without importing 100,000 records): build time, size, the speed queries."""
    import dataclasses

    from registry.search import documents
    from registry.search.whoosh_index import IndexFolder
    from registry.search.whoosh_search import WhooshSearch

    std = get_standard()
    reg = Registry(load_settings(home=args.home, database_url=args.database_url))
    docs = [d for d in documents.load(reg, std) if not isinstance(d, str)]
    folder = Path(tempfile.mkdtemp(prefix="search-copies-"))
    try:
        index = WhooshSearch(IndexFolder(folder / "index", std), std)
        t0 = time.perf_counter()
        with index.writing(10):
            count = index.rebuild(dataclasses.replace(d, id=f"{d.id}-{k}") for k in range(args.copies) for d in docs)
        build = time.perf_counter() - t0
        size = sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())
        print(f"[whoosh] {count} documents ({len(docs)} x {args.copies}): index build {build:.1f} s, "
              f"size {size / 2**20:.1f} MiB")
        reqs = queries(vocabulary(), args.queries, args.seed)
        index.search(SearchRequest("projet"))
        times, totals, exact = [], [], []
        for req in reqs:
            start = time.perf_counter()
            results = index.search(req)
            times.append((time.perf_counter() - start) * 1000)
            totals.append(results.total)
            exact.append(results.exact)
        report_speed("whoosh", times, totals, exact, count)
        print(f"peak memory of this process: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")
    finally:
        shutil.rmtree(folder, ignore_errors=True)
        reg.close()


def run(args: argparse.Namespace) -> None:
    if args.home and args.copies:
        return copies(args)
    if args.home:
        return rerun(args)
    backends = ["whoosh", "postgresql"] if args.backend == "both" else [args.backend]
    pg = None
    work = Path(tempfile.mkdtemp(prefix="search-bench-"))
    try:
        if "postgresql" in backends:
            from tests.services import start_postgres

            pg = start_postgres(work / "pg")
        words = vocabulary()
        print(f"vocabulary: {len(words)} distinct word forms (demo records, schema texts)")
        if not args.speed_only:
            rel_corpus = corpus(work / "relevance", args.relevance_synthetic, args.seed)
            for backend in backends:
                reg = make_registry(work / "rel", backend, pg)
                assert publish_path(reg, DEMO_DIR, Provenance("cli")).accepted
                assert publish_path(reg, rel_corpus, Provenance("cli")).accepted
                search.rebuild(reg)
                for kind, (p5, ndcg, n) in relevance(reg).items():
                    print(f"relevance [{backend}] {kind}: {n} judged queries over {args.relevance_synthetic} "
                          f"synthetic + demo records: P@5 {p5:.3f}, nDCG@10 {ndcg:.3f}")
                reg.close()
        if args.relevance_only:
            return
        data = corpus(work / "speed", args.experiences, args.seed)
        analysis_speed(data)
        reqs = queries(words, args.queries, args.seed)
        for backend in backends:
            reg = make_registry(work / "speed-run", backend, pg)
            t0 = time.perf_counter()
            result = publish_path(reg, data, Provenance("cli"), limits=BIG)  # as `registry import` does for local files
            assert result.accepted, result.report.to_text()[:2000]
            imported = time.perf_counter() - t0
            t0 = time.perf_counter()
            count = search.rebuild(reg)
            build = time.perf_counter() - t0
            size = index_size(reg)
            times, totals, exact = timed_search(reg, reqs)
            print(f"[{backend}] {count} experiences: import {imported:.1f} s, index build {build:.1f} s, "
                  f"size {size / 2**20:.1f} MiB")
            report_speed(backend, times, totals, exact, count)
            if backend == backends[0]:
                fbuild, ftimes = fts5(reg, work, reqs)
                print(f"[fts5 baseline] build {fbuild:.1f} s; p50 {percentile(ftimes, 50):.1f} ms, "
                      f"p95 {percentile(ftimes, 95):.1f} ms")
                print(f"ratio p95 {backend} / fts5: {percentile(times, 95) / max(percentile(ftimes, 95), 1e-9):.1f}x")
            reg.close()
        print(f"peak memory of this process: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")
    finally:
        if pg is not None:
            pg.stop()  # type: ignore[attr-defined]
        shutil.rmtree(work, ignore_errors=True)


def analysis_speed(data: Path, records: int = 500) -> None:
    """The analyser (words, folding, stop words, stems: indexing, queries and snippets all use it) over the
    free texts of the first records, against the former chain of Whoosh's filters (the baseline, same run)."""
    from registry.search.analysis import analyzer, former_analyzer

    with (data / "experiences.csv").open(encoding="utf-8") as fh:
        texts = [" ".join(v for v in row.values() if v) for row in itertools.islice(csv.DictReader(fh), records)]
    timings = {}
    for name, make in (("one step", analyzer), ("former chain", former_analyzer)):
        a, best, words = make(), math.inf, 0
        for _ in range(3):
            t0, words = time.process_time(), 0
            for text in texts:
                words += sum(1 for _ in a(text, positions=True))
            best = min(best, time.process_time() - t0)
        timings[name] = best * 1e6 / max(words, 1)
        print(f"analysis [{name}]: {words} words of {len(texts)} records, {timings[name]:.2f} µs a word (CPU, "
              f"best of 3)")
    print(f"ratio analysis one step / former chain: {timings['one step'] / timings['former chain']:.2f}")


def index_size(reg: Registry) -> int:
    if reg.settings.search_backend == "postgresql":
        from sqlalchemy import text

        with reg.engine.connect() as conn:
            return int(conn.scalar(text("SELECT pg_total_relation_size('search_documents') + "
                                        "pg_total_relation_size('search_texts')")) or 0)
    return sum(p.stat().st_size for p in reg.settings.index_path.rglob("*") if p.is_file())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--experiences", type=int, default=10_000)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--backend", choices=["whoosh", "postgresql", "both"], default="whoosh")
    parser.add_argument("--relevance-synthetic", type=int, default=300)
    parser.add_argument("--relevance-only", action="store_true")
    parser.add_argument("--speed-only", action="store_true")
    parser.add_argument("--seed", type=int, default=20261201)
    parser.add_argument("--home", help="speed queries only, on this instance built earlier (with --backend)")
    parser.add_argument("--database-url", default="", help="its database, with --home")
    parser.add_argument("--copies", type=int, default=0, help="with --home: Whoosh over its documents x N")
    parser.add_argument("--exact-up-to", type=int, default=0, help="PostgreSQL, with --home: counting threshold")
    parser.add_argument("--ranked", type=int, default=1000, help="PostgreSQL, with --exact-up-to: candidates ranked")
    parser.add_argument("--baseline", action="store_true", help="with --home: SQLite FTS5 over the same texts too")
    run(parser.parse_args())


if __name__ == "__main__":
    main()
