"""A territory in a real Chromium against the real server: register, pre-register a prototype, report its
results later; an upload with errors, fixed, then published; a session expiring mid-form without losing
text; another organisation refused; the form with the keyboard only. A missing Chromium fails."""

from __future__ import annotations

import csv
import io
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect
from werkzeug.serving import make_server

from registry.actions import Caller, accounts, drafts, experiences
from registry.standard import get_standard
from registry.store import Registry

pytestmark = pytest.mark.xdist_group("browser")
LYON = "216901231"
PARIS = "217500016"
PASSWORD = "un mot de passe solide"




@pytest.fixture
def live(sqlite_registry: Registry) -> Iterator[str]:
    from web.app import create_app

    app = create_app(sqlite_registry, dev=True)
    app.config["LOGIN_RATE_LIMIT"] = "1000 per minute"
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()


def field(name: str) -> str:
    return f"[id='f-{name}']"


def new_page(browser: Any) -> Any:
    context = browser.new_context(locale="fr-FR")
    page = context.new_page()
    page.set_default_timeout(15_000)
    return page


def member(reg: Registry, email: str, org: str) -> accounts.UserView:
    user = accounts.register(reg, email, "Agent", PASSWORD, org)
    accounts.set_membership(reg, Caller.operator(), user.memberships[0].id, status="active")
    return accounts.get_user(reg, user.id)  # type: ignore[return-value]


def login(page: Any, live: str, email: str) -> None:
    page.goto(live + "/compte/connexion")
    page.get_by_label("Adresse électronique").fill(email)
    page.get_by_label("Mot de passe").fill(PASSWORD)
    page.get_by_role("button", name="Se connecter").click()
    page.wait_for_url("**/publier")


def test_register_preregister_then_report_results(browser: Any, live: str, sqlite_registry: Registry,
                                                  tmp_path: Path) -> None:
    page = new_page(browser)
    page.goto(live + "/compte/inscription")
    page.get_by_label("Nom et prénom").fill("Camille Agent")
    page.get_by_label("Adresse électronique professionnelle").fill("camille@lyon.example")
    page.get_by_label("Organisation (commune ou intercommunalité)").fill("Lyon")
    page.get_by_label("Mot de passe", exact=True).fill(PASSWORD)
    page.get_by_label("Confirmation du mot de passe").fill(PASSWORD)
    page.get_by_role("button", name="Créer mon compte").click()
    page.wait_for_url("**/publier")
    assert "en attente de validation" in page.content()
    pending = accounts.pending_memberships(sqlite_registry, Caller.operator())
    accounts.set_membership(sqlite_registry, Caller.operator(), pending[0].id, status="active")  # the admin says yes
    page.reload()
    page.get_by_role("button", name="Commencer la préinscription").click()
    page.wait_for_url("**/preinscription")
    page.fill(field("experiences.intitule"), "Capteurs de places libres")
    page.fill(field("experiences.resume"), "Test de capteurs signalant les places libres dans deux quartiers.")
    page.fill(field("experiences.code_insee_commune"), "Lyon")
    page.select_option(field("experiences.domaine"), "mobilite_stationnement")
    page.fill(field("experiences.objectifs"), "Ramener le temps de recherche de 12 à 8 minutes.")
    page.fill(field("experiences.date_debut"), "2026-01-10")
    page.select_option(field("experiences.phase"), "experimentation")
    page.get_by_role("button", name="Ajouter une ligne : Indicateurs", exact=False).click()
    page.wait_for_selector(field("indicateurs.0.code_indicateur"))
    page.fill(field("indicateurs.0.code_indicateur"), "temps_recherche")
    page.fill(field("indicateurs.0.libelle_indicateur"), "Temps moyen de recherche")
    page.select_option(field("indicateurs.0.categorie_indicateur"), "service_rendu")
    page.select_option(field("indicateurs.0.type_valeur"), "cible")
    page.fill(field("indicateurs.0.valeur"), "8")
    page.fill(field("indicateurs.0.unite"), "min")
    page.get_by_role("button", name="Publier").click()
    page.wait_for_url("**/publier?publie=*")
    exp_id = page.url.split("publie=")[1]
    view = experiences.get(sqlite_registry, Caller.anonymous(), exp_id)
    assert view.main["intitule"] == "Capteurs de places libres" and view.main["code_insee_commune"] == "69123"
    # months later: the results
    page.goto(f"{live}/publier/experiences/{exp_id}/modifier")
    page.get_by_role("button", name="Déclarer les résultats").click()
    page.wait_for_url("**/resultats")
    page.select_option(field("experiences.resultat"), "objectifs_non_atteints")
    page.fill(field("experiences.ce_qui_n_a_pas_fonctionne"), "Détections trop peu fiables au passage des bus.")
    page.get_by_role("button", name="Publier").click()
    page.wait_for_url("**/publier?publie=*")
    history = experiences.history(sqlite_registry, Caller.anonymous(), exp_id)
    assert [h.actor for h in history] == ["Camille Agent <camille@lyon.example>"] * 2
    assert experiences.get(sqlite_registry, Caller.anonymous(), exp_id).main["resultat"] == "objectifs_non_atteints"
    page.screenshot(path=str(tmp_path / "published.png"), full_page=True)


def test_upload_with_errors_fixed_then_published(browser: Any, live: str, sqlite_registry: Registry,
                                                 tmp_path: Path) -> None:
    member(sqlite_registry, "a@lyon.example", LYON)
    page = new_page(browser)
    login(page, live, "a@lyon.example")
    header = list(get_standard().main.field_names)
    row = {"id_experience": f"{LYON}-2026-001", "intitule": "Éclairage à la demande", "siren_porteur": LYON,
           "resume": "Éclairage public qui s'allume au passage des piétons.", "nom_porteur": "Ville de Lyon",
           "type_porteur": "commune", "code_insee_commune": "69999", "domaine": "mobilite_stationnement",
           "objectifs": "Économiser 40 % d'énergie.", "date_debut": "2026-01-01", "phase": "experimentation",
           "statut": "en_cours", "resultat": "non_evalue", "date_maj": "2026-01-15"}

    def write(values: dict[str, str]) -> Path:
        out = io.StringIO()
        writer = csv.writer(out, delimiter=";")
        writer.writerow(header)
        writer.writerow([values.get(h, "") for h in header])
        path = tmp_path / "experiences.csv"
        path.write_text(out.getvalue(), encoding="utf-8")
        return path

    page.goto(live + "/publier/deposer")
    page.set_input_files("#fichier", str(write(row)))
    page.get_by_role("button", name="Vérifier le fichier").click()
    expect(page.get_by_text("rien n'a été enregistré")).to_be_visible()
    assert page.locator("table td", has_text="code_insee_commune").count() >= 1
    assert experiences.listing(sqlite_registry, Caller.anonymous()).total == 0
    page.set_input_files("#fichier", str(write({**row, "code_insee_commune": "69123"})))
    page.get_by_role("button", name="Vérifier le fichier").click()
    page.get_by_role("button", name="Publier").click()
    page.wait_for_selector("text=révision")
    assert experiences.get(sqlite_registry, Caller.anonymous(), f"{LYON}-2026-001").main["intitule"] == \
        "Éclairage à la demande"


def test_session_expires_mid_form_without_losing_text(browser: Any, live: str, sqlite_registry: Registry) -> None:
    user = member(sqlite_registry, "a@lyon.example", LYON)
    draft = drafts.new_draft(sqlite_registry, accounts.caller_for(user), LYON, user.id)
    page = new_page(browser)
    login(page, live, "a@lyon.example")
    page.goto(f"{live}/publier/brouillons/{draft.id}/preinscription")
    page.fill(field("experiences.intitule"), "Titre tapé avant l'expiration")
    page.wait_for_selector("text=Brouillon enregistré à")  # saved on the server while typing
    page.context.clear_cookies()  # the session expires
    text = "Un long contexte écrit pendant que la session expirait. " * 20
    page.fill(field("experiences.contexte_besoin"), text)
    page.get_by_role("button", name="Enregistrer le brouillon").click()
    expect(page.get_by_role("heading", name="Votre session a expiré", exact=False)).to_be_visible()
    assert page.input_value(field("experiences.contexte_besoin")) == text.strip("\n")
    page.fill("#login_email", "a@lyon.example")
    page.fill("#login_password", PASSWORD)
    page.get_by_role("button", name="Me reconnecter et enregistrer").click()
    page.wait_for_selector("text=Brouillon enregistré.")
    saved = drafts.get_draft(sqlite_registry, accounts.caller_for(user), draft.id).data["experiences"]
    assert saved["contexte_besoin"] == text and saved["intitule"] == "Titre tapé avant l'expiration"


def test_another_organisation_is_refused(browser: Any, live: str, sqlite_registry: Registry) -> None:
    lyon = member(sqlite_registry, "a@lyon.example", LYON)
    member(sqlite_registry, "b@paris.example", PARIS)
    draft = drafts.new_draft(sqlite_registry, accounts.caller_for(lyon), LYON, lyon.id)
    page = new_page(browser)
    login(page, live, "b@paris.example")
    answer = page.goto(f"{live}/publier/brouillons/{draft.id}/preinscription")
    assert answer.status == 403 and "Capteurs" not in page.content()
    assert page.goto(f"{live}/admin").status == 403


def test_keyboard_only_form(browser: Any, live: str, sqlite_registry: Registry) -> None:
    user = member(sqlite_registry, "a@lyon.example", LYON)
    draft = drafts.new_draft(sqlite_registry, accounts.caller_for(user), LYON, user.id)
    page = new_page(browser)
    login(page, live, "a@lyon.example")
    page.goto(f"{live}/publier/brouillons/{draft.id}/preinscription")
    page.locator(field("experiences.intitule")).focus()
    page.keyboard.type("Au clavier")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.id") == "f-experiences.resume"
    page.keyboard.type("Résumé tapé au clavier seulement, sans souris.")
    order = []
    for _ in range(2):
        page.keyboard.press("Tab")
        order.append(page.evaluate("document.activeElement.id"))
    assert order == ["f-experiences.code_insee_commune", "f-experiences.communes_concernees"]
    labelled = page.evaluate("""() => [...document.querySelectorAll('#draft-form input:not([type=hidden]), '
        + '#draft-form select, #draft-form textarea')].filter(e => e.type !== 'checkbox' && !e.labels.length).length""")
    assert labelled == 0  # every field has its label
    page.locator("button[value=save]").focus()
    page.keyboard.press("Enter")
    page.wait_for_selector("text=Brouillon enregistré.")
    saved = drafts.get_draft(sqlite_registry, accounts.caller_for(user), draft.id).data["experiences"]
    assert saved["intitule"] == "Au clavier"
    assert saved["resume"] == "Résumé tapé au clavier seulement, sans souris."


def xlsx_file(path: Path, tables: dict[str, list[dict[str, str]]]) -> Path:
    """A workbook with one sheet per table (header from the standard, then the rows)."""
    from openpyxl import Workbook

    book = Workbook()
    for n, (name, rows) in enumerate(tables.items()):
        ws = book.active if n == 0 else book.create_sheet()
        ws.title = name
        header = list(get_standard().table(name).field_names)
        ws.append(header)
        for r in rows:
            ws.append([r.get(h, "") for h in header])
    book.save(path)
    return path


LYON_ROW = {"id_experience": f"{LYON}-2026-005", "intitule": "Capteurs de places", "resume": "Un test de capteurs.",
            "nom_porteur": "Ville de Lyon", "siren_porteur": LYON, "type_porteur": "commune",
            "code_insee_commune": "69123", "domaine": "mobilite_stationnement", "objectifs": "Objectifs.",
            "date_debut": "2026-01-01", "phase": "experimentation", "statut": "en_cours", "resultat": "non_evalue",
            "date_maj": "2026-01-15"}
LYON_INDICATORS = [{"id_experience": LYON_ROW["id_experience"], "code_indicateur": "temps_recherche",
                    "libelle_indicateur": "Temps moyen", "categorie_indicateur": "service_rendu",
                    "type_valeur": v, "valeur": n, "unite": "min"} for v, n in (("cible", "8"), ("reference", "12"))]


def test_an_upload_emptying_the_indicators_warns_and_needs_a_tick(browser: Any, live: str, sqlite_registry: Registry,
                                                                  tmp_path: Path) -> None:
    exp_id = LYON_ROW["id_experience"]
    first = xlsx_file(tmp_path / "a.xlsx", {"experiences": [LYON_ROW], "indicateurs": LYON_INDICATORS})
    assert experiences.publish_upload(sqlite_registry, Caller.operator(), first.read_bytes(), "a.xlsx").accepted
    member(sqlite_registry, "a@lyon.example", LYON)
    page = new_page(browser)
    login(page, live, "a@lyon.example")
    page.goto(live + "/publier/deposer")
    emptied = xlsx_file(tmp_path / "b.xlsx", {"experiences": [{**LYON_ROW, "intitule": "Capteurs (bilan)"}],
                                               "indicateurs": []})
    page.set_input_files("#fichier", str(emptied))
    page.get_by_role("button", name="Vérifier le fichier").click()
    warning = page.get_by_role("alert")
    assert "les 2 lignes actuelles seront supprimées" in warning.inner_text()
    page.get_by_role("button", name="Publier").click()  # not ticked: the browser keeps the form (required)
    assert page.url.endswith("/publier/deposer")
    assert len(experiences.get(sqlite_registry, Caller.anonymous(), exp_id).record["indicateurs"]) == 2
    page.get_by_label("Je confirme la suppression de ces lignes").check()
    page.get_by_role("button", name="Publier").click()
    page.wait_for_selector("text=révision")
    view = experiences.get(sqlite_registry, Caller.anonymous(), exp_id)
    assert view.main["intitule"] == "Capteurs (bilan)" and view.record["indicateurs"] == []


def test_the_record_page_leads_its_organisation_to_the_form(browser: Any, live: str, sqlite_registry: Registry,
                                                            tmp_path: Path) -> None:
    first = xlsx_file(tmp_path / "a.xlsx", {"experiences": [LYON_ROW], "indicateurs": LYON_INDICATORS})
    assert experiences.publish_upload(sqlite_registry, Caller.operator(), first.read_bytes(), "a.xlsx").accepted
    member(sqlite_registry, "a@lyon.example", LYON)
    page = new_page(browser)
    page.goto(live + f"/experiences/{LYON_ROW['id_experience']}")
    assert page.get_by_role("link", name="Modifier cette fiche").count() == 0  # anonymous
    login(page, live, "a@lyon.example")
    page.goto(live + f"/experiences/{LYON_ROW['id_experience']}")
    page.get_by_role("link", name="Modifier cette fiche").click()
    page.wait_for_url(f"**/publier/experiences/{LYON_ROW['id_experience']}/modifier")
    page.get_by_role("button", name="Déclarer les résultats").click()
    page.wait_for_url("**/resultats")
    assert page.locator(field("experiences.intitule")).count() == 0 or \
        page.locator(field("experiences.intitule")).input_value() == "Capteurs de places"


def test_an_admin_adds_a_harvest_source_in_the_browser(browser: Any, live: str, sqlite_registry: Registry) -> None:
    from registry.actions import harvest

    accounts.create_user(sqlite_registry, Caller.operator(), "admin@registre.example", "Admin", PASSWORD,
                         registry_admin=True)
    page = new_page(browser)
    page.goto(live + "/compte/connexion")
    page.get_by_label("Adresse électronique").fill("admin@registre.example")
    page.get_by_label("Mot de passe").fill(PASSWORD)
    page.get_by_role("button", name="Se connecter").click()
    page.wait_for_url("**/publier")
    page.goto(live + "/admin")
    page.get_by_role("link", name="Ajouter une source de moissonnage").click()
    page.get_by_label("Nom de la source").fill("portail-test")
    page.get_by_label("Adresse", exact=True).fill("https://data.example.org")
    page.get_by_label("Organisations autorisées (SIREN)").fill("12345")
    page.get_by_label("Fréquence").select_option("daily")
    page.get_by_role("button", name="Ajouter la source").click()
    assert "SIREN invalide" in page.get_by_role("alert").inner_text()
    assert page.get_by_label("Nom de la source").input_value() == "portail-test"  # nothing to retype
    page.get_by_label("Organisations autorisées (SIREN)").fill(LYON)
    page.get_by_role("button", name="Ajouter la source").click()
    page.wait_for_url("**/admin#moissonnage")
    assert page.get_by_role("cell", name="portail-test (ckan)").is_visible()
    source = harvest.get_source(sqlite_registry, Caller.operator(), "portail-test")
    assert (source.url, source.organisations, source.schedule) == ("https://data.example.org", (LYON,), "daily")
    with page.expect_navigation(url="**/admin#moissonnage"):
        page.get_by_role("button", name="Désactiver : portail-test").click()
    assert not harvest.get_source(sqlite_registry, Caller.operator(), "portail-test").enabled
