"""schema.org/Dataset (JSON-LD) for an experience's page, read by search engines (Google Dataset Search).

Embedded in HTML inside <script type="application/ld+json">: `script_json` escapes `<`, `>` and `&`
so that no text of a record can close the script element.
"""

from __future__ import annotations

import json
from typing import Any

from registry.catalog_queries import license_info, tags_of
from registry.queries import ExperienceView
from registry.serialize.ckan import clean, urls


def dataset_ld(view: ExperienceView, base: str) -> dict[str, Any]:
    main = view.main
    u = urls(base, view.id)
    data: dict[str, Any] = {
        "@context": "https://schema.org/", "@type": "Dataset", "@id": u["dataset"],
        "identifier": view.id, "name": clean(main.get("intitule")), "description": clean(main.get("resume")),
        "url": u["page"], "license": license_info()[2], "inLanguage": "fr", "isAccessibleForFree": True,
        "keywords": tags_of(main), "version": str(view.revision),
        "dateCreated": view.created_at.isoformat(), "dateModified": view.updated_at.isoformat(),
        "creator": {"@type": "GovernmentOrganization", "name": clean(main.get("nom_porteur")),
                    "identifier": main.get("siren_porteur", "")},
        "distribution": [
            {"@type": "DataDownload", "encodingFormat": "application/json", "contentUrl": u["json"]},
            {"@type": "DataDownload", "encodingFormat": "text/csv", "contentUrl": u["csv"]},
        ],
    }
    if main.get("date_debut"):
        data["temporalCoverage"] = f"{main['date_debut']}/{main.get('date_fin') or '..'}"
    if view.commune is not None:
        data["spatialCoverage"] = {"@type": "Place", "name": view.commune.nom,
                                   "identifier": f"http://id.insee.fr/geo/commune/{view.commune.code}"}
    return data


def script_json(data: dict[str, Any]) -> str:
    text = json.dumps(data, ensure_ascii=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
