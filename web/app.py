"""Flask application factory: blueprints for the pages and the JSON API, on registry's action layer.

`create_app()` from the environment (a WSGI server such as gunicorn) needs REGISTRY_SECRET_KEY;
`registry serve` and `registry demo` (the development server) use a random key kept in the instance folder.
"""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Any

from babel.support import NullTranslations
from flask import Flask, Response, abort, g, request
from flask_babel import Babel, get_translations

from registry.config import load_settings
from registry.serialize.labels import facet_label, facet_title
from registry.standard import MAIN_RESOURCE, get_standard
from registry.store import Registry
from web import accounts, admin, api, errors, opendata, pages, publish
from web.i18n import LANGS

SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": "default-src 'self'; style-src 'self'; frame-ancestors 'none'; base-uri 'none'; "
                               "form-action 'self'",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
}


class MissingSecretKey(RuntimeError):
    """Production without REGISTRY_SECRET_KEY: an error, never a silent default."""


def create_app(registry: Registry | None = None, *, dev: bool = False, **settings: Any) -> Flask:
    app = Flask(__name__, instance_relative_config=False)
    reg = registry or Registry(load_settings(**settings))
    app.config["REGISTRY"] = reg
    app.config["SECRET_KEY"] = reg.settings.secret_key or _dev_key(reg.settings.home, dev)
    # Flask-Babel: French msgids in templates and code (`_("…")`), English in web/translations/en. Two
    # catalogues (domains) in the same folder: `messages` (pages, design) and `publish` (accounts, publishing,
    # admin), so that each half of the site keeps its own .po file.
    app.config.setdefault("BABEL_DEFAULT_LOCALE", "fr")
    app.config.setdefault("BABEL_DEFAULT_TIMEZONE", "Europe/Paris")
    app.config.setdefault("BABEL_TRANSLATION_DIRECTORIES", "translations;translations")
    app.config.setdefault("BABEL_DOMAIN", "messages;publish")
    Babel(app, locale_selector=_locale)
    # the templates' `_()` with the request's catalogue looked up once (Flask-Babel's looks it up on every call:
    # a fifth of a record page's CPU, 63 calls a page)
    app.jinja_env.install_gettext_callables(
        gettext=lambda s: _catalogue().ugettext(s), ngettext=lambda s, p, n: _catalogue().ungettext(s, p, n),
        pgettext=lambda c, s: _catalogue().upgettext(c, s),
        npgettext=lambda c, s, p, n: _catalogue().unpgettext(c, s, p, n), newstyle=True)
    app.register_blueprint(pages.bp)
    app.register_blueprint(api.bp)
    opendata.register(app)  # CKAN API, DCAT, REST v1, downloads (web/opendata)
    accounts.register(app)  # accounts, sessions, CSRF, login rate limit (web/accounts)
    app.register_blueprint(publish.bp)
    app.register_blueprint(admin.bp)
    errors.register(app)
    app.before_request(_no_nul_in_path)
    app.before_request(_lang)
    app.after_request(_headers)
    app.jinja_env.filters["with_value"] = _with_value
    app.jinja_env.filters["without_value"] = _without_value
    app.context_processor(_template_helpers)
    return app


def _dev_key(home: Path, dev: bool) -> str:
    if not dev:
        raise MissingSecretKey(
            "REGISTRY_SECRET_KEY manquante : en production, donnez une clé secrète longue et aléatoire "
            "(par exemple `python3 -c 'import secrets; print(secrets.token_hex(32))'`) dans REGISTRY_SECRET_KEY "
            "ou dans registry.toml (secret_key). / REGISTRY_SECRET_KEY is missing.")
    path = home / "secret_key"
    if not path.exists():
        home.mkdir(parents=True, exist_ok=True)
        path.touch(mode=0o600)
        path.write_text(secrets.token_hex(32), encoding="ascii")
    return path.read_text(encoding="ascii").strip()


def _no_nul_in_path() -> None:
    """A NUL character in the path: nothing the registry holds is named so (PostgreSQL refuses one in a text, which
    made every record route a 500 there), so a 404, as for any other name that is not there."""
    if "\x00" in request.path:
        abort(404)


def _lang() -> None:
    """The language of this request: ?lang=, then the cookie, then the browser's Accept-Language, else French."""
    for wanted in (request.args.get("lang"), request.cookies.get("lang")):
        if wanted in LANGS:
            g.lang = wanted
            return
    g.lang = request.accept_languages.best_match(LANGS) or "fr"


def _catalogue() -> NullTranslations:
    """This request's translations (Flask-Babel's, kept on `g` for the rest of the request)."""
    found = g.get("_catalogue")
    if found is None:
        found = g._catalogue = get_translations()
    return found


def _locale() -> str:
    """Flask-Babel's locale selector: the language chosen by `_lang` (same order everywhere)."""
    if "lang" not in g:
        _lang()
    return str(g.lang)


def _headers(resp: Response) -> Response:
    if request.args.get("lang") in LANGS:
        resp.set_cookie("lang", request.args["lang"], max_age=3600 * 24 * 365, samesite="Lax")
    for name, value in SECURITY_HEADERS.items():
        resp.headers.setdefault(name, value)
    return resp


def _with_value(filters: dict[str, tuple[str, ...]], name: str, value: str) -> dict[str, list[str]]:
    """The URL parameters of a search with one more value for a facet (OR within a facet)."""
    return {**{k: list(v) for k, v in filters.items()}, name: [*filters.get(name, ()), value]}


def _without_value(filters: dict[str, tuple[str, ...]], name: str, value: str) -> dict[str, list[str]]:
    out = {k: list(v) for k, v in filters.items()}
    out[name] = [v for v in out.get(name, []) if v != value]
    return {k: v for k, v in out.items() if v}


SORT_LABELS = {"pertinence": ("pertinence", "relevance"), "date_maj": ("dernière mise à jour", "last update"),
               "date_debut": ("date de début", "start date"), "cout": ("coût", "cost")}


def _template_helpers() -> dict[str, Any]:
    """What every template may use; a field's `label` and `title` are template globals (web/pages/values.py)."""
    lang = g.get("lang", "fr")
    return {"std": get_standard(), "lang": lang, "MAIN": MAIN_RESOURCE,
            "facet_title": lambda name: facet_title(name, lang),
            "facet_label": lambda name, code: facet_label(name, code, lang),
            "sort_label": lambda s: SORT_LABELS[s][lang == "en"]}
