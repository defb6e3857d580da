"""The JSON API (read): every answer is built by registry.serialize from the same actions as the pages."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, g

from registry.actions import experiences
from registry.actions import index as search_index
from registry.queries import NotFound
from registry.serialize import experience_json, page_json, revision_json, search_json
from web.context import caller, int_arg, registry, search_request

bp = Blueprint("api", __name__)


@bp.get("/api/search")
def search() -> dict[str, Any]:
    req, page = search_request()
    return {**search_json(search_index.search(registry(), caller(), req), g.get("lang", "fr")), "page": page}


@bp.get("/api/experiences")
def listing() -> dict[str, Any]:
    limit = int_arg("limit", 50, 1, experiences.MAX_PAGE)
    offset = int_arg("offset", 0, 0, experiences.MAX_OFFSET)
    return page_json(experiences.listing(registry(), caller(), limit, offset))


@bp.get("/api/experiences/<exp_id>")
def experience(exp_id: str) -> dict[str, Any]:
    try:
        return experience_json(experiences.get(registry(), caller(), exp_id))
    except NotFound:
        abort(404)


@bp.get("/api/experiences/<exp_id>/revisions")
def revisions(exp_id: str) -> list[dict[str, Any]]:
    try:
        return [revision_json(r) for r in experiences.history(registry(), caller(), exp_id)]
    except NotFound:
        abort(404)


@bp.get("/healthz")
def healthz() -> dict[str, Any]:
    return {"status": "ok", "schema_current": registry().schema_is_current()}
