"""French full-text search with Whoosh, fed by the write path's outbox.

`sync` reads unprocessed outbox events in order, updates the index from the current state, commits the
index, then marks the events processed: a crash in between only means the same (idempotent) update is
made again. Facets and filters are the schema's enum fields of `experiences`, not a hand-written list.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select, update
from whoosh import index as windex
from whoosh.analysis import Analyzer, CharsetFilter, LanguageAnalyzer
from whoosh.fields import ID, KEYWORD, TEXT, Schema
from whoosh.qparser import MultifieldParser, OrGroup
from whoosh.query import And, Every, Term
from whoosh.sorting import FieldFacet
from whoosh.support.charset import accent_map

from registry.db import Experience, OutboxEvent
from registry.records import Record
from registry.standard import MAIN_RESOURCE, Standard, get_standard
from registry.store import Registry

BATCH = 500


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


def sync(registry: Registry) -> int:
    """Applies pending outbox events to the index; returns how many were processed."""
    std = get_standard()
    ix = open_index(registry.settings.index_path, std)
    done = 0
    while True:
        with registry.session() as s:
            events = list(s.scalars(select(OutboxEvent).where(OutboxEvent.processed_at.is_(None))
                                    .order_by(OutboxEvent.id).limit(BATCH)))
            if not events:
                return done
            ids = {e.experience_id for e in events}
            current = {e.id: e for e in s.scalars(select(Experience).where(Experience.id.in_(ids)))}
            writer = ix.writer(timeout=30)
            for exp_id in ids:
                exp = current.get(exp_id)
                if exp is None or exp.status != "published":
                    writer.delete_by_term("id", exp_id)
                else:
                    writer.update_document(**document(std, exp))
            writer.commit()
            s.execute(update(OutboxEvent).where(OutboxEvent.id.in_([e.id for e in events]))
                      .values(processed_at=registry.clock()))
            done += len(events)


def rebuild(registry: Registry) -> int:
    """Drops the index and builds it again from the current state (then the outbox is up to date)."""
    std = get_standard()
    path = registry.settings.index_path
    path.mkdir(parents=True, exist_ok=True)
    ix = windex.create_in(str(path), index_schema(std))
    count = 0
    with registry.session() as s:
        writer = ix.writer(timeout=30)
        for exp in s.scalars(select(Experience).where(Experience.status == "published")):
            writer.add_document(**document(std, exp))
            count += 1
        writer.commit()
        s.execute(update(OutboxEvent).where(OutboxEvent.processed_at.is_(None)).values(processed_at=registry.clock()))
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
        groups = {n: {k: len(v) for k, v in found.results.groups(n).items()} for n in names}
        return Results(found.total, hits, groups)
