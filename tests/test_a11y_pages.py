"""axe-core (from npm, tests/a11y) on every page type of the researchers' site, served to the page from the
site's own origin (a Playwright route), so that the page keeps its Content-Security-Policy: no serious or
critical WCAG 2.1 A/AA violation. `npm install --prefix tests/a11y` installs it (.ci/run); missing, it fails."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.test_browser_pages import PAGE_TYPES, site

pytestmark = pytest.mark.xdist_group("browser")
AXE = Path(__file__).resolve().parent / "a11y" / "node_modules" / "axe-core" / "axe.min.js"
__all__ = ["site"]


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
                violations = page.evaluate("""async () => (await axe.run(document, {runOnly: {type: 'tag',
                    values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa']}})).violations
                    .filter(v => v.impact === 'serious' || v.impact === 'critical')
                    .map(v => v.id + ': ' + v.nodes.slice(0, 3).map(n => n.target.join(' ')).join(', '))""")
                if violations:
                    found[f"{name}@{width}"] = violations
    finally:
        context.close()
    assert found == {}
