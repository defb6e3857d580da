"""Every route and every command on the demo data: status, the shape of the JSON, French text."""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import click
import pytest
from flask import Flask
from flask.testing import FlaskClient

from registry import bulk
from registry.actions import Caller, experiences
from registry.actions import index as search_index
from registry.cli import cli, load_plugins
from registry.cli.i18n import catalogue, help_texts, walk
from registry.config import load_settings
from registry.paths import DEMO_DIR
from registry.standard import MAIN_RESOURCE, get_standard
from registry.store import Registry

DEMO_ID = "213105554-2020-001"


@pytest.fixture(scope="module")
def demo_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Flask]:
    from web.app import create_app

    reg = Registry(load_settings(home=str(tmp_path_factory.mktemp("demo") / "instance")))
    reg.migrate()
    assert experiences.publish_file(reg, Caller.operator(), DEMO_DIR).accepted
    bulk.refresh(reg)  # the bulk downloads, as background work builds them
    yield create_app(reg, dev=True)
    reg.close()


@pytest.fixture
def client(demo_app: Flask) -> FlaskClient:
    return demo_app.test_client()


# A sample value for each URL parameter of the site; a route with a parameter not listed here fails the test
# below, so that every new route is smoke-tested too.
SAMPLES = {"exp_id": DEMO_ID, "name": "status_show", "siren": DEMO_ID[:9], "number": "1", "old": "1", "new": "1",
           "fmt": "ttl", "table": "experiences", "filename": "site.css", "rest": "inconnu",
           "download": "experiences.csv", "chart": "resultats_par_domaine",
           "schema_file": "experiences/schema.json", "token": "jeton-perime", "draft_id": "1",
           "step": "preinscription", "job_id": "1"}
CATCH_ALL = ("rest",)  # parameters of catch-all routes: their sample must answer a 404 in the API's format


def routes(app: Flask) -> list[str]:
    urls = []
    for rule in app.url_map.iter_rules():
        if "GET" not in (rule.methods or ()) or rule.endpoint == "static":
            continue
        url = rule.rule
        for arg in rule.arguments:
            assert arg in SAMPLES, f"add a sample value for <{arg}> ({rule.rule}) to SAMPLES"
            url = re.sub(rf"<(?:[a-z]+:)?{arg}>", SAMPLES[arg], url)
        urls.append(url)
    return sorted(urls)


def test_every_route_answers_on_the_demo_data(client: FlaskClient, demo_app: Flask) -> None:
    urls = routes(demo_app)
    assert {"/", "/api/search", "/api/experiences", f"/experiences/{DEMO_ID}"} <= set(urls)
    for url in urls:
        answer = client.get(url)
        if url.endswith(tuple(SAMPLES[a] for a in CATCH_ALL)):
            assert answer.status_code == 404 and answer.is_json, url
            continue
        if answer.status_code == 302 and answer.headers["Location"].startswith("/compte/connexion"):
            continue  # a page for logged-in users (web/publish, web/admin): the login page, tested there
        if answer.status_code == 401 and answer.headers.get("WWW-Authenticate", "").startswith("Bearer"):
            assert answer.is_json and answer.get_json()["error"]["code"] == "unauthorized", url
            continue  # an API route for token bearers (web/api/writes.py): tested in test_api_write.py
        assert answer.status_code == 200, url
        if answer.is_json:
            assert answer.get_json(), url
        elif answer.mimetype == "text/html":
            page = answer.get_data(as_text=True)
            assert '<html lang="fr">' in page and "Données ouvertes sous Licence Ouverte" in page, url
        for name in ("X-Frame-Options", "Referrer-Policy", "Content-Security-Policy", "X-Content-Type-Options"):
            assert name in answer.headers, (url, name)
        assert "frame-ancestors 'none'" in answer.headers["Content-Security-Policy"]


def test_search_api_without_a_filter_and_with_each_facet_value(client: FlaskClient) -> None:
    data = client.get("/api/search").get_json()
    assert data["count"] == 43 and len(data["results"]) == 25
    assert set(data) == {"q", "filters", "sort", "offset", "limit", "page", "count", "total_relation", "facets_exact",
                         "suggestion", "results", "facets"}
    assert data["total_relation"] == "eq" and data["facets_exact"]  # exact: the counts below add up
    for facet in data["facets"].values():
        assert facet["label"] and all(v["value"] and v["label"] and v["count"] > 0 for v in facet["values"])
    counts_of = {name: {v["value"]: v["count"] for v in f["values"]} for name, f in data["facets"].items()}
    assert set(counts_of) == set(search_index.facet_fields())
    for name, counts in counts_of.items():
        for code, n in counts.items():  # each count is what choosing that value returns
            found = client.get(f"/api/search?{name}={code}").get_json()
            assert found["filters"] == {name: [code]} and found["count"] == n, (name, code)
        spec = get_standard().table(MAIN_RESOURCE).by_name.get(name)
        if spec is None or not spec.is_list:  # single-valued facets partition the registry
            assert sum(counts.values()) == 43, name
        for code in (spec.codes or ()) if spec else ():  # every code of the standard has its page
            page = client.get(f"/recherche?{name}={code}")
            assert page.status_code == 200 and "None" not in page.get_data(as_text=True)


def test_unknown_urls_answer_404_in_the_right_format(client: FlaskClient) -> None:
    api = client.get("/api/nope")
    assert api.status_code == 404 and api.is_json and api.get_json()["error"]["message"] == "Page introuvable."
    assert api.get_json()["error"]["code"] == "not_found" and api.get_json()["error"]["message_en"] == "Not found."
    posted = client.post("/api/v2/nope", json={})
    assert posted.status_code in (404, 405)
    assert posted.get_json()["error"]["code"] in ("not_found", "method_not_allowed")
    page = client.get("/nope")
    assert page.status_code == 404 and "Page introuvable" in page.get_data(as_text=True)
    assert client.get("/api/experiences/000000000-0000-000").status_code == 404
    assert client.get("/api/search?page=0").status_code == 400
    assert client.get("/api/search?page=99999999999999999999").status_code == 400


def test_a_wrong_method_says_which_are_allowed(client: FlaskClient) -> None:
    answer = client.delete("/api/search")
    assert answer.status_code == 405 and answer.is_json
    assert set(answer.headers["Allow"].replace(" ", "").split(",")) >= {"GET", "HEAD"}


def test_no_server_name_or_python_version_in_headers(client: FlaskClient) -> None:
    # The Flask test client has no server; the development server's header is checked in test_cli.
    assert "Python" not in client.get("/").headers.get("Server", "")


def all_commands() -> list[click.Command]:
    load_plugins(cli)
    return walk(cli)


def test_every_command_has_its_help_in_english() -> None:
    english = catalogue("cli.en.json")
    missing = [t for t in help_texts(cli) if t not in english and t != "Show this message and exit."]
    assert not missing, f"add these to registry/locale/cli.en.json: {missing}"


@pytest.mark.parametrize("args", [["history"], ["validate", "--max-errors", "x", "f.csv"], ["nope"],
                                  ["search", "--filter", "x"], ["import", "--no-such-option", "f"]])
def test_command_line_errors_read_in_french(tmp_path: Path, args: list[str]) -> None:
    proc = subprocess.run([sys.executable, "-m", "registry", *args], capture_output=True, text=True, timeout=120,
                          env={"PATH": "/usr/bin:/bin", "REGISTRY_HOME": str(tmp_path / "i")})
    assert proc.returncode == 2, proc.stderr
    assert "Erreur :" in proc.stderr and "Utilisation : registry" in proc.stderr
    assert not any(w in proc.stderr for w in ("Error", "Usage", "Missing", "No such", "is not", "Try "))


def test_english_on_request(tmp_path: Path) -> None:
    for env, args in (({"LANG": "en_GB.UTF-8"}, ["history"]), ({}, ["--lang", "en", "history"]),
                      ({"REGISTRY_LANG": "en"}, ["history"])):
        proc = subprocess.run([sys.executable, "-m", "registry", *args], capture_output=True, text=True,
                              timeout=120, env={"PATH": "/usr/bin:/bin", **env})
        assert "Error: Missing argument 'ID'." in proc.stderr and "Usage: registry" in proc.stderr, env


def test_the_web_and_harvest_commands_come_by_entry_point() -> None:
    names = {c.name for c in all_commands()}
    assert {"serve", "demo"} <= names


def test_an_internal_error_answers_in_french(demo_app: Flask, monkeypatch: pytest.MonkeyPatch) -> None:
    from registry.actions import experiences as actions

    def broken(*_args: object, **_kw: object) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr(actions, "listing", broken)
    monkeypatch.setattr(actions, "get_with_history", broken)
    from web.pages.memory import forget

    forget(str(demo_app.config["REGISTRY"].settings.home))  # a record page seen by an earlier test is kept
    client = demo_app.test_client()
    api = client.get("/api/experiences")
    assert api.status_code == 500 and api.get_json()["error"]["message"] == "Erreur interne du registre."
    page = client.get(f"/experiences/{DEMO_ID}")
    assert page.status_code == 500 and "Erreur interne du registre." in page.get_data(as_text=True)
    assert "boom" not in page.get_data(as_text=True) and "Traceback" not in page.get_data(as_text=True)
