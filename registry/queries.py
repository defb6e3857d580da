"""Reads: one function per question, returning typed views that feed the CLI, the HTML pages and the APIs."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from sqlalchemy import Row, bindparam, case, func, null, select, type_coerce

from registry.db import Experience, JsonType, Revision, Status
from registry.derived import Derived, RevisionState, derive
from registry.geo import Commune, get_geography
from registry.records import Change, Record, diff
from registry.standard import MAIN_RESOURCE, get_standard
from registry.store import Registry


class NotFound(LookupError):
    pass


T = TypeVar("T")


@dataclass(frozen=True)
class Page(Generic[T]):
    """One page of a longer list."""

    total: int
    offset: int
    limit: int
    items: list[T]


@dataclass(frozen=True)
class RevisionInfo:
    number: int
    action: str
    channel: str
    actor: str | None
    source_url: str | None
    source_name: str | None
    comment: str | None
    created_at: dt.datetime
    content_hash: str
    standard_version: str


@dataclass(frozen=True)
class ExperienceView:
    id: str
    status: str
    withdrawn_reason: str | None
    revision: int
    record: Record
    commune: Commune | None
    derived: Derived
    created_at: dt.datetime
    updated_at: dt.datetime

    @property
    def main(self) -> dict[str, str]:
        return self.record[MAIN_RESOURCE]

    @property
    def published(self) -> bool:
        return self.status == Status.PUBLISHED


@dataclass(frozen=True)
class Summary:
    id: str
    intitule: str
    nom_porteur: str
    domaine: str
    phase: str
    statut: str
    resultat: str
    code_insee_commune: str
    date_maj: str


def _info(rev: Revision | Row[Any]) -> RevisionInfo:
    return RevisionInfo(rev.number, rev.action, rev.channel, rev.actor, rev.source_url, rev.source_name,
                        rev.comment, rev.created_at, rev.content_hash, rev.standard_version)


def _revisions(registry: Registry, exp_id: str) -> list[Revision]:
    with registry.session() as s:
        return list(s.scalars(select(Revision).where(Revision.experience_id == exp_id).order_by(Revision.number)))


def get_experience(registry: Registry, exp_id: str, include_withdrawn: bool = True) -> ExperienceView:
    return get_with_history(registry, exp_id, include_withdrawn)[0]


_e, _r = Experience.__table__.c, Revision.__table__.c
# the record page's two statements, built once (SQLAlchemy then keeps their cache key and compiled form): an
# experience, and its revisions up to its own (a write may add one meanwhile), the latest without its content
_EXPERIENCE = select(_e.id, _e.status, _e.withdrawn_reason, _e.revision, _e.record, _e.code_insee_commune,
                     _e.created_at, _e.updated_at).where(_e.id == bindparam("id"))
_REVISIONS = select(
    _r.number, _r.action, _r.channel, _r.actor, _r.source_url, _r.source_name, _r.comment, _r.created_at,
    _r.content_hash, _r.standard_version,
    type_coerce(case((_r.number == bindparam("latest"), null()), else_=_r.record), JsonType).label("record"),
).where(_r.experience_id == bindparam("id"), _r.number <= bindparam("latest")).order_by(_r.number)


def get_with_history(registry: Registry, exp_id: str,
                     include_withdrawn: bool = True) -> tuple[ExperienceView, list[RevisionInfo]]:
    """An experience and its revisions, read on one connection (a record page needs both; the most read page:
    Core rows, not ORM objects, and the latest revision's content is the experience's, not read twice)."""
    with registry.reading() as conn:
        exp = conn.execute(_EXPERIENCE, {"id": exp_id}).first()
        if exp is None or (exp.status == Status.WITHDRAWN and not include_withdrawn):
            raise NotFound(exp_id)
        revisions = conn.execute(_REVISIONS, {"id": exp_id, "latest": exp.revision}).all()
    revs = [RevisionState(x.number, _aware(x.created_at), exp.record if x.number == exp.revision else x.record)
            for x in revisions]
    today = registry.clock().date()
    view = ExperienceView(
        id=exp.id, status=exp.status, withdrawn_reason=exp.withdrawn_reason, revision=exp.revision,
        record=exp.record, commune=get_geography().commune(exp.code_insee_commune),
        derived=derive(exp.record, revs, today, registry.settings.results_due_months),
        created_at=_aware(exp.created_at), updated_at=_aware(exp.updated_at),
    )
    return view, [_info(x) for x in revisions]


def _aware(value: dt.datetime) -> dt.datetime:
    """SQLite gives naive datetimes back: they were stored in UTC."""
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


def history(registry: Registry, exp_id: str) -> list[RevisionInfo]:
    revs = _revisions(registry, exp_id)
    if not revs:
        raise NotFound(exp_id)
    return [_info(r) for r in revs]


def record_at(registry: Registry, exp_id: str, number: int) -> Record:
    with registry.session() as s:
        rev = s.scalar(select(Revision).where(Revision.experience_id == exp_id, Revision.number == number))
        if rev is None:
            raise NotFound(f"{exp_id} révision {number}")
        return rev.record


def compare(registry: Registry, exp_id: str, old: int, new: int) -> list[Change]:
    """Field-by-field differences between two revisions of one experience."""
    return diff(get_standard(), record_at(registry, exp_id, old), record_at(registry, exp_id, new))


def list_experiences(registry: Registry, limit: int = 50, offset: int = 0,
                     include_withdrawn: bool = False) -> tuple[int, list[Summary]]:
    with registry.session() as s:
        query = select(Experience)
        if not include_withdrawn:
            query = query.where(Experience.status == Status.PUBLISHED)
        total = s.scalar(select(func.count()).select_from(query.subquery())) or 0
        rows = s.scalars(query.order_by(Experience.date_maj.desc(), Experience.id).limit(limit).offset(offset))
        return total, [
            Summary(e.id, e.intitule, e.record[MAIN_RESOURCE]["nom_porteur"], e.domaine, e.phase, e.statut,
                    e.resultat, e.code_insee_commune, e.date_maj)
            for e in rows
        ]


def published_records(registry: Registry, batch: int = 500) -> list[Record]:
    """Every published record, ordered by id (for exports)."""
    with registry.session() as s:
        query = select(Experience.record).where(Experience.status == Status.PUBLISHED).order_by(Experience.id)
        return list(s.scalars(query.execution_options(yield_per=batch)))
