"""The search document of an experience: its free text, its facet values and what is shown in a hit, built
from the current record (and its revisions, for the targets changed after the start)."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from sqlalchemy import select

from registry.db import Experience, Revision, Status
from registry.derived import RevisionState, derive
from registry.search.fields import NO, NONE, YES, facets, text_fields
from registry.standard import MAIN_RESOURCE, Standard
from registry.store import Registry

# Addresses are not words: a record must not match "air" through qualite-air@ville.example.
_ADDRESSES = re.compile(r"\b(?:https?://|www\.)\S+|\S+@\S+\.\w+", re.IGNORECASE)
BATCH = 500


@dataclass(frozen=True)
class Doc:
    id: str
    content_hash: str
    intitule: str
    nom_porteur: str
    texte: str
    date_maj: str
    date_debut: str
    cout: float | None
    results_due: str  # ISO date, or "" (used for "results overdue" at query time)
    results_published: bool
    facets: dict[str, tuple[str, ...]]  # every facet except the time-dependent one; NONE when empty


def _text(std: Standard, record: dict) -> str:
    main = record[MAIN_RESOURCE]
    parts = [main.get(name, "") for name in text_fields(std.main)]
    for child in std.children:
        names = text_fields(child)
        for row in record.get(child.name, []):
            parts += [row.get(name, "") for name in names]
    return _ADDRESSES.sub(" ", "\n".join(p for p in parts if p))


def _number(text: str) -> float | None:
    try:
        return float(text) if text else None
    except ValueError:
        return None


def build(std: Standard, exp: Experience, revisions: Sequence[RevisionState], due_months: int) -> Doc:
    record = exp.record
    main = record[MAIN_RESOURCE]
    derived = derive(record, revisions, dt.date.today(), due_months)
    values: dict[str, tuple[str, ...]] = {}
    for facet in facets(std):
        if facet.source == "enum":
            raw = main.get(facet.name, "")
            spec = std.main.by_name[facet.name]
            found = tuple(v for v in raw.split(spec.list_separator) if v) if facet.multi else (raw,) if raw else ()
        elif facet.source == "territory":
            found = (getattr(exp, facet.name) or "",) if getattr(exp, facet.name) else ()
        elif facet.name == "annee_debut":
            found = (main.get("date_debut", "")[:4],) if main.get("date_debut") else ()
        elif facet.name == "cibles_modifiees":
            found = (YES if derived.target_switched else NO,)
        else:  # resultats_en_retard depends on today's date: computed at query time from results_due
            continue
        values[facet.name] = found or (NONE,)
    return Doc(
        id=exp.id, content_hash=exp.content_hash, intitule=main["intitule"], nom_porteur=main["nom_porteur"],
        texte=_text(std, record), date_maj=main.get("date_maj", ""), date_debut=main.get("date_debut", ""),
        cout=_number(main.get("cout_reel", "")) or _number(main.get("cout_prevu", "")),
        results_due=derived.results_due.isoformat() if derived.results_due else "",
        results_published=derived.results_published, facets=values,
    )


def _aware(value: dt.datetime) -> dt.datetime:
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


def load(registry: Registry, std: Standard, ids: Sequence[str] | None = None) -> Iterator[Doc | str]:
    """The documents of these experiences (all published ones when ids is None), by batches; the id alone
    (a str) for an experience that is not published, to remove from the index."""
    due = registry.settings.results_due_months
    if ids is None:
        with registry.session() as s:
            ids = list(s.scalars(select(Experience.id).where(Experience.status == Status.PUBLISHED)
                                 .order_by(Experience.id)))
    for start in range(0, len(ids), BATCH):
        chunk = list(ids[start:start + BATCH])
        with registry.session() as s:
            current = {e.id: e for e in s.scalars(select(Experience).where(Experience.id.in_(chunk)))}
            revs: dict[str, list[RevisionState]] = {}
            # targets can only have changed with a second revision: the (large) past records of the others
            # are not read
            several = [e.id for e in current.values() if e.revision > 1]
            query = (select(Revision.experience_id, Revision.number, Revision.created_at, Revision.record)
                     .where(Revision.experience_id.in_(several)).order_by(Revision.experience_id, Revision.number))
            for exp_id, number, created, record in (s.execute(query) if several else ()):
                revs.setdefault(exp_id, []).append(RevisionState(number, _aware(created), record))
            for exp_id in chunk:
                exp = current.get(exp_id)
                if exp is None or exp.status != Status.PUBLISHED:
                    yield exp_id
                else:
                    yield build(std, exp, revs.get(exp_id, []), due)
