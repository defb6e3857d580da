"""SQL for the figures and statistics of the site: one pass over the published experiences' indexed columns
and the few record fields the statistics need (never a query per experience). Same SQL on SQLite and PostgreSQL.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select

from registry.db import Experience, Organisation, Status
from registry.queries import _aware
from registry.standard import MAIN_RESOURCE

LESSONS = "enseignements"


@dataclass(frozen=True)
class StatRow:
    """What the statistics read of one published experience."""

    id: str
    siren: str
    domaine: str
    phase: str
    statut: str
    resultat: str
    commune: str
    region: str
    date_debut: str
    motif_arret: str
    cout_prevu: float | None
    cout_reel: float | None
    economies_annuelles: float | None
    lessons: tuple[tuple[str, str], ...]  # (categorie, nature) of each lesson


def _main(name: str) -> Any:
    return Experience.record[MAIN_RESOURCE][name].as_string()


def _number(value: Any) -> float | None:
    if value in (None, ""):
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def stat_rows(registry: Any, siren: str | None = None, batch: int = 1000) -> Iterator[StatRow]:
    """Every published experience (of one organisation when `siren` is given), by id, a batch at a time."""
    last = ""
    while True:
        query = (select(Experience.id, Experience.siren_porteur, Experience.domaine, Experience.phase,
                        Experience.statut, Experience.resultat, Experience.code_insee_commune, Experience.region,
                        Experience.date_debut, _main("motif_arret"), _main("cout_prevu"), _main("cout_reel"),
                        _main("economies_annuelles"), Experience.record[LESSONS])
                 .where(Experience.status == Status.PUBLISHED.value, Experience.id > last)
                 .order_by(Experience.id).limit(batch))
        if siren is not None:
            query = query.where(Experience.siren_porteur == siren)
        with registry.session() as s:
            rows = list(s.execute(query))
        if not rows:
            return
        for r in rows:
            lessons = tuple((str(x.get("categorie") or ""), str(x.get("nature") or ""))
                            for x in (r[13] or []) if isinstance(x, dict))
            yield StatRow(r[0], r[1], r[2] or "", r[3] or "", r[4] or "", r[5] or "", r[6] or "", r[7] or "",
                          r[8] or "", r[9] or "", _number(r[10]), _number(r[11]), _number(r[12]), lessons)
        last = rows[-1][0]


@dataclass(frozen=True)
class Latest:
    id: str
    intitule: str
    nom_porteur: str
    commune: str
    statut: str
    resultat: str
    updated_at: dt.datetime


def latest(registry: Any, limit: int = 6, siren: str | None = None) -> list[Latest]:
    where = [Experience.status == Status.PUBLISHED.value]
    if siren is not None:
        where.append(Experience.siren_porteur == siren)
    with registry.session() as s:
        rows = s.execute(select(Experience.id, Experience.intitule, _main("nom_porteur"), Experience.code_insee_commune,
                                Experience.statut, Experience.resultat, Experience.updated_at)
                         .where(*where).order_by(Experience.updated_at.desc(), Experience.id).limit(limit))
        return [Latest(r[0], r[1], r[2] or "", r[3] or "", r[4] or "", r[5] or "", _aware(r[6])) for r in rows]


def organisation_name(registry: Any, siren: str) -> tuple[str, str] | None:
    """(name, type_porteur) of an organisation known to the registry."""
    with registry.session() as s:
        row = s.execute(select(Organisation.nom, Organisation.type_porteur).where(Organisation.siren == siren)).first()
    return None if row is None else (row[0], row[1])


def organisations(registry: Any) -> list[tuple[str, str, int]]:
    """(siren, name, published experiences) of every organisation with at least one, by name."""
    with registry.session() as s:
        rows = s.execute(select(Organisation.siren, Organisation.nom, func.count(Experience.id))
                         .join(Experience, Experience.siren_porteur == Organisation.siren)
                         .where(Experience.status == Status.PUBLISHED.value)
                         .group_by(Organisation.siren, Organisation.nom).order_by(Organisation.nom))
        return [(r[0], r[1], r[2]) for r in rows]


def version(registry: Any) -> tuple[int, Any]:
    """Changes when anything was published or withdrawn: the key of the statistics cache."""
    with registry.session() as s:
        return (s.scalar(select(func.count()).select_from(Experience)) or 0,
                s.scalar(select(func.max(Experience.updated_at))))
