"""HTML pages. Each page renders the same data function that its JSON twin in web/api serves."""

from __future__ import annotations

from flask import Blueprint, abort, render_template, request

from registry.actions import experiences
from registry.actions import index as search_index
from registry.queries import NotFound
from registry.serialize import experience_json
from web.context import PAGE_SIZE, caller, registry, search_request

bp = Blueprint("pages", __name__)


@bp.get("/")
def index() -> str:
    req, page = search_request()
    results = search_index.search(registry(), caller(), req)
    return render_template("index.html", q=req.text, filters=req.filters, results=results, page=page,
                           size=PAGE_SIZE, facets=search_index.facet_fields(), sorts=search_index.SORTS, sort=req.sort)


@bp.get("/experiences/<exp_id>")
def experience(exp_id: str) -> object:
    try:
        view = experiences.get(registry(), caller(), exp_id)
        revisions = experiences.history(registry(), caller(), exp_id)
    except NotFound:
        abort(404)
    data = experience_json(view)
    if request.accept_mimetypes.best == "application/json":
        return data
    similar = search_index.similar(registry(), caller(), exp_id)
    return render_template("experience.html", view=view, data=data, revisions=revisions, similar=similar)
