"""CKAN shapes: an experience as a CKAN dataset (with its resources), a territory as a CKAN organisation.

A dataset carries every key that CKAN's harvesters read (ckanext-harvest's `ckan` harvester imports
`package_search` results as they are), and resources of formats data.gouv.fr accepts: the record as
JSON, as CSV in the standard, and its page. Texts are passed through as data (JSON escapes them);
control characters other than tab and line breaks are dropped, as CKAN's validators would refuse them.
"""

from __future__ import annotations

import datetime as dt
import re
import uuid
from typing import Any

from registry.catalog_queries import OrganisationInfo, license_info, tags_of
from registry.queries import ExperienceView
from registry.standard import get_standard

_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ufffe\uffff]")


def clean(text: str | None) -> str:
    """Text for every output: control characters that XML and most clients refuse are dropped."""
    return _CONTROL.sub("", text or "")


def ckan_time(value: dt.datetime | None) -> str | None:
    """CKAN's timestamps: naive UTC ISO 8601 with microseconds."""
    if value is None:
        return None
    return value.astimezone(dt.UTC).replace(tzinfo=None).isoformat(timespec="microseconds")


def urls(base: str, exp_id: str) -> dict[str, str]:
    """Where an experience lives, for every format (one place, so that every output names the same URLs)."""
    b = base.rstrip("/")
    return {"page": f"{b}/experiences/{exp_id}", "json": f"{b}/api/v1/experiences/{exp_id}",
            "csv": f"{b}/opendata/experiences/{exp_id}.csv", "dataset": f"{b}/experiences/{exp_id}#dataset",
            "datapackage": f"{b}/opendata/experiences/{exp_id}/datapackage.json",
            "tables": f"{b}/opendata/experiences/{exp_id}/"}


def organization_dict(org: OrganisationInfo, base: str) -> dict[str, Any]:
    created = ckan_time(org.created_at)
    return {
        "id": org.siren, "name": org.siren, "title": clean(org.nom), "display_name": clean(org.nom),
        "type": "organization", "is_organization": True, "approval_status": "approved", "state": "active",
        "description": "", "image_url": "", "image_display_url": "", "created": created,
        "package_count": org.package_count, "num_followers": 0,
        "extras": [{"key": "siren", "value": org.siren}, {"key": "type_porteur", "value": org.type_porteur}],
        "url": f"{base.rstrip('/')}/?q=&siren={org.siren}",
    }


def _resources(view: ExperienceView, base: str) -> list[dict[str, Any]]:
    std = get_standard()
    u = urls(base, view.id)
    created, modified = ckan_time(view.created_at), ckan_time(view.updated_at)
    schema = {"name": std.package["name"], "version": std.version}
    shapes = [
        ("json", "Fiche complète (JSON)", "L'expérience et ses tables filles, avec ce que le registre en dérive.",
         "JSON", "application/json", u["json"]),
        ("csv", "Fiche au format du standard (CSV)", "La ligne de l'expérience dans la table « experiences » du "
         "standard.", "CSV", "text/csv", u["csv"]),
        ("datapackage", "Data Package de l'expérience (toutes les tables)", "Les lignes de l'expérience dans "
         "chaque table du standard (expériences, indicateurs, enseignements, acteurs, documents), décrites par le "
         "datapackage.json du standard.", "JSON", "application/json", u["datapackage"]),
        ("page", "Page de l'expérience", "La fiche lisible, avec son historique.", "HTML", "text/html", u["page"]),
    ]
    return [{
        "id": str(uuid.uuid5(uuid.NAMESPACE_URL, url)), "package_id": view.id, "name": name, "description": desc,
        "format": fmt,
        "mimetype": mime, "url": url, "created": created, "last_modified": modified, "metadata_modified": modified,
        "position": i, "state": "active", "url_type": None,
        "resource_type": "main" if key != "page" else "documentation",
        "schema": schema, "size": None, "hash": "",
    } for i, (key, name, desc, fmt, mime, url) in enumerate(shapes)]


def dataset_dict(view: ExperienceView, base: str, org_title: str | None = None) -> dict[str, Any]:
    """One experience as a complete CKAN dataset (what package_show and each package_search result give)."""
    std = get_standard()
    main = view.main
    lic_id, lic_title, lic_url = license_info()
    siren = main.get("siren_porteur", "")
    org = {"id": siren, "name": siren, "title": clean(org_title or main.get("nom_porteur")), "type": "organization",
           "description": "", "image_url": "", "created": ckan_time(view.created_at), "is_organization": True,
           "approval_status": "approved", "state": "active"}
    tags = [{"name": t, "display_name": t, "state": "active", "vocabulary_id": None} for t in tags_of(main)]
    spec = std.main.by_name
    extras = {
        "identifier": view.id,
        "standard": f"{std.package['name']} {std.version}",
        "code_insee_commune": main.get("code_insee_commune", ""),
        "commune": view.commune.nom if view.commune else "",
        "phase": spec["phase"].label(main.get("phase", "")),
        "statut": spec["statut"].label(main.get("statut", "")),
        "resultat": spec["resultat"].label(main.get("resultat", "")),
        "date_debut": main.get("date_debut", ""),
        "date_fin": main.get("date_fin", ""),
        "revision": str(view.revision),
        "results_overdue": "true" if view.derived.results_overdue else "false",
        "preregistered": {True: "true", False: "false", None: ""}[view.derived.preregistered],
    }
    u = urls(base, view.id)
    resources = _resources(view, base)
    return {
        "id": view.id, "name": view.id, "title": clean(main.get("intitule")), "notes": clean(main.get("resume")),
        "type": "dataset", "state": "active", "private": False, "isopen": True,
        "license_id": lic_id, "license_title": lic_title, "license_url": lic_url,
        "metadata_created": ckan_time(view.created_at), "metadata_modified": ckan_time(view.updated_at),
        "author": clean(main.get("nom_porteur")), "author_email": clean(main.get("contact_courriel")) or None,
        "maintainer": clean(main.get("nom_porteur")), "maintainer_email": clean(main.get("contact_courriel")) or None,
        "url": u["page"], "version": str(view.revision),
        "owner_org": siren, "organization": org, "groups": [], "relationships_as_object": [],
        "relationships_as_subject": [],
        "tags": tags, "num_tags": len(tags), "resources": resources, "num_resources": len(resources),
        "extras": [{"key": k, "value": clean(v)} for k, v in extras.items()],
        "schema": {"name": std.package["name"], "version": std.version},
    }


def license_dict() -> dict[str, Any]:
    lic_id, title, url = license_info()
    return {"id": lic_id, "title": title, "url": url, "status": "active", "od_conformance": "approved",
            "osd_conformance": "not reviewed", "domain_content": True, "domain_data": True,
            "domain_software": False, "family": "", "maintainer": "", "is_generic": False, "is_okd_compliant": True,
            "is_osi_compliant": False}
