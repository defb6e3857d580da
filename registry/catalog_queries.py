"""Catalogue reads (CKAN API, DCAT, feeds, bulk): filtered, sorted, paged SQL over the current state.

The filters are typed (`CatalogFilter`), parsed from CKAN's `q`/`fq` by registry.actions.catalog; this
module turns them into SQL that runs the same on SQLite and PostgreSQL, and loads complete views
(`ExperienceView`) for a page in a fixed number of queries (not one per experience).
"""

from __future__ import annotations

import datetime as dt
import re
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from sqlalchemy import String, and_, cast, func, not_, or_, select
from sqlalchemy.sql.elements import ColumnElement

from registry.db import Experience, Organisation, Revision, Status
from registry.derived import RevisionState, derive
from registry.geo import get_geography
from registry.queries import ExperienceView, _aware
from registry.standard import MAIN_RESOURCE, get_standard

# Fields of the main table whose codes are the datasets' keywords (CKAN tags, dcat:keyword, Atom categories).
TAG_FIELDS: tuple[str, ...] = ("domaine", "domaines_secondaires", "technologies")


@dataclass(frozen=True)
class CodeTerm:
    """A tag: one code of one field (list fields hold codes separated by `|`)."""

    field: str
    code: str


@dataclass(frozen=True)
class CatalogFilter:
    """Every clause is ANDed; inside `any_of_*` one group matches when any member matches."""

    words: tuple[str, ...] = ()
    not_words: tuple[str, ...] = ()
    org_groups: tuple[frozenset[str], ...] = ()  # SIRENs
    not_orgs: frozenset[str] = frozenset()
    tag_groups: tuple[frozenset[CodeTerm], ...] = ()  # a tag may mean several codes
    not_tags: frozenset[CodeTerm] = frozenset()
    ids: tuple[frozenset[str], ...] = ()
    not_ids: frozenset[str] = frozenset()
    modified_from: dt.datetime | None = None
    modified_to: dt.datetime | None = None
    nothing: bool = False  # a term that can match no dataset (an unknown format, a non-dataset type)
    codes: dict[str, str] = field(default_factory=dict)  # field -> code, exact (site search filters)


SORT_COLUMNS = {"metadata_modified": Experience.updated_at, "metadata_created": Experience.created_at,
                "name": Experience.id, "id": Experience.id, "title": Experience.intitule,
                "score": Experience.updated_at}


def _main(name: str) -> ColumnElement[Any]:
    return Experience.record[MAIN_RESOURCE][name].as_string()


def _code(term: CodeTerm) -> ColumnElement[bool]:
    column = getattr(Experience, term.field, None)
    if column is not None and term.field in ("domaine", "phase", "statut", "resultat"):
        return column == term.code
    value = func.coalesce(_main(term.field), "")
    return ("|" + value + "|").contains("|" + term.code + "|", autoescape=True)


def _word(word: str) -> ColumnElement[bool]:
    w = word.lower()
    return or_(*(func.lower(col).contains(w, autoescape=True)
                 for col in (Experience.intitule, cast(_main("resume"), String), cast(_main("nom_porteur"), String),
                             Experience.id)))


def _clauses(f: CatalogFilter) -> list[ColumnElement[bool]]:
    out: list[ColumnElement[bool]] = [Experience.status == Status.PUBLISHED.value]
    if f.nothing:
        out.append(Experience.id.is_(None))
    out += [_word(w) for w in f.words]
    out += [not_(_word(w)) for w in f.not_words]
    out += [Experience.siren_porteur.in_(sorted(g)) for g in f.org_groups]
    if f.not_orgs:
        out.append(Experience.siren_porteur.not_in(sorted(f.not_orgs)))
    out += [or_(*(_code(t) for t in sorted(g, key=lambda t: (t.field, t.code)))) for g in f.tag_groups]
    out += [not_(_code(t)) for t in sorted(f.not_tags, key=lambda t: (t.field, t.code))]
    out += [Experience.id.in_(sorted(g)) for g in f.ids]
    if f.not_ids:
        out.append(Experience.id.not_in(sorted(f.not_ids)))
    if f.modified_from is not None:
        out.append(Experience.updated_at >= f.modified_from)
    if f.modified_to is not None:
        out.append(Experience.updated_at <= f.modified_to)
    out += [_code(CodeTerm(k, v)) for k, v in sorted(f.codes.items())]
    return out


def count(registry: Any, f: CatalogFilter) -> int:
    with registry.session() as s:
        return s.scalar(select(func.count()).select_from(Experience).where(and_(*_clauses(f)))) or 0


def page_ids(registry: Any, f: CatalogFilter, sort: Sequence[tuple[str, bool]], limit: int, offset: int) -> list[str]:
    """The ids of one page; only ids are sorted and skipped, so a deep page costs little more than the first."""
    order = [SORT_COLUMNS[name].desc() if desc else SORT_COLUMNS[name].asc() for name, desc in sort]
    order.append(Experience.id.asc())
    with registry.session() as s:
        query = select(Experience.id).where(and_(*_clauses(f))).order_by(*order).limit(limit).offset(offset)
        return list(s.scalars(query))


def views(registry: Any, ids: Sequence[str]) -> list[ExperienceView]:
    """Complete views for these ids, in this order, in two queries."""
    if not ids:
        return []
    with registry.session() as s:
        exps = {e.id: e for e in s.scalars(select(Experience).where(Experience.id.in_(list(ids))))}
        revs: dict[str, list[RevisionState]] = {}
        rows = s.execute(select(Revision.experience_id, Revision.number, Revision.created_at, Revision.record)
                         .where(Revision.experience_id.in_(list(ids)))
                         .order_by(Revision.experience_id, Revision.number))
        for exp_id, number, created, record in rows:
            revs.setdefault(exp_id, []).append(RevisionState(number, _aware(created), record))
    today = registry.clock().date()
    geo = get_geography()
    return [ExperienceView(
        id=e.id, status=e.status, withdrawn_reason=e.withdrawn_reason, revision=e.revision, record=e.record,
        commune=geo.commune(e.code_insee_commune),
        derived=derive(e.record, revs.get(e.id, []), today, registry.settings.results_due_months),
        created_at=_aware(e.created_at), updated_at=_aware(e.updated_at)) for i in ids if (e := exps.get(i))]


def iter_views(registry: Any, f: CatalogFilter | None = None, batch: int = 500) -> Iterator[ExperienceView]:
    """Every matching experience by id, a batch at a time (keyset paging: memory flat in the registry's size)."""
    f = f or CatalogFilter()
    last = ""
    while True:
        with registry.session() as s:
            ids = list(s.scalars(select(Experience.id).where(and_(*_clauses(f)), Experience.id > last)
                                 .order_by(Experience.id).limit(batch)))
        if not ids:
            return
        yield from views(registry, ids)
        last = ids[-1]


def iter_records(registry: Any, batch: int = 500) -> Iterator[dict[str, Any]]:
    """Every published record by id, a batch at a time (for the bulk files)."""
    last = ""
    while True:
        with registry.session() as s:
            rows = list(s.execute(select(Experience.id, Experience.record)
                                  .where(Experience.status == Status.PUBLISHED.value, Experience.id > last)
                                  .order_by(Experience.id).limit(batch)))
        if not rows:
            return
        for _, record in rows:
            yield record
        last = rows[-1][0]


@dataclass(frozen=True)
class OrganisationInfo:
    siren: str
    nom: str
    type_porteur: str
    created_at: dt.datetime
    package_count: int


def organisations(registry: Any, sirens: Sequence[str] | None = None) -> list[OrganisationInfo]:
    with registry.session() as s:
        counts = dict(s.execute(select(Experience.siren_porteur, func.count()).where(
            Experience.status == Status.PUBLISHED.value).group_by(Experience.siren_porteur)).all())
        query = select(Organisation).order_by(Organisation.siren)
        if sirens is not None:
            query = query.where(Organisation.siren.in_(list(sirens)))
        return [OrganisationInfo(o.siren, o.nom, o.type_porteur, _aware(o.created_at), counts.get(o.siren, 0))
                for o in s.scalars(query)]


def facet_counts(registry: Any, f: CatalogFilter, what: str) -> Counter[str]:
    """Counts over the matching experiences: `organization` (SIREN) or a tag field (codes)."""
    with registry.session() as s:
        where = and_(*_clauses(f))
        if what == "organization":
            return Counter(dict(s.execute(select(Experience.siren_porteur, func.count()).where(where)
                                          .group_by(Experience.siren_porteur)).all()))
        counter: Counter[str] = Counter()
        for (value,) in s.execute(select(func.coalesce(_main(what), "")).where(where)):
            counter.update({c for c in str(value).split("|") if c})
        return counter


def tag_counts(registry: Any, f: CatalogFilter) -> Counter[str]:
    """How many matching experiences carry each tag (one pass; a tag shared by several fields counts once)."""
    counter: Counter[str] = Counter()
    with registry.session() as s:
        rows = s.execute(select(*(func.coalesce(_main(name), "") for name in TAG_FIELDS)).where(and_(*_clauses(f))))
        for values in rows:
            counter.update(tags_of(dict(zip(TAG_FIELDS, values, strict=True))))
    return counter


def newest_revision(registry: Any) -> tuple[int, dt.datetime | None]:
    """The newest revision's id and time: a registry that has not changed gives the same pair."""
    with registry.session() as s:
        row = s.execute(select(Revision.id, Revision.created_at).order_by(Revision.id.desc()).limit(1)).first()
    return (0, None) if row is None else (row[0], _aware(row[1]))


def last_modified(registry: Any) -> dt.datetime | None:
    with registry.session() as s:
        value = s.scalar(select(func.max(Experience.updated_at)))
    return None if value is None else _aware(value)


@lru_cache(maxsize=4096)
def tag_name(label: str) -> str:
    """A CKAN tag from a label of the standard: letters, digits, spaces, `-`, `_`, `.` only (CKAN's rule)."""
    return " ".join(re.sub(r"[^\w\-. ]", " ", label).split())[:100]


def tag_terms() -> dict[str, frozenset[CodeTerm]]:
    """Tag name -> the codes it stands for (a label shared by several fields stands for each)."""
    std = get_standard()
    found: dict[str, set[CodeTerm]] = {}
    for name in TAG_FIELDS:
        spec = std.main.by_name[name]
        for code in spec.codes or ():
            found.setdefault(tag_name(spec.label(code)), set()).add(CodeTerm(name, code))
    return {k: frozenset(v) for k, v in found.items()}


def tags_of(main: dict[str, str]) -> list[str]:
    """The tags of one record, in the order of TAG_FIELDS, each once."""
    std = get_standard()
    tags: list[str] = []
    for name in TAG_FIELDS:
        spec = std.main.by_name[name]
        for code in (main.get(name) or "").split(spec.list_separator or "|"):
            if code and (tag := tag_name(spec.label(code))) not in tags:
                tags.append(tag)
    return tags


def license_info() -> tuple[str, str, str]:
    """The standard's licence: (id, title, url), from schemas/datapackage.json."""
    lic = get_standard().package["licenses"][0]
    return str(lic["name"]), str(lic.get("title", lic["name"])), str(lic.get("path", ""))
