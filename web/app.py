"""Flask application factory. Every page has a JSON twin fed by the same registry view function."""

from __future__ import annotations

from typing import Any

from flask import Flask, Response, abort, g, jsonify, render_template, request

from registry import search
from registry.config import load_settings
from registry.queries import NotFound, get_experience, history, list_experiences
from registry.standard import MAIN_RESOURCE, get_standard
from registry.store import Registry
from registry.views import experience_json, revision_json

PAGE_SIZE = 25
LANGS = ("fr", "en")


def create_app(registry: Registry | None = None, **settings: Any) -> Flask:
    app = Flask(__name__, instance_relative_config=False)
    reg = registry or Registry(load_settings(**settings))
    app.config["REGISTRY"] = reg
    app.config["SECRET_KEY"] = reg.settings.secret_key or "dev-only-not-secret"
    std = get_standard()

    @app.before_request
    def _lang() -> None:
        wanted = request.args.get("lang") or request.cookies.get("lang") or "fr"
        g.lang = wanted if wanted in LANGS else "fr"

    @app.after_request
    def _headers(resp: Response) -> Response:
        if "lang" in request.args and request.args["lang"] in LANGS:
            resp.set_cookie("lang", request.args["lang"], max_age=3600 * 24 * 365, samesite="Lax")
        resp.headers.setdefault("X-Content-Type-Options", "nosniff")
        resp.headers.setdefault("Content-Security-Policy", "default-src 'self'; style-src 'self'")
        return resp

    app.jinja_env.filters["dict_with"] = lambda d, k, v: {**d, k: v}
    app.jinja_env.filters["dict_without"] = lambda d, k: {x: y for x, y in d.items() if x != k}

    @app.context_processor
    def _helpers() -> dict[str, Any]:
        def label(table: str, field: str, code: str) -> str:
            spec = std.table(table).by_name[field]
            if spec.is_list:
                return ", ".join(spec.label(c, g.lang) for c in code.split(spec.list_separator or "|") if c)
            return spec.label(code, g.lang) if spec.codes else code

        def title(table: str, field: str) -> str:
            return std.table(table).by_name[field].heading(g.lang)

        return {"std": std, "label": label, "title": title, "lang": g.lang, "MAIN": MAIN_RESOURCE}

    facets = search.facet_fields(std)

    def _search() -> tuple[str, dict[str, str], int, search.Results]:
        text = request.args.get("q", "")[:500]
        filters = {k: request.args[k] for k in facets if request.args.get(k)}
        page = max(request.args.get("page", 1, type=int) or 1, 1)
        search.sync(reg)
        return text, filters, page, search.search(reg, text, filters, PAGE_SIZE, (page - 1) * PAGE_SIZE)

    @app.get("/")
    def index() -> str:
        text, filters, page, results = _search()
        return render_template("index.html", q=text, filters=filters, results=results, page=page, size=PAGE_SIZE,
                               facets=facets)

    @app.get("/api/search")
    def api_search() -> Response:
        text, filters, page, results = _search()
        return jsonify({"q": text, "filters": filters, "page": page, "count": results.total,
                        "results": [h.__dict__ for h in results.hits], "facets": results.facets})

    @app.get("/api/experiences")
    def api_list() -> Response:
        limit = min(max(request.args.get("limit", 50, type=int) or 50, 1), 500)
        offset = max(request.args.get("offset", 0, type=int) or 0, 0)
        total, items = list_experiences(reg, limit, offset)
        return jsonify({"count": total, "offset": offset, "results": [i.__dict__ for i in items]})

    def _view(exp_id: str) -> Any:
        try:
            return get_experience(reg, exp_id)
        except NotFound:
            abort(404)

    @app.get("/experiences/<exp_id>")
    def experience(exp_id: str) -> Any:
        view = _view(exp_id)
        if request.accept_mimetypes.best == "application/json":
            return jsonify(experience_json(view))
        return render_template("experience.html", view=view, data=experience_json(view),
                               revisions=history(reg, exp_id))

    @app.get("/api/experiences/<exp_id>")
    def api_experience(exp_id: str) -> Response:
        return jsonify(experience_json(_view(exp_id)))

    @app.get("/api/experiences/<exp_id>/revisions")
    def api_revisions(exp_id: str) -> Response:
        _view(exp_id)
        return jsonify([revision_json(r) for r in history(reg, exp_id)])

    @app.get("/healthz")
    def healthz() -> Response:
        return jsonify({"status": "ok", "schema_current": reg.schema_is_current()})

    @app.errorhandler(404)
    def not_found(_err: Exception) -> tuple[str, int]:
        return render_template("404.html"), 404

    return app
