"""The researchers' pages on the demo data: French formats, exports, out-of-range pages, escaping, statistics."""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from babel.dates import format_date
from babel.numbers import format_currency
from flask import Flask
from flask.testing import FlaskClient

from registry.actions import Caller, experiences, stats
from registry.config import load_settings
from registry.paths import DEMO_DIR
from registry.serialize.labels import facet_label
from registry.standard import MAIN_RESOURCE, get_standard
from registry.store import Registry

DEMO_ID = "213105554-2020-001"


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Registry, Flask]]:
    from web.app import create_app

    reg = Registry(load_settings(home=str(tmp_path_factory.mktemp("pages") / "instance")))
    reg.migrate()
    assert experiences.publish_file(reg, Caller.operator(), DEMO_DIR).accepted
    yield reg, create_app(reg, dev=True)
    reg.close()


@pytest.fixture
def client(demo: tuple[Registry, Flask]) -> FlaskClient:
    return demo[1].test_client()


def test_home_shows_key_figures_and_redirects_searches(client: FlaskClient, demo: tuple[Registry, Flask]) -> None:
    figures = stats.key_figures(demo[0], Caller.anonymous())
    assert figures.experiences == 43
    page = client.get("/").get_data(as_text=True)
    assert "expériences publiées" in page and "résultats en retard" in page and 'role="search"' in page
    moved = client.get("/?q=eau&statut=abandonne")
    assert moved.status_code == 302 and moved.headers["Location"].startswith("/recherche?")
    assert "statut=abandonne" in moved.headers["Location"]


def test_out_of_range_page_says_so(client: FlaskClient) -> None:
    answer = client.get("/recherche?page=99")
    assert answer.status_code == 404 and "La page 99 n'existe pas" in answer.get_data(as_text=True)


def test_exports_of_the_current_search(client: FlaskClient) -> None:
    rows = list(csv.DictReader(io.StringIO(client.get("/recherche.csv?statut=abandonne").get_data(as_text=True)
                                          .lstrip("\ufeff"))))
    api = client.get("/api/search?statut=abandonne").get_json()
    assert len(rows) == api["count"] and {r["statut"] for r in rows} == {"abandonne"}
    assert rows[0]["statut_libelle"] == "Abandonné"
    # whether its results are overdue (of the day) and its targets changed, as the result cards' badges say
    late = list(csv.DictReader(io.StringIO(client.get("/recherche.csv?resultats_en_retard=oui").get_data(
        as_text=True).lstrip("\ufeff"))))
    assert late and {(r["resultats_en_retard"], r["resultats_en_retard_libelle"]) for r in late} == {("oui", "Oui")}
    assert {r["resultats_en_retard"] for r in rows} <= {"oui", "non"} and all(r["cibles_modifiees"] for r in rows)
    data = client.get("/recherche.json?statut=abandonne").get_json()
    assert data["count"] == api["count"]


def test_record_page_in_french_formats_with_diff_and_json_ld(client: FlaskClient) -> None:
    page = client.get(f"/experiences/{DEMO_ID}").get_data(as_text=True)
    assert "application/ld+json" in page and "Citer cette fiche" in page and "Historique" in page
    assert "Toulouse (31555)" in page  # the territory by name with its code
    assert " €" in page or "Indicateurs" in page
    assert client.get(f"/experiences/{DEMO_ID}/diff").status_code == 200
    assert client.get(f"/experiences/{DEMO_ID}/diff?old=999").status_code == 400


def test_statistics_charts_have_tables_and_csv(client: FlaskClient) -> None:
    page = client.get("/statistiques").get_data(as_text=True)
    assert page.count("<svg") >= 5 and page.count("<table>") >= 5 and "<script" not in page
    body = client.get("/statistiques/resultats_par_domaine.csv").get_data(as_text=True)
    assert body.lstrip("\ufeff").startswith("domaine,")
    assert client.get("/statistiques/inconnu.csv").status_code == 404


def test_compliance_page_csv_and_atom(client: FlaskClient) -> None:
    assert client.get("/conformite").status_code == 200
    assert client.get("/conformite.csv").get_data(as_text=True).lstrip("\ufeff").startswith("id_experience,")
    feed = client.get("/conformite.atom")
    assert feed.mimetype == "application/atom+xml" and b"<feed" in feed.data


def test_organisation_and_standard_pages(client: FlaskClient) -> None:
    assert client.get(f"/organisations/{DEMO_ID[:9]}").status_code == 200
    assert client.get("/organisations/000000000").status_code == 404
    assert client.get("/organisations/<script>").status_code == 404
    page = client.get("/standard").get_data(as_text=True)
    assert ("intitule" in page and "CHANGELOG" not in page) or "Historique des versions" in page
    assert client.get("/standard/fichiers/../pyproject.toml").status_code == 404


def test_organisation_pages_count_overdue_and_changed_targets_like_the_compliance_page(
        client: FlaskClient, demo: tuple[Registry, Flask]) -> None:
    reg, anyone = demo[0], Caller.anonymous()
    compliance = stats.compliance(reg, anyone)
    overdue = {h.id for h in compliance.overdue}
    assert "210600888-2022-001" in overdue  # Nice's demo record: ended in 2022, no results published
    for siren, _name, _n in stats.organisations(reg, anyone):
        org = stats.organisation(reg, anyone, siren)
        assert org is not None
        mine = {item.id for item in org.experiences}
        assert org.overdue == mine & overdue and org.statistics.figures.results_overdue == len(mine & overdue)
        assert org.changed == mine & {h.id for h in compliance.changed}
    page = client.get("/organisations/210600888").get_data(as_text=True)
    assert '<span class="value">1</span> résultats en retard' in page
    assert '<li class="badge error">Résultats en retard</li>' in page
    # a target changed after the start (a second revision of a record that has begun): counted on both pages
    view = experiences.get(reg, Caller.operator(), DEMO_ID)
    rows = [dict(r) for r in view.record["indicateurs"]]
    target = next(r for r in rows if r["type_valeur"] == "cible")
    target["valeur"] = str(float(target["valeur"]) + 1)
    from tests.helpers import csv_bytes

    assert experiences.publish_upload(reg, Caller.operator(), csv_bytes(rows, "indicateurs"), "i.csv").accepted
    assert DEMO_ID in {h.id for h in stats.compliance(reg, anyone).changed}
    org = stats.organisation(reg, anyone, DEMO_ID[:9])
    assert org is not None and DEMO_ID in org.changed and org.statistics.figures.targets_changed == 1
    page = client.get(f"/organisations/{DEMO_ID[:9]}").get_data(as_text=True)
    assert '<span class="value">1</span> cibles modifiées après le début' in page


def test_the_home_pages_latest_updates_show_the_same_badges_as_the_compliance_page(tmp_path: Path) -> None:
    from tests.helpers import csv_bytes
    from web.app import create_app

    reg = Registry(load_settings(home=str(tmp_path)))
    reg.migrate()
    admin, anyone, nice = Caller.operator(), Caller.anonymous(), "210600888-2022-001"
    assert experiences.publish_file(reg, admin, DEMO_DIR).accepted
    # updated last: Toulouse's record with a target changed after its start, then Nice's (results overdue)
    rows = [dict(r) for r in experiences.get(reg, admin, DEMO_ID).record["indicateurs"]]
    target = next(r for r in rows if r["type_valeur"] == "cible")
    target["valeur"] = str(float(target["valeur"]) + 1)
    assert experiences.publish_upload(reg, admin, csv_bytes(rows, "indicateurs"), "i.csv").accepted
    main = dict(experiences.get(reg, admin, nice).record[MAIN_RESOURCE])
    main["resume"] += " Mise à jour."
    assert experiences.publish_upload(reg, admin, csv_bytes([main]), "e.csv").accepted
    compliance = stats.compliance(reg, anyone)
    cards = _cards(create_app(reg, dev=True).test_client().get("/").get_data(as_text=True))
    assert len(cards) == 6 and nice in cards and DEMO_ID in cards
    for exp_id, card in cards.items():
        assert ("Résultats en retard" in card) == (exp_id in {h.id for h in compliance.overdue}), exp_id
        assert ("Cibles modifiées après le début" in card) == (exp_id in {h.id for h in compliance.changed}), exp_id
    assert '<li class="badge error">Résultats en retard</li>' in cards[nice]
    assert '<li class="badge warning">Cibles modifiées après le début</li>' in cards[DEMO_ID]
    reg.close()


def test_the_menu_marks_the_page_shown_in_its_language(client: FlaskClient) -> None:
    """The header and footer are made once per language and page (`web/pages/layout.py`): each page still has
    its own menu entry marked, in its own language."""
    def marked(url: str) -> list[str]:
        page = client.get(url).get_data(as_text=True)
        nav = page[page.index('class="main-nav"'):page.index("</nav>", page.index('class="main-nav"'))]
        return re.findall(r'<a href="([^"]+)" aria-current="page">([^<]+)</a>', nav)

    for _ in range(2):  # (the second time from what was kept)
        assert marked("/") == [("/", "Accueil")]
        assert marked("/recherche?q=eau") == [("/recherche", "Rechercher")]
        assert marked("/statistiques?lang=en") == [("/statistiques", "Statistics")]
        assert marked("/recherche?q=eau&lang=en") == [("/recherche", "Search")]
        assert marked(f"/experiences/{DEMO_ID}?lang=fr") == []
    assert 'lang="en" hreflang="en">English</a>' in client.get("/?lang=fr").get_data(as_text=True)
    assert 'lang="fr" hreflang="fr">Français</a>' in client.get("/?lang=en").get_data(as_text=True)


def _cards(page: str) -> dict[str, str]:
    """The result cards of a page, by the record each links to."""
    return {re.search(r'<a href="/experiences/([^"]+)">', card).group(1): card  # type: ignore[union-attr]
            for card in page.split('<li class="card">')[1:]}


@pytest.mark.parametrize("lang", ["fr", "en"])
def test_a_result_card_shows_title_place_dates_badges_and_snippet(client: FlaskClient, lang: str) -> None:
    std = get_standard().table(MAIN_RESOURCE).by_name
    cards = _cards(client.get(f"/recherche?q=stationnement&lang={lang}").get_data(as_text=True))
    card = cards[DEMO_ID]  # Toulouse's parking sensors: abandoned, objectives not reached
    assert "<h3><a href=\"/experiences/213105554-2020-001\">[Fictif] Capteurs de stationnement connectés sur voirie" \
           " en centre-ville</a></h3>" in card
    place = f"Ville de Toulouse · {facet_label('departement', '31', lang)} · " \
            f"{std['domaine'].label('mobilite_stationnement', lang)}"
    assert f'<p class="meta">{place}</p>' in card
    start, updated = ("Début :", "mise à jour le") if lang == "fr" else ("Start:", "updated on")
    dates = (format_date(dt.date(2020, 10, 1), "long", locale=lang), format_date(dt.date(2022, 6, 14), "long",
                                                                                  locale=lang))
    assert f'<p class="meta">{start} {dates[0]} · {updated} {dates[1]}</p>' in card
    badges = [f'<li class="badge">{std["phase"].label("experimentation", lang)}</li>',
              f'<li class="badge error">{std["statut"].label("abandonne", lang)}</li>',
              f'<li class="badge error">{std["resultat"].label("objectifs_non_atteints", lang)}</li>']
    assert f'<ul class="badges">{"".join(badges)}' in card  # (then « targets changed » once another test changed them)
    assert re.search(r'<p class="snippet">[^<]*<mark>stationnement</mark>', card, re.I)
    late = _cards(client.get(f"/recherche?resultats_en_retard=oui&lang={lang}").get_data(as_text=True))
    assert late and all('<li class="badge error">' + ("Résultats en retard" if lang == "fr" else "Results overdue")
                        + "</li>" in c for c in late.values())
    # a result with no tone of its own (« non évalué ») is a plain badge
    assert any(f'<li class="badge">{std["resultat"].label("non_evalue", lang)}</li>' in c for c in late.values())


def test_record_values_are_shown_by_their_field_type(client: FlaskClient) -> None:
    std = get_standard().table(MAIN_RESOURCE).by_name
    page = client.get(f"/experiences/{DEMO_ID}").get_data(as_text=True)

    def shown(name: str, value: str) -> bool:
        return f"<dt>{std[name].title}</dt><dd>{value}</dd>" in page

    euros = {n: format_currency(v, "EUR", format="#,##0 ¤", locale="fr", currency_digits=False)
             for n, v in (("cout_prevu", 210000), ("cout_reel", 268000), ("economies_annuelles", -52000))}
    assert all(shown(n, text) for n, text in euros.items())  # amounts in euros, French format
    assert shown("technologies", ", ".join(std["technologies"].label(c) for c in
                                           ("capteurs_iot", "reseau_bas_debit", "application_mobile")))
    assert shown("niveau_participation_citoyenne", std["niveau_participation_citoyenne"].label("consultation"))
    assert shown("millesime_cog", "2026")  # a year, not « 2 026 »
    assert shown("date_maj", format_date(dt.date(2022, 6, 14), "long", locale="fr"))
    url = "https://www.toulouse.example/stationnement-connecte"
    assert shown("liens", f'<a href="{url}">{url}</a>')
    assert shown("financements", "Ville de Toulouse 70 %, Toulouse Métropole 30 %")
