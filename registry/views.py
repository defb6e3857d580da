"""Read views as plain JSON-ready data: the same function feeds the JSON API, the HTML page and the CLI."""

from __future__ import annotations

import dataclasses
from typing import Any

from registry.queries import ExperienceView, RevisionInfo


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
