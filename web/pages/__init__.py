"""HTML pages for researchers. Each page renders the same data functions that its JSON twin in web/api serves.

`/` is the home page; a search sent to `/` (the site's old address for it) is redirected to `/recherche`
with the same parameters. Modules: `record` (an experience, its history and diffs), `figures` (statistics,
results compliance, organisations, the standard), `formatting` (French formats for the templates).
"""

from __future__ import annotations

import json

from flask import Blueprint, Response, g, redirect, render_template, request, url_for
from flask_babel import gettext as _

from registry.actions import index as search_index
from registry.actions import stats
from registry.actions.index import MAX_LIMIT
from registry.serialize import search_json
from registry.serialize.stats import hits_csv
from web.context import caller, registry, search_request
from web.pages import cards, formatting, layout, search_page, values
from web.pages.memory import remembered

bp = Blueprint("pages", __name__)
formatting.register(bp)
cards.register(bp)
values.register(bp)
layout.register(bp)
SEARCH_PARAMS = ("q", "sort", "page")


@bp.get("/")
def index() -> object:
    if any(k in request.args for k in SEARCH_PARAMS) or any(k in request.args for k in search_index.facet_fields()):
        return redirect(url_for("pages.search", **request.args.to_dict(flat=False)), 302)
    return remembered(("home",), _home)


def _home() -> tuple[str, int]:
    reg, who = registry(), caller()
    statistics = stats.statistics(reg, who)
    return render_template("index.html", figures=statistics.figures, domains=statistics.domains,
                           latest=stats.latest(reg, who)), 200


@bp.get("/recherche")
def search() -> object:
    return search_page.search_page()


def _export_results() -> object:
    req, _page = search_request(page_size=MAX_LIMIT)
    return search_index.search(registry(), caller(), req)


@bp.get("/recherche.csv")
def search_csv() -> Response:
    """The current search (its first 1,000 results) as CSV, codes and labels."""
    results = _export_results()
    body = "\ufeff" + hits_csv(results.hits, request.url_root, g.get("lang", "fr"))
    return Response(body, content_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": 'attachment; filename="recherche.csv"'})


@bp.get("/recherche.json")
def search_export_json() -> Response:
    """The current search (its first 1,000 results) as the registry's search JSON (the API's shape)."""
    results = _export_results()
    return Response(json.dumps(search_json(results, g.get("lang", "fr")), ensure_ascii=False),
                    content_type="application/json; charset=utf-8",
                    headers={"Content-Disposition": 'attachment; filename="recherche.json"'})


__all__ = ["_", "bp"]

from web.pages import figures, record  # noqa: E402  (routes on bp)

__all__ += ["figures", "record"]
