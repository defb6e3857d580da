"""Result cards and their badges, written in Python rather than as Jinja macros: a search page shows 25 cards and
the macros took most of its template's time. The one definition of both, for the search, home, organisation, record
and compliance pages (templates call `hit_card(hit, level)` and `result_badges(statut, resultat, …)`)."""

from __future__ import annotations

from functools import lru_cache
from typing import Any
from urllib.parse import quote

from flask import Blueprint, g, url_for
from flask_babel import gettext as _
from markupsafe import Markup, escape

from registry.actions.index import Hit
from registry.serialize.labels import facet_label
from web.pages.formatting import date_text

STATUT_TONE = {"abandonne": "error", "bloque": "warning", "en_pause": "warning"}  # any other status: "info"
RESULTAT_TONE = {"objectifs_atteints": "success", "objectifs_partiellement_atteints": "warning",
                 "objectifs_non_atteints": "error"}
SEGMENT_SAFE = "!$&'()*+,/:;=@"  # what werkzeug's default converter leaves unquoted in a path segment


def result_badges(statut: Any, resultat: Any, phase: Any = "", overdue: Any = False, changed: Any = False) -> Markup:
    """The badges of a record: phase, status, result, results overdue, targets changed after the start."""
    lang = _lang()
    texts = _texts(lang)
    out = ['<ul class="badges">']
    if phase:
        out.append(f'<li class="badge">{_label("phase", str(phase), lang)}</li>')
    if statut:
        out.append(f'<li class="badge {STATUT_TONE.get(str(statut), "info")}">{_label("statut", str(statut), lang)}'
                   '</li>')
    if resultat:
        tone = RESULTAT_TONE.get(str(resultat))  # (« non évalué », « sans objet »: no tone)
        out.append(f'<li class="badge{" " + tone if tone else ""}">{_label("resultat", str(resultat), lang)}</li>')
    if overdue:
        out.append(f'<li class="badge error">{texts["overdue"]}</li>')
    if changed:
        out.append(f'<li class="badge warning">{texts["changed"]}</li>')
    out.append("</ul>")
    return Markup("".join(out))


def hit_card(hit: Hit, level: int = 2) -> Markup:
    """A search result: title as a link to the record (a heading of `level`), bearer, place, domain, dates, badges
    and the snippet (already HTML: the record's text escaped, the matched words in <mark>)."""
    lang = _lang()
    texts = _texts(lang)
    f = hit.facets
    meta = [str(escape(hit.nom_porteur))]
    for name in ("departement", "domaine"):
        if f.get(name):
            meta.append(_label(name, f[name][0], lang))
    dates = f'{texts["start"]} {escape(date_text(hit.date_debut))} · ' if hit.date_debut else ""
    first = {name: (f[name][0] if f.get(name) else "") for name in ("statut", "resultat", "phase")}
    badges = result_badges(first["statut"], first["resultat"], first["phase"],
                           "oui" in f.get("resultats_en_retard", ()), "oui" in f.get("cibles_modifiees", ()))
    snippet = f'<p class="snippet">{hit.snippet}</p>' if hit.snippet else ""
    h = f"h{int(level)}"
    return Markup(f'<li class="card"><{h}><a href="{escape(record_url(hit.id))}">'
                  f'{escape(hit.intitule)}</a></{h}><p class="meta">{" · ".join(meta)}</p>'
                  f'<p class="meta">{dates}{texts["updated"]} {escape(date_text(hit.date_maj))}</p>'
                  f'{badges}{snippet}</li>')


def record_url(exp_id: str) -> str:
    """`url_for("pages.experience", exp_id=…)` with the route's prefix built once a request (a card each)."""
    prefix = g.get("_record_url_prefix")
    if prefix is None:
        prefix = g._record_url_prefix = url_for("pages.experience", exp_id="-")[:-1]
    return prefix + quote(exp_id, safe=SEGMENT_SAFE)


def _lang() -> str:
    return str(g.get("lang", "fr"))


@lru_cache(maxsize=4)
def _texts(lang: str) -> dict[str, str]:
    """The cards' words in `lang`, escaped (called while `lang` is the request's language)."""
    return {key: str(escape(text)) for key, text in (
        ("overdue", _("Résultats en retard")), ("changed", _("Cibles modifiées après le début")),
        ("start", _("Début :")), ("updated", _("mise à jour le")))}


@lru_cache(maxsize=8192)
def value_label(name: str, code: str, lang: str) -> str:
    """A facet value's label (`facet_label`), made once per value and language: a search page shows ~270."""
    return facet_label(name, code, lang)


@lru_cache(maxsize=8192)
def _label(name: str, code: str, lang: str) -> str:
    """A facet value's label, escaped."""
    return str(escape(value_label(name, code, lang)))


def register(bp: Blueprint) -> None:
    bp.add_app_template_global(hit_card, "hit_card")
    bp.add_app_template_global(result_badges, "result_badges")
