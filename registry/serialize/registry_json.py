"""The registry's own JSON: one function per read view, feeding the JSON API, the HTML page and the CLI."""

from __future__ import annotations

import dataclasses
from typing import Any

from registry.queries import ExperienceView, Page, RevisionInfo, Summary
from registry.records import Change
from registry.search import Results
from registry.serialize.labels import facet_label, facet_title


def experience_json(view: ExperienceView) -> dict[str, Any]:
    d = view.derived
    commune = view.commune
    return {
        "id": view.id,
        "status": view.status,
        "withdrawn_reason": view.withdrawn_reason,
        "revision": view.revision,
        "created_at": view.created_at.isoformat(),
        "updated_at": view.updated_at.isoformat(),
        "record": view.record,
        "territory": None if commune is None else {
            "commune": commune.code, "nom": commune.nom,
            "departement": commune.departement, "departement_nom": commune.departement_nom,
            "region": commune.region, "region_nom": commune.region_nom,
            "epci_siren": commune.epci_siren, "epci_nom": commune.epci_nom,
            "population": commune.population, "tranche_population": commune.tranche_population,
        },
        "derived": {
            "results_due": d.results_due.isoformat() if d.results_due else None,
            "results_published": d.results_published,
            "results_overdue": d.results_overdue,
            "preregistered": d.preregistered,
            "target_switched": d.target_switched,
            "target_changes": [
                {**dataclasses.asdict(c), "date": c.date.isoformat()} for c in d.target_changes
            ],
        },
    }


def revision_json(rev: RevisionInfo) -> dict[str, Any]:
    return {**dataclasses.asdict(rev), "created_at": rev.created_at.isoformat()}


def summary_json(summary: Summary) -> dict[str, Any]:
    return dataclasses.asdict(summary)


def page_json(page: Page[Summary]) -> dict[str, Any]:
    return {"count": page.total, "offset": page.offset, "limit": page.limit,
            "results": [summary_json(s) for s in page.items]}


def change_json(change: Change) -> dict[str, Any]:
    return dataclasses.asdict(change)


def search_json(results: Results, lang: str = "fr") -> dict[str, Any]:
    """The search as programs read it: the request, the hits, the total ("total_relation": "eq" when exact,
    "gte" when counting stopped and `count` is a lower bound, as the facet counts then), every facet with
    its labels."""
    req = results.request
    return {
        "q": req.text, "filters": {k: list(v) for k, v in req.filters.items()}, "sort": req.sort,
        "offset": req.offset, "limit": req.limit, "count": results.total,
        "total_relation": results.total_relation, "facets_exact": results.facets_exact,
        "suggestion": results.suggestion,
        "results": [{**dataclasses.asdict(h), "facets": {k: list(v) for k, v in h.facets.items()}}
                    for h in results.hits],
        "facets": {name: {"label": facet_title(name, lang),
                          "values": [{"value": code, "label": facet_label(name, code, lang), "count": n}
                                     for code, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))]}
                   for name, counts in results.facets.items()},
    }
