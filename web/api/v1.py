"""REST API v1 (read) for programs, and its OpenAPI 3 document at /api/openapi.json.

Search (free text and the site's filters, with facets), an experience (current state or a revision), its
revisions, the diff between two, organisations. Every error is JSON with a stable `code` and messages in
French and English, for every /api/v1/ URL including unknown ones. The write endpoints (API tokens per
organisation) are in web/api/writes.py, on the same blueprint.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
from typing import Any

from flask import Blueprint, Response, jsonify, request
from werkzeug.exceptions import HTTPException

from registry.actions import catalog, experiences
from registry.actions import index as search_index
from registry.actions.catalog import CatalogError
from registry.actions.experiences import InvalidRequest
from registry.queries import NotFound, RevisionInfo, Summary
from registry.serialize import change_json, experience_json, page_json, revision_json
from registry.serialize.ckan import clean
from web.context import caller, registry

bp = Blueprint("api_v1", __name__)
MAX_LIMIT = 100
MAX_PAGE = 400  # 40,000 results deep at most: past that, the bulk downloads
ID = re.compile(r"^[0-9]{9}-[0-9]{4}-[0-9]{3}$")  # the standard's pattern for id_experience
SIREN = re.compile(r"^[0-9]{9}$")
ERRORS = {
    "bad_request": ("Requête invalide.", "Bad request."),
    "not_found": ("Ressource introuvable.", "Not found."),
    "method_not_allowed": ("Méthode non autorisée.", "Method not allowed."),
    "internal": ("Erreur interne du registre.", "Internal error."),
    # writes (web/api/writes.py)
    "unauthorized": ("Jeton d'API requis.", "API token required."),
    "invalid_token": ("Jeton d'API invalide ou révoqué.", "Invalid or revoked API token."),
    "forbidden": ("Ce jeton ne peut pas écrire pour cette organisation.",
                  "This token cannot write for this organisation."),
    "invalid_document": ("Le corps n'est pas une expérience.", "The body is not an experience record."),
    "invalid_record": ("L'expérience ne respecte pas le standard : rien n'a été enregistré.",
                       "The record does not follow the standard: nothing was stored."),
    "already_exists": ("Cette expérience existe déjà.", "This experience already exists."),
    "already_withdrawn": ("Cette expérience est déjà retirée.", "This experience is already withdrawn."),
    "revision_mismatch": ("L'expérience a changé depuis votre lecture.", "The experience changed since you read it."),
    "payload_too_large": ("Envoi trop volumineux.", "Payload too large."),
    "unsupported_media_type": ("Type de contenu non pris en charge.", "Unsupported media type."),
    "rate_limited": ("Trop d'écritures : ralentissez.", "Too many writes: slow down."),
}
HTTP_CODES = {400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found", 405: "method_not_allowed",
              409: "already_exists", 412: "revision_mismatch", 413: "payload_too_large",
              415: "unsupported_media_type", 429: "rate_limited"}


class V1Error(Exception):
    def __init__(self, status: int, code: str, detail: str | None = None) -> None:
        super().__init__(code)
        self.status, self.code, self.detail = status, code, detail


def error_response(status: int, code: str, detail: str | None = None, **extra: Any) -> Response:
    fr, en = ERRORS.get(code, ERRORS["internal"])
    body = {"error": {"code": code, "status": status, "message": fr, "message_en": en, "detail": detail}, **extra}
    resp = jsonify(body)
    resp.status_code = status
    if status == 401:
        error = ' error="invalid_token"' if code == "invalid_token" else ""
        resp.headers["WWW-Authenticate"] = f'Bearer realm="registre"{error}'
    return resp


@bp.errorhandler(V1Error)
def _v1_error(exc: V1Error) -> Response:
    return error_response(exc.status, exc.code, exc.detail)


@bp.errorhandler(HTTPException)
def http_error(exc: HTTPException) -> Response:
    resp = error_response(exc.code or 500, HTTP_CODES.get(exc.code or 500, "internal"))
    for key, value in exc.get_headers():
        if key in ("Allow", "Retry-After"):
            resp.headers[key] = value
    return resp


@bp.errorhandler(CatalogError)
@bp.errorhandler(InvalidRequest)
def _invalid(exc: Exception) -> Response:
    return error_response(400, "bad_request", str(exc))


@bp.errorhandler(NotFound)
def _not_found(_: Exception) -> Response:
    return error_response(404, "not_found")


def _int(name: str, default: int, low: int, high: int) -> int:
    raw = request.args.get(name)
    if raw is None:
        return default
    if not raw.isascii() or not raw.isdigit() or len(raw) > 12 or not low <= int(raw) <= high:
        raise V1Error(400, "bad_request", f"« {name} » doit être un entier entre {low} et {high} / "
                                          f"{name} must be an integer from {low} to {high}.")
    return int(raw)


def _exp_id(exp_id: str) -> str:
    if not ID.match(exp_id):
        raise V1Error(404, "not_found")
    return exp_id


def _facet_codes(name: str) -> tuple[str, ...] | None:
    """The values a filter may take when the standard lists them (its codes, and the "not given" bucket)."""
    from registry.standard import get_standard

    spec = get_standard().main.by_name.get(name)
    return (*spec.codes, search_index.NONE) if spec is not None and spec.codes else None


@bp.get("/api/v1/search")
def search() -> dict[str, Any]:
    """The site's search (the full-text index, its query language, facets and sorts), for programs."""
    text = clean(request.args.get("q", ""))[:1000]
    filters: dict[str, tuple[str, ...]] = {}
    for name in search_index.facet_fields():
        values = tuple(dict.fromkeys(v for v in request.args.getlist(name) if v))
        codes = _facet_codes(name)
        bad = [v for v in values if len(v) > 200 or (codes is not None and v not in codes)]
        if bad:
            raise V1Error(400, "bad_request", f"« {name} » : valeur inconnue « {clean(bad[0])[:50]} » / unknown.")
        if values:
            filters[name] = values
    sort = request.args.get("sort") or ("pertinence" if text.strip() else "date_maj")
    if sort not in search_index.SORTS:
        raise V1Error(400, "bad_request", f"« sort » : {', '.join(search_index.SORTS)}.")
    limit = _int("limit", 25, 1, MAX_LIMIT)
    page = _int("page", 1, 1, MAX_PAGE)
    req = search_index.request(text, filters, sort, limit, (page - 1) * limit)
    found = search_index.search(registry(), caller(), req)
    views = {v.id: v for v in catalog.views(registry(), caller(), [h.id for h in found.hits])}
    results = [{**experience_json(views[h.id]), "snippet": h.snippet} for h in found.hits if h.id in views]
    return {"q": text, "filters": {k: list(v) for k, v in filters.items()}, "sort": sort, "page": page,
            "limit": limit, "count": found.total, "count_exact": found.exact,
            "facets_exact": found.facets_exact, "suggestion": found.suggestion,
            "results": results, "facets": found.facets}


@bp.get("/api/v1/experiences")
def listing() -> dict[str, Any]:
    """Every published experience, by identifier, a page at a time (the bulk downloads have them all)."""
    page = experiences.listing(registry(), caller(), _int("limit", 25, 1, MAX_LIMIT),
                               _int("offset", 0, 0, experiences.MAX_OFFSET))
    return page_json(page)


@bp.get("/api/v1/experiences/<exp_id>")
def experience(exp_id: str) -> Response:
    """The current state; its ETag ("r<revision>") is what a write's If-Match names."""
    view = experiences.get(registry(), caller(), _exp_id(exp_id))
    resp = jsonify(experience_json(view))
    resp.headers["ETag"] = f'"r{view.revision}"'
    return resp


def _revision(info: RevisionInfo) -> dict[str, Any]:
    """revision_json, with the time in UTC and marked so (SQLite gives it back without its zone)."""
    stamp = info.created_at if info.created_at.tzinfo else info.created_at.replace(tzinfo=dt.UTC)
    return {**revision_json(info), "created_at": stamp.isoformat()}


@bp.get("/api/v1/experiences/<exp_id>/revisions")
def revisions(exp_id: str) -> list[dict[str, Any]]:
    return [_revision(r) for r in experiences.history(registry(), caller(), _exp_id(exp_id))]


@bp.get("/api/v1/experiences/<exp_id>/revisions/<int:number>")
def revision(exp_id: str, number: int) -> dict[str, Any]:
    info, record = catalog.revision(registry(), caller(), _exp_id(exp_id), number)
    return {"revision": _revision(info), "record": record}


@bp.get("/api/v1/experiences/<exp_id>/diff")
def diff(exp_id: str) -> dict[str, Any]:
    old, new = _int("from", 1, 1, 10**9), _int("to", 1, 1, 10**9)
    changes = experiences.diff(registry(), caller(), _exp_id(exp_id), old, new)
    return {"id": exp_id, "from": old, "to": new, "changes": [change_json(c) for c in changes]}


def _organisation(o: catalog.OrganisationInfo) -> dict[str, Any]:
    return {"siren": o.siren, "nom": clean(o.nom), "type_porteur": o.type_porteur,
            "experiences": o.package_count, "created_at": o.created_at.isoformat()}


@bp.get("/api/v1/organisations")
def organisations() -> dict[str, Any]:
    orgs = catalog.organization_list(registry(), caller())
    return {"count": len(orgs), "results": [_organisation(o) for o in orgs]}


@bp.get("/api/v1/organisations/<siren>")
def organisation(siren: str) -> dict[str, Any]:
    if not SIREN.match(siren):
        raise V1Error(404, "not_found")
    try:
        return _organisation(catalog.organization_show(registry(), caller(), siren))
    except CatalogError as exc:
        raise V1Error(404, "not_found") from exc


@bp.get("/api/openapi.json")
def openapi() -> dict[str, Any]:
    return document(request.url_root.rstrip("/"))


# ---------------------------------------------------------------- the OpenAPI 3 document

def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _errors(*codes: int) -> dict[str, Any]:
    text = {400: "Paramètre invalide / invalid parameter", 404: "Introuvable / not found"}
    return {str(c): _json(_ref("Error"), text[c]) for c in codes}


def _path_id() -> dict[str, Any]:
    return {"name": "exp_id", "in": "path", "required": True,
            "schema": {"type": "string", "pattern": ID.pattern, "example": "213105554-2020-001"}}


def _int_param(name: str, low: int, high: int, default: int, description: str) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": False, "description": description,
            "schema": {"type": "integer", "minimum": low, "maximum": high, "default": default}}


def document(server: str) -> dict[str, Any]:
    """The OpenAPI 3.0 document of this API; the filter parameters and their codes come from the standard."""
    from registry.standard import get_standard

    std = get_standard()
    filters = []
    for name in search_index.facet_fields():
        spec = std.main.by_name.get(name)
        codes = _facet_codes(name)
        item: dict[str, Any] = {"type": "string", "enum": list(codes)} if codes else {"type": "string",
                                                                                      "maxLength": 200}
        filters.append({"name": name, "in": "query", "required": False, "style": "form", "explode": True,
                        "schema": {"type": "array", "items": item},
                        "description": (spec.title if spec else name) + " — répétable (OU) / repeatable (OR); "
                                       f"« {search_index.NONE} » : non renseigné / not given"})
    obj = {"type": "object"}
    nullable_str = {"type": "string", "nullable": True}
    schemas = {
        "Error": {"type": "object", "required": ["error"], "properties": {"error": {
            "type": "object", "required": ["code", "status", "message", "message_en"],
            "properties": {"code": {"type": "string", "enum": sorted(ERRORS)}, "status": {"type": "integer"},
                           "message": {"type": "string"}, "message_en": {"type": "string"},
                           "detail": nullable_str}}}},
        "Experience": {"type": "object", "required": ["id", "status", "revision", "record", "created_at",
                                                      "updated_at", "derived"],
                       "properties": {"id": {"type": "string"}, "status": {"type": "string",
                                                                            "enum": ["published", "withdrawn"]},
                                      "withdrawn_reason": nullable_str, "revision": {"type": "integer"},
                                      "created_at": {"type": "string", "format": "date-time"},
                                      "updated_at": {"type": "string", "format": "date-time"},
                                      "record": obj, "territory": {"type": "object", "nullable": True},
                                      "derived": obj}},
        "Revision": {"type": "object", "required": ["number", "action", "channel", "created_at", "content_hash"],
                     "properties": {"number": {"type": "integer"}, "action": {"type": "string"},
                                    "channel": {"type": "string"}, "actor": nullable_str, "source_url": nullable_str,
                                    "source_name": nullable_str, "comment": nullable_str,
                                    "created_at": {"type": "string", "format": "date-time"},
                                    "content_hash": {"type": "string"}, "standard_version": {"type": "string"}}},
        "Change": {"type": "object", "required": ["table", "key", "field", "before", "after"],
                   "properties": {"table": {"type": "string"}, "key": {"type": "string"},
                                  "field": nullable_str, "before": nullable_str, "after": nullable_str}},
        "Summary": {"type": "object", "required": ["id", "intitule"],
                    "properties": {f.name: {"type": "string"} for f in dataclasses.fields(Summary)}},
        "Organisation": {"type": "object", "required": ["siren", "nom", "type_porteur", "experiences"],
                         "properties": {"siren": {"type": "string"}, "nom": {"type": "string"},
                                        "type_porteur": {"type": "string"}, "experiences": {"type": "integer"},
                                        "created_at": {"type": "string", "format": "date-time"}}},
    }
    search_schema = {"type": "object",
                     "required": ["q", "filters", "sort", "page", "limit", "count", "count_exact", "facets_exact",
                                  "results", "facets"],
                     "properties": {"q": {"type": "string"}, "sort": {"type": "string"},
                                    "filters": {"type": "object", "additionalProperties": {
                                        "type": "array", "items": {"type": "string"}}},
                                    "page": {"type": "integer"}, "limit": {"type": "integer"},
                                    "count": {"type": "integer"}, "count_exact": {"type": "boolean"},
                                    "facets_exact": {"type": "boolean"},
                                    "suggestion": nullable_str,
                                    "results": {"type": "array", "items": _ref("Experience")},
                                    "facets": {"type": "object", "additionalProperties": {
                                        "type": "object", "additionalProperties": {"type": "integer"}}}}}
    paths = {
        "/api/v1/search": {"get": {
            "operationId": "search", "summary": "Recherche / search",
            "parameters": [{"name": "q", "in": "query", "required": False, "schema": {"type": "string"},
                            "description": "Texte libre, le langage du site : tous les mots, \"phrase exacte\", "
                                           "-exclu, OU / free text, the site's query language (1,000 characters)"},
                           {"name": "sort", "in": "query", "required": False,
                            "schema": {"type": "string", "enum": list(search_index.SORTS)},
                            "description": "Tri (défaut : pertinence avec du texte, date_maj sinon) / sort"},
                           _int_param("page", 1, MAX_PAGE, 1, "Page (1…)"),
                           _int_param("limit", 1, MAX_LIMIT, 25, "Résultats par page / results per page"),
                           *filters],
            "responses": {"200": _json(search_schema, "Résultats / results"), **_errors(400)}}},
        "/api/v1/experiences": {"get": {
            "operationId": "listing", "summary": "Les expériences publiées, par page / published experiences",
            "parameters": [_int_param("limit", 1, MAX_LIMIT, 25, "Résultats par page / results per page"),
                           _int_param("offset", 0, experiences.MAX_OFFSET, 0, "Décalage / offset")],
            "responses": {"200": _json({"type": "object", "required": ["count", "offset", "limit", "results"],
                                        "properties": {"count": {"type": "integer"}, "offset": {"type": "integer"},
                                                       "limit": {"type": "integer"},
                                                       "results": {"type": "array", "items": _ref("Summary")}}},
                                       "Expériences"), **_errors(400)}}},
        "/api/v1/experiences/{exp_id}": {"get": {
            "operationId": "experience", "summary": "Une expérience, état actuel / current state",
            "parameters": [_path_id()],
            "responses": {"200": _json(_ref("Experience"), "L'expérience"), **_errors(404)}}},
        "/api/v1/experiences/{exp_id}/revisions": {"get": {
            "operationId": "revisions", "summary": "Ses révisions / its revisions", "parameters": [_path_id()],
            "responses": {"200": _json({"type": "array", "items": _ref("Revision")}, "Révisions"),
                          **_errors(404)}}},
        "/api/v1/experiences/{exp_id}/revisions/{number}": {"get": {
            "operationId": "revision", "summary": "Une révision / one revision",
            "parameters": [_path_id(), {"name": "number", "in": "path", "required": True,
                                        "schema": {"type": "integer", "minimum": 1}}],
            "responses": {"200": _json({"type": "object", "required": ["revision", "record"],
                                        "properties": {"revision": _ref("Revision"), "record": obj}}, "Révision"),
                          **_errors(404)}}},
        "/api/v1/experiences/{exp_id}/diff": {"get": {
            "operationId": "diff", "summary": "Différences entre deux révisions / diff",
            "parameters": [_path_id(), _int_param("from", 1, 10**9, 1, "Révision de départ"),
                           _int_param("to", 1, 10**9, 1, "Révision d'arrivée")],
            "responses": {"200": _json({"type": "object", "required": ["id", "from", "to", "changes"],
                                        "properties": {"id": {"type": "string"}, "from": {"type": "integer"},
                                                       "to": {"type": "integer"},
                                                       "changes": {"type": "array", "items": _ref("Change")}}},
                                       "Différences"), **_errors(400, 404)}}},
        "/api/v1/organisations": {"get": {
            "operationId": "organisations", "summary": "Organisations (territoires, par SIREN)",
            "responses": {"200": _json({"type": "object", "required": ["count", "results"],
                                        "properties": {"count": {"type": "integer"},
                                                       "results": {"type": "array", "items": _ref("Organisation")}}},
                                       "Organisations")}}},
        "/api/v1/organisations/{siren}": {"get": {
            "operationId": "organisation", "summary": "Une organisation",
            "parameters": [{"name": "siren", "in": "path", "required": True,
                            "schema": {"type": "string", "pattern": SIREN.pattern}}],
            "responses": {"200": _json(_ref("Organisation"), "Organisation"), **_errors(404)}}},
    }
    from web.api import openapi_writes

    for path, operations in openapi_writes.paths().items():
        paths.setdefault(path, {}).update(operations)
    schemas.update(openapi_writes.schemas())
    return {"openapi": "3.0.3",
            "info": {"title": "Registre des territoires connectés — API REST", "version": "1.0.0",
                     "description": "Lecture publique ; écriture avec un jeton d'API d'organisation. "
                                    "Licence Ouverte 2.0.",
                     "license": {"name": "Licence Ouverte 2.0",
                                 "url": "https://www.etalab.gouv.fr/licence-ouverte-open-licence"}},
            "servers": [{"url": server}], "paths": paths,
            "components": {"schemas": schemas, "securitySchemes": openapi_writes.security_schemes()}}
