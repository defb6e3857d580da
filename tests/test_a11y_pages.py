"""axe-core (from npm, tests/a11y) on every page type of the researchers' site, served to the page from the
site's own origin (a Playwright route), so that the page keeps its Content-Security-Policy: no serious or
critical WCAG 2.1 A/AA violation. `npm install --prefix tests/a11y` installs it (.ci/run); missing, it fails."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from registry.actions import Caller, accounts, experiences
from registry.store import Registry
from tests.test_browser_pages import PAGE_TYPES, site
from tests.test_browser_publish import LYON, LYON_INDICATORS, LYON_ROW, PASSWORD, live, login, member, xlsx_file

pytestmark = pytest.mark.xdist_group("browser")
AXE = Path(__file__).resolve().parent / "a11y" / "node_modules" / "axe-core" / "axe.min.js"
__all__ = ["live", "site"]
RUN_AXE = """async () => (await axe.run(document, {runOnly: {type: 'tag',
    values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa']}})).violations
    .filter(v => v.impact === 'serious' || v.impact === 'critical')
    .map(v => v.id + ': ' + v.nodes.slice(0, 3).map(n => n.target.join(' ')).join(', '))"""


def axe_and_overflow(page: Any, base: str, name: str) -> dict[str, list[str]]:
    """axe-core's serious and critical violations on the page as it is, and any horizontal overflow."""
    overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    page.add_script_tag(url=base + "/__axe.js")
    violations = page.evaluate(RUN_AXE)
    problems = [*violations, *([f"overflow {overflow}px"] if overflow > 0 else [])]
    return {name: problems} if problems else {}


def test_axe_finds_no_serious_violation_on_any_page_type(site: str, browser: Any) -> None:
    assert AXE.exists(), "axe-core missing: run `npm install --prefix tests/a11y`"
    source = AXE.read_text(encoding="utf-8")
    context = browser.new_context(locale="fr-FR")
    context.route(site + "/__axe.js", lambda route: route.fulfill(body=source, content_type="text/javascript"))
    page = context.new_page()
    found: dict[str, list[str]] = {}
    try:
        for name, url in PAGE_TYPES.items():
            for width in (1280, 390):
                page.set_viewport_size({"width": width, "height": 900})
                page.goto(site + url)
                page.add_script_tag(url=site + "/__axe.js")
                violations = page.evaluate(RUN_AXE)
                if violations:
                    found[f"{name}@{width}"] = violations
    finally:
        context.close()
    assert found == {}


def test_axe_on_the_publishers_and_admins_new_pages(live: str, browser: Any, sqlite_registry: Registry,
                                                    tmp_path: Path) -> None:
    """The upload report warning that rows will be deleted, the record page with its « Modifier » link, the admin
    page and its harvest source form (empty and refused): no serious or critical violation, at 1280 and 390 px."""
    assert AXE.exists(), "axe-core missing: run `npm install --prefix tests/a11y`"
    source = AXE.read_text(encoding="utf-8")
    first = xlsx_file(tmp_path / "a.xlsx", {"experiences": [LYON_ROW], "indicateurs": LYON_INDICATORS})
    assert experiences.publish_upload(sqlite_registry, Caller.operator(), first.read_bytes(), "a.xlsx").accepted
    member(sqlite_registry, "a@lyon.example", LYON)
    accounts.create_user(sqlite_registry, Caller.operator(), "admin@registre.example", "Admin", PASSWORD,
                         registry_admin=True)
    emptied = xlsx_file(tmp_path / "b.xlsx", {"experiences": [LYON_ROW], "indicateurs": []})
    found: dict[str, list[str]] = {}
    for email, steps in (("a@lyon.example", ("record", "upload-warning")), ("admin@registre.example",
                                                                            ("admin", "source", "source-error"))):
        context = browser.new_context(locale="fr-FR")
        context.route(live + "/__axe.js", lambda route: route.fulfill(body=source, content_type="text/javascript"))
        page = context.new_page()
        page.set_default_timeout(15_000)
        try:
            login(page, live, email)
            for name in steps:
                for width in (1280, 390):
                    page.set_viewport_size({"width": width, "height": 900})
                    if name == "record":
                        page.goto(live + f"/experiences/{LYON_ROW['id_experience']}")
                        assert page.get_by_role("link", name="Modifier cette fiche").count() == 1
                    elif name == "upload-warning":
                        page.goto(live + "/publier/deposer")
                        page.set_input_files("#fichier", str(emptied))
                        page.get_by_role("button", name="Vérifier le fichier").click()
                        expect(page.locator("#removals")).to_have_count(1)  # the report, not the form
                    elif name == "admin":
                        page.goto(live + "/admin")
                    elif name == "source":
                        page.goto(live + "/admin/moissonnage/sources/nouvelle")
                    else:
                        page.goto(live + "/admin/moissonnage/sources/nouvelle")
                        page.get_by_label("Nom de la source").fill("Pas Valide")
                        page.get_by_role("button", name="Ajouter la source").click()
                        expect(page.get_by_role("alert")).to_have_count(1)
                    found.update(axe_and_overflow(page, live, f"{name}@{width}"))
        finally:
            context.close()
    assert found == {}
