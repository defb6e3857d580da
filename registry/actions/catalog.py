"""Catalogue reads for the CKAN API, the DCAT catalogue, the feeds and the REST API: typed requests in,
typed views out (registry.queries.ExperienceView), rights checked in authz like every other action.

`parse_query` reads CKAN's (Solr's) query language as harvesters and portals send it: free words,
`organization:`, `tags:`, `res_format:`, `name:`, `id:`, `dataset_type:`, `metadata_modified:[A TO B]`,
`+`/`-`/`NOT`, `a OR b` between terms of one field and `field:(a OR b)`. Anything else is a
`CatalogError` ("validation": CKAN's 409), never a server error.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from dataclasses import dataclass, field, replace

from registry import bulk, queries
from registry import catalog_queries as cq
from registry.actions.authz import Caller, Permission, check
from registry.bulk import BulkFile
from registry.catalog_queries import CatalogFilter, CodeTerm, OrganisationInfo
from registry.queries import ExperienceView, NotFound, RevisionInfo
from registry.records import Record
from registry.standard import get_standard
from registry.store import Registry

MAX_ROWS = 1000  # CKAN's ckan.search.rows_max: more is silently capped, as CKAN does
MAX_START = 10_000_000
MAX_LIST = 1000
FORMATS = ("JSON", "CSV", "HTML")  # the resources every dataset has (registry.serialize.ckan)
FACETS = ("organization", "tags", "res_format", "license_id", "groups")
SORTABLE = tuple(cq.SORT_COLUMNS)


class CatalogError(ValueError):
    """A request the catalogue cannot answer: `kind` is "validation" or "not_found"; the message is in English
    (CKAN clients read it) followed by French."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


@dataclass(frozen=True)
class SearchRequest:
    q: str = ""
    fq: str = ""
    rows: int = 10
    start: int = 0
    sort: str = ""
    facet_fields: tuple[str, ...] = ()
    facet_limit: int = 50


@dataclass(frozen=True)
class FacetItem:
    name: str
    display_name: str
    count: int


@dataclass(frozen=True)
class SearchResult:
    count: int
    sort: str
    views: list[ExperienceView]
    facets: dict[str, list[FacetItem]] = field(default_factory=dict)


# ---------------------------------------------------------------- the query language

_TOKEN = re.compile(r"""\s*(?:
    (?P<op>AND|OR|NOT|&&|\|\|)(?=[\s(]|$)
  | (?P<sign>[+\-!])?(?:(?P<key>[A-Za-z_]+):)?
    (?P<val>\[[^\[\]]*\]|\{[^{}]*\}|"(?:[^"\\]|\\.)*"|\([^()]*\)|[^\s()"\[\]{}]+)
)""", re.VERBOSE)


@dataclass
class _Clause:
    negated: bool
    key: str
    values: list[str]


def _tokens(text: str) -> list[tuple[str, object]]:
    out: list[tuple[str, object]] = []
    pos = 0
    text = text.strip()
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m or m.end() == pos:
            raise CatalogError("validation", f"Search query could not be parsed near « {text[pos:pos + 30]} » "
                                             "/ requête illisible.")
        pos = m.end()
        if not m["key"] and m["val"] and m["val"].endswith(":") and not m["op"]:
            raise CatalogError("validation", f"A field without a value: « {m['val'][:40]} » / champ sans valeur.")
        if m["op"]:
            out.append(("op", {"&&": "AND", "||": "OR"}.get(m["op"], m["op"])))
        else:
            out.append(("term", (m["sign"] or "", (m["key"] or "").lower(), m["val"])))
        while pos < len(text) and text[pos].isspace():
            pos += 1
    return out


def _unquote(value: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] == '"':
        return re.sub(r"\\(.)", r"\1", value[1:-1])
    return re.sub(r"\\(.)", r"\1", value)


def _values(val: str) -> list[str]:
    if val.startswith("(") and val.endswith(")"):
        parts = [p.strip() for p in re.split(r"\s+(?:OR|\|\|)\s+", val[1:-1].strip())]
        if not all(parts):
            raise CatalogError("validation", "Search query could not be parsed / requête illisible.")
        return [_unquote(p) for p in parts]
    return [_unquote(val)]


def _clauses(text: str) -> list[_Clause]:
    clauses: list[_Clause] = []
    pending_not = pending_or = False
    for kind, value in _tokens(text):
        if kind == "op":
            if value == "NOT":
                pending_not = True
            elif value == "OR":
                if not clauses:
                    raise CatalogError("validation", "Search query could not be parsed: OR / requête illisible.")
                pending_or = True
            continue
        sign, key, val = value  # type: ignore[misc]
        clause = _Clause(pending_not or sign in ("-", "!"), key, _values(val))
        if pending_or:
            prev = clauses[-1]
            if prev.key != clause.key or prev.negated or clause.negated:
                raise CatalogError("validation", "OR joins terms of one field only, e.g. organization:a OR "
                                                 "organization:b / OR ne relie que des termes d'un même champ.")
            prev.values += clause.values
        else:
            clauses.append(clause)
        pending_not = pending_or = False
    if pending_not or pending_or:
        raise CatalogError("validation", "Search query could not be parsed: dangling operator / requête illisible.")
    return clauses


def _timestamp(text: str, end: bool) -> dt.datetime | None:
    text = text.strip()
    if text == "*":
        return None
    if text.upper().startswith("NOW"):
        return dt.datetime.now(dt.UTC)
    try:
        value = dt.datetime.fromisoformat(text.replace("Z", "+00:00") if text.endswith("Z") else text)
    except ValueError as exc:
        raise CatalogError("validation", f"Invalid date « {text[:40]} » / date illisible.") from exc
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    if end and len(text) <= 10:
        value += dt.timedelta(days=1)
    return value.astimezone(dt.UTC)


def _range(val: str) -> tuple[dt.datetime | None, dt.datetime | None]:
    m = re.fullmatch(r"[\[{]\s*(\S+)\s+TO\s+(\S+)\s*[\]}]", val)
    if not m:
        if val.startswith(("[", "{")):
            raise CatalogError("validation", "A range reads [FROM TO UNTIL] / un intervalle s'écrit [A TO B].")
        start = _timestamp(val, False)
        return start, start
    return _timestamp(m[1], False), _timestamp(m[2], True)


def _printable(text: str) -> str:
    """Query text without control characters (PostgreSQL refuses NUL in a string)."""
    return "".join(c if c.isprintable() else " " for c in text)


def parse_query(q: str, fq: str = "") -> CatalogFilter:
    """CKAN's q and fq as one typed filter (both are ANDed, as Solr does)."""
    if len(q) > 2000 or len(fq) > 4000:
        raise CatalogError("validation", "Query too long / requête trop longue.")
    q, fq = _printable(q), _printable(fq)
    f = CatalogFilter()
    tags = cq.tag_terms()
    for clause in _clauses(q) + _clauses(fq):
        f = _apply(f, clause, tags)
    return f


def _apply(f: CatalogFilter, c: _Clause, tags: dict[str, frozenset[CodeTerm]]) -> CatalogFilter:
    key, values, neg = c.key, c.values, c.negated
    if key in ("", "text", "title", "notes"):
        if values in (["*"], ["*:*"]):
            return f
        words = tuple(w for v in values for w in v.split() if w not in ("*", "*:*"))
        if len(values) > 1 and not neg:  # a OR b of free words: ids of either
            raise CatalogError("validation", "OR between free words is not supported / OR entre mots libres non pris "
                                             "en charge.")
        return replace(f, not_words=f.not_words + words) if neg else replace(f, words=f.words + words)
    if key == "*" or (key in ("dataset_type", "type") and set(values) <= {"dataset", "*"}) \
            or (key == "state" and set(values) <= {"active", "*"}) or (key == "capacity" and values == ["public"]) \
            or (key == "private" and values == ["false"]):
        return replace(f, nothing=True) if neg else f
    if key in ("dataset_type", "type", "state", "capacity", "private"):
        return f if neg else replace(f, nothing=True)
    if key in ("organization", "owner_org"):
        sirens = frozenset(values)
        return replace(f, not_orgs=f.not_orgs | sirens) if neg else replace(f, org_groups=(*f.org_groups, sirens))
    if key in ("name", "id", "identifier"):
        ids = frozenset(values)
        return replace(f, not_ids=f.not_ids | ids) if neg else replace(f, ids=(*f.ids, ids))
    if key in ("tags", "tag"):
        terms = frozenset(t for v in values for t in tags.get(" ".join(v.split()), frozenset()))
        if neg:
            return replace(f, not_tags=f.not_tags | terms)
        return replace(f, tag_groups=(*f.tag_groups, terms)) if terms else replace(f, nothing=True)
    if key in ("res_format", "license_id"):
        known = {v.upper() for v in FORMATS} if key == "res_format" else {cq.license_info()[0].upper()}
        hit = any(v.upper() in known or v == "*" for v in values)
        return f if hit != neg else replace(f, nothing=True)
    if key in ("metadata_modified", "metadata_created"):
        if key == "metadata_created" or len(values) != 1:
            raise CatalogError("validation", "Only metadata_modified:[FROM TO UNTIL] is supported / seul "
                                             "metadata_modified:[A TO B] est pris en charge.")
        start, end = _range(values[0])
        if neg:
            raise CatalogError("validation", "A negated date range is not supported / intervalle nié non pris en "
                                             "charge.")
        if start is not None:
            f = replace(f, modified_from=max(start, f.modified_from) if f.modified_from else start)
        if end is not None:
            f = replace(f, modified_to=min(end, f.modified_to) if f.modified_to else end)
        return f
    raise CatalogError("validation", f"Unknown search field « {key[:40]} » / champ de recherche inconnu.")


def parse_sort(sort: str) -> list[tuple[str, bool]]:
    out: list[tuple[str, bool]] = []
    for part in (sort or "score desc, metadata_modified desc").split(","):
        words = part.split()
        if not words:
            continue
        if len(words) > 2 or words[0] not in SORTABLE or (len(words) == 2 and words[1].lower() not in ("asc", "desc")):
            raise CatalogError("validation", f"Cannot sort on « {part.strip()[:40]} »: use one of "
                                             f"{', '.join(SORTABLE)} with asc or desc / tri impossible.")
        out.append((words[0], len(words) == 2 and words[1].lower() == "desc"))
    return out or [("metadata_modified", True)]


# ---------------------------------------------------------------- the actions


def package_search(registry: Registry, caller: Caller, req: SearchRequest) -> SearchResult:
    check(caller, Permission.READ)
    if not 0 <= req.start <= MAX_START:
        raise CatalogError("validation", f"start must be between 0 and {MAX_START} / start hors limites.")
    if req.rows < 0:
        raise CatalogError("validation", "rows must be a natural number / rows doit être positif.")
    unknown = [x for x in req.facet_fields if x not in FACETS]
    if unknown:
        raise CatalogError("validation", f"Unknown facet field « {unknown[0][:40]} » / facette inconnue.")
    f = parse_query(req.q, req.fq)
    sort = parse_sort(req.sort)
    rows = min(req.rows, MAX_ROWS)
    total = cq.count(registry, f)
    ids = cq.page_ids(registry, f, sort, rows, req.start) if rows and req.start < total else []
    facets = {name: _facet(registry, f, name, req.facet_limit, total) for name in req.facet_fields}
    return SearchResult(total, req.sort or "score desc, metadata_modified desc", cq.views(registry, ids), facets)


def _facet(registry: Registry, f: CatalogFilter, name: str, limit: int, total: int) -> list[FacetItem]:
    if name == "organization":
        names = {o.siren: o.nom for o in cq.organisations(registry)}
        counts = cq.facet_counts(registry, f, "organization")
        items = [FacetItem(k, names.get(k, k), v) for k, v in counts.items()]
    elif name == "tags":
        items = [FacetItem(k, k, v) for k, v in cq.tag_counts(registry, f).items()]
    elif name == "res_format":
        items = [FacetItem(x, x, total) for x in FORMATS] if total else []
    elif name == "license_id":
        items = [FacetItem(cq.license_info()[0], cq.license_info()[1], total)] if total else []
    else:
        items = []
    items.sort(key=lambda i: (-i.count, i.name))
    return items[:max(limit, 0)] if limit >= 0 else items


def package_list(registry: Registry, caller: Caller, limit: int | None = None, offset: int = 0) -> list[str]:
    check(caller, Permission.READ)
    if offset < 0 or (limit is not None and limit < 0):
        raise CatalogError("validation", "limit and offset must be natural numbers / limit et offset positifs.")
    return cq.page_ids(registry, CatalogFilter(), [("name", False)], limit if limit is not None else MAX_START, offset)


def package_show(registry: Registry, caller: Caller, id_or_name: str) -> ExperienceView:
    check(caller, Permission.READ)
    found = cq.views(registry, [id_or_name]) if len(id_or_name) <= 40 and id_or_name.isprintable() else []
    if not found or not found[0].published:
        raise CatalogError("not_found", "Not found / introuvable.")
    return found[0]


def packages(registry: Registry, caller: Caller, limit: int, offset: int, sort: str = "metadata_modified desc",
             f: CatalogFilter | None = None) -> tuple[int, list[ExperienceView]]:
    """A page of complete views (current_package_list_with_resources, the DCAT pages, the feed)."""
    check(caller, Permission.READ)
    if not 0 <= offset <= MAX_START or not 0 <= limit <= MAX_ROWS:
        raise CatalogError("validation", f"limit 0..{MAX_ROWS}, offset 0..{MAX_START} / hors limites.")
    f = f or CatalogFilter()
    total = cq.count(registry, f)
    ids = cq.page_ids(registry, f, parse_sort(sort), limit, offset) if offset < total else []
    return total, cq.views(registry, ids)


def views(registry: Registry, caller: Caller, ids: list[str]) -> list[ExperienceView]:
    """The complete views of these experiences (a search's hits), in one query; unknown ids are left out."""
    check(caller, Permission.READ)
    return cq.views(registry, ids[:MAX_ROWS])


def organization_list(registry: Registry, caller: Caller) -> list[OrganisationInfo]:
    check(caller, Permission.READ)
    return [o for o in cq.organisations(registry) if o.package_count]


def organization_show(registry: Registry, caller: Caller, id_or_name: str) -> OrganisationInfo:
    check(caller, Permission.READ)
    found = cq.organisations(registry, [id_or_name]) if id_or_name.isprintable() and len(id_or_name) <= 9 else []
    if not found or not found[0].package_count:
        raise CatalogError("not_found", "Not found / introuvable.")
    return found[0]


def all_views(registry: Registry, caller: Caller) -> Iterator[ExperienceView]:
    check(caller, Permission.READ)
    return cq.iter_views(registry)


def last_modified(registry: Registry, caller: Caller) -> dt.datetime | None:
    check(caller, Permission.READ)
    return cq.last_modified(registry)


def bulk_files(registry: Registry, caller: Caller) -> dict[str, BulkFile]:
    """The bulk downloads as built by background work (registry.bulk.refresh); absent until the first build."""
    check(caller, Permission.READ)
    return bulk.files(registry)


def table_names() -> list[str]:
    """The standard's tables, main first."""
    return list(get_standard().tables)


def filter_fields() -> list[str]:
    """The site search's filters: the enum fields of the main table (from the standard), and `siren_porteur`."""
    return [f.name for f in get_standard().main.fields if f.codes] + ["siren_porteur"]


def site_filter(text: str, filters: dict[str, str]) -> CatalogFilter:
    """The site search's parameters (free text, one code per filter field) as a catalogue filter."""
    allowed = set(filter_fields())
    unknown = sorted(set(filters) - allowed)
    if unknown:
        raise CatalogError("validation", f"Unknown filter « {unknown[0][:40]} » / filtre inconnu.")
    codes = {k: v for k, v in filters.items() if k != "siren_porteur" and v}
    for name, code in codes.items():
        if code not in (get_standard().main.by_name[name].codes or ()):
            raise CatalogError("validation", f"Unknown code « {code[:40]} » for {name} / code inconnu.")
    orgs = (frozenset({_printable(filters["siren_porteur"])}),) if filters.get("siren_porteur") else ()
    return CatalogFilter(words=tuple(_printable(text).split()[:20]), codes=codes, org_groups=orgs)


def revision(registry: Registry, caller: Caller, exp_id: str, number: int) -> tuple[RevisionInfo, Record]:
    """One revision of an experience: who, when, and the record as it was."""
    check(caller, Permission.READ)
    infos = [r for r in queries.history(registry, exp_id) if r.number == number]
    if not infos:
        raise NotFound(f"{exp_id} révision {number}")
    return infos[0], queries.record_at(registry, exp_id, number)


__all__ = [
    "BulkFile",
    "CatalogError",
    "FacetItem",
    "SearchRequest",
    "SearchResult",
    "all_views",
    "bulk_files",
    "filter_fields",
    "last_modified",
    "organization_list",
    "organization_show",
    "package_list",
    "package_search",
    "package_show",
    "packages",
    "parse_query",
    "parse_sort",
    "revision",
    "site_filter",
    "table_names",
    "views",
]
