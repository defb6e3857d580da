"""Open data out: bulk downloads, one experience as CSV, the Atom feed, sitemap.xml, robots.txt and the page
that lists every download, feed and API with examples.

The bulk files are built by background work (registry.bulk.refresh), never here: a file not built yet is a
503 with Retry-After. They are served with ETag and Last-Modified, and 304 to a conditional request.
"""

from __future__ import annotations

from flask import Blueprint, Flask, Response, abort, render_template, request, send_file

from registry.actions import catalog, experiences
from registry.actions.catalog import CatalogError
from registry.queries import ExperienceView, NotFound
from registry.serialize import atom_feed, experience_csv, experience_package, sitemap_index, sitemap_xml
from web.context import caller, int_arg, registry

bp = Blueprint("opendata", __name__)
FEED_SIZE = 50
SITEMAP_SIZE = 10_000


@bp.get("/opendata")
def page() -> str:
    files = catalog.bulk_files(registry(), caller())
    root = request.url_root.rstrip("/")
    ids = catalog.package_list(registry(), caller(), 1, 0)
    return render_template("opendata/index.html", files=files, root=root, example=ids[0] if ids else "ID",
                           filters=catalog.filter_fields())


@bp.get("/opendata/<download>")
def bulk(download: str) -> Response:
    files = catalog.bulk_files(registry(), caller())
    if download not in files:
        abort(404)
    name = download
    f = files[name]
    if not f.path.exists():
        resp = Response("Fichier en préparation : réessayez dans une minute. / Being built: retry in a minute.\n",
                        status=503, content_type="text/plain; charset=utf-8")
        resp.headers["Retry-After"] = "60"
        return resp
    resp = send_file(f.path, mimetype=f.media_type, as_attachment=name.endswith(".zip"), download_name=name,
                     conditional=True, etag=True, last_modified=f.path.stat().st_mtime, max_age=300)
    return resp


@bp.get("/datapackage.json")
def datapackage() -> Response:
    return bulk("datapackage.json")


@bp.get("/export")
def export() -> Response:
    """The whole registry as one zip (the same file as under /opendata/)."""
    return bulk(next(n for n in catalog.bulk_files(registry(), caller()) if n.endswith(".zip")))


@bp.get("/opendata/experiences/<exp_id>.csv")
def experience(exp_id: str) -> Response:
    view = _published(exp_id)
    return Response(experience_csv(view), content_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": f"attachment; filename={view.id}.csv"})


def _published(exp_id: str) -> ExperienceView:
    try:
        view = experiences.get(registry(), caller(), exp_id)
    except NotFound:
        abort(404)
    if not view.published:
        abort(404)
    return view


@bp.get("/opendata/experiences/<exp_id>/datapackage.json")
def experience_datapackage(exp_id: str) -> dict[str, object]:
    return experience_package(_published(exp_id), registry().settings.base_url)


@bp.get("/opendata/experiences/<exp_id>/<table>.csv")
def experience_table(exp_id: str, table: str) -> Response:
    if table not in catalog.table_names():
        abort(404)
    view = _published(exp_id)
    return Response(experience_csv(view, table), content_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": f"attachment; filename={view.id}-{table}.csv"})


@bp.get("/feeds/experiences.atom")
def feed() -> Response:
    text = request.args.get("q", "")[:500]
    filters = {k: request.args[k][:200] for k in catalog.filter_fields() if request.args.get(k)}
    try:
        f = catalog.site_filter(text, filters)
    except CatalogError as exc:
        return Response(str(exc) + "\n", status=400, content_type="text/plain; charset=utf-8")
    _, views = catalog.packages(registry(), caller(), int_arg("limit", FEED_SIZE, 1, 500), 0,
                                sort="metadata_modified desc", f=f)
    body = atom_feed(views, registry().settings.base_url, request.url,
                     "Registre des territoires connectés : expériences nouvelles et mises à jour",
                     views[0].updated_at if views else None)
    return Response(body, content_type="application/atom+xml; charset=utf-8")


@bp.get("/sitemap.xml")
def sitemap() -> Response:
    total = len(catalog.package_list(registry(), caller(), None, 0))
    root = request.url_root.rstrip("/")
    if total > SITEMAP_SIZE:
        pages = -(-total // SITEMAP_SIZE)
        body = sitemap_index(f"{root}/sitemaps/{n}.xml" for n in range(1, pages + 1))
        return Response(body, content_type="application/xml; charset=utf-8")
    return _sitemap_page(1)


@bp.get("/sitemaps/<int:number>.xml")
def sitemap_page(number: int) -> Response:
    return _sitemap_page(number)


def _sitemap_page(number: int) -> Response:
    if number < 1:
        abort(404)
    ids = catalog.package_list(registry(), caller(), SITEMAP_SIZE, (number - 1) * SITEMAP_SIZE)
    if number > 1 and not ids:
        abort(404)
    root = request.url_root.rstrip("/")
    fixed = [(f"{root}/", catalog.last_modified(registry(), caller())), (f"{root}/opendata", None)]
    if number > 1:
        fixed = []
    body = sitemap_xml([*fixed, *((f"{root}/experiences/{i}", None) for i in ids)])
    return Response(body, content_type="application/xml; charset=utf-8")


@bp.get("/robots.txt")
def robots() -> Response:
    root = request.url_root.rstrip("/")
    text = f"User-agent: *\nAllow: /\nDisallow: /api/\nDisallow: /feeds/\nSitemap: {root}/sitemap.xml\n"
    return Response(text, content_type="text/plain; charset=utf-8")


def register(app: Flask) -> None:
    """The open-data blueprints: CKAN API, DCAT catalogue, REST API v1 and these downloads."""
    from web import ckan_api, dcat
    from web.api import v1, writes  # noqa: F401  (writes adds its routes to v1's blueprint)

    for blueprint in (ckan_api.bp, dcat.bp, v1.bp, bp):
        app.register_blueprint(blueprint)
