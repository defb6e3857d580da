"""The JSON API (read): every answer is built by registry.serialize from the same actions as the pages."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort

from registry.actions import experiences
from registry.actions import index as search_index
from registry.queries import NotFound
from registry.serialize import experience_json, page_json, revision_json, search_json
from web.context import PAGE_SIZE, caller, int_arg, registry, search_args

bp = Blueprint("api", __name__)


@bp.get("/api/search")
def search() -> dict[str, Any]:
    facets = search_index.facet_fields()
    text, filters, page = search_args(facets)
    results = search_index.search(registry(), caller(), text, filters, PAGE_SIZE, (page - 1) * PAGE_SIZE)
    return search_json(text, filters, page, results)


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
