"""French full-text search with Whoosh, fed by the write path's outbox.

`sync` reads unprocessed outbox events in order, updates the index from the current state, commits the
index, then marks the events processed: a crash in between only means the same (idempotent) update is
made again. Facets and filters are the schema's enum fields of `experiences`, not a hand-written list.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import func, select, update
from whoosh import index as windex
from whoosh.analysis import Analyzer, CharsetFilter, LanguageAnalyzer
from whoosh.fields import ID, KEYWORD, TEXT, Schema
from whoosh.qparser import MultifieldParser, OrGroup
from whoosh.query import And, Every, Term
from whoosh.sorting import FieldFacet
from whoosh.support.charset import accent_map

from registry.db import Experience, OutboxEvent, Status
from registry.records import Record
from registry.standard import MAIN_RESOURCE, Standard, get_standard
from registry.store import Registry

BATCH = 500
BULK = 2000  # pending changes from which the index is written by several processes


def analyzer() -> Analyzer:
    """French stemming, case and accent folding: « éclairages » finds « Eclairage »."""
    return LanguageAnalyzer("fr") | CharsetFilter(accent_map)


def facet_fields(std: Standard) -> list[str]:
    return [f.name for f in std.main.fields if f.enum]


def index_schema(std: Standard) -> Schema:
    fr = analyzer()
    fields = {"id": ID(stored=True, unique=True), "intitule": TEXT(analyzer=fr, stored=True, field_boost=3.0),
              "texte": TEXT(analyzer=fr), "nom_porteur": TEXT(analyzer=fr, stored=True),
              "date_maj": ID(stored=True, sortable=True)}
    fields |= {name: KEYWORD(stored=True, commas=False) for name in facet_fields(std)}
    fields |= {"region": ID(stored=True), "departement": ID(stored=True)}
    return Schema(**fields)


def document(std: Standard, exp: Experience) -> dict[str, str]:
    record: Record = exp.record
    main = record[MAIN_RESOURCE]
    texts = [v for f in std.main.fields if f.type == "string" and not f.codes and (v := main.get(f.name))]
    for child in std.children:
        for row in record.get(child.name, []):
            texts += [v for f in child.fields if f.type == "string" and not f.codes and f.name != "id_experience"
                      and (v := row.get(f.name))]
    doc = {"id": exp.id, "intitule": main["intitule"], "nom_porteur": main["nom_porteur"], "texte": "\n".join(texts),
           "date_maj": main["date_maj"], "region": exp.region or "", "departement": exp.departement or ""}
    doc |= {name: main.get(name, "") for name in facet_fields(std)}
    return doc


def open_index(path: Path, std: Standard) -> windex.Index:
    if windex.exists_in(str(path)):
        return windex.open_dir(str(path))
    path.mkdir(parents=True, exist_ok=True)
    return windex.create_in(str(path), index_schema(std))


def _writer(ix: windex.Index, many: int) -> Any:
    """An index writer; several processes when there are many documents to analyse."""
    procs = os.cpu_count() or 1
    bulk = {"procs": procs, "multisegment": True} if many >= BULK and procs > 1 else {}
    return ix.writer(timeout=30, limitmb=128, **bulk)


def sync(registry: Registry) -> int:
    """Applies pending outbox events to the index, in order, with one index commit; returns how many.
    Many changes at once (an import) rebuild the index, which is much faster than updating it."""
    std = get_standard()
    ix = open_index(registry.settings.index_path, std)
    with registry.session() as s:
        pending = list(s.execute(select(OutboxEvent.id, OutboxEvent.experience_id)
                                 .where(OutboxEvent.processed_at.is_(None)).order_by(OutboxEvent.id)))
    if not pending:
        return 0
    ids = list(dict.fromkeys(exp_id for _, exp_id in pending))  # the latest state of each, once
    if len(ids) >= BULK and len(ids) * 5 >= ix.doc_count_all():
        rebuild(registry, upto=pending[-1][0])
        return len(pending)
    writer = ix.writer(timeout=30, limitmb=128)
    try:
        for start in range(0, len(ids), BATCH):
            chunk = ids[start:start + BATCH]
            with registry.session() as s:
                current = {e.id: e for e in s.scalars(select(Experience).where(Experience.id.in_(chunk)))}
                for exp_id in chunk:
                    exp = current.get(exp_id)
                    if exp is None or exp.status != Status.PUBLISHED:
                        writer.delete_by_term("id", exp_id)
                    else:
                        writer.update_document(**document(std, exp))
    except BaseException:
        writer.cancel()
        raise
    writer.commit()
    _mark(registry, upto=pending[-1][0], only=[event_id for event_id, _ in pending])
    return len(pending)


def _mark(registry: Registry, upto: int, only: list[int] | None = None) -> None:
    """Marks events processed, after the index commit: a crash in between only redoes work."""
    with registry.session() as s:
        if only is None:
            s.execute(update(OutboxEvent).where(OutboxEvent.processed_at.is_(None), OutboxEvent.id <= upto)
                      .values(processed_at=registry.clock()))
            return
        for start in range(0, len(only), BATCH):
            s.execute(update(OutboxEvent).where(OutboxEvent.id.in_(only[start:start + BATCH]))
                      .values(processed_at=registry.clock()))


def rebuild(registry: Registry, upto: int | None = None) -> int:
    """Builds the index again from the current state; events up to the last one seen before reading that
    state (or `upto`) are then marked processed. Returns the number of documents."""
    std = get_standard()
    if upto is None:
        with registry.session() as s:
            upto = s.scalar(select(func.max(OutboxEvent.id))) or 0
    path = registry.settings.index_path
    path.mkdir(parents=True, exist_ok=True)
    ix = windex.create_in(str(path), index_schema(std))
    with registry.session() as s:
        count = s.scalar(select(func.count()).select_from(Experience).where(Experience.status == Status.PUBLISHED)) or 0
        writer = _writer(ix, count)
        try:
            for exp in s.scalars(select(Experience).where(Experience.status == Status.PUBLISHED)
                                 .execution_options(yield_per=BATCH)):
                writer.add_document(**document(std, exp))
        except BaseException:
            writer.cancel()
            raise
        writer.commit()
    _mark(registry, upto)
    return count


@dataclass(frozen=True)
class Hit:
    id: str
    intitule: str
    nom_porteur: str
    facets: dict[str, str]
    score: float


@dataclass(frozen=True)
class Results:
    total: int
    hits: list[Hit]
    facets: dict[str, dict[str, int]]


def search(registry: Registry, text: str = "", filters: dict[str, str] | None = None, limit: int = 25,
           offset: int = 0) -> Results:
    std = get_standard()
    names = facet_fields(std)
    ix = open_index(registry.settings.index_path, std)
    parser = MultifieldParser(["intitule", "texte", "nom_porteur"], ix.schema, group=OrGroup.factory(0.9))
    query = parser.parse(text) if text.strip() else Every()
    terms = [Term(k, v) for k, v in (filters or {}).items() if k in [*names, "region", "departement"] and v]
    if terms:
        query = And([query, *terms])
    with ix.searcher() as searcher:
        page = max(offset // limit + 1, 1)
        newest = None if text.strip() else FieldFacet("date_maj", reverse=True)
        found = searcher.search_page(query, page, pagelen=limit, groupedby=[FieldFacet(n) for n in names],
                                     sortedby=newest)
        hits = [Hit(h["id"], h["intitule"], h["nom_porteur"], {n: h.get(n, "") for n in names}, h.score or 0.0)
                for h in found]
        groups = {n: {k: len(v) for k, v in found.results.groups(n).items() if k} for n in names}
        return Results(found.total, hits, groups)
