"""The researchers' site in a real Chromium (Debian's, driven by Playwright) against a real server on the demo
data: a search -> filter -> open -> export journey, and every page type at 1280 px and 390 px (screenshots kept
under pytest's tmp dir) without horizontal overflow. A missing Chromium fails (tests/conftest.py: unavailable)."""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from werkzeug.serving import make_server

from registry import bulk
from registry.actions import Caller, experiences
from registry.config import load_settings
from registry.paths import DEMO_DIR
from registry.store import Registry

pytestmark = pytest.mark.xdist_group("browser")
DEMO_ID = "213105554-2020-001"
PAGE_TYPES = {
    "accueil": "/",
    "recherche": "/recherche?q=capteurs&statut=abandonne&statut=termine",
    "recherche-hors-limites": "/recherche?page=99",
    "fiche": f"/experiences/{DEMO_ID}",
    "diff": f"/experiences/{DEMO_ID}/diff",
    "statistiques": "/statistiques",
    "conformite": "/conformite",
    "organisations": "/organisations",
    "organisation": f"/organisations/{DEMO_ID[:9]}",
    "standard": "/standard",
    "erreur": "/experiences/000000000-0000-000",
    "accueil-en": "/?lang=en",
}


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    from web.app import create_app

    reg = Registry(load_settings(home=str(tmp_path_factory.mktemp("site") / "instance")))
    reg.migrate()
    assert experiences.publish_file(reg, Caller.operator(), DEMO_DIR).accepted
    bulk.refresh(reg)
    server = make_server("127.0.0.1", 0, create_app(reg, dev=True), threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    reg.close()




def test_a_researchers_journey_search_filter_open_export(site: str, browser: Any, tmp_path: Path) -> None:
    context = browser.new_context(locale="fr-FR", accept_downloads=True, java_script_enabled=False)
    page = context.new_page()
    try:
        page.goto(site + "/")
        page.get_by_label("Rechercher un retour d'expérience").fill("stationnement")
        page.get_by_role("button", name="Rechercher").click()
        page.wait_for_url("**/recherche?q=stationnement*")
        status = page.get_by_role("status").inner_text()
        assert "succès comme échecs" in status
        page.locator(".facets a", has_text="Abandonné").first.click()  # a facet, without JavaScript
        page.wait_for_url("**statut=abandonne*")
        assert page.locator(".active-filters").inner_text().count("retirer") >= 1
        first = page.locator(".cards .card h3 a").first
        title = first.inner_text()
        first.click()
        page.wait_for_url("**/experiences/*")
        assert page.locator("h1").inner_text() == title
        assert page.get_by_role("heading", name="Indicateurs").count() <= 1
        page.go_back()
        assert "statut=abandonne" in page.url  # the state is in the URL: back returns to the filtered search
        with page.expect_download() as info:
            page.get_by_role("link", name="Exporter en CSV").click()
        csv_text = Path(info.value.path()).read_text(encoding="utf-8-sig")
        assert csv_text.startswith("id_experience,") and csv_text.count("\n") >= 2
        with page.expect_download() as info:
            page.get_by_role("link", name="Exporter en JSON").click()
        assert '"count"' in Path(info.value.path()).read_text(encoding="utf-8")
    finally:
        context.close()


@pytest.mark.parametrize("width", [1280, 390])
def test_every_page_type_fits_the_screen(site: str, browser: Any, width: int, tmp_path_factory: pytest.TempPathFactory
                                         ) -> None:
    shots = tmp_path_factory.mktemp(f"screenshots-{width}")
    context = browser.new_context(locale="fr-FR", viewport={"width": width, "height": 900})
    page = context.new_page()
    csp: list[str] = []
    page.on("console", lambda m: csp.append(m.text) if "Content Security Policy" in m.text else None)
    try:
        for name, url in PAGE_TYPES.items():
            page.goto(site + url)
            page.screenshot(path=str(shots / f"{name}-{width}.png"), full_page=True)
            overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
            assert overflow <= 0, (name, width, overflow)
    finally:
        context.close()
    assert csp == []
    assert len(list(shots.glob("*.png"))) == len(PAGE_TYPES)


def test_facet_checkboxes_apply_then_remove_one_filter(site: str, browser: Any) -> None:
    """Without JavaScript: tick two values of a facet, « Appliquer », then remove one active filter of the two."""
    context = browser.new_context(locale="fr-FR", java_script_enabled=False)
    page = context.new_page()
    try:
        page.goto(site + "/recherche")
        total = int(page.get_by_role("status").inner_text().split()[0])
        facet = page.get_by_role("group", name="Statut")
        boxes = facet.get_by_role("checkbox")
        names = [boxes.nth(i).get_attribute("value") for i in range(2)]
        boxes.nth(0).check()
        boxes.nth(1).check()
        page.get_by_role("button", name="Appliquer").last.click()  # one above the facets, one below
        page.wait_for_url("**statut=*statut=*")
        assert all(f"statut={n}" in page.url for n in names)
        both = int(page.get_by_role("status").inner_text().split()[0])
        assert 0 < both <= total
        assert page.get_by_role("group", name="Statut").locator("input:checked").count() == 2
        removers = page.locator(".active-filters a", has_text=re.compile("^retirer"))
        assert removers.count() == 2
        with page.expect_navigation():
            removers.first.click()
        kept = [n for n in names if f"statut={n}" in page.url]
        assert len(kept) == 1 and page.locator(".active-filters a", has_text=re.compile("^retirer")).count() == 1
        assert int(page.get_by_role("status").inner_text().split()[0]) < both
        checked = page.get_by_role("group", name="Statut").locator("input:checked")
        assert checked.count() == 1 and checked.get_attribute("value") == kept[0]
    finally:
        context.close()
