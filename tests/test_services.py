"""The real services used by the suite work here: PostgreSQL (throwaway cluster) and headless Chromium.

A missing service fails these tests, unless REGISTRY_ALLOW_MISSING_SERVICES=1 (local work only) skips them.
"""

from __future__ import annotations

import html
import os
import threading
import time
import urllib.parse
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, NoReturn

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import OperationalError

from tests.services import (
    CHROMIUM_ARGS,
    DATABASE_URL_ENV,
    PostgresServer,
    ServiceUnavailable,
    chromium_path,
    services_required,
    start_postgres,
)


def _unavailable(reason: str) -> NoReturn:
    """Skip, or fail when CI requires every service."""
    if services_required():
        pytest.fail(f"required service unavailable: {reason}", pytrace=False)
    pytest.skip(reason)


def _start(base: Path) -> PostgresServer:
    try:
        return start_postgres(base)
    except ServiceUnavailable as exc:
        _unavailable(str(exc))


def _write_and_read(url: str, label: str) -> list[str]:
    """Create a table, insert `label`, return every label stored in that database."""
    engine = sa.create_engine(url)
    try:
        with engine.begin() as conn:
            conn.execute(sa.text("CREATE TABLE IF NOT EXISTS note (id serial PRIMARY KEY, label text)"))
            conn.execute(sa.text("INSERT INTO note (label) VALUES (:label)"), {"label": label})
        with engine.connect() as conn:
            return list(conn.execute(sa.text("SELECT label FROM note ORDER BY id")).scalars())
    finally:
        engine.dispose()


def _tables(url: str) -> list[str]:
    engine = sa.create_engine(url)
    try:
        return sa.inspect(engine).get_table_names()
    finally:
        engine.dispose()


def test_postgres_cluster_isolated_databases_and_stop(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, record_property: Any
) -> None:
    monkeypatch.delenv(DATABASE_URL_ENV, raising=False)  # this test is about our own cluster
    t0 = time.monotonic()
    server = _start(tmp_path / "pg")
    elapsed = time.monotonic() - t0
    record_property("postgres_start_seconds", round(elapsed, 2))
    print(f"PostgreSQL started in {elapsed:.2f} s at {server.url}")
    try:
        assert server.url.startswith("postgresql+psycopg://registry@127.0.0.1:")
        assert server.url.endswith("/registry")
        with sa.create_engine(server.url).connect() as conn:
            settings = {
                name: conn.execute(sa.text(f"SHOW {name}")).scalar_one()
                for name in ("listen_addresses", "fsync", "synchronous_commit", "full_page_writes")
            }
            assert conn.execute(sa.text("SELECT current_user")).scalar_one() == "registry"
        assert settings == {
            "listen_addresses": "127.0.0.1",
            "fsync": "off",
            "synchronous_commit": "off",
            "full_page_writes": "off",
        }

        url_a = server.create_database("svc_a")
        url_b = server.create_database("svc_b")
        assert url_a != url_b
        assert _write_and_read(url_a, "alpha") == ["alpha"]
        assert _write_and_read(url_b, "beta") == ["beta"]  # fresh table: no "alpha" here
        assert _write_and_read(url_a, "gamma") == ["alpha", "gamma"]
        with sa.create_engine(url_b).connect() as conn:
            assert conn.execute(sa.text("SELECT current_database()")).scalar_one() == "svc_b"

        # recreating a database gives an empty one again
        assert server.create_database("svc_a") == url_a
        assert _tables(url_a) == []
        assert _tables(url_b) == ["note"]
    finally:
        server.stop()

    assert not server.is_running()
    assert server.data_dir is not None and not server.data_dir.exists()
    engine = sa.create_engine(url_b, connect_args={"connect_timeout": 2})
    try:
        with pytest.raises(OperationalError), engine.connect():
            pass
    finally:
        engine.dispose()
    server.stop()  # idempotent


def test_external_database_url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """With REGISTRY_TEST_DATABASE_URL set, nothing is started and databases are created there.
    Without one in the environment, a server this test starts plays the external server."""
    own = None
    if not os.environ.get(DATABASE_URL_ENV):
        monkeypatch.delenv(DATABASE_URL_ENV, raising=False)
        try:
            own = start_postgres(tmp_path / "own")
        except ServiceUnavailable as exc:
            _unavailable(str(exc))
        monkeypatch.setenv(DATABASE_URL_ENV, own.url)
    server = start_postgres(tmp_path / "unused")
    assert server.external
    url_a = server.create_database("svc_ext_a")
    url_b = server.create_database("svc_ext_b")
    try:
        assert _write_and_read(url_a, "alpha") == ["alpha"]
        assert _tables(url_b) == []
    finally:
        server.drop_database("svc_ext_a")
        server.drop_database("svc_ext_b")
        server.stop()
        if own is not None:
            own.stop()
    assert not (tmp_path / "unused").exists()


# --------------------------------------------------------------------------- Chromium

FORM_PAGE = """<!doctype html>
<html lang="fr"><head><meta charset="utf-8"><title>Formulaire</title></head>
<body><form method="post" action="/bonjour">
<label for="nom">Nom</label> <input id="nom" name="nom">
<button type="submit">Envoyer</button>
</form></body></html>"""


class _FormHandler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self._send(FORM_PAGE)

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", "0"))
        fields = urllib.parse.parse_qs(self.rfile.read(length).decode("utf-8"))
        name = html.escape(fields.get("nom", [""])[0])
        body = f'<!doctype html><meta charset="utf-8"><title>Merci</title><p id="msg">Bonjour {name} !</p>'
        self._send(body)

    def _send(self, body: str) -> None:
        data = body.encode("utf-8")
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:  # keep test output quiet
        pass


@pytest.fixture
def form_server() -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _FormHandler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}/"
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(5)


@pytest.mark.xdist_group("chromium")
def test_chromium_fills_and_submits_form(form_server: str, record_property: Any) -> None:
    try:
        executable = chromium_path()
    except ServiceUnavailable as exc:
        _unavailable(str(exc))
    try:
        from playwright.sync_api import sync_playwright
    except ImportError as exc:
        _unavailable(f"python package playwright not installed: {exc}")

    t0 = time.monotonic()
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=executable, args=list(CHROMIUM_ARGS), timeout=60_000)
        try:
            page = browser.new_page()
            page.set_default_timeout(20_000)
            page.goto(form_server)
            assert page.title() == "Formulaire"
            page.fill("#nom", "Élodie <Dupont>")
            with page.expect_navigation():
                page.click("button[type=submit]")
            assert page.url == form_server + "bonjour"
            assert page.title() == "Merci"
            assert page.inner_text("#msg") == "Bonjour Élodie <Dupont> !"
        finally:
            browser.close()
    elapsed = time.monotonic() - t0
    record_property("chromium_seconds", round(elapsed, 2))
    print(f"Chromium form test took {elapsed:.2f} s")
