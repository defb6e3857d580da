"""The site: pages and their JSON twins from the same data, escaping, languages; and a real Chromium."""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.serving import make_server

from registry.actions import Caller, experiences
from registry.actions import index as search_index
from registry.paths import SCHEMAS_DIR
from registry.queries import get_experience
from registry.serialize import experience_json
from registry.store import Registry
from tests.conftest import Clock, unavailable
from tests.helpers import csv_bytes, example
from tests.services import CHROMIUM_ARGS, PostgresServer, ServiceUnavailable, chromium_path

PARIS = "217500016-2023-001"
SCRIPT = '<script>document.title="pwned"</script><img src=x onerror="document.title=\'pwned\'">'


def site(reg: Registry) -> Flask:
    """The example records and a hostile one, published; the site on them."""
    from web.app import create_app

    operator = Caller.operator()
    assert experiences.publish_file(reg, operator, SCHEMAS_DIR / "datapackage.json").accepted
    hostile = {**example(PARIS), "intitule": "Capteurs " + SCRIPT[:60], "ce_qui_a_fonctionne": SCRIPT}
    assert experiences.publish_upload(reg, operator, csv_bytes([hostile]), "x.csv").accepted
    return create_app(reg, dev=True)


@pytest.fixture
def app(sqlite_registry: Registry) -> Flask:
    return site(sqlite_registry)


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


def test_index_lists_experiences_with_labels_from_the_schema(client: FlaskClient) -> None:
    page = client.get("/recherche").get_data(as_text=True)
    assert "4 expériences, succès comme échecs." in page
    assert "Mobilité et stationnement" in page  # a label read from the schema, not the code
    assert '<html lang="fr">' in page


def test_search_without_javascript(client: FlaskClient) -> None:
    page = client.get("/recherche?q=éclairages").get_data(as_text=True)
    assert "1 expérience, succès" in page and "Éclairage public à la demande" in page
    page = client.get("/recherche?statut=abandonne").get_data(as_text=True)
    assert "1 expérience, succès" in page and "stationnement" in page and "retirer" in page
    data = client.get("/api/search?q=capteurs&statut=abandonne").get_json()
    statut = data["facets"]["statut"]
    assert data["count"] == 1 and statut["label"] == "Statut"
    assert {"value": "abandonne", "label": "Abandonné", "count": 1} in statut["values"]
    assert client.get("/recherche?q=" + "%22" * 3000 + "&statut=<script>").status_code == 200


def test_record_page_escapes_everything(client: FlaskClient) -> None:
    page = client.get(f"/experiences/{PARIS}").get_data(as_text=True)
    assert "<script>" not in page and "<img src=x" not in page
    assert "&lt;script&gt;document.title=&#34;pwned&#34;&lt;/script&gt;" in page


def test_json_twin_is_the_same_data(client: FlaskClient, sqlite_registry: Registry) -> None:
    expected = experience_json(get_experience(sqlite_registry, PARIS))
    assert client.get(f"/api/experiences/{PARIS}").get_json() == expected
    negotiated = client.get(f"/experiences/{PARIS}", headers={"Accept": "application/json"})
    assert negotiated.get_json() == expected
    assert expected["record"]["experiences"]["ce_qui_a_fonctionne"] == SCRIPT  # stored verbatim
    revisions = client.get(f"/api/experiences/{PARIS}/revisions").get_json()
    assert [r["action"] for r in revisions] == ["create", "update"]


def test_api_list_and_pagination_bounds(client: FlaskClient) -> None:
    data = client.get("/api/experiences?limit=2&offset=1").get_json()
    assert data["count"] == 4 and len(data["results"]) == 2 and data["offset"] == 1
    assert len(client.get("/api/experiences?limit=500").get_json()["results"]) == 4
    for query in ("limit=100000", "limit=abc", "offset=-5", "offset=9223372036854775808", "limit=%C2%B2",
                  "offset=" + "9" * 5000):
        answer = client.get(f"/api/experiences?{query}")
        name = query.split("=")[0]
        assert answer.status_code == 400, query
        assert answer.is_json and f"« {name} » doit être un entier" in answer.get_json()["error"]["message"]


def test_english_is_available(client: FlaskClient) -> None:
    page = client.get(f"/experiences/{PARIS}?lang=en")
    text = page.get_data(as_text=True)
    assert '<html lang="en">' in text and "History" in text
    assert "lang=en" in page.headers.get("Set-Cookie", "")
    assert '<html lang="en">' in client.get("/").get_data(as_text=True)  # remembered


def test_unknown_experience_is_a_404_page(client: FlaskClient) -> None:
    resp = client.get("/experiences/000000000-0000-000")
    assert resp.status_code == 404 and "Page introuvable" in resp.get_data(as_text=True)
    assert client.get("/api/experiences/%3Cscript%3E").status_code == 404


@pytest.fixture
def live_url(app: Flask) -> Iterator[str]:
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()


def test_in_a_real_browser(live_url: str, tmp_path: Path) -> None:
    try:
        executable = chromium_path()
        from playwright.sync_api import expect, sync_playwright
    except (ServiceUnavailable, ImportError) as exc:
        unavailable("Chromium with Playwright", exc)
    dialogs: list[str] = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=executable, args=list(CHROMIUM_ARGS))
        try:
            page = browser.new_page(locale="fr-FR")  # Chromium sends en-US otherwise
            page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
            page.goto(live_url + "/recherche")
            assert page.locator("h1").inner_text() == "Retours d'expérience"
            page.keyboard.press("Tab")
            assert page.evaluate("document.activeElement.textContent") == "Aller au contenu"
            page.get_by_role("link", name="Capteurs <script>", exact=False).click()
            page.wait_for_url(f"**/experiences/{PARIS}")
            assert page.title() != "pwned" and "Capteurs <script>" in page.title()
            assert SCRIPT in page.locator("dd").all_inner_texts()
            page.get_by_role("link", name="English").click()
            expect(page.locator("html")).to_have_attribute("lang", "en")
            expect(page.get_by_role("heading", name="History")).to_be_visible()
            page.screenshot(path=str(tmp_path / "experience.png"), full_page=True)
        finally:
            browser.close()
    assert dialogs == []


def test_facets_combine_in_the_url_without_javascript(client: FlaskClient) -> None:
    both = client.get("/recherche?statut=abandonne&statut=termine")
    page = both.get_data(as_text=True)
    assert both.status_code == 200 and page.count('aria-current="true"') == 2
    import re

    links = re.findall(r'href="([^"]+)">retirer', page)
    assert len(links) == 2 and any("statut=termine" in u and "abandonne" not in u for u in links)
    one = client.get("/api/search?statut=abandonne").get_json()["count"]
    two = client.get("/api/search?statut=abandonne&statut=termine").get_json()["count"]
    assert two > one  # OR within a facet
    assert "Non renseigné" in client.get("/recherche").get_data(as_text=True)  # the empty bucket has a label
    bad = client.get("/api/search?sort=hasard")
    assert bad.status_code == 400 and "Tri inconnu" in bad.get_json()["error"]["message"]


def test_facets_are_checkboxes_with_counts_and_an_apply_button(client: FlaskClient) -> None:
    """Without JavaScript: tick several values, « Appliquer » sends them all (a GET form), each one ticked after."""
    import re

    page = client.get("/recherche?q=&statut=abandonne").get_data(as_text=True)
    form = page[page.index('<nav class="facets"'):page.index("</nav>", page.index('<nav class="facets"'))]
    assert '<form method="get" action="/recherche">' in form and ">Appliquer</button>" in form
    boxes = re.findall(r'<input type="checkbox" name="statut" value="([a-z_]+)"[^>]*?( checked)?>', form)
    assert ("abandonne", " checked") in boxes and len(boxes) >= 2
    assert re.search(r'<legend>Statut</legend>', form)
    # each checkbox is named by its value's label and count (aria-labelledby), e.g. « Abandonné (1) »
    assert re.search(r'aria-labelledby="l-statut-1 n-statut-1" checked> <span><span id="l-statut-1" '
                     r'aria-current="true">Abandonné</span> <span class="n" id="n-statut-1">\(1\)</span>', form)
    other = next(code for code, ticked in boxes if not ticked)
    both = client.get(f"/recherche?q=&sort=date_maj&statut=abandonne&statut={other}").get_data(as_text=True)
    assert both.count(" checked>") == 2 and both.count(">retirer<") == 2


def test_a_hostile_filter_value_is_shown_escaped(client: FlaskClient) -> None:
    """A value no record has, typed into the URL, stays ticked (with 0) so that it can be removed; every place
    the page shows it (its checkbox and label, the links adding another value, the active filters) escapes it."""
    from urllib.parse import quote, quote_plus

    from markupsafe import escape

    hostile = "<script>alert(1)</script>\"'&amp;"
    shown = str(escape(hostile))  # « &lt;script&gt;…&#34;&#39;&amp;amp; »
    page = client.get(f"/recherche?statut=abandonne&statut={quote(hostile)}").get_data(as_text=True)
    assert "<script>alert" not in page and page.count("alert(1)") >= 8
    assert all(page[:m.start()].endswith(("&lt;script&gt;", "%3Cscript%3E"))
               for m in re.finditer(r"alert\(1\)", page))  # each time escaped, or percent-encoded in a link
    assert f'<input type="checkbox" name="statut" value="{shown}" id="f-statut-2" aria-labelledby="l-statut-2 ' \
           f'n-statut-2" checked> <span><span id="l-statut-2" aria-current="true">{shown}</span> <span class="n" ' \
           f'id="n-statut-2">(0)</span>' in page
    adding = re.findall(r'<a href="(/recherche\?q=&amp;sort=date_maj&amp;statut=abandonne&amp;statut=[^"]+)" id="l-',
                        page)
    assert len(adding) > 10 and all(f"statut={escape(quote_plus(hostile))}&amp;" in link for link in adding)
    assert f"Statut : {shown} <a " in page
    # the same on the facets the registry computes (no field of the standard: their labels are its own words)
    for name in ("resultats_en_retard", "cibles_modifiees", "annee_debut", "region", "departement"):
        answer = client.get(f"/recherche?{name}=oui&{name}={quote(hostile)}")
        text = answer.get_data(as_text=True)
        assert answer.status_code == 200 and "<script>alert" not in text and f">{shown}</span>" in text, name
    # each value's link holds all the others: a page of thousands would be quadratic (2,000: 71 MB); refused
    flood = client.get("/recherche?" + "&".join(f"domaine=v{i}" for i in range(2000)))
    assert flood.status_code == 400 and "Trop de valeurs de filtre : 2000 (au plus 300)" in flood.get_data(
        as_text=True)



@pytest.mark.parametrize("search_registry", [("sqlite", "whoosh"), ("postgresql", "postgresql")], indirect=True,
                         ids=["whoosh", "postgresql-fts"])
def test_the_search_page_follows_the_index(search_registry: Registry) -> None:
    """Pages are kept in memory per index version: a record published after a search is found by the same search,
    and the home and statistics pages count it."""
    from web.pages.memory import forget

    forget(str(search_registry.settings.home))
    client = site(search_registry).test_client()
    assert search_index.version(search_registry, Caller.operator()) is not None  # so pages are kept
    assert "0 expérience" in client.get("/recherche?q=zeppelin").get_data(as_text=True)
    assert "0 expérience" in client.get("/recherche?q=zeppelin").get_data(as_text=True)  # now from memory
    home = client.get("/").get_data(as_text=True)
    assert "zeppelin" not in home and home == client.get("/").get_data(as_text=True)
    assert '<span class="value">4</span> expériences publiées' in client.get("/statistiques").get_data(as_text=True)
    row = {**example(PARIS), "id_experience": "217500016-2023-099", "intitule": "Un zeppelin de mesure"}
    assert experiences.publish_upload(search_registry, Caller.operator(), csv_bytes([row]), "z.csv").accepted
    page = client.get("/recherche?q=zeppelin").get_data(as_text=True)
    assert "1 expérience, succès" in page and "Un zeppelin de mesure" in page
    assert "Un zeppelin de mesure" in client.get("/").get_data(as_text=True)  # the home page's latest updates
    assert '<span class="value">5</span> expériences publiées' in client.get("/statistiques").get_data(as_text=True)
    # a record page as anonymous readers see it is kept too, until its next revision
    assert "Un zeppelin de mesure" in client.get("/experiences/217500016-2023-099").get_data(as_text=True)
    renamed = {**row, "intitule": "Un dirigeable de mesure"}
    assert experiences.publish_upload(search_registry, Caller.operator(), csv_bytes([renamed]), "z.csv").accepted
    assert "Un dirigeable de mesure" in client.get("/experiences/217500016-2023-099").get_data(as_text=True)


def test_the_pages_memory_keeps_the_most_recently_used() -> None:
    from web.pages.memory import PageCache

    memory = PageCache(2)
    memory.put(("a",), ("A", 200))
    memory.put(("b",), ("B", 200))
    assert memory.get(("a",)) == ("A", 200)  # now the most recent
    memory.put(("c",), ("C", 404))
    assert memory.get(("b",)) is None and memory.get(("a",)) == ("A", 200) and memory.get(("c",)) == ("C", 404)


def test_pages_computed_by_one_process_are_read_by_the_others(sqlite_registry: Registry,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """The pages' memory has a second level shared by a server's processes (files under <home>/pages): a page
    computed by one worker is sent by another without computing it; never across index versions; a damaged
    file or a folder that cannot be written only means the page is computed."""
    from registry import shared_files
    from web.pages import memory

    home = str(sqlite_registry.settings.home)
    memory.forget(home)
    client = site(sqlite_registry).test_client()
    first = client.get("/recherche?q=capteurs&statut=termine")
    assert first.status_code == 200 and "Capteurs" in first.get_data(as_text=True)
    stored = [p for p in (Path(home) / "pages").rglob("*") if p.is_file()]
    assert stored and not any(p.name.startswith(".tmp-") for p in stored)
    searched: list[object] = []
    real_search = search_index.search
    monkeypatch.setattr(search_index, "search", lambda *a, **k: searched.append(a) or real_search(*a, **k))
    memory.PAGES.clear()  # another process: nothing in its own memory
    again = client.get("/recherche?q=capteurs&statut=termine")
    assert again.get_data() == first.get_data() and searched == []  # read, not computed
    for page in stored:  # damaged files: computed again, the same page
        page.write_bytes(b"\x00garbage")
    memory.PAGES.clear()
    assert client.get("/recherche?q=capteurs&statut=termine").get_data() == first.get_data() and searched
    # a write: a new index version, its own folder; the older one removed once untouched for STALE seconds
    monkeypatch.setattr(shared_files, "STALE", 0.0)
    row = {**example(PARIS), "id_experience": "217500016-2023-098", "intitule": "Capteurs de crue"}
    assert experiences.publish_upload(sqlite_registry, Caller.operator(), csv_bytes([row]), "c.csv").accepted
    fresh = client.get("/recherche?q=capteurs&statut=termine").get_data(as_text=True)
    assert "Capteurs de crue" in fresh
    folders = list((Path(home) / "pages").iterdir())
    assert len(folders) == 1 and stored[0].parent not in folders
    # a folder that cannot be made: pages are still sent, from this process's memory
    memory.forget(home)
    (Path(home) / "pages").write_text("not a folder")
    assert "Capteurs de crue" in client.get("/recherche?q=capteurs&statut=termine").get_data(as_text=True)
    memory.PAGES.clear()
    assert client.get("/recherche?q=capteurs&statut=termine").status_code == 200


def test_a_nul_character_in_a_url_is_a_404_in_a_path_and_never_an_internal_error(registry: Registry) -> None:
    """Every GET route, its path parameters holding a NUL character (PostgreSQL refuses one in a text: the record
    routes were a 500 there): « not found », in HTML or in JSON, and the record itself still served."""
    import re

    assert experiences.publish_upload(registry, Caller.operator(), csv_bytes([example(PARIS)]), "p.csv").accepted
    app = site(registry)
    client = app.test_client()
    routes = sorted({r.rule for r in app.url_map.iter_rules() if "GET" in (r.methods or ()) and "<" in r.rule})
    assert len(routes) > 10
    for rule in routes:
        url = re.sub(r"<[^>]+>", f"{PARIS}%00", rule)
        assert client.get(url).status_code == 404, url
        assert client.get(url, headers={"Accept": "application/json"}).status_code == 404, url
    assert client.get(f"/experiences/{PARIS}").status_code == 200
    # and in the query string of every GET route: a refusal or nothing found, never an internal error
    hostile = "?id=a%00b&q=a%00b&siren=1%00&fq=a%00&page=1%00&organisation=a%00b&format=a%00&sort=%00&lang=%00"
    for rule in sorted({r.rule for r in app.url_map.iter_rules() if "GET" in (r.methods or ())}):
        url = re.sub(r"<[^>]+>", PARIS, rule) + hostile
        assert client.get(url).status_code != 500, url


def test_the_shared_answers_can_live_in_another_folder(tmp_path: Path, clock: Clock,
                                                       postgres: PostgresServer | None) -> None:
    """`shared_dir` (a memory file system in production): the pages and PostgreSQL's counts shared by a server's
    processes are written there, nothing of them in the instance folder."""
    from registry import search
    from registry.config import load_settings
    from web.pages import memory

    shared = tmp_path / "run"
    reg = Registry(load_settings(home=str(tmp_path / "instance"), shared_dir=str(shared)), clock=clock)
    reg.migrate()
    memory.forget(str(shared))
    client = site(reg).test_client()
    assert client.get("/recherche?q=capteurs&statut=termine").status_code == 200
    assert [p for p in (shared / "pages").rglob("*") if p.is_file()]
    assert not (tmp_path / "instance" / "pages").exists()
    reg.close()
    if postgres is None:
        unavailable("PostgreSQL", RuntimeError("no server could be started"))
    assert postgres is not None
    url = postgres.create_database(f"shared_{abs(hash(tmp_path)) % 10**8}")
    pg = Registry(load_settings(home=str(tmp_path / "pg"), database_url=url, search_backend="postgresql",
                                shared_dir=str(shared)), clock=clock)
    pg.migrate()
    assert search.backend(pg).home == str(shared)  # type: ignore[attr-defined]
    pg.close()
