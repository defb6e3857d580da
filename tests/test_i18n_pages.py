"""Languages of the site: ?lang, then the cookie, then Accept-Language, else French; catalogues complete and
compiled (the .mo committed is the one the .po gives)."""

from __future__ import annotations

from pathlib import Path

from flask.testing import FlaskClient

from registry.store import Registry

ROOT = Path(__file__).resolve().parents[1]


def _client(sqlite_registry: Registry) -> FlaskClient:
    from web.app import create_app

    return create_app(sqlite_registry, dev=True).test_client()


def test_language_order(sqlite_registry: Registry) -> None:
    client = _client(sqlite_registry)
    assert '<html lang="fr">' in client.get("/").get_data(as_text=True)
    english = client.get("/", headers={"Accept-Language": "en-GB,en;q=0.8"}).get_data(as_text=True)
    assert '<html lang="en">' in english and "Skip to content" in english and "Key figures" in english
    assert '<html lang="fr">' in client.get("/", headers={"Accept-Language": "de"}).get_data(as_text=True)
    assert '<html lang="fr">' in client.get("/?lang=fr", headers={"Accept-Language": "en"}).get_data(as_text=True)
    assert '<html lang="fr">' in client.get("/", headers={"Accept-Language": "en"}).get_data(as_text=True)  # cookie


def test_catalogue_complete_and_compiled() -> None:
    from web.translations.__main__ import load_po, mo_bytes, template_catalog

    template = template_catalog("messages")
    english = load_po("en", "messages")
    missing = [m.id for m in template if m.id and not (english.get(m.id) and english.get(m.id).string)]
    assert missing == []
    mo = ROOT / "web" / "translations" / "en" / "LC_MESSAGES" / "messages.mo"
    assert mo.read_bytes() == mo_bytes("en", "messages"), "run `python -m web.translations compile`"
