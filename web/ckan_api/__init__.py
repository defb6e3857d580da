"""The CKAN Action API (read) at /api/3/action/<name> and /api/action/<name>, GET and POST.

CKAN's envelope (`help`, `success`, `result` | `error` with `__type` and `message`) and CKAN's HTTP codes:
400 for an unknown action or a body that is not JSON, 404 "Not Found Error", 409 "Validation Error",
405 for another method. Each action reads its parameters, calls registry.actions.catalog and hands the
views to registry.serialize.ckan.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from flask import Blueprint, Response, request

from registry.actions import catalog
from registry.actions.catalog import CatalogError, SearchRequest
from registry.serialize import dataset_dict, license_dict, organization_dict
from web.context import caller, registry

bp = Blueprint("ckan_api", __name__)
METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE"]
CKAN_VERSION = "2.10.4"


class ApiError(Exception):
    def __init__(self, status: int, kind: str, message: str, fields: dict[str, list[str]] | None = None) -> None:
        super().__init__(message)
        self.status, self.kind, self.message, self.fields = status, kind, message, fields or {}


def _base() -> str:
    return registry().settings.base_url if registry().settings.base_url else request.host_url


def _help(name: str) -> str:
    return f"{request.host_url.rstrip('/')}/api/3/action/help_show?name={name[:60]}"


def _answer(name: str, status: int, body: dict[str, Any]) -> Response:
    payload = {"help": _help(name), **body}
    return Response(json.dumps(payload, ensure_ascii=False), status=status,
                    content_type="application/json;charset=utf-8")


def _params() -> dict[str, Any]:
    if request.method == "POST" and request.get_data(cache=True):
        if request.mimetype in ("application/x-www-form-urlencoded", "multipart/form-data"):
            return {k: v for k, v in request.form.items()}
        try:
            data = json.loads(request.get_data(cache=True))
        except (ValueError, UnicodeDecodeError) as exc:
            raise ApiError(400, "Bad Request", f"Bad request - JSON Error: {str(exc)[:100]}") from exc
        if not isinstance(data, dict):
            raise ApiError(400, "Bad Request", "Bad request - JSON Error: Request data JSON decoded to "
                                               f"{type(data).__name__} but it needs to be a dictionary.")
        return data
    return {k: v for k, v in request.args.items()}


def _int(params: dict[str, Any], name: str, default: int | None, low: int = 0) -> int | None:
    value = params.get(name)
    if value is None or value == "":
        return default
    try:
        number = int(value) if not isinstance(value, bool) else None
    except (TypeError, ValueError):
        number = None
    if number is None or number < low or number > 10**9:
        raise ApiError(409, "Validation Error", "Invalid integer", {name: ["Invalid integer"]})
    return number


def _bool(params: dict[str, Any], name: str, default: bool = False) -> bool:
    value = params.get(name, default)
    return value if isinstance(value, bool) else str(value).lower() in ("true", "1", "yes", "on")


def _str(params: dict[str, Any], name: str, default: str = "") -> str:
    value = params.get(name, default)
    if value is None:
        return default
    if not isinstance(value, str | int | float):
        raise ApiError(409, "Validation Error", f"{name}: text expected", {name: ["Must be a string"]})
    return str(value)


def _list(params: dict[str, Any], name: str) -> tuple[str, ...]:
    value = params.get(name)
    if value is None or value == "":
        return ()
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ApiError(409, "Validation Error", f"{name}: a JSON list of names", {name: ["Must be a list"]})
    return tuple(value)


# ---------------------------------------------------------------- actions

def status_show(_: dict[str, Any]) -> Any:
    return {"site_title": "Registre des retours d'expérience des territoires connectés", "site_url": _base(),
            "site_description": "Open data registry of French smart-territory experience reports.",
            "ckan_version": CKAN_VERSION, "error_emails_to": None, "locale_default": "fr",
            "extensions": ["dcat", "registre-territoires-connectes"]}


def package_list(p: dict[str, Any]) -> Any:
    return catalog.package_list(registry(), caller(), _int(p, "limit", None), _int(p, "offset", 0) or 0)


def package_show(p: dict[str, Any]) -> Any:
    ident = _str(p, "id") or _str(p, "name")
    if not ident:
        raise ApiError(409, "Validation Error", "Missing value", {"id": ["Missing value"]})
    view = catalog.package_show(registry(), caller(), ident)
    return dataset_dict(view, _base())


def package_search(p: dict[str, Any]) -> Any:
    req = SearchRequest(q=_str(p, "q"), fq=_str(p, "fq"), rows=_int(p, "rows", 10) or 0,
                        start=_int(p, "start", 0) or 0, sort=_str(p, "sort"),
                        facet_fields=_list(p, "facet.field"), facet_limit=_int(p, "facet.limit", 50, -1) or 0)
    result = catalog.package_search(registry(), caller(), req)
    base = _base()
    facets = {k: {i.name: i.count for i in items} for k, items in result.facets.items()}
    search_facets = {k: {"title": k, "items": [{"name": i.name, "display_name": i.display_name, "count": i.count}
                                                for i in items]} for k, items in result.facets.items()}
    return {"count": result.count, "sort": result.sort, "facets": facets, "search_facets": search_facets,
            "results": [dataset_dict(v, base) for v in result.views]}


def current_package_list_with_resources(p: dict[str, Any]) -> Any:
    limit = _int(p, "limit", 10) or 0
    offset = _int(p, "offset", 0) or 0
    page = _int(p, "page", None, 1)
    if page is not None:
        offset = (page - 1) * limit
    _, views = catalog.packages(registry(), caller(), min(limit, catalog.MAX_ROWS), offset)
    base = _base()
    return [dataset_dict(v, base) for v in views]


def organization_list(p: dict[str, Any]) -> Any:
    orgs = catalog.organization_list(registry(), caller())
    if _str(p, "sort", "name asc").startswith("package_count"):
        orgs.sort(key=lambda o: -o.package_count)
    offset = _int(p, "offset", 0) or 0
    limit = _int(p, "limit", catalog.MAX_LIST) or 0
    orgs = orgs[offset:offset + min(limit, catalog.MAX_LIST)]
    if _bool(p, "all_fields"):
        return [organization_dict(o, _base()) for o in orgs]
    return [o.siren for o in orgs]


def organization_show(p: dict[str, Any]) -> Any:
    ident = _str(p, "id")
    if not ident:
        raise ApiError(409, "Validation Error", "Missing value", {"id": ["Missing value"]})
    org = catalog.organization_show(registry(), caller(), ident)
    data = organization_dict(org, _base())
    if _bool(p, "include_datasets"):
        result = catalog.package_search(registry(), caller(),
                                        SearchRequest(fq=f"organization:{org.siren}", rows=catalog.MAX_ROWS))
        data["packages"] = [dataset_dict(v, _base()) for v in result.views]
    return data


def tag_list(p: dict[str, Any]) -> Any:
    result = catalog.package_search(registry(), caller(), SearchRequest(rows=0, facet_fields=("tags",),
                                                                         facet_limit=-1))
    names = sorted(i.name for i in result.facets["tags"])
    query = _str(p, "query").lower()
    names = [n for n in names if query in n.lower()]
    if _bool(p, "all_fields"):
        return [{"id": n, "name": n, "vocabulary_id": None} for n in names]
    return names


def license_list(_: dict[str, Any]) -> Any:
    return [license_dict()]


def site_read(_: dict[str, Any]) -> Any:
    return True


ACTIONS: dict[str, Callable[[dict[str, Any]], Any]] = {f.__name__: f for f in (
    status_show, package_list, package_show, package_search, current_package_list_with_resources,
    organization_list, organization_show, tag_list, license_list, site_read)}


@bp.route("/api/3/action/<name>", methods=METHODS)
@bp.route("/api/action/<name>", methods=METHODS)
def action(name: str) -> Response:
    try:
        if name not in ACTIONS:
            raise ApiError(400, "Bad Request", f"Bad request - Action name not known: {name[:60]}")
        if request.method not in ("GET", "POST"):
            raise ApiError(405, "Bad Request", f"Method {request.method} not allowed: use GET or POST")
        result = ACTIONS[name](_params())
        return _answer(name, 200, {"success": True, "result": result})
    except ApiError as exc:
        error: dict[str, Any] = {"__type": exc.kind, "message": exc.message, **exc.fields}
        return _answer(name, exc.status, {"success": False, "error": error})
    except CatalogError as exc:
        if exc.kind == "not_found":
            return _answer(name, 404, {"success": False, "error": {"__type": "Not Found Error",
                                                                   "message": "Not found"}})
        return _answer(name, 409, {"success": False, "error": {"__type": "Validation Error", "message": str(exc),
                                                               "query": [str(exc)]}})


@bp.get("/api/3")
@bp.get("/api/3/")
def version() -> dict[str, Any]:
    return {"version": 3}


__all__ = ["ACTIONS", "bp"]
