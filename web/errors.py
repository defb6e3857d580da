"""Errors: an HTML page for people, a JSON body for the API (never an HTML page under /api/)."""

from __future__ import annotations

from flask import Flask, render_template, request
from werkzeug.exceptions import HTTPException

from registry.actions import Forbidden
from registry.actions.experiences import InvalidRequest
from registry.actions.index import InvalidSearch
from web.i18n import tr

MESSAGES = {
    400: ("Requête invalide.", "Bad request."),
    403: ("Accès refusé.", "Forbidden."),
    404: ("Page introuvable.", "Not found."),
    405: ("Méthode non autorisée.", "Method not allowed."),
    500: ("Erreur interne du registre.", "Internal error."),
}


def _wants_json() -> bool:
    return request.path.startswith("/api/") or request.accept_mimetypes.best == "application/json"


def _answer(status: int, message: str | None = None) -> tuple[object, int]:
    fr, en = MESSAGES.get(status, MESSAGES[500])
    text = message or tr(fr, en)
    if _wants_json():  # the REST API's error shape: a stable code, French and English
        from web.api.v1 import HTTP_CODES

        return {"error": {"code": HTTP_CODES.get(status, "internal"), "status": status, "message": text,
                          "message_en": en, "detail": None}}, status
    return render_template("error.html", status=status, message=text), status


def register(app: Flask) -> None:
    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException) -> object:
        if request.path.startswith("/api/v1/"):  # not routed to the v1 blueprint (an unknown URL): its errors
            from web.api.v1 import http_error as v1_error

            return v1_error(exc)
        body, status = _answer(exc.code or 500)
        # keep what HTTP requires of the answer (the Allow of a 405, the Retry-After of a 429/503)
        kept = {k: v for k, v in exc.get_headers() if k in ("Allow", "Retry-After", "WWW-Authenticate")}
        return body, status, kept

    @app.errorhandler(InvalidRequest)
    @app.errorhandler(InvalidSearch)
    def invalid(exc: ValueError) -> tuple[object, int]:
        return _answer(400, str(exc))

    @app.errorhandler(Forbidden)
    def forbidden(exc: Forbidden) -> tuple[object, int]:
        return _answer(403, str(exc))

    @app.errorhandler(Exception)
    def internal(exc: Exception) -> tuple[object, int]:
        """A bug: logged with its traceback, answered in French (never Flask's English default page)."""
        if isinstance(exc, HTTPException):
            return _answer(exc.code or 500)
        app.logger.exception("erreur interne sur %s", request.path)
        return _answer(500)
