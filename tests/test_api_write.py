"""REST API v1, writes: API tokens (hashed, shown once, revocable, one organisation each), create / replace /
merge / withdraw / upload through the one write path, If-Match, dry runs, rate limits, and every bad input
answered with a JSON error while nothing stored changes. On SQLite and PostgreSQL."""

from __future__ import annotations

import hashlib
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from registry.accounts_db import ApiToken
from registry.actions import Caller, accounts, experiences, tokens
from registry.standard import get_standard
from registry.store import Registry
from tests.helpers import children, csv_bytes, example, example_rows, write_package

PARIS, LYON, NEW = "217500016-2023-001", "216901231-2021-001", "212000046-2022-001"


@dataclass
class Api:
    reg: Registry
    app: Flask
    web: FlaskClient
    secrets: dict[str, str]  # SIREN -> token

    def auth(self, siren: str, **headers: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.secrets[siren]}", **headers}

    def revision(self, exp_id: str) -> int:
        return experiences.get(self.reg, Caller.operator(), exp_id).revision


def nested(exp_id: str) -> dict[str, Any]:
    """An experience as the API takes it nested: its fields, its child rows under the tables' names."""
    return {**example(exp_id), **{t.name: children(t.name, exp_id) for t in get_standard().children}}


@pytest.fixture
def api(registry: Registry, tmp_path: Path) -> Iterator[Api]:
    from web.app import create_app

    tables = {t: [r for r in example_rows(t) if r["id_experience"] != NEW] for t in get_standard().tables}
    assert experiences.publish_file(registry, Caller.operator(), write_package(tmp_path / "pkg", tables)).accepted
    secrets = {s: tokens.create(registry, Caller.operator(), s, f"robot {s}").secret
               for s in ("217500016", "216901231", "212000046")}
    app = create_app(registry, dev=True)
    yield Api(registry, app, app.test_client(), secrets)


def read(api: Api, exp_id: str) -> dict[str, Any]:
    answer = api.web.get(f"/api/v1/experiences/{exp_id}")
    assert answer.status_code == 200
    return answer.get_json()


# --- tokens ---------------------------------------------------------------------------------------------------

def test_a_token_is_stored_hashed_shown_once_and_revocable(api: Api) -> None:
    new = tokens.create(api.reg, Caller.operator(), "217500016", "export nocturne")
    assert new.secret.startswith("rtc_") and len(new.secret) > 40
    with api.reg.session() as s:
        row = s.scalars(select(ApiToken).where(ApiToken.id == new.view.id)).one()
        assert row.token_hash == hashlib.sha256(new.secret.encode()).hexdigest()
        assert new.secret not in json.dumps([str(getattr(row, c.key)) for c in ApiToken.__table__.columns])
    listed = tokens.list_tokens(api.reg, Caller.operator(), "217500016")
    assert [t.name for t in listed] == ["robot 217500016", "export nocturne"]
    assert new.secret not in repr(listed)
    headers = {"Authorization": f"Bearer {new.secret}"}
    me = api.web.get("/api/v1/token", headers=headers).get_json()
    assert me["organisations"] == ["217500016"] and "export nocturne" in me["actor"]
    tokens.revoke(api.reg, Caller.operator(), new.view.id)
    refused = api.web.get("/api/v1/token", headers=headers)
    assert refused.status_code == 401 and refused.get_json()["error"]["code"] == "invalid_token"
    assert 'error="invalid_token"' in refused.headers["WWW-Authenticate"]
    assert not tokens.list_tokens(api.reg, Caller.operator(), "217500016")[1].active


@pytest.mark.parametrize("header", [None, "Bearer", "Bearer rtc_nope", "Basic dXNlcjpwYXNz", "Bearer " + "x" * 5000,
                                    "Bearer rtc_\u00e9\u00e9"])
def test_writes_without_a_valid_token_are_refused_and_change_nothing(api: Api, header: str | None) -> None:
    before = read(api, PARIS)
    headers = {"Authorization": header} if header else {}
    doc = {**nested(PARIS), "intitule": "Pirate"}
    for answer in (api.web.put(f"/api/v1/experiences/{PARIS}", json=doc, headers=headers),
                   api.web.patch(f"/api/v1/experiences/{PARIS}", json={"intitule": "Pirate"}, headers=headers),
                   api.web.post("/api/v1/experiences", json=nested(NEW), headers=headers),
                   api.web.post(f"/api/v1/experiences/{PARIS}/withdraw", json={"reason": "x" * 20}, headers=headers),
                   api.web.post("/api/v1/uploads", data={"file": (io.BytesIO(b"a,b\n"), "f.csv")}, headers=headers)):
        assert answer.status_code == 401, answer.data
        error = answer.get_json()["error"]
        assert error["code"] == ("unauthorized" if header is None else "invalid_token")
        assert error["message"] and error["message_en"] and answer.headers["WWW-Authenticate"].startswith("Bearer")
    assert read(api, PARIS) == before
    assert api.web.get(f"/api/v1/experiences/{NEW}").status_code == 404


def test_a_token_writes_only_for_its_own_organisation(api: Api) -> None:
    lyon_token = api.auth("216901231")
    for answer in (api.web.patch(f"/api/v1/experiences/{PARIS}", json={"intitule": "Pirate"}, headers=lyon_token),
                   api.web.post(f"/api/v1/experiences/{PARIS}/withdraw", json={"reason": "retrait par un tiers"},
                                headers=lyon_token),
                   api.web.post("/api/v1/experiences", json=nested(NEW), headers=lyon_token),
                   api.web.post("/api/v1/uploads", headers=lyon_token,
                                data={"file": (io.BytesIO(csv_bytes([{**example(PARIS), "intitule": "P"}])),
                                               "paris.csv")})):
        assert answer.status_code == 403, answer.data
        error = answer.get_json()["error"]
        assert error["code"] == "forbidden" and ("217500016" in error["detail"] or "212000046" in error["detail"])
    assert api.revision(PARIS) == 1 and read(api, PARIS)["status"] == "published"
    # nor move one of its own experiences to another organisation
    moved = {"siren_porteur": "217500016", "nom_porteur": example(PARIS)["nom_porteur"],
             "type_porteur": example(PARIS)["type_porteur"]}
    answer = api.web.patch(f"/api/v1/experiences/{LYON}", json=moved, headers=lyon_token)
    assert answer.status_code in (403, 422) and read(api, LYON)["revision"] == 1


# --- the writes -----------------------------------------------------------------------------------------------

def test_create_then_read_it_back_with_its_history(api: Api) -> None:
    answer = api.web.post("/api/v1/experiences?comment=Premier%20d%C3%A9p%C3%B4t", json=nested(NEW),
                          headers=api.auth("212000046"))
    assert answer.status_code == 201, answer.get_json()
    body = answer.get_json()
    assert body["valid"] and [(o["id"], o["action"], o["revision"]) for o in body["outcomes"]] == [(NEW, "created", 1)]
    assert answer.headers["Location"].endswith(f"/api/v1/experiences/{NEW}")
    stored = read(api, NEW)
    assert stored["record"]["experiences"]["intitule"] == example(NEW)["intitule"]
    assert len(stored["record"]["documents"]) == len(children("documents", NEW))
    history = api.web.get(f"/api/v1/experiences/{NEW}/revisions").get_json()
    assert history[0]["channel"] == "api" and history[0]["comment"] == "Premier dépôt"
    assert history[0]["actor"].startswith("jeton rtc_") and "robot 212000046" in history[0]["actor"]
    again = api.web.post("/api/v1/experiences", json=nested(NEW), headers=api.auth("212000046"))
    assert again.status_code == 409 and again.get_json()["error"]["code"] == "already_exists"


def test_put_replaces_and_patch_merges(api: Api) -> None:
    token = api.auth("217500016")
    record = read(api, PARIS)["record"]
    assert record["indicateurs"] and record["acteurs"]
    # the record as read, changed and sent back whole: a child table left out is emptied
    sent = {k: v for k, v in record.items() if k != "acteurs"}
    sent["experiences"] = {**record["experiences"], "intitule": "Capteurs, bilan final"}
    answer = api.web.put(f"/api/v1/experiences/{PARIS}", json=sent, headers=token)
    assert answer.status_code == 200 and answer.get_json()["outcomes"][0]["action"] == "updated"
    after = read(api, PARIS)["record"]
    assert after["experiences"]["intitule"] == "Capteurs, bilan final" and after["acteurs"] == []
    assert after["indicateurs"] == record["indicateurs"]
    # PATCH: fields and tables left out are kept; a table sent empty is emptied
    revised = "Résumé revu après la fin de l'essai."
    answer = api.web.patch(f"/api/v1/experiences/{PARIS}", json={"resume": revised, "documents": []}, headers=token)
    assert answer.status_code == 200, answer.get_json()
    after = read(api, PARIS)["record"]
    assert after["experiences"]["resume"] == revised and after["experiences"]["intitule"] == "Capteurs, bilan final"
    assert after["documents"] == [] and after["indicateurs"] == record["indicateurs"]
    assert api.revision(PARIS) == 3
    # sending the same again changes nothing: no new revision
    same = api.web.patch(f"/api/v1/experiences/{PARIS}", json={"resume": "Résumé revu après la fin de l'essai."},
                     headers=token)
    assert same.get_json()["outcomes"][0]["action"] == "unchanged" and api.revision(PARIS) == 3


def test_if_match_refuses_a_write_on_a_stale_revision(api: Api) -> None:
    token = api.auth("217500016")
    etag = api.web.get(f"/api/v1/experiences/{PARIS}").headers["ETag"]
    assert etag == '"r1"'
    first = api.web.patch(f"/api/v1/experiences/{PARIS}", json={"resume": "Première version du résumé."},
                          headers={**token, "If-Match": etag})
    assert first.status_code == 200
    stale = api.web.patch(f"/api/v1/experiences/{PARIS}", json={"resume": "Deuxième version du résumé."},
                         headers={**token, "If-Match": etag})
    assert stale.status_code == 412 and stale.get_json()["error"]["code"] == "revision_mismatch"
    assert stale.headers["ETag"] == '"r2"' and read(api, PARIS)["record"]["experiences"]["resume"] == \
        "Première version du résumé."
    bad = api.web.patch(f"/api/v1/experiences/{PARIS}", json={"resume": "Deuxième version du résumé."},
                       headers={**token, "If-Match": "r2"})
    assert bad.status_code == 400


def test_if_match_holds_against_a_write_landing_during_the_request(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    """Two programs with the same ETag: the second is refused even when the first commits after the second's
    early check, while its record is being validated (the revision is checked again under the row lock)."""
    from registry.actions import submissions

    token = api.auth("217500016")
    etag = api.web.get(f"/api/v1/experiences/{PARIS}").headers["ETag"]
    inner = submissions.validate_tables

    def racing(*args: Any, **kwargs: Any) -> Any:
        monkeypatch.setattr(submissions, "validate_tables", inner)  # the other program's write: once
        other = api.web.patch(f"/api/v1/experiences/{PARIS}", json={"resume": "Écrit par un autre programme."},
                              headers=token)
        assert other.status_code == 200
        return inner(*args, **kwargs)

    monkeypatch.setattr(submissions, "validate_tables", racing)
    late = api.web.patch(f"/api/v1/experiences/{PARIS}", json={"resume": "Écrit sur la révision lue avant."},
                         headers={**token, "If-Match": etag})
    assert late.status_code == 412 and late.get_json()["error"]["code"] == "revision_mismatch"
    assert late.headers["ETag"] == '"r2"' and api.revision(PARIS) == 2
    assert read(api, PARIS)["record"]["experiences"]["resume"] == "Écrit par un autre programme."


def test_an_invalid_record_is_refused_whole_with_the_validators_report(api: Api) -> None:
    before = read(api, PARIS)
    doc = {"date_debut": "31/02/2023", "statut": "fini", "indicateurs": [{"nom": ""}]}
    answer = api.web.patch(f"/api/v1/experiences/{PARIS}", json=doc, headers=api.auth("217500016"))
    assert answer.status_code == 422
    body = answer.get_json()
    assert body["error"]["code"] == "invalid_record" and not body["valid"] and body["outcomes"] == []
    fields = {(i.get("resource"), i.get("field")) for i in body["report"]["issues"]}
    assert ("experiences", "date_debut") in fields and ("experiences", "statut") in fields
    assert all(i["message"] for i in body["report"]["issues"])
    assert read(api, PARIS) == before


def test_a_dry_run_checks_and_stores_nothing(api: Api) -> None:
    answer = api.web.post("/api/v1/experiences?dry_run=true", json=nested(NEW), headers=api.auth("212000046"))
    assert answer.status_code == 200 and answer.get_json()["valid"] and answer.get_json()["dry_run"]
    assert answer.get_json()["experience_ids"] == [NEW] and answer.get_json()["outcomes"] == []
    assert api.web.get(f"/api/v1/experiences/{NEW}").status_code == 404
    refused = api.web.post("/api/v1/experiences?dry_run=true", json=nested(NEW), headers=api.auth("217500016"))
    assert refused.status_code == 403  # the rights are checked in a dry run too


def test_withdraw_keeps_the_history(api: Api) -> None:
    token = api.auth("216901231")
    url = f"/api/v1/experiences/{LYON}/withdraw"
    for body, status in (({}, 400), ({"reason": "court"}, 400), ({"reason": 12}, 400), ([], 400),
                         ({"reason": "x" * 3000}, 400)):
        assert api.web.post(url, json=body, headers=token).status_code == status, body
    assert read(api, LYON)["status"] == "published"
    done = api.web.post(url, json={"reason": "Doublon d'une autre fiche."}, headers=token)
    assert done.status_code == 200 and done.get_json()["action"] == "withdrawn"
    assert read(api, LYON)["status"] == "withdrawn" and read(api, LYON)["withdrawn_reason"] == \
        "Doublon d'une autre fiche."
    assert api.web.post(url, json={"reason": "Doublon d'une autre fiche."}, headers=token).status_code == 409
    assert len(api.web.get(f"/api/v1/experiences/{LYON}/revisions").get_json()) == 2


def test_upload_answers_with_the_report_and_publishes_when_valid(api: Api) -> None:
    token = api.auth("217500016")
    bad = csv_bytes([{**example(PARIS), "date_debut": "2023-13-45"}])
    answer = api.web.post("/api/v1/uploads", data={"file": (io.BytesIO(bad), "paris.csv")}, headers=token)
    assert answer.status_code == 422
    issue = next(i for i in answer.get_json()["report"]["issues"] if i.get("field") == "date_debut")
    assert issue["row"] == 2 and "2023-13-45" in issue["message"]
    good = csv_bytes([{**example(PARIS), "intitule": "Version déposée"}])
    checked = api.web.post("/api/v1/uploads?dry_run=1", data={"file": (io.BytesIO(good), "paris.csv")},
                           headers=token)
    assert checked.status_code == 200 and checked.get_json()["valid"] and api.revision(PARIS) == 1
    done = api.web.post("/api/v1/uploads", data={"file": (io.BytesIO(good), "paris.csv"), "comment": "dépôt"},
                        headers=token)
    assert done.status_code == 200 and done.get_json()["outcomes"][0]["action"] == "updated"
    assert read(api, PARIS)["record"]["experiences"]["intitule"] == "Version déposée"
    history = api.web.get(f"/api/v1/experiences/{PARIS}/revisions").get_json()
    assert history[-1]["source_name"] == "paris.csv" and history[-1]["channel"] == "api"


# --- bad input: a JSON error, nothing stored changes ----------------------------------------------------------

@pytest.mark.parametrize(("kwargs", "status", "code"), [
    ({"data": "{not json", "content_type": "application/json"}, 400, "bad_request"),
    ({"data": b"\xff\xfe{}", "content_type": "application/json"}, 400, "bad_request"),
    ({"data": "intitule=x", "content_type": "application/x-www-form-urlencoded"}, 415, "unsupported_media_type"),
    ({"data": "[" * 100_000 + "]" * 100_000, "content_type": "application/json"}, 400, "bad_request"),
    ({"json": [1, 2]}, 422, "invalid_document"),
    ({"json": "texte"}, 422, "invalid_document"),
    ({"json": {"intitule": {"objet": 1}}}, 422, "invalid_document"),
    ({"json": {"indicateurs": "pas une liste"}}, 422, "invalid_document"),
    ({"json": {"indicateurs": [{}] * 1001}}, 422, "invalid_document"),
    ({"json": {"id_experience": "216901231-2021-001"}}, 422, "invalid_document"),
    ({"json": {"experiences": {"intitule": "x"}, "autre": []}}, 422, "invalid_document"),
    ({"json": {"intitule": "a\u0000b"}}, 422, "invalid_document"),
    ({"json": {"resume": "trop court"}}, 422, "invalid_record"),
    ({"json": {"champ_inconnu": "x"}}, 422, "invalid_record"),
])
def test_malformed_and_hostile_bodies_get_a_json_error(api: Api, kwargs: dict[str, Any], status: int,
                                                       code: str) -> None:
    before = read(api, PARIS)
    answer = api.web.patch(f"/api/v1/experiences/{PARIS}", headers=api.auth("217500016"), **kwargs)
    assert answer.status_code == status, answer.data[:500]
    assert answer.is_json and answer.get_json()["error"]["code"] == code
    assert read(api, PARIS) == before


def test_oversized_bodies_are_refused_before_being_read(api: Api) -> None:
    limit = api.reg.settings.max_upload_bytes
    big = b'{"resume": "' + b"a" * (limit + 10) + b'"}'
    answer = api.web.patch(f"/api/v1/experiences/{PARIS}", data=big, content_type="application/json",
                           headers=api.auth("217500016"))
    assert answer.status_code == 413 and answer.get_json()["error"]["code"] == "payload_too_large"
    upload = api.web.post("/api/v1/uploads", data={"file": (io.BytesIO(b"x" * (limit + 100_000)), "big.csv")},
                          headers=api.auth("217500016"))
    assert upload.status_code == 413 and upload.get_json()["error"]["code"] == "payload_too_large"
    assert api.revision(PARIS) == 1


def test_hostile_content_is_stored_as_text_and_shown_escaped(api: Api) -> None:
    script = "<script>alert(1)</script>"
    doc = {"intitule": f"Capteurs {script}", "resume": '=HYPERLINK("http://evil") et la suite du résumé.'}
    assert api.web.patch(f"/api/v1/experiences/{PARIS}", json=doc, headers=api.auth("217500016")).status_code == 200
    assert read(api, PARIS)["record"]["experiences"]["intitule"] == f"Capteurs {script}"
    page = api.web.get(f"/experiences/{PARIS}").get_data(as_text=True)
    assert script not in page and "&lt;script&gt;" in page
    cards = api.web.get("/recherche?q=capteurs").get_data(as_text=True)
    assert '">Capteurs &lt;script&gt;alert(1)&lt;/script&gt;</a></h3>' in cards and script not in cards
    # a free-text value that is a web address becomes a link, escaped; any other scheme stays text
    link = 'https://exemple.fr/p?a=1&b="<2>'
    doc = {"objectifs": link, "solution": "javascript:alert(1)"}
    assert api.web.patch(f"/api/v1/experiences/{PARIS}", json=doc, headers=api.auth("217500016")).status_code == 200
    page = api.web.get(f"/experiences/{PARIS}").get_data(as_text=True)
    escaped = "https://exemple.fr/p?a=1&amp;b=&#34;&lt;2&gt;"
    assert f'<dd><a href="{escaped}">{escaped}</a></dd>' in page and link not in page
    assert "<dd>javascript:alert(1)</dd>" in page and 'href="javascript' not in page
    csv_text = api.web.get(f"/opendata/experiences/{PARIS}.csv").get_data(as_text=True)
    assert '"=HYPERLINK' not in csv_text and "'=HYPERLINK" in csv_text


def test_writes_are_rate_limited_per_token(api: Api) -> None:
    api.app.config["API_WRITE_RATE_LIMIT"] = "3 per minute"
    token = api.auth("217500016")
    answers = [api.web.patch(f"/api/v1/experiences/{PARIS}", json={"resume": f"Essai numéro {i} du résumé."},
                             headers=token) for i in range(4)]
    assert [a.status_code for a in answers] == [200, 200, 200, 429]
    limited = answers[-1]
    assert limited.get_json()["error"]["code"] == "rate_limited" and 1 <= int(limited.headers["Retry-After"]) <= 60
    assert read(api, PARIS)["record"]["experiences"]["resume"] == "Essai numéro 2 du résumé."
    other = api.web.patch(f"/api/v1/experiences/{LYON}", json={"resume": "Un autre résumé, assez long."},
                          headers=api.auth("216901231"))
    assert other.status_code == 200  # another token has its own allowance
    assert api.web.get(f"/api/v1/experiences/{PARIS}").status_code == 200  # reads are not limited


# --- the account page and the command line ---------------------------------------------------------------------

def _login(web: FlaskClient, email: str) -> None:
    page = web.get("/compte/connexion").get_data(as_text=True)
    csrf = page.split('name="csrf_token" value="')[1].split('"')[0]
    answer = web.post("/compte/connexion", data={"email": email, "password": "mot de passe solide", "csrf_token": csrf})
    assert answer.status_code == 302


def _csrf(web: FlaskClient, url: str = "/compte/inscription") -> str:
    return web.get(url).get_data(as_text=True).split('name="csrf_token" value="')[1].split('"')[0]


def test_an_organisation_admin_makes_a_token_on_the_account_page(api: Api) -> None:
    admin = accounts.create_user(api.reg, Caller.operator(), "dsi@paris.example.fr", "DSI", "mot de passe solide")
    accounts.add_membership(api.reg, Caller.operator(), admin.id, "217500016", role="org_admin")
    member = accounts.create_user(api.reg, Caller.operator(), "agent@paris.example.fr", "Agent", "mot de passe solide")
    accounts.add_membership(api.reg, Caller.operator(), member.id, "217500016", role="member")
    web = api.app.test_client()
    _login(web, "dsi@paris.example.fr")
    made = web.post("/compte/jetons", data={"siren": "217500016", "name": "SIG <nocturne>",
                                            "csrf_token": _csrf(web, "/compte/jetons")})
    assert made.status_code == 201 and made.headers["Cache-Control"] == "no-store"
    page = made.get_data(as_text=True)
    secret = page.split('id="secret" class="secret" readonly value="')[1].split('"')[0]
    assert secret.startswith("rtc_") and "SIG &lt;nocturne&gt;" in page
    assert api.web.get("/api/v1/token", headers={"Authorization": f"Bearer {secret}"}).status_code == 200
    listing = web.get("/compte/jetons").get_data(as_text=True)
    assert secret not in listing and secret[:12] in listing  # never shown again, recognisable by its start
    token_id = max(t.id for t in tokens.list_tokens(api.reg, Caller.operator(), "217500016"))
    revoked = web.post(f"/compte/jetons/{token_id}/revoquer", data={"csrf_token": _csrf(web, "/compte/jetons")})
    assert revoked.status_code == 302
    assert api.web.get("/api/v1/token", headers={"Authorization": f"Bearer {secret}"}).status_code == 401
    # a plain member may not make one; nor may anyone for another organisation; nor without the CSRF token
    other = api.app.test_client()
    _login(other, "agent@paris.example.fr")
    assert "Seuls les administrateurs" in other.get("/compte/jetons").get_data(as_text=True)
    refused = other.post("/compte/jetons", data={"siren": "217500016", "name": "x", "csrf_token": _csrf(other)})
    assert refused.status_code == 403 and "rtc_" not in refused.get_data(as_text=True)
    assert web.post("/compte/jetons", data={"siren": "216901231", "name": "x",
                                            "csrf_token": _csrf(web, "/compte/jetons")}).status_code == 403
    assert web.post("/compte/jetons", data={"siren": "217500016", "name": "x"}).status_code == 400
    first = min(t.id for t in tokens.list_tokens(api.reg, Caller.operator(), "217500016"))
    assert other.post(f"/compte/jetons/{first}/revoquer", data={"csrf_token": _csrf(other)}).status_code == 403
    assert tokens.list_tokens(api.reg, Caller.operator(), "217500016")[0].active


def test_the_operator_manages_tokens_from_the_command_line(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from registry.cli import cli

    home = str(tmp_path / "instance")
    runner = CliRunner()
    made = runner.invoke(cli, ["token", "create", "217500016", "--name", "SIG", "--home", home])
    assert made.exit_code == 0, made.output
    secret = made.stdout.strip()
    assert secret.startswith("rtc_") and "il ne sera plus affiché" in made.stderr
    listed = runner.invoke(cli, ["token", "list", "--home", home])
    assert listed.exit_code == 0 and "SIG" in listed.output and secret not in listed.output and "actif" in listed.output
    assert runner.invoke(cli, ["token", "revoke", "1", "--home", home]).exit_code == 0
    assert "révoqué" in runner.invoke(cli, ["token", "list", "--home", home]).output
    unknown = runner.invoke(cli, ["token", "create", "999999999", "--name", "x", "--home", home])
    assert unknown.exit_code == 1 and "Organisation introuvable" in unknown.output


# --- a zipped Data Package --------------------------------------------------------------------------------------

def _zip(files: dict[str, bytes]) -> bytes:
    import zipfile

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in files.items():
            zf.writestr(name, data)
    return buf.getvalue()


def _package(exp_id: str, folder: str = "", **extra: bytes) -> bytes:
    std = get_standard()
    resources = [{"name": t, "path": f"{t}.csv"} for t in std.tables]
    files = {f"{folder}datapackage.json": json.dumps({"name": "envoi", "resources": resources}).encode()}
    for t in std.tables:
        rows = [example(exp_id)] if t == "experiences" else children(t, exp_id)
        files[f"{folder}{t}.csv"] = csv_bytes(rows, t)
    return _zip({**files, **extra})


def test_a_zipped_data_package_is_uploaded_whole(api: Api) -> None:
    token = api.auth("212000046")
    answer = api.web.post("/api/v1/uploads", data={"file": (io.BytesIO(_package(NEW, "envoi/")), "envoi.zip")},
                          headers=token)
    assert answer.status_code == 201, answer.get_json()
    assert answer.get_json()["outcomes"][0]["action"] == "created"
    stored = read(api, NEW)["record"]
    assert len(stored["indicateurs"]) == len(children("indicateurs", NEW)) and stored["documents"]


@pytest.mark.parametrize(("files", "words"), [
    ({"a.csv": b"x"}, "sans datapackage.json"),
    ({"datapackage.json": b"{not json"}, "datapackage.json invalide"),
    ({"datapackage.json": b'{"resources": [{"name": "experiences", "path": "../../etc/passwd"}]}'}, "refusé"),
    ({"datapackage.json": b'{"resources": [{"name": "experiences", "path": "/etc/passwd"}]}'}, "refusé"),
    ({"datapackage.json": b'{"resources": [{"name": "experiences", "path": "https://evil.example/x.csv"}]}'},
     "refusé"),
    ({"datapackage.json": b'{"resources": [{"name": "experiences", "path": "absent.csv"}]}'}, "absent"),
    ({"datapackage.json": b'{"resources": [{"name": "inconnue", "path": "a.csv"}]}', "a.csv": b"a\n"}, "inconnue"),
    ({"datapackage.json": b'{"resources": "x"}'}, "datapackage.json invalide"),
])
def test_hostile_zips_are_reported_without_reading_outside(api: Api, files: dict[str, bytes], words: str) -> None:
    answer = api.web.post("/api/v1/uploads", data={"file": (io.BytesIO(_zip(files)), "envoi.zip")},
                          headers=api.auth("212000046"))
    assert answer.status_code == 422, answer.get_json()
    messages = " ".join(i["message"] for i in answer.get_json()["report"]["issues"])
    assert words in messages and "root:" not in messages
    assert api.web.get(f"/api/v1/experiences/{NEW}").status_code == 404


def test_a_zip_bomb_is_refused_by_its_declared_size(api: Api) -> None:
    limit = api.reg.settings.max_upload_bytes
    bomb = _package(NEW, **{"bourrage.bin": b"\0" * (4 * limit + 1)})  # compresses to a few hundred KB
    assert len(bomb) < limit
    answer = api.web.post("/api/v1/uploads", data={"file": (io.BytesIO(bomb), "envoi.zip")},
                          headers=api.auth("212000046"))
    assert answer.status_code == 422
    assert answer.get_json()["report"]["issues"][0]["code"] == "file-too-large"
