"""Open data out: bulk downloads (frictionless validate, ETag/Last-Modified/304, rebuilt only on change),
the Atom feed (filterable like the search), sitemap.xml, robots.txt, the open-data page, and hostile content
escaped or neutralised in every format. Also the support the other open-data tests share (demo registry,
a live server on 127.0.0.1)."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
import threading
import urllib.error
import urllib.request
import zipfile
from collections.abc import Iterator
from pathlib import Path
from xml.etree import ElementTree as ET

import pytest
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.serving import make_server

from registry import bulk
from registry.actions import Caller, experiences
from registry.config import load_settings
from registry.paths import DEMO_DIR
from registry.store import Registry
from tests.helpers import csv_bytes, example

DEMO_ID = "213105554-2020-001"
DEMO_COUNT = 43
PARIS = "217500016-2023-001"
SCRIPT = "<script>alert('x')</script> & </title>"
HOSTILE = {"intitule": f"Capteurs {SCRIPT}", "resume": "=HYPERLINK(\"http://evil\") " + "\x07bip\x1b " * 5 + "fin.",
           "solution": "@SUM(1+1)\r-cmd|' /C calc'!A0"}
ATOM = "{http://www.w3.org/2005/Atom}"


def demo_registry(home: Path, base_url: str = "http://127.0.0.1:5000", url: str = "") -> Registry:
    reg = Registry(load_settings(home=str(home), base_url=base_url, database_url=url))
    reg.migrate()
    assert experiences.publish_file(reg, Caller.operator(), DEMO_DIR).accepted
    return reg


def add_hostile(reg: Registry) -> None:
    result = experiences.publish_upload(reg, Caller.operator("upload"), csv_bytes([{**example(PARIS), **HOSTILE}]),
                                        "hostile.csv")
    assert result.accepted, result.report.issues


class LiveServer:
    """The app on a real socket on 127.0.0.1 (werkzeug), in a thread."""

    def __init__(self, app: Flask) -> None:
        self.server = make_server("127.0.0.1", 0, app, threaded=True)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()


def serve(reg_factory: type[Registry] | None, home: Path) -> Iterator[tuple[Registry, LiveServer]]:
    """A demo registry whose base URL is the address of its own live server (as in production)."""
    from web.app import create_app

    sock = make_server("127.0.0.1", 0, Flask("probe"))
    port = sock.server_port
    sock.server_close()
    reg = demo_registry(home, base_url=f"http://127.0.0.1:{port}")
    add_hostile(reg)
    app = create_app(reg, dev=True)
    server = make_server("127.0.0.1", port, app, threaded=True)
    live = LiveServer.__new__(LiveServer)
    live.server, live.url = server, f"http://127.0.0.1:{port}"
    live.thread = threading.Thread(target=server.serve_forever, daemon=True)
    live.thread.start()
    yield reg, live
    live.stop()
    reg.close()


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    reg = demo_registry(tmp_path_factory.mktemp("opendata") / "instance")
    add_hostile(reg)
    yield reg
    reg.close()


@pytest.fixture(scope="module")
def app(demo: Registry) -> Flask:
    from web.app import create_app

    return create_app(demo, dev=True)


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


# ---------------------------------------------------------------- bulk downloads

def test_bulk_is_built_in_the_background_only_and_rebuilt_only_after_a_change(tmp_path: Path,
                                                                              client: FlaskClient) -> None:
    reg = demo_registry(tmp_path / "instance")
    try:
        from web.app import create_app

        c = create_app(reg, dev=True).test_client()
        answer = c.get("/opendata/registre-territoires-connectes.zip")
        assert answer.status_code == 503 and answer.headers["Retry-After"] == "60"  # never built by a request
        assert not (tmp_path / "instance" / "bulk" / bulk.ZIP_NAME).exists()
        assert bulk.refresh(reg) is True
        assert bulk.refresh(reg) is False  # nothing changed: nothing rebuilt
        first = c.get("/opendata/registre-territoires-connectes.zip")
        assert first.status_code == 200 and first.headers["ETag"] and first.headers["Last-Modified"]
        again = c.get("/opendata/registre-territoires-connectes.zip", headers={"If-None-Match": first.headers["ETag"]})
        assert again.status_code == 304 and not again.data
        since = c.get("/opendata/experiences.csv", headers={"If-Modified-Since": first.headers["Last-Modified"]})
        assert since.status_code == 304
        add_hostile(reg)
        assert bulk.refresh(reg) is True
        etag = {"If-None-Match": first.headers["ETag"]}
        changed = c.get("/opendata/registre-territoires-connectes.zip", headers=etag)
        assert changed.status_code == 200
        experiences.withdraw(reg, Caller.operator(), PARIS, "Fiche publiée en double.")
        assert bulk.refresh(reg) is True  # a withdrawal is a change too
        rows = list(csv.DictReader(io.StringIO(c.get("/opendata/experiences.csv").get_data(as_text=True))))
        assert len(rows) == DEMO_COUNT and PARIS not in {r["id_experience"] for r in rows}
    finally:
        reg.close()


def test_bulk_zip_passes_frictionless_validate_and_neutralises_formulas(demo: Registry, client: FlaskClient,
                                                                        tmp_path: Path) -> None:
    bulk.refresh(demo)
    data = client.get("/opendata/registre-territoires-connectes.zip").data
    (tmp_path / "z").mkdir()
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        assert sorted(zf.namelist()) == ["acteurs.csv", "datapackage.json", "documents.csv", "enseignements.csv",
                                         "experiences.csv", "indicateurs.csv"]
        zf.extractall(tmp_path / "z")
    frictionless = Path(sys.executable).with_name("frictionless")
    proc = subprocess.run([str(frictionless), "validate", str(tmp_path / "z" / "datapackage.json")],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:]
    package = json.loads((tmp_path / "z" / "datapackage.json").read_text(encoding="utf-8"))
    counts = {r["name"]: r["count"] for r in package["resources"]}
    assert counts["experiences"] == DEMO_COUNT + 1
    with (tmp_path / "z" / "experiences.csv").open(encoding="utf-8", newline="") as fh:
        rows = {r["id_experience"]: r for r in csv.DictReader(fh)}
    assert rows[PARIS]["resume"].startswith("'=HYPERLINK")  # neutralised for spreadsheets
    assert rows[PARIS]["solution"] == "'" + HOSTILE["solution"]  # bare CR kept inside a quoted cell
    assert client.get("/datapackage.json").get_json()["name"].endswith("-export")
    assert client.get("/export").data == data


def test_one_experience_as_csv_in_the_standard(client: FlaskClient) -> None:
    answer = client.get(f"/opendata/experiences/{PARIS}.csv")
    assert answer.status_code == 200 and answer.mimetype == "text/csv"
    rows = list(csv.DictReader(io.StringIO(answer.get_data(as_text=True), newline="")))
    assert len(rows) == 1 and rows[0]["intitule"] == HOSTILE["intitule"] and rows[0]["resume"].startswith("'=")
    assert client.get("/opendata/experiences/000000000-0000-000.csv").status_code == 404
    assert client.get("/opendata/nope.csv").status_code == 404


# ---------------------------------------------------------------- feed, sitemap, robots, page

def test_atom_feed_is_valid_xml_filterable_like_the_search_and_escaped(client: FlaskClient) -> None:
    answer = client.get("/feeds/experiences.atom")
    assert answer.status_code == 200 and answer.mimetype == "application/atom+xml"
    feed = ET.fromstring(answer.data)
    entries = feed.findall(f"{ATOM}entry")
    assert len(entries) == DEMO_COUNT + 1
    titles = {e.find(f"{ATOM}title").text for e in entries}
    assert HOSTILE["intitule"] in titles  # the text survives, as text
    assert b"<script>" not in answer.data and b"&lt;script&gt;" in answer.data
    assert b"\x07" not in answer.data and b"\x1b" not in answer.data
    abandoned = ET.fromstring(client.get("/feeds/experiences.atom?statut=abandonne").data)
    listed = client.get("/api/v1/search?statut=abandonne&limit=100").get_json()
    assert len(abandoned.findall(f"{ATOM}entry")) == listed["count"] > 0
    worded = ET.fromstring(client.get("/feeds/experiences.atom?q=stationnement").data)
    assert 0 < len(worded.findall(f"{ATOM}entry")) < DEMO_COUNT
    assert client.get("/feeds/experiences.atom?statut=nope").status_code == 400
    assert client.get("/feeds/experiences.atom?limit=0").status_code == 400


def test_sitemap_and_robots(client: FlaskClient) -> None:
    sitemap = ET.fromstring(client.get("/sitemap.xml").data)
    locs = [e.text for e in sitemap.iter("{http://www.sitemaps.org/schemas/sitemap/0.9}loc")]
    assert len(locs) == DEMO_COUNT + 1 + 2 and any(loc.endswith(f"/experiences/{DEMO_ID}") for loc in locs)
    robots = client.get("/robots.txt").get_data(as_text=True)
    assert "Sitemap: http://localhost/sitemap.xml" in robots and "Disallow: /api/" in robots


def test_the_open_data_page_lists_every_download_feed_and_api(client: FlaskClient) -> None:
    page = client.get("/opendata").get_data(as_text=True)
    for part in ("/catalog.ttl", "/catalog.jsonld", "/catalog.rdf", "/api/3/action/package_search",
                 "/api/openapi.json", "/feeds/experiences.atom", "/sitemap.xml", "registre-territoires-connectes.zip",
                 "experiences.csv", "/api/v1/search"):
        assert part in page, part
    assert "Données ouvertes sous Licence Ouverte" in page and '<html lang="fr">' in page
    assert "Open data: downloads" in client.get("/opendata?lang=en").get_data(as_text=True)


def test_schema_org_json_cannot_close_its_script_element(demo: Registry) -> None:
    from registry.actions import catalog
    from registry.serialize import dataset_ld, script_json

    view = catalog.package_show(demo, Caller.anonymous(), PARIS)
    text = script_json(dataset_ld(view, "http://127.0.0.1:5000"))
    assert "</script" not in text and "<" not in text
    assert json.loads(text)["name"] == HOSTILE["intitule"]


def test_one_experience_as_a_data_package_of_every_table(tmp_path: Path) -> None:
    """What the project's own CKAN harvester reads from another registry: valid for frictionless, all tables."""
    for _reg, live in serve(None, tmp_path / "instance"):
        url = f"{live.url}/opendata/experiences/{DEMO_ID}/datapackage.json"
        frictionless = Path(sys.executable).with_name("frictionless")
        proc = subprocess.run([str(frictionless), "validate", url], capture_output=True, text=True, timeout=300,
                              cwd=tmp_path)
        assert proc.returncode == 0, proc.stdout[-3000:]
        with urllib.request.urlopen(url, timeout=30) as resp:
            package = json.loads(resp.read())
        assert [r["name"] for r in package["resources"]] == ["experiences", "indicateurs", "enseignements",
                                                            "acteurs", "documents"]
        with urllib.request.urlopen(package["resources"][1]["path"], timeout=30) as resp:
            rows = list(csv.DictReader(io.StringIO(resp.read().decode("utf-8"), newline="")))
        assert rows and {r["id_experience"] for r in rows} == {DEMO_ID}
        with pytest.raises(urllib.error.HTTPError):
            urllib.request.urlopen(f"{live.url}/opendata/experiences/{DEMO_ID}/nope.csv", timeout=30)


def test_a_large_sitemap_becomes_an_index_of_pages(client: FlaskClient, monkeypatch: pytest.MonkeyPatch) -> None:
    import web.opendata

    monkeypatch.setattr(web.opendata, "SITEMAP_SIZE", 10)
    ns = "{http://www.sitemaps.org/schemas/sitemap/0.9}"
    index = ET.fromstring(client.get("/sitemap.xml").data)
    assert index.tag == f"{ns}sitemapindex"
    pages = [e.text for e in index.iter(f"{ns}loc")]
    assert len(pages) == -(-(DEMO_COUNT + 1) // 10)
    seen = []
    for url in pages:
        page = ET.fromstring(client.get(url.replace("http://localhost", "")).data)
        seen += [e.text for e in page.iter(f"{ns}loc") if "/experiences/" in e.text]
    assert len(seen) == len(set(seen)) == DEMO_COUNT + 1
    assert client.get(f"/sitemaps/{len(pages) + 1}.xml").status_code == 404
    assert client.get("/sitemaps/0.xml").status_code == 404
