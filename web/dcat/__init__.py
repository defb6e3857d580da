"""The DCAT-AP catalogue: /catalog.ttl, /catalog.jsonld, /catalog.rdf, and /catalog by content negotiation.

Paged (`?page=N`, `page_size` up to 1000, 100 by default) with Hydra links built on this request's own
address, so a harvester follows them whatever name it used to reach the site.
"""

from __future__ import annotations

from flask import Blueprint, Response, abort, request

from registry.actions import catalog
from registry.serialize import CatalogPage, catalog_graph, serialize_rdf
from web.context import caller, int_arg, registry

bp = Blueprint("dcat", __name__)
PAGE_SIZE = 100
MAX_PAGE_SIZE = 1000
FORMATS = {"ttl": ("turtle", "text/turtle"), "jsonld": ("json-ld", "application/ld+json"),
           "rdf": ("xml", "application/rdf+xml")}
BY_MIME = {mime: ext for ext, (_, mime) in FORMATS.items()} | {"application/x-turtle": "ttl",
                                                               "application/json": "jsonld", "text/n3": "ttl",
                                                               "application/xml": "rdf", "text/xml": "rdf"}


def _page(ext: str) -> Response:
    size = int_arg("page_size", PAGE_SIZE, 1, MAX_PAGE_SIZE)
    number = int_arg("page", 1, 1, catalog.MAX_START // PAGE_SIZE)
    total, views = catalog.packages(registry(), caller(), size, (number - 1) * size, sort="name asc")
    last = max(1, -(-total // size))
    if number > last:
        abort(404)
    root = request.url_root.rstrip("/")

    def url(n: int) -> str:
        extra = f"&page_size={size}" if size != PAGE_SIZE else ""
        return f"{root}/catalog.{ext}?page={n}{extra}"

    page = CatalogPage(base=registry().settings.base_url, page_url=url(number), number=number, size=size, total=total,
                       url_of={n: url(n) for n in {1, last, max(1, number - 1), min(last, number + 1)}})
    fmt, mime = FORMATS[ext]
    body = serialize_rdf(catalog_graph(views, page), fmt)
    resp = Response(body, content_type=f"{mime}; charset=utf-8")
    resp.headers["Vary"] = "Accept"
    return resp


@bp.get("/catalog.ttl")
def turtle() -> Response:
    return _page("ttl")


@bp.get("/catalog.jsonld")
def jsonld() -> Response:
    return _page("jsonld")


@bp.get("/catalog.rdf")
def rdfxml() -> Response:
    return _page("rdf")


@bp.get("/catalog")
def negotiated() -> Response:
    best = request.accept_mimetypes.best_match(list(BY_MIME), default="text/turtle")
    return _page(BY_MIME.get(best or "text/turtle", "ttl"))
