"""Figures and statistics for everyone: typed reads over the published registry (SQL in registry/stats_queries.py,
overdue results and changed targets from the search index's facets, which compute them at query time).

Statistics are cross-tables of codes (labels come from the standard through registry.serialize.stats), cached
per registry state: a page view never recomputes them while nothing was published.
"""

from __future__ import annotations

import threading
from collections import Counter
from dataclasses import dataclass, field
from typing import Literal

from registry import catalog_queries
from registry import stats_queries as sq
from registry.actions import index as search_index
from registry.actions.authz import Caller, Permission, check
from registry.geo import get_geography
from registry.queries import ExperienceView
from registry.search import Hit
from registry.search.fields import NONE, YES
from registry.store import Registry

FAILED = "objectifs_non_atteints"
ABANDONED = "abandonne"
COST_FIELDS = ("cout_prevu", "cout_reel", "economies_annuelles")
# Commune size bands: (upper bound excluded, code); the code is the band's own label, language-neutral.
SIZE_BANDS = ((2_000, "< 2 000"), (10_000, "2 000 – 9 999"), (50_000, "10 000 – 49 999"),
              (200_000, "50 000 – 199 999"), (None, "≥ 200 000"))


@dataclass(frozen=True)
class CrossTab:
    """A statistic: counts (or amounts) by a row code and a column code. Field names say where labels come from:
    a field of the main table, `enseignements.<field>`, `region`, `annee`, `taille_commune` or `mesure`."""

    key: str
    row_field: str
    col_field: str
    rows: tuple[str, ...]
    cols: tuple[str, ...]
    cells: dict[tuple[str, str], float]
    kind: Literal["stacked", "grouped"] = "stacked"
    unit: Literal["count", "euro"] = "count"

    def row_total(self, row: str) -> float:
        return sum(self.cells.get((row, c), 0) for c in self.cols)

    def value(self, row: str, col: str) -> float:
        return self.cells.get((row, col), 0)


@dataclass(frozen=True)
class KeyFigures:
    experiences: int
    territories: int  # distinct communes
    organisations: int
    failed: int
    abandoned: int
    failed_or_abandoned: int
    results_overdue: int
    targets_changed: int

    @property
    def failure_share(self) -> float:
        return self.failed_or_abandoned / self.experiences if self.experiences else 0.0


@dataclass(frozen=True)
class Statistics:
    figures: KeyFigures
    tables: dict[str, CrossTab]
    domains: dict[str, int] = field(default_factory=dict)  # experiences per main domain


def size_band(population: int | None) -> str:
    if population is None:
        return NONE
    for bound, code in SIZE_BANDS:
        if bound is None or population < bound:
            return code
    return SIZE_BANDS[-1][1]


def _crosstab(key: str, row_field: str, col_field: str, counter: Counter[tuple[str, str]],
              rows: list[str] | None = None, cols: list[str] | None = None, **kw: object) -> CrossTab:
    row_totals: Counter[str] = Counter()
    for (r, _), n in counter.items():
        row_totals[r] += n
    row_codes = rows if rows is not None else [r for r, _ in row_totals.most_common()]
    col_codes = cols if cols is not None else sorted({c for _, c in counter})
    used_cols = [c for c in col_codes if any(counter.get((r, c)) for r in row_codes)]
    return CrossTab(key, row_field, col_field, tuple(r for r in row_codes if row_totals.get(r)), tuple(used_cols),
                    dict(counter), **kw)  # type: ignore[arg-type]


def _compute(registry: Registry, siren: str | None = None) -> Statistics:
    geo = get_geography()
    from registry.standard import get_standard

    main = get_standard().main
    codes = {name: [*list(main.by_name[name].codes or ()), NONE] for name in ("resultat", "phase", "motif_arret")}
    lesson = get_standard().table(sq.LESSONS)
    res: Counter[tuple[str, str]] = Counter()
    stop: Counter[tuple[str, str]] = Counter()
    lessons: Counter[tuple[str, str]] = Counter()
    years: Counter[tuple[str, str]] = Counter()
    costs: Counter[tuple[str, str]] = Counter()
    regions: Counter[tuple[str, str]] = Counter()
    sizes: Counter[tuple[str, str]] = Counter()
    domains: Counter[str] = Counter()
    communes: set[str] = set()
    orgs: set[str] = set()
    n = failed = abandoned = either = 0
    for row in sq.stat_rows(registry, siren):
        n += 1
        result = row.resultat or NONE
        domains[row.domaine or NONE] += 1
        communes.add(row.commune)
        orgs.add(row.siren)
        failed += row.resultat == FAILED
        abandoned += row.statut == ABANDONED
        either += row.resultat == FAILED or row.statut == ABANDONED
        res[row.domaine or NONE, result] += 1
        if row.motif_arret:
            stop[row.domaine or NONE, row.motif_arret] += 1
        for categorie, nature in row.lessons:
            lessons[categorie or NONE, nature or NONE] += 1
        years[row.date_debut[:4] or NONE, row.phase or NONE] += 1
        for name in COST_FIELDS:
            value = getattr(row, name)
            if value is not None:
                costs[row.domaine or NONE, name] += value
        regions[row.region or NONE, result] += 1
        commune = geo.commune(row.commune)
        sizes[size_band(commune.population if commune else None), result] += 1
    band_order = [code for _, code in SIZE_BANDS] + [NONE]
    tables = [
        _crosstab("resultats_par_domaine", "domaine", "resultat", res, cols=codes["resultat"]),
        _crosstab("motifs_arret_par_domaine", "domaine", "motif_arret", stop, cols=codes["motif_arret"]),
        _crosstab("enseignements_par_theme", "enseignements.categorie", "enseignements.nature", lessons,
                  cols=[*list(lesson.by_name["nature"].codes or ()), NONE]),
        _crosstab("experiences_par_annee_et_phase", "annee", "phase", years,
                  rows=sorted({r for r, _ in years}), cols=codes["phase"]),
        _crosstab("couts_et_economies_par_domaine", "domaine", "mesure", costs, cols=list(COST_FIELDS),
                  kind="grouped", unit="euro"),
        _crosstab("resultats_par_region", "region", "resultat", regions, cols=codes["resultat"]),
        _crosstab("resultats_par_taille_de_commune", "taille_commune", "resultat", sizes, rows=band_order,
                  cols=codes["resultat"]),
    ]
    overdue, changed = _flag_counts(registry, siren)
    figures = KeyFigures(n, len(communes - {""}), len(orgs), failed, abandoned, either, overdue, changed)
    return Statistics(figures, {t.key: t for t in tables}, dict(domains.most_common()))


def _flag_counts(registry: Registry, siren: str | None) -> tuple[int, int]:
    """Results overdue and targets changed: computed by the search at query time (they depend on today)."""
    if siren is not None:
        overdue, changed = _flagged(registry, siren)
        return len(overdue), len(changed)
    facets = search_index.search(registry, Caller.anonymous(), search_index.request(limit=1)).facets
    return (facets.get("resultats_en_retard", {}).get(YES, 0), facets.get("cibles_modifiees", {}).get(YES, 0))


def _flagged(registry: Registry, siren: str) -> tuple[frozenset[str], frozenset[str]]:
    """An organisation's records whose results are overdue, and those whose targets changed after the start: the
    same rules (`derived.derive`) as the search facets behind the compliance page, on its records only."""
    return _flags(registry, sq.latest(registry, 100_000, siren))


def _flags(registry: Registry, items: list[sq.Latest]) -> tuple[frozenset[str], frozenset[str]]:
    """Of these records, those whose results are overdue today and those whose targets changed after the start."""
    views = catalog_queries.views(registry, [item.id for item in items])
    return (frozenset(v.id for v in views if v.derived.results_overdue),
            frozenset(v.id for v in views if v.derived.target_switched))


_cache: dict[tuple[int, str | None], tuple[object, Statistics]] = {}
_lock = threading.Lock()


def statistics(registry: Registry, caller: Caller, siren: str | None = None) -> Statistics:
    """Every figure and cross-table of the statistics page (of one organisation when `siren` is given)."""
    check(caller, Permission.READ)
    key = (id(registry), siren)
    version = (sq.version(registry), registry.clock().date())
    with _lock:
        cached = _cache.get(key)
    if cached is not None and cached[0] == version:
        return cached[1]
    stats = _compute(registry, siren)
    with _lock:
        if len(_cache) > 256:
            _cache.clear()
        _cache[key] = (version, stats)
    return stats


def key_figures(registry: Registry, caller: Caller) -> KeyFigures:
    return statistics(registry, caller).figures


@dataclass(frozen=True)
class LatestUpdates:
    """The records updated last (the home page), with the same badges as everywhere else."""

    items: list[sq.Latest]
    overdue: frozenset[str] = frozenset()  # ids of those whose results are overdue
    changed: frozenset[str] = frozenset()  # ids of those whose targets changed after the start


def latest(registry: Registry, caller: Caller, limit: int = 6) -> LatestUpdates:
    check(caller, Permission.READ)
    items = sq.latest(registry, limit)
    return LatestUpdates(items, *_flags(registry, items))


@dataclass(frozen=True)
class Compliance:
    """Results past due and targets changed after the start: the records, and their counts by région and year."""

    overdue: list[Hit]
    overdue_total: int
    overdue_by_region: dict[str, int]
    overdue_by_year: dict[str, int]
    changed: list[Hit]
    changed_total: int
    changed_by_region: dict[str, int]
    changed_by_year: dict[str, int]


MAX_LISTED = 1000


def compliance(registry: Registry, caller: Caller, region: str | None = None) -> Compliance:
    check(caller, Permission.READ)
    extra = {"region": (region,)} if region else {}

    def flagged(name: str) -> tuple[list[Hit], int, dict[str, int], dict[str, int]]:
        req = search_index.request("", {name: (YES,), **extra}, "date_debut", MAX_LISTED, 0)
        found = search_index.search(registry, caller, req)
        by_region = dict(sorted(found.facets.get("region", {}).items(), key=lambda kv: -kv[1]))
        by_year = dict(sorted(found.facets.get("annee_debut", {}).items()))
        if region:  # the région facet is disjunctive: keep the count of the chosen one only
            by_region = {region: found.total}
        return found.hits, found.total, by_region, by_year

    return Compliance(*flagged("resultats_en_retard"), *flagged("cibles_modifiees"))


@dataclass(frozen=True)
class OrganisationPage:
    siren: str
    nom: str
    type_porteur: str
    statistics: Statistics
    experiences: list[sq.Latest]
    overdue: frozenset[str] = frozenset()  # ids of its records whose results are overdue
    changed: frozenset[str] = frozenset()  # ids of its records whose targets changed after the start


def organisation(registry: Registry, caller: Caller, siren: str) -> OrganisationPage | None:
    check(caller, Permission.READ)
    if not (len(siren) == 9 and siren.isascii() and siren.isdigit()):
        return None
    found = sq.organisation_name(registry, siren)
    if found is None:
        return None
    stats = statistics(registry, caller, siren)
    if not stats.figures.experiences:
        return None
    return OrganisationPage(siren, found[0], found[1], stats, sq.latest(registry, 500, siren),
                            *_flagged(registry, siren))


def organisations(registry: Registry, caller: Caller) -> list[tuple[str, str, int]]:
    check(caller, Permission.READ)
    return sq.organisations(registry)


def views(registry: Registry, caller: Caller, ids: list[str]) -> list[ExperienceView]:
    """Complete views of these experiences (for the compliance feed), in a fixed number of queries."""
    check(caller, Permission.READ)
    return [v for v in catalog_queries.views(registry, ids) if v.published]
