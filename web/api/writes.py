"""REST API v1, writes: publishers' programs create, update, withdraw and upload with an API token.

`Authorization: Bearer rtc_…` (a token of one organisation, made on the account page or with
`registry token create`). Every write goes through registry's actions (the one write path, its validator and
its history); a token only writes its own organisation's experiences. `?dry_run=true` checks without storing.
Writes are rate-limited per token (`api_write_rate_limit`). Routes are added to the v1 blueprint, so its
JSON errors apply.
"""

from __future__ import annotations

import re
import time
from typing import Any

from flask import Response, current_app, g, jsonify, request, url_for
from flask_limiter import RateLimitExceeded
from flask_limiter.util import get_remote_address

from registry.actions import Caller, Forbidden, submissions, tokens
from registry.actions import experiences as exp_actions
from registry.actions.submissions import InvalidDocument, InvalidProvenance, WithdrawError, WriteConflict, WriteResult
from registry.queries import NotFound
from web.accounts import limiter
from web.api.v1 import ID, V1Error, bp, error_response
from web.context import registry

IF_MATCH = re.compile(r'^\s*(?:W/)?"r([0-9]{1,9})"\s*$')
MAX_REASON = 2000


def _limit_key() -> str:
    """One bucket per token (by its digest), else per address, in the registry's database (`web/ratelimit.py`):
    the same for every server process."""
    scheme, _, secret = request.headers.get("Authorization", "").partition(" ")
    return f"t:{tokens.digest(secret.strip())[:32]}" if scheme.lower() == "bearer" else f"a:{get_remote_address()}"


def _write_limit() -> str:
    return str(current_app.config.get("API_WRITE_RATE_LIMIT") or registry().settings.api_write_rate_limit)


write_limit = limiter.shared_limit(_write_limit, scope="api-write", key_func=_limit_key)


@bp.errorhandler(RateLimitExceeded)
def _rate_limited(exc: RateLimitExceeded) -> Response:
    limit = limiter.current_limit
    wait = max(1, int(limit.reset_at - time.time())) if limit is not None else 60
    resp = error_response(429, "rate_limited", f"{exc.description} — réessayez dans {wait} s / retry in {wait} s.")
    resp.headers["Retry-After"] = str(wait)
    return resp


@bp.errorhandler(Forbidden)
def _forbidden(exc: Forbidden) -> Response:
    return error_response(403, "forbidden", str(exc))


@bp.errorhandler(InvalidDocument)
@bp.errorhandler(InvalidProvenance)
@bp.errorhandler(WithdrawError)
def _unprocessable(exc: ValueError) -> Response:
    code = "invalid_document" if isinstance(exc, InvalidDocument) else "bad_request"
    return error_response(400 if code == "bad_request" else 422, code, str(exc))


@bp.errorhandler(WriteConflict)
def _conflict(exc: WriteConflict) -> Response:
    status = 412 if exc.code == "revision_mismatch" else 409
    resp = error_response(status, exc.code, str(exc))
    if exc.current_revision is not None:
        resp.headers["ETag"] = f'"r{exc.current_revision}"'
    return resp


def writer() -> Caller:
    """The Caller of a write: a valid, unrevoked API token, or a 401 that says which is wrong."""
    header = request.headers.get("Authorization", "")
    if not header:
        raise V1Error(401, "unauthorized", "En-tête « Authorization: Bearer <jeton> » manquant / missing.")
    scheme, _, secret = header.partition(" ")
    found = tokens.authenticate(registry(), secret.strip()) if scheme.lower() == "bearer" else None
    if found is None:
        raise V1Error(401, "invalid_token", "Jeton inconnu, mal formé ou révoqué / unknown, malformed or revoked.")
    return found


def _dry_run() -> bool:
    raw = request.args.get("dry_run", "false").lower()
    if raw not in ("true", "false", "1", "0"):
        raise V1Error(400, "bad_request", "« dry_run » : true ou false / true or false.")
    return raw in ("true", "1")


def _json_body() -> Any:
    request.max_content_length = registry().settings.max_upload_bytes
    if not request.is_json:
        raise V1Error(415, "unsupported_media_type", "Corps attendu en application/json / JSON body expected.")
    try:
        data = request.get_json(silent=True)
    except RecursionError:  # nested thousands of levels deep
        data = None
    if data is None:
        raise V1Error(400, "bad_request", "Corps JSON illisible (UTF-8 et JSON valides attendus) / unreadable JSON.")
    return data


def _expected_revision() -> int | None:
    raw = request.headers.get("If-Match")
    if raw is None or raw.strip() == "*":
        return None
    found = IF_MATCH.match(raw)
    if found is None:
        raise V1Error(400, "bad_request", 'If-Match : "r<révision>" (l\'ETag de la lecture) / the ETag read.')
    return int(found.group(1))


def _comment(value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise V1Error(400, "bad_request", "« comment » : un texte / a string.")
    return value or None


def _answer(result: WriteResult, created: bool = False) -> Response:
    lang = g.get("lang", "fr")
    items = [{"id": o.id, "action": o.action, "revision": o.revision,
              "url": url_for("api_v1.experience", exp_id=o.id, _external=True)} for o in result.outcomes]
    body: dict[str, Any] = {"dry_run": result.dry_run, "valid": result.accepted,
                            "experience_ids": result.experience_ids, "outcomes": items,
                            "report": result.report.to_dict(lang)}
    if not result.accepted:
        return error_response(422, "invalid_record", f"{result.report.count()} erreur(s) / error(s) : voir « report ».",
                              **body)
    resp = jsonify(body)
    if created and items and items[0]["action"] == "created":
        resp.status_code = 201
        resp.headers["Location"] = items[0]["url"]
    return resp


def _record_write(mode: submissions.Mode, exp_id: str | None = None) -> Response:
    caller = writer()
    doc = _json_body()
    comment = _comment(request.args.get("comment"))
    if exp_id is not None and not ID.match(exp_id):
        raise V1Error(404, "not_found")
    result = submissions.write_record(registry(), caller, doc, mode, exp_id, _expected_revision(), _dry_run(),
                                      comment)
    return _answer(result, created=mode == "create")


@bp.post("/api/v1/experiences")
@write_limit
def create() -> Response:
    return _record_write("create")


@bp.put("/api/v1/experiences/<exp_id>")
@write_limit
def replace(exp_id: str) -> Response:
    return _record_write("replace", exp_id)


@bp.patch("/api/v1/experiences/<exp_id>")
@write_limit
def merge(exp_id: str) -> Response:
    return _record_write("merge", exp_id)


@bp.post("/api/v1/experiences/<exp_id>/withdraw")
@write_limit
def withdraw(exp_id: str) -> Response:
    caller = writer()
    doc = _json_body()
    if not ID.match(exp_id):
        raise V1Error(404, "not_found")
    reason = doc.get("reason") if isinstance(doc, dict) else None
    if not isinstance(reason, str) or len(reason) > MAX_REASON:
        raise V1Error(400, "bad_request", f"« reason » : la raison du retrait, un texte de 10 à {MAX_REASON} "
                                          f"caractères / the reason, 10 to {MAX_REASON} characters.")
    try:
        view = exp_actions.get(registry(), caller, exp_id)
    except NotFound:
        raise V1Error(404, "not_found") from None
    if not view.published:
        raise V1Error(409, "already_withdrawn")
    if _dry_run():
        raise V1Error(400, "bad_request", "« dry_run » n'existe pas pour un retrait / not for a withdrawal.")
    out = exp_actions.withdraw(registry(), caller, exp_id, reason)
    return jsonify({"id": out.id, "action": out.action, "revision": out.revision, "reason": reason.strip()})


@bp.post("/api/v1/uploads")
@write_limit
def upload() -> Response:
    caller = writer()
    request.max_content_length = registry().settings.max_upload_bytes + 64 * 1024  # the form's own bytes
    if not request.mimetype == "multipart/form-data":
        raise V1Error(415, "unsupported_media_type", "Envoi attendu en multipart/form-data, fichier dans « file » "
                                                     "/ multipart/form-data expected, the file in « file ».")
    file = request.files.get("file")
    if file is None or not file.filename:
        raise V1Error(400, "bad_request", "Champ « file » manquant / missing « file » field.")
    data = file.read(registry().settings.max_upload_bytes + 1)
    name = re.sub(r"[^\w.\- ]", "_", file.filename.rsplit("/", 1)[-1])[:200] or "fichier"
    result = submissions.write_file(registry(), caller, data, name, _dry_run(),
                                    _comment(request.form.get("comment")))
    return _answer(result, created=True)


@bp.get("/api/v1/token")
def token_info() -> dict[str, Any]:
    """What the token in the request may do: the client's check before it writes."""
    caller = writer()
    return {"organisations": sorted(caller.organisations), "actor": caller.actor,
            "rate_limit": _write_limit()}
