"""The search page: facets as links and checkboxes (built here, not with one `url_for` per value), kept in memory
(web/pages/memory.py) under the index version, the day, the language and the URL's state."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import NamedTuple
from urllib.parse import quote, urlencode

from babel.numbers import format_decimal
from flask import g, render_template, url_for
from markupsafe import Markup, escape

from registry.actions import index as search_index
from registry.actions.index import Results, SearchRequest
from registry.serialize.labels import facet_title
from web.context import MAX_PAGE_NUMBER, PAGE_SIZE, caller, registry, search_request
from web.pages.cards import value_label
from web.pages.memory import remembered

SHOWN = 6  # values shown before « Voir les N autres valeurs »


class FacetValue(NamedTuple):  # (a tuple: a search page makes about 240 of them)
    code: str
    label: str
    count: int
    count_text: str  # « 1 234 » in French
    active: bool


@dataclass(frozen=True)
class FacetGroup:
    name: str
    title: str
    values: list[FacetValue]
    base: str  # the search's URL, to which « &name=code » adds a value (OR within a facet)


def facet_groups(results: Results, filters: dict[str, tuple[str, ...]], q: str, sort: str,
                 lang: str) -> list[FacetGroup]:
    """Each facet with its values (active ones first, then by count)."""
    base = url_for("pages.search") + "?" + urlencode(
        [("q", q), ("sort", sort), *[(k, v) for k, values in filters.items() for v in values]])
    groups = []
    for name in search_index.facet_fields():
        counts = dict(results.facets.get(name, {}))
        active = filters.get(name, ())
        for code in active:  # a chosen value stays visible (and ticked) even when nothing matches it any more
            counts.setdefault(code, 0)
        if not counts:
            continue
        ordered = sorted(counts.items(), key=lambda item: (item[0] not in active, -item[1], item[0]))
        values = [FacetValue(code, value_label(name, code, lang), n, _count_text(n, lang), code in active)
                  for code, n in ordered]
        groups.append(FacetGroup(name, facet_title(name, lang), values, base))
    return groups


def values_html(group: FacetGroup, start: int, stop: int | None = None) -> Markup:
    """The values group.values[start:stop], each a checkbox named by the value's link (or, when active, its text)
    and its count: written here rather than in a Jinja loop (a search page has about 240 of them; the escaped
    names, codes and labels are made once per value and language)."""
    prefix = escape(group.base)
    out = []
    for i, v in enumerate(group.values[start:stop], start + 1):
        name, code, param, label = _escaped(group.name, v.code, v.label)
        ids = f"{name}-{i}"
        text = (f'<span id="l-{ids}" aria-current="true">{label}</span>' if v.active else
                f'<a href="{prefix}&amp;{param}" id="l-{ids}">{label}</a>')
        out.append(f'<li><input type="checkbox" name="{name}" value="{code}" id="f-{ids}" aria-labelledby="l-{ids} '
                   f'n-{ids}"{" checked" if v.active else ""}> <span>{text} <span class="n" id="n-{ids}">'
                   f'({v.count_text})</span></span></li>')
    return Markup("".join(out))


@lru_cache(maxsize=8192)
def _escaped(name: str, code: str, label: str) -> tuple[str, str, str, str]:
    """Escaped for HTML: the facet's name, the value's code, « name=code » for a URL, the value's label."""
    return str(escape(name)), str(escape(code)), str(escape(quote(name) + "=" + quote(code))), str(escape(label))


@lru_cache(maxsize=4096)
def _count_text(n: int, lang: str) -> str:
    return format_decimal(n, locale=lang)


def search_page() -> tuple[str, int]:
    """The search page of this request's URL, from memory when the same page was made on this index version."""
    req, page = search_request()
    return remembered(("search", req.text, tuple(sorted(req.filters.items())), req.sort, page),
                      lambda: _render(req, page))


def _render(req: SearchRequest, page: int) -> tuple[str, int]:
    lang = str(g.get("lang", "fr"))
    results = search_index.search(registry(), caller(), req)
    last_page = max(1, -(-results.total // PAGE_SIZE))
    out_of_range = page > 1 and not results.hits
    html = render_template("pages/search.html", q=req.text, filters=req.filters, results=results, page=page,
                           size=PAGE_SIZE, last_page=min(last_page, MAX_PAGE_NUMBER), out_of_range=out_of_range,
                           groups=facet_groups(results, req.filters, req.text, req.sort, lang),
                           shown=SHOWN, values_html=values_html, sorts=search_index.SORTS, sort=req.sort,
                           facet_label=lambda name, code: value_label(name, code, lang))
    return html, 404 if out_of_range else 200
