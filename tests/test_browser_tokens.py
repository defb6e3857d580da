"""A territory's organisation admin makes an API token on the site (real Chromium), a program uses it over real
HTTP to update one of the organisation's records, the admin revokes it and the program is refused. axe-core on
the token page (with the secret shown, and the list), at 1280 and 390 px, without horizontal overflow."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from registry.actions import Caller, experiences
from registry.store import Registry
from tests.test_a11y_pages import AXE, axe_and_overflow
from tests.test_browser_publish import LYON, LYON_INDICATORS, LYON_ROW, live, login, member, xlsx_file

pytestmark = pytest.mark.xdist_group("browser")
__all__ = ["live"]


def _patch(url: str, secret: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    request = urllib.request.Request(url, data=json.dumps(body).encode(), method="PATCH",
                                     headers={"Authorization": f"Bearer {secret}", "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return answer.status, json.load(answer)
    except urllib.error.HTTPError as exc:
        return exc.code, json.load(exc)


def test_an_organisation_admin_makes_uses_and_revokes_a_token(browser: Any, live: str, sqlite_registry: Registry,
                                                              tmp_path: Path) -> None:
    exp_id = LYON_ROW["id_experience"]
    first = xlsx_file(tmp_path / "a.xlsx", {"experiences": [LYON_ROW], "indicateurs": LYON_INDICATORS})
    assert experiences.publish_upload(sqlite_registry, Caller.operator(), first.read_bytes(), "a.xlsx").accepted
    member(sqlite_registry, "dsi@lyon.example", LYON)  # the first member of an organisation: its admin
    source = AXE.read_text(encoding="utf-8")
    context = browser.new_context(locale="fr-FR")
    context.route(live + "/__axe.js", lambda route: route.fulfill(body=source, content_type="text/javascript"))
    page = context.new_page()
    page.set_default_timeout(15_000)
    found: dict[str, list[str]] = {}

    def check(name: str) -> None:
        for width in (1280, 390):
            page.set_viewport_size({"width": width, "height": 900})
            found.update(axe_and_overflow(page, live, f"{name}@{width}"))

    try:
        login(page, live, "dsi@lyon.example")
        page.goto(live + "/compte")
        page.get_by_role("link", name="Jetons d'API").click()
        page.get_by_label("Nom du jeton").fill("Export SIG nocturne")
        page.get_by_role("button", name="Créer le jeton").click()
        secret = page.get_by_label("Jeton", exact=True).input_value()
        assert secret.startswith("rtc_")
        check("token-shown")
        url = f"{live}/api/v1/experiences/{exp_id}"
        status, body = _patch(url, secret, {"resume": "Résumé mis à jour par le programme du SIG."})
        assert status == 200 and body["outcomes"][0]["action"] == "updated", body
        now = experiences.get(sqlite_registry, Caller.operator(), exp_id)
        assert now.record["experiences"]["resume"] == "Résumé mis à jour par le programme du SIG."
        page.goto(live + "/compte/jetons")
        assert secret not in page.content() and page.get_by_text("Export SIG nocturne").count() == 1
        check("token-list")
        with page.expect_navigation():
            page.get_by_role("button", name="Révoquer le jeton Export SIG nocturne").click()
        assert page.get_by_role("status").filter(has_text="révoqué").count() >= 1 or "révoqué" in page.content()
        status, body = _patch(url, secret, {"resume": "Une écriture après la révocation du jeton."})
        assert status == 401 and body["error"]["code"] == "invalid_token"
        assert experiences.get(sqlite_registry, Caller.operator(), exp_id).revision == now.revision
    finally:
        context.close()
    assert found == {}
