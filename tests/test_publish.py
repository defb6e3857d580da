"""Accounts, the publishing form, uploads and admin pages through the Flask test client: rights, CSRF,
drafts that never lose text, hostile and oversized input, the XLSX template."""

from __future__ import annotations

import html
import io
import re
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from openpyxl import load_workbook

from registry.actions import Caller, accounts, drafts, experiences
from registry.standard import get_standard
from registry.store import Registry

LYON = "216901231"
PARIS = "217500016"
PASSWORD = "un mot de passe solide"
HOSTILE = '<script>document.title="pwned"</script>=HYPERLINK("http://x")'


@pytest.fixture
def app(sqlite_registry: Registry) -> Flask:
    from web.app import create_app

    app = create_app(sqlite_registry, dev=True)
    app.config["LOGIN_RATE_LIMIT"] = "1000 per minute"
    return app


def member(reg: Registry, email: str, org: str) -> accounts.UserView:
    user = accounts.register(reg, email, "Agent " + email.split("@")[0], PASSWORD, org)
    accounts.set_membership(reg, Caller.operator(), user.memberships[0].id, status="active")
    view = accounts.get_user(reg, user.id)
    assert view is not None
    return view


def token(client: FlaskClient, url: str) -> str:
    page = client.get(url).get_data(as_text=True)
    found = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert found, url
    return found.group(1)


def login(client: FlaskClient, email: str) -> None:
    answer = client.post("/compte/connexion", data={"email": email, "password": PASSWORD,
                                                    "csrf_token": token(client, "/compte/connexion")})
    assert answer.status_code == 302, answer.get_data(as_text=True)


def filled(csrf: str, **extra: Any) -> dict[str, Any]:
    form = {"csrf_token": csrf, "experiences.intitule": "Capteurs de stationnement",
            "experiences.resume": "Un test de capteurs de places libres dans deux quartiers commerçants.",
            "experiences.code_insee_commune": "Lyon", "experiences.domaine": "mobilite_stationnement",
            "experiences.objectifs": "Réduire le temps de recherche d'une place.",
            "experiences.date_debut": "2026-01-10", "experiences.phase": "experimentation",
            "experiences.statut": "en_cours", "experiences.cout_prevu": "12 000,50",
            "indicateurs.0.code_indicateur": "temps_recherche", "indicateurs.0.libelle_indicateur": "Temps moyen",
            "indicateurs.0.categorie_indicateur": "service_rendu", "indicateurs.0.type_valeur": "cible",
            "indicateurs.0.valeur": "8", "indicateurs.0.unite": "min"}
    form.update(extra)
    return form


def new_draft(client: FlaskClient, siren: str = LYON) -> str:
    answer = client.post("/publier/nouveau", data={"siren": siren, "csrf_token": token(client, "/publier")})
    assert answer.status_code == 302, answer.get_data(as_text=True)
    return answer.headers["Location"]


def test_register_login_reset_and_cookie_flags(app: Flask, sqlite_registry: Registry,
                                               caplog: pytest.LogCaptureFixture) -> None:
    client = app.test_client()
    csrf = token(client, "/compte/inscription")
    bad = client.post("/compte/inscription", data={"csrf_token": csrf, "email": "pas-une-adresse", "name": "A",
                                                   "organisation": "Lyon", "password": "court", "password2": "court"})
    assert bad.status_code == 400 and "Adresse électronique invalide" in bad.get_data(as_text=True)
    ok = client.post("/compte/inscription", data={
        "csrf_token": csrf, "email": "Agent@Lyon.example", "name": "Agent", "organisation": "Lyon (Rhône, 69) — SIREN "
        + LYON, "password": PASSWORD, "password2": PASSWORD})
    assert ok.status_code == 302
    cookie = ok.headers.get("Set-Cookie", "")
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Secure" not in cookie  # plain http here
    user = accounts.authenticate(sqlite_registry, "agent@lyon.example", PASSWORD)
    assert user is not None and user.memberships[0].status == "pending"
    assert user.memberships[0].role == "org_admin"  # the first member of Lyon
    page = client.get("/publier").get_data(as_text=True)
    assert "en attente de validation" in page and "Commencer la préinscription" not in page
    # no draft for an organisation whose membership is pending
    assert client.post("/publier/nouveau", data={"siren": LYON, "csrf_token": token(client, "/publier")}
                       ).status_code == 403
    https = app.test_client()
    secure = https.post("/compte/connexion", base_url="https://localhost", data={
        "email": "agent@lyon.example", "password": PASSWORD, "csrf_token": token(https, "/compte/connexion")})
    assert "Secure" in secure.headers.get("Set-Cookie", "")
    with caplog.at_level("WARNING"):
        client.post("/compte/mot-de-passe-oublie", data={"email": "agent@lyon.example",
                                                         "csrf_token": token(client, "/compte/mot-de-passe-oublie")})
    link = re.search(r"(/compte/reinitialiser/\S+)", caplog.text)
    assert link, caplog.text
    fresh = app.test_client()
    url = link.group(1)
    assert fresh.post(url, data={"password": "nouveau mot de passe sûr", "password2": "nouveau mot de passe sûr",
                                 "csrf_token": token(fresh, url)}).status_code == 302
    assert "n'est plus valable" in fresh.get(url).get_data(as_text=True)  # one time only
    assert accounts.authenticate(sqlite_registry, "agent@lyon.example", PASSWORD) is None
    assert client.get("/publier").status_code == 302  # the old session ended with the password change
    stored = sqlite_registry.engine.connect().exec_driver_sql("select password_hash from users").scalar()
    assert stored.startswith("$argon2id$") and PASSWORD not in stored


def test_csrf_and_login_rate_limit(app: Flask, sqlite_registry: Registry) -> None:
    member(sqlite_registry, "a@lyon.example", LYON)
    client = app.test_client()
    assert client.post("/compte/connexion", data={"email": "a@lyon.example", "password": PASSWORD}
                       ).status_code == 400  # no CSRF token
    app.config["LOGIN_RATE_LIMIT"] = "3 per minute"
    csrf = token(client, "/compte/connexion")
    codes = [client.post("/compte/connexion", data={"email": "a@lyon.example", "password": "faux mot de passe",
                                                    "csrf_token": csrf}).status_code for _ in range(4)]
    assert codes == [401, 401, 401, 429]


def test_form_saves_checks_and_publishes_with_the_author(app: Flask, sqlite_registry: Registry) -> None:
    member(sqlite_registry, "a@lyon.example", LYON)
    client = app.test_client()
    login(client, "a@lyon.example")
    url = new_draft(client)
    csrf = token(client, url)
    # invalid: an empty summary, a bad indicator code -> French messages next to the fields, nothing lost
    form = filled(csrf, **{"experiences.resume": "", "indicateurs.0.code_indicateur": "Code Faux",
                           "experiences.ce_qui_a_fonctionne": "x", "action": "publish"})
    answer = client.post(url, data=form)
    page = answer.get_data(as_text=True)
    assert answer.status_code == 400
    assert 'id="e-experiences.resume"' in page
    assert 'aria-describedby="h-experiences.resume e-experiences.resume"' in page
    assert 'id="e-indicateurs.0.code_indicateur"' in page and "Code Faux" in page
    assert "Capteurs de stationnement" in page  # what was typed is still there
    answer = client.post(url, data=filled(csrf, action="publish"))
    assert answer.status_code == 302 and "publie=" in answer.headers["Location"]
    exp_id = answer.headers["Location"].split("publie=")[1]
    view = experiences.get(sqlite_registry, Caller.anonymous(), exp_id)
    assert view.main["code_insee_commune"] == "69123" and view.main["nom_porteur"] == "Lyon"
    assert view.main["cout_prevu"] in ("12000.5", "12000.50")
    assert view.record["indicateurs"][0]["code_indicateur"] == "temps_recherche"
    history = experiences.history(sqlite_registry, Caller.anonymous(), exp_id)
    assert history[-1].channel == "form" and history[-1].actor == "Agent a <a@lyon.example>"
    # later: results, through a draft made from the published record
    edit = f"/publier/experiences/{exp_id}/modifier"
    answer = client.post(edit, data={"step": "resultats", "csrf_token": token(client, edit)})
    results_url = answer.headers["Location"]
    assert results_url.endswith("/resultats")
    csrf = token(client, results_url)
    answer = client.post(results_url, data={
        "csrf_token": csrf, "action": "publish", "experiences.resultat": "objectifs_non_atteints",
        "experiences.ce_qui_n_a_pas_fonctionne": "Détections peu fiables.",
        "indicateurs.0.code_indicateur": "temps_recherche", "indicateurs.0.libelle_indicateur": "Temps moyen",
        "indicateurs.0.categorie_indicateur": "service_rendu", "indicateurs.0.type_valeur": "cible",
        "indicateurs.0.valeur": "8", "indicateurs.0.unite": "min",
        "indicateurs.1.code_indicateur": "temps_recherche", "indicateurs.1.libelle_indicateur": "Temps moyen",
        "indicateurs.1.categorie_indicateur": "service_rendu", "indicateurs.1.type_valeur": "mesure",
        "indicateurs.1.valeur": "11,5", "indicateurs.1.unite": "min", "indicateurs.1.periode_debut": "2026-02-01",
        "indicateurs.1.periode_fin": "2026-06-30"})
    assert answer.status_code == 302, answer.get_data(as_text=True)[:3000]
    view = experiences.get(sqlite_registry, Caller.anonymous(), exp_id)
    assert view.main["resultat"] == "objectifs_non_atteints" and view.main["intitule"] == "Capteurs de stationnement"
    assert [r["type_valeur"] for r in view.record["indicateurs"]] == ["cible", "mesure"]
    assert len(experiences.history(sqlite_registry, Caller.anonymous(), exp_id)) == 2


def test_another_organisation_is_refused(app: Flask, sqlite_registry: Registry) -> None:
    lyon = member(sqlite_registry, "a@lyon.example", LYON)
    member(sqlite_registry, "b@paris.example", PARIS)
    draft = drafts.new_draft(sqlite_registry, accounts.caller_for(lyon), LYON, lyon.id)
    client = app.test_client()
    login(client, "b@paris.example")
    url = f"/publier/brouillons/{draft.id}/preinscription"
    assert client.get(url).status_code == 403
    assert client.post(url, data=filled(token(client, "/publier"), action="save")).status_code == 403
    assert client.post("/publier/nouveau", data={"siren": LYON, "csrf_token": token(client, "/publier")}
                       ).status_code == 403
    assert client.get("/admin").status_code == 403
    assert drafts.get_draft(sqlite_registry, accounts.caller_for(lyon), draft.id).data["experiences"].get(
        "intitule") is None  # nothing written by the other organisation


def test_expired_session_keeps_the_text_and_saves_after_login(app: Flask, sqlite_registry: Registry) -> None:
    member(sqlite_registry, "a@lyon.example", LYON)
    client = app.test_client()
    login(client, "a@lyon.example")
    url = new_draft(client)
    csrf = token(client, url)
    client.delete_cookie("session")  # the session expired while the person typed
    long_text = "Texte long tapé pendant une heure. " * 50
    answer = client.post(url, data=filled(csrf, **{"experiences.contexte_besoin": long_text, "action": "save"}))
    page = answer.get_data(as_text=True)
    assert answer.status_code == 401 and "reconnectez-vous" in page and long_text.strip() in page
    new_csrf = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    answer = client.post(url, data=filled(new_csrf, **{"experiences.contexte_besoin": long_text, "action": "save",
                                                        "login_email": "a@lyon.example", "login_password": PASSWORD}))
    assert answer.status_code == 302
    draft_id = int(url.split("/")[-2])
    user = accounts.authenticate(sqlite_registry, "a@lyon.example", PASSWORD)
    assert drafts.get_draft(sqlite_registry, accounts.caller_for(user), draft_id).data["experiences"][
        "contexte_besoin"] == long_text
    # a stale CSRF token alone: same, the text comes back and nothing is lost
    answer = client.post(url, data=filled("faux", **{"experiences.intitule": "Titre changé", "action": "save"}))
    assert answer.status_code == 401 and "Titre changé" in answer.get_data(as_text=True)
    # the autosave answers JSON
    assert client.post(url + "/auto", data=filled("faux")).status_code == 401
    assert client.post(url + "/auto", data=filled(token(client, url))).get_json()["saved"] is True


def test_hostile_and_oversized_input(app: Flask, sqlite_registry: Registry) -> None:
    member(sqlite_registry, "a@lyon.example", LYON)
    client = app.test_client()
    login(client, "a@lyon.example")
    url = new_draft(client)
    csrf = token(client, url)
    answer = client.post(url, data=filled(csrf, **{"experiences.intitule": HOSTILE, "experiences.solution": "x" * 6000,
                                                   "indicateurs.7.valeur": "=1+1", "action": "check",
                                                   "experiences.date_debut": "31/02/2026"}))
    page = answer.get_data(as_text=True)
    assert "<script>document" not in page and "&lt;script&gt;" in page
    assert 'id="e-experiences.solution"' in page and 'id="e-experiences.date_debut"' in page
    assert 'id="e-indicateurs.1.valeur"' in page  # the 8th typed row is the 2nd kept row
    big = client.post(url, data=filled(csrf, **{"experiences.resume": "y" * 3_000_000, "action": "save"}))
    assert big.status_code == 413  # refused before anything is read; the saved draft is intact
    assert "trop volumineux" in big.get_data(as_text=True)
    user = accounts.authenticate(sqlite_registry, "a@lyon.example", PASSWORD)
    draft_id = int(url.split("/")[-2])
    data = drafts.get_draft(sqlite_registry, accounts.caller_for(user), draft_id).data
    assert data["experiences"]["intitule"] == HOSTILE  # stored verbatim, escaped on the page
    assert client.get(url).status_code == 200


def test_upload_report_then_publish(app: Flask, sqlite_registry: Registry) -> None:
    member(sqlite_registry, "a@lyon.example", LYON)
    client = app.test_client()
    login(client, "a@lyon.example")
    std = get_standard()
    header = list(std.main.field_names)
    row = {"id_experience": f"{LYON}-2026-001", "intitule": HOSTILE, "resume": "Un test de capteurs de places libres.",
           "nom_porteur": "Ville de Lyon", "siren_porteur": LYON, "type_porteur": "commune",
           "code_insee_commune": "69123", "domaine": "mobilite_stationnement", "objectifs": "Objectifs.",
           "date_debut": "2026-01-01", "phase": "experimentation", "statut": "en_cours", "resultat": "non_evalue",
           "date_maj": "2026-01-15"}

    def csv_of(values: dict[str, str]) -> bytes:
        import csv

        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(header)
        writer.writerow([values.get(h, "") for h in header])
        return out.getvalue().encode()

    upload = token(client, "/publier/deposer")
    bad = client.post("/publier/deposer", data={"csrf_token": upload, "fichier": (
        io.BytesIO(csv_of({**row, "code_insee_commune": "99999"})), "experiences.csv")},
                      content_type="multipart/form-data")
    page = html.unescape(bad.get_data(as_text=True))
    assert bad.status_code == 400 and "rien n'a été enregistré" in page and "code_insee_commune" in page
    assert "<script>document" not in bad.get_data(as_text=True)
    assert not experiences.listing(sqlite_registry, Caller.anonymous()).total
    junk = client.post("/publier/deposer", data={"csrf_token": upload, "fichier": (io.BytesIO(b"\x00\xff" * 100),
                                                                                    "x.xlsx")},
                       content_type="multipart/form-data")
    assert junk.status_code == 400
    good = client.post("/publier/deposer", data={"csrf_token": upload, "fichier": (io.BytesIO(csv_of(row)),
                                                                                    "experiences.csv")},
                       content_type="multipart/form-data")
    page = html.unescape(good.get_data(as_text=True))
    assert good.status_code == 200 and "Rien n'est encore enregistré" in page
    assert not experiences.listing(sqlite_registry, Caller.anonymous()).total
    tok = re.search(r'name="token" value="([^"]+)"', page).group(1)
    done = client.post("/publier/deposer/publier", data={"csrf_token": upload, "token": tok})
    assert done.status_code == 200 and f"{LYON}-2026-001" in done.get_data(as_text=True)
    assert experiences.history(sqlite_registry, Caller.anonymous(), f"{LYON}-2026-001")[-1].channel == "upload"
    # Paris may not publish Lyon's file
    member(sqlite_registry, "b@paris.example", PARIS)
    other = app.test_client()
    login(other, "b@paris.example")
    refused = other.post("/publier/deposer", data={"csrf_token": token(other, "/publier/deposer"), "fichier": (
        io.BytesIO(csv_of({**row, "intitule": "Autre"})), "experiences.csv")}, content_type="multipart/form-data")
    assert refused.status_code == 400 and "dont vous n'êtes pas membre" in html.unescape(refused.get_data(as_text=True))


def test_xlsx_template_from_the_schema(app: Flask) -> None:
    answer = app.test_client().get("/publier/modele.xlsx")
    book = load_workbook(io.BytesIO(answer.data))
    std = get_standard()
    assert [s for s in book.sheetnames if s != "listes"] == list(std.tables)
    assert book["listes"].sheet_state == "hidden"
    ws = book["experiences"]
    assert [c.value for c in ws[1]] == list(std.main.field_names)
    domaine = list(std.main.field_names).index("domaine") + 1
    assert "Domaine principal" in ws.cell(row=1, column=domaine).comment.text
    assert any(dv.type == "list" for dv in ws.data_validations.dataValidation)


def test_admin_pages(app: Flask, sqlite_registry: Registry) -> None:
    accounts.create_user(sqlite_registry, Caller.operator(), "admin@registre.example", "Admin", PASSWORD,
                         registry_admin=True)
    pending = accounts.register(sqlite_registry, "c@lyon.example", "Candidat", PASSWORD, LYON)
    client = app.test_client()
    assert client.get("/admin").status_code == 302
    login(client, "admin@registre.example")
    page = client.get("/admin").get_data(as_text=True)
    assert "c@lyon.example" in page and "Adhésions en attente" in page
    assert client.post(f"/admin/adhesions/{pending.memberships[0].id}",
                       data={"action": "approve", "csrf_token": token(client, "/admin")}).status_code == 302
    assert accounts.get_user(sqlite_registry, pending.id).organisations
    assert client.post(f"/admin/adhesions/{pending.memberships[0].id}", data={"action": "approve"}).status_code == 400


def test_an_upload_that_empties_a_child_table_warns_before_publishing(app: Flask, sqlite_registry: Registry) -> None:
    """A table in the file replaces all of a record's rows in it: a sheet left empty would delete the current
    indicators. The report says so, by record and table, and publishing needs an explicit confirmation."""
    from openpyxl import Workbook

    std = get_standard()
    exp_id = f"{LYON}-2026-002"
    main = {"id_experience": exp_id, "intitule": "Capteurs de places", "resume": "Un test de capteurs.",
            "nom_porteur": "Ville de Lyon", "siren_porteur": LYON, "type_porteur": "commune",
            "code_insee_commune": "69123", "domaine": "mobilite_stationnement", "objectifs": "Objectifs.",
            "date_debut": "2026-01-01", "phase": "experimentation", "statut": "en_cours", "resultat": "non_evalue",
            "date_maj": "2026-01-15"}
    indicator = {"id_experience": exp_id, "code_indicateur": "temps_recherche", "libelle_indicateur": "Temps moyen",
                 "categorie_indicateur": "service_rendu", "type_valeur": "cible", "valeur": "8", "unite": "min"}

    def xlsx(main_row: dict[str, str], indicators: list[dict[str, str]] | None) -> bytes:
        book = Workbook()
        sheets = [("experiences", [main_row])] + ([("indicateurs", indicators)] if indicators is not None else [])
        for n, (name, rows) in enumerate(sheets):
            ws = book.active if n == 0 else book.create_sheet()
            ws.title = name
            header = list(std.table(name).field_names)
            ws.append(header)
            for r in rows:
                ws.append([r.get(h, "") for h in header])
        out = io.BytesIO()
        book.save(out)
        return out.getvalue()

    two = [indicator, {**indicator, "type_valeur": "reference", "valeur": "12"}]
    assert experiences.publish_upload(sqlite_registry, Caller.operator(), xlsx(main, two), "a.xlsx").accepted
    member(sqlite_registry, "a@lyon.example", LYON)
    client = app.test_client()
    login(client, "a@lyon.example")
    csrf = token(client, "/publier/deposer")

    def check(data: bytes) -> tuple[int, str]:
        answer = client.post("/publier/deposer", data={"csrf_token": csrf, "fichier": (io.BytesIO(data), "b.xlsx")},
                             content_type="multipart/form-data")
        return answer.status_code, html.unescape(answer.get_data(as_text=True))

    status, page = check(xlsx({**main, "intitule": "Capteurs de places libres"}, []))
    assert status == 200 and "Attention : des lignes actuelles seront supprimées" in page
    assert (f"{exp_id} — « Indicateurs d'évaluation des expériences » : ce fichier n'en contient aucune ; "
            "les 2 lignes actuelles seront supprimées.") in page
    assert re.search(r'<input type="checkbox" id="confirm" name="confirm" value="1" required', page)
    tok = re.search(r'name="token" value="([^"]+)"', page).group(1)
    refused = client.post("/publier/deposer/publier", data={"csrf_token": csrf, "token": tok, "removals": "1"})
    assert refused.status_code == 400 and "cochez" in html.unescape(refused.get_data(as_text=True))
    assert len(experiences.get(sqlite_registry, Caller.anonymous(), exp_id).record["indicateurs"]) == 2
    done = client.post("/publier/deposer/publier",
                       data={"csrf_token": csrf, "token": tok, "removals": "1", "confirm": "1"})
    assert done.status_code == 200
    view = experiences.get(sqlite_registry, Caller.anonymous(), exp_id)
    assert view.main["intitule"] == "Capteurs de places libres" and view.record["indicateurs"] == []
    # a file without the indicators' sheet keeps them: no warning; nor when the sheet has the record's rows
    assert experiences.publish_upload(sqlite_registry, Caller.operator(), xlsx(main, two), "a.xlsx").accepted
    for data in (xlsx({**main, "intitule": "Sans feuille"}, None), xlsx({**main, "intitule": "Avec"}, two[:1])):
        status, page = check(data)
        assert status == 200 and "Rien n'est encore enregistré" in page and "seront supprimées" not in page


def test_the_record_page_has_a_modify_link_for_its_organisation_only(app: Flask, sqlite_registry: Registry) -> None:
    from registry.paths import SCHEMAS_DIR

    assert experiences.publish_file(sqlite_registry, Caller.operator(), SCHEMAS_DIR / "datapackage.json").accepted
    exp_id = f"{PARIS}-2023-001"  # an example record of Paris
    link = f'<a class="button" href="/publier/experiences/{exp_id}/modifier">Modifier'
    anonymous = app.test_client()
    assert link not in anonymous.get(f"/experiences/{exp_id}").get_data(as_text=True)
    member(sqlite_registry, "a@lyon.example", LYON)
    lyon = app.test_client()
    login(lyon, "a@lyon.example")
    assert link not in lyon.get(f"/experiences/{exp_id}").get_data(as_text=True)
    member(sqlite_registry, "b@paris.example", PARIS)
    paris = app.test_client()
    login(paris, "b@paris.example")
    assert link in paris.get(f"/experiences/{exp_id}").get_data(as_text=True)
    assert paris.get(f"/publier/experiences/{exp_id}/modifier").status_code == 200  # the link leads somewhere
    accounts.create_user(sqlite_registry, Caller.operator(), "admin@registre.example", "Admin", PASSWORD,
                         registry_admin=True)
    admin = app.test_client()
    login(admin, "admin@registre.example")
    assert link in admin.get(f"/experiences/{exp_id}").get_data(as_text=True)


def test_admins_add_edit_enable_and_run_harvest_sources(app: Flask, sqlite_registry: Registry) -> None:
    """Through the admin pages only, on registry/actions/harvest.py: add (the action's French errors next to the
    kept values), edit while never harvested, disable/enable, run now against a file served on 127.0.0.1."""
    import threading
    import time

    from werkzeug.serving import make_server
    from werkzeug.wrappers import Response as WResponse

    from registry.actions import harvest
    from registry.paths import SCHEMAS_DIR

    body = (SCHEMAS_DIR / "experiences" / "exemple-valide.csv").read_bytes()
    server = make_server("127.0.0.1", 0, lambda env, start: WResponse(body, mimetype="text/csv")(env, start))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_port}/experiences.csv"
    try:
        accounts.create_user(sqlite_registry, Caller.operator(), "admin@registre.example", "Admin", PASSWORD,
                             registry_admin=True)
        client = app.test_client()
        login(client, "admin@registre.example")
        admin = token(client, "/admin")
        assert "Ajouter une source de moissonnage" in client.get("/admin").get_data(as_text=True)
        form = {"csrf_token": admin, "name": "fichier-local", "url": "ftp://ailleurs", "type": "url",
                "organisations": "", "query": "", "schedule": "weekly"}
        bad = client.post("/admin/moissonnage/sources/nouvelle", data=form)
        page = html.unescape(bad.get_data(as_text=True))
        assert bad.status_code == 400 and "Adresse invalide : « ftp://ailleurs »" in page
        assert 'value="fichier-local"' in page and '<option value="weekly" selected>' in page  # nothing retyped
        assert client.post("/admin/moissonnage/sources/nouvelle", data={**form, "url": url + "?v=1"}).status_code == 302
        assert harvest.get_source(sqlite_registry, Caller.operator(), "fichier-local").url == url + "?v=1"
        # never harvested: its settings can change
        edit = "/admin/moissonnage/sources/fichier-local/modifier"
        assert f'value="{url}?v=1"' in client.get(edit).get_data(as_text=True)
        wrong = client.post(edit, data={**form, "url": url, "organisations": "123"})
        assert wrong.status_code == 400 and "SIREN invalide" in html.unescape(wrong.get_data(as_text=True))
        assert harvest.get_source(sqlite_registry, Caller.operator(), "fichier-local").url == url + "?v=1"
        assert client.post(edit, data={**form, "url": url, "schedule": "", "allow_private_network": "1"}
                           ).status_code == 302
        source = harvest.get_source(sqlite_registry, Caller.operator(), "fichier-local")
        assert (source.url, source.schedule, source.allow_private_network) == (url, None, True)
        for action, enabled in (("disable", False), ("enable", True)):
            client.post("/admin/moissonnage/fichier-local", data={"csrf_token": admin, "action": action})
            assert harvest.get_source(sqlite_registry, Caller.operator(), "fichier-local").enabled is enabled
        # run now: a job in the background, its report linked from the admin page
        assert client.post("/admin/moissonnage/fichier-local",
                           data={"csrf_token": admin, "action": "run"}).status_code == 302
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            jobs = harvest.list_jobs(sqlite_registry, Caller.operator(), "fichier-local")
            if jobs and jobs[0].status != "running":
                break
            time.sleep(0.2)
        assert jobs and jobs[0].status == "done" and jobs[0].counts.get("new"), jobs
        assert experiences.listing(sqlite_registry, Caller.anonymous()).total >= 1
        assert f"/admin/moissonnage/travaux/{jobs[0].id}" in client.get("/admin").get_data(as_text=True)
        # harvested: still editable, its jobs stay, and the next run reads everything again (another address)
        page = html.unescape(client.get(edit).get_data(as_text=True))
        assert "Cette source a déjà été moissonnée" in page and f'value="{url}"' in page
        assert harvest.get_source(sqlite_registry, Caller.operator(), "fichier-local").last_success_at is not None
        refused = client.post(edit, data={**form, "url": url + "?v=2", "schedule": "parfois"})
        assert refused.status_code == 400 and "Fréquence inconnue" in html.unescape(refused.get_data(as_text=True))
        assert harvest.get_source(sqlite_registry, Caller.operator(), "fichier-local").url == url
        assert client.post(edit, data={**form, "url": url + "?v=2", "allow_private_network": "1"}).status_code == 302
        moved = harvest.get_source(sqlite_registry, Caller.operator(), "fichier-local")
        assert (moved.url, moved.schedule, moved.last_success_at) == (url + "?v=2", "weekly", None)
        assert [j.id for j in harvest.list_jobs(sqlite_registry, Caller.operator(), "fichier-local")] == [jobs[0].id]
    finally:
        server.shutdown()


def test_the_publishing_pages_in_english(app: Flask, sqlite_registry: Registry) -> None:
    """The `publish` catalogue (accounts, publishing, admin) is complete and compiled, and the pages use it."""
    from pathlib import Path

    from web.translations.__main__ import load_po, mo_bytes, template_catalog

    english = load_po("en", "publish")
    missing = [m.id for m in template_catalog("publish")
               if m.id and not ((found := english.get(m.id)) and all(found.string if isinstance(found.string, tuple)
                                                                      else (found.string,)))]
    assert missing == []
    mo = Path(__file__).resolve().parents[1] / "web" / "translations" / "en" / "LC_MESSAGES" / "publish.mo"
    assert mo.read_bytes() == mo_bytes("en", "publish"), "run `python -m web.translations compile`"
    client = app.test_client()
    login_page = client.get("/compte/connexion?lang=en").get_data(as_text=True)
    assert '<html lang="en">' in login_page and ">Log in</button>" in login_page and "Forgotten password?" in login_page
    member(sqlite_registry, "a@lyon.example", LYON)
    login(client, "a@lyon.example")
    upload = client.get("/publier/deposer").get_data(as_text=True)
    assert "Upload a file" in upload and "Check the file" in upload and "Déposer" not in upload
