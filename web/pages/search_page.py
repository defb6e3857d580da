"""The search page: facets as links and checkboxes (built here, not with one `url_for` per value), kept in memory
(web/pages/memory.py) under the index version, the day, the language and the URL's state."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from urllib.parse import quote, urlencode

from babel.numbers import format_decimal
from flask import g, render_template, url_for

from registry.actions import index as search_index
from registry.actions.index import Results, SearchRequest
from registry.serialize.labels import facet_label, facet_title
from web.context import MAX_PAGE_NUMBER, PAGE_SIZE, caller, registry, search_request
from web.pages.memory import remembered

SHOWN = 6  # values shown before « Voir les N autres valeurs »


@dataclass(frozen=True)
class FacetValue:
    code: str
    label: str
    count: int
    count_text: str  # « 1 234 » in French
    href: str  # the search with this value added (OR within a facet)
    active: bool


@dataclass(frozen=True)
class FacetGroup:
    name: str
    title: str
    values: list[FacetValue]


def facet_groups(results: Results, filters: dict[str, tuple[str, ...]], q: str, sort: str,
                 lang: str) -> list[FacetGroup]:
    """Each facet with its values (active ones first, then by count), and the link that adds each value."""
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
        prefix = base + "&" + quote(name) + "="
        values = [FacetValue(code, facet_label(name, code, lang), n, _count_text(n, lang), prefix + quote(code),
                             code in active) for code, n in ordered]
        groups.append(FacetGroup(name, facet_title(name, lang), values))
    return groups


@lru_cache(maxsize=4096)
def _count_text(n: int, lang: str) -> str:
    return format_decimal(n, locale=lang)


def search_page() -> tuple[str, int]:
    """The search page of this request's URL, from memory when the same page was made on this index version."""
    req, page = search_request()
    return remembered(("search", req.text, tuple(sorted(req.filters.items())), req.sort, page),
                      lambda: _render(req, page))


def _render(req: SearchRequest, page: int) -> tuple[str, int]:
    results = search_index.search(registry(), caller(), req)
    last_page = max(1, -(-results.total // PAGE_SIZE))
    out_of_range = page > 1 and not results.hits
    html = render_template("pages/search.html", q=req.text, filters=req.filters, results=results, page=page,
                           size=PAGE_SIZE, last_page=min(last_page, MAX_PAGE_NUMBER), out_of_range=out_of_range,
                           groups=facet_groups(results, req.filters, req.text, req.sort, str(g.get("lang", "fr"))),
                           shown=SHOWN, sorts=search_index.SORTS, sort=req.sort)
    return html, 404 if out_of_range else 200
