"""Atom 1.0: a feed of new and updated experiences, one entry per experience (its latest revision).

Built with ElementTree, which escapes `<`, `&` and quotes; control characters that XML 1.0 refuses are
dropped first (`clean`). Summaries are plain text (`type="text"`): no markup from a record is ever
interpreted by a feed reader.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from xml.etree import ElementTree as ET

from registry.catalog_queries import license_info, tags_of
from registry.queries import ExperienceView
from registry.serialize.ckan import clean, urls

ATOM = "http://www.w3.org/2005/Atom"


def _stamp(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def _text(parent: ET.Element, tag: str, text: str | None, **attrs: str) -> ET.Element:
    el = ET.SubElement(parent, tag, attrs)
    el.text = clean(text)
    return el


def atom_entry(parent: ET.Element, view: ExperienceView, base: str) -> ET.Element:
    main = view.main
    u = urls(base, view.id)
    entry = ET.SubElement(parent, "entry")
    _text(entry, "id", f"{u['page']}#revision-{view.revision}")
    _text(entry, "title", main.get("intitule"), type="text")
    _text(entry, "summary", main.get("resume"), type="text")
    _text(entry, "published", _stamp(view.created_at))
    _text(entry, "updated", _stamp(view.updated_at))
    author = ET.SubElement(entry, "author")
    _text(author, "name", main.get("nom_porteur"))
    ET.SubElement(entry, "link", {"rel": "alternate", "type": "text/html", "href": u["page"]})
    ET.SubElement(entry, "link", {"rel": "alternate", "type": "application/json", "href": u["json"]})
    for tag in tags_of(main):
        ET.SubElement(entry, "category", {"term": tag})
    _text(entry, "rights", license_info()[1])
    return entry


def atom_feed(views: Iterable[ExperienceView], base: str, self_url: str, title: str,
              updated: dt.datetime | None) -> bytes:
    feed = ET.Element("feed", {"xmlns": ATOM, "xml:lang": "fr"})
    _text(feed, "id", self_url)
    _text(feed, "title", title, type="text")
    _text(feed, "updated", _stamp(updated or dt.datetime(2000, 1, 1, tzinfo=dt.UTC)))
    ET.SubElement(feed, "link", {"rel": "self", "type": "application/atom+xml", "href": self_url})
    ET.SubElement(feed, "link", {"rel": "alternate", "type": "text/html", "href": base.rstrip("/") + "/"})
    author = ET.SubElement(feed, "author")
    _text(author, "name", "Registre des territoires connectés")
    for view in views:
        atom_entry(feed, view, base)
    return b'<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(feed, encoding="utf-8", xml_declaration=False)


SITEMAP = "http://www.sitemaps.org/schemas/sitemap/0.9"


def sitemap_xml(entries: Iterable[tuple[str, dt.datetime | None]]) -> bytes:
    """A sitemap (urlset) of (address, last change) pairs."""
    root = ET.Element("urlset", {"xmlns": SITEMAP})
    for loc, modified in entries:
        url = ET.SubElement(root, "url")
        _text(url, "loc", loc)
        if modified is not None:
            _text(url, "lastmod", modified.astimezone(dt.UTC).date().isoformat())
    return b'<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(root, encoding="utf-8")


def sitemap_index(locations: Iterable[str]) -> bytes:
    root = ET.Element("sitemapindex", {"xmlns": SITEMAP})
    for loc in locations:
        _text(ET.SubElement(root, "sitemap"), "loc", loc)
    return b'<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(root, encoding="utf-8")
