"""The write endpoints' share of the OpenAPI document (web/api/writes.py): security, bodies, answers."""

from __future__ import annotations

from typing import Any

from web.api.v1 import _json, _path_id, _ref
from web.api.writes import MAX_REASON

TEXT = {400: "Paramètre ou corps invalide / bad request", 401: "Jeton manquant ou invalide / missing or bad token",
        403: "Jeton d'une autre organisation / another organisation's token", 404: "Introuvable / not found",
        409: "Existe déjà, ou déjà retirée / already exists or already withdrawn",
        412: "Révision changée depuis la lecture (If-Match) / changed since read",
        413: "Trop volumineux / too large", 415: "Type de contenu / content type",
        422: "Refusé par le validateur, avec son rapport / refused by the validator, with its report",
        429: "Trop d'écritures (Retry-After) / too many writes"}
SECURITY = [{"jeton": []}]


def _errors(*codes: int) -> dict[str, Any]:
    out = {str(c): _json(_ref("Error"), TEXT[c]) for c in codes}
    if 429 in codes:
        out["429"]["headers"] = {"Retry-After": {"schema": {"type": "integer"}, "description": "Secondes / seconds"}}
    return out


def _query(name: str, schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": False, "schema": schema, "description": description}


DRY_RUN = _query("dry_run", {"type": "string", "enum": ["true", "false", "1", "0"], "default": "false"},
                 "Vérifier sans enregistrer / validate without storing")
COMMENT = _query("comment", {"type": "string", "maxLength": 2000}, "Commentaire de révision / revision comment")
IF_MATCH = {"name": "If-Match", "in": "header", "required": False, "schema": {"type": "string", "example": '"r3"'},
            "description": "L'ETag de la lecture : refusé (412) si l'expérience a changé depuis / the ETag read"}
RECORD_BODY = {"required": True, "content": {"application/json": {"schema": _ref("Record")}},
               "description": "L'expérience : la forme de « record » dans la lecture, ou ses champs avec ses tableaux "
                              "enfants / the record as read, or nested"}


def schemas() -> dict[str, Any]:
    outcome = {"type": "object", "required": ["id", "action", "revision", "url"],
               "properties": {"id": {"type": "string"}, "revision": {"type": "integer"},
                              "action": {"type": "string", "enum": ["created", "updated", "unchanged", "restored"]},
                              "url": {"type": "string", "format": "uri"}}}
    return {
        "Record": {"type": "object", "description": "Champs du standard (voir /standard) / fields of the standard",
                   "additionalProperties": True},
        "WriteResult": {"type": "object", "required": ["dry_run", "valid", "experience_ids", "outcomes", "report"],
                        "properties": {"dry_run": {"type": "boolean"}, "valid": {"type": "boolean"},
                                       "experience_ids": {"type": "array", "items": {"type": "string"}},
                                       "outcomes": {"type": "array", "items": outcome},
                                       "report": {"type": "object"}}},
    }


def security_schemes() -> dict[str, Any]:
    return {"jeton": {"type": "http", "scheme": "bearer",
                      "description": "Jeton d'API d'une organisation (compte → Jetons d'API, ou `registry token "
                                     "create`) / an organisation's API token"}}


def paths() -> dict[str, dict[str, Any]]:
    result = _json(_ref("WriteResult"), "Enregistré, inchangé, ou vérifié (dry_run) / stored or checked")
    created = _json(_ref("WriteResult"), "Créée / created")
    created["headers"] = {"Location": {"schema": {"type": "string"}, "description": "Son adresse / its URL"}}
    write = {"security": SECURITY, "parameters": [DRY_RUN, COMMENT], "requestBody": RECORD_BODY}
    return {
        "/api/v1/experiences": {"post": {
            **write, "operationId": "create", "summary": "Créer une expérience / create",
            "responses": {"201": created, "200": result, **_errors(400, 401, 403, 409, 413, 415, 422, 429)}}},
        "/api/v1/experiences/{exp_id}": {
            method: {**write, "operationId": op, "summary": summary,
                     "parameters": [_path_id(), IF_MATCH, DRY_RUN, COMMENT],
                     "responses": {"200": result, **_errors(400, 401, 403, 404, 412, 413, 415, 422, 429)}}
            for method, op, summary in (
                ("put", "replace", "Remplacer : un champ absent est vidé / replace: what is left out is emptied"),
                ("patch", "merge", "Fusionner : un champ absent est gardé / merge: what is left out is kept"))},
        "/api/v1/experiences/{exp_id}/withdraw": {"post": {
            "security": SECURITY, "operationId": "withdraw", "summary": "Retirer (l'historique reste) / withdraw",
            "parameters": [_path_id()],
            "requestBody": {"required": True, "content": {"application/json": {"schema": {
                "type": "object", "required": ["reason"],
                "properties": {"reason": {"type": "string", "minLength": 10, "maxLength": MAX_REASON}}}}}},
            "responses": {"200": _json({"type": "object", "required": ["id", "action", "revision", "reason"],
                                        "properties": {"id": {"type": "string"}, "action": {"type": "string"},
                                                       "revision": {"type": "integer"},
                                                       "reason": {"type": "string"}}}, "Retirée / withdrawn"),
                          **_errors(400, 401, 403, 404, 409, 413, 415, 429)}}},
        "/api/v1/uploads": {"post": {
            "security": SECURITY, "operationId": "upload",
            "summary": "Déposer un fichier CSV, XLSX, JSON ou un Data Package zippé / upload a file",
            "parameters": [DRY_RUN],
            "requestBody": {"required": True, "content": {"multipart/form-data": {"schema": {
                "type": "object", "required": ["file"],
                "properties": {"file": {"type": "string", "format": "binary"},
                               "comment": {"type": "string", "maxLength": 2000}}}}}},
            "responses": {"201": created, "200": result, **_errors(400, 401, 403, 413, 415, 422, 429)}}},
        "/api/v1/token": {"get": {
            "security": SECURITY, "operationId": "token", "summary": "Ce que peut le jeton / what the token may do",
            "responses": {"200": _json({"type": "object", "required": ["organisations", "actor", "rate_limit"],
                                        "properties": {"organisations": {"type": "array",
                                                                         "items": {"type": "string"}},
                                                       "actor": {"type": "string"},
                                                       "rate_limit": {"type": "string"}}}, "Le jeton / the token"),
                          **_errors(401)}}},
    }
