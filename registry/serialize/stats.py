"""Statistics and result lists as the site and its downloads show them: labels of a cross-table's codes (from the
standard, the geography, or the code itself), CSV (data tables of charts, search results, compliance lists), and
SVG charts drawn on the server (no script, no external asset; every text escaped).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from xml.sax.saxutils import escape

from babel.numbers import format_decimal

from registry import csvsafe
from registry.actions.stats import CrossTab
from registry.geo import get_geography
from registry.search import Hit
from registry.search.fields import NONE
from registry.serialize.labels import facet_label, facet_title
from registry.standard import MAIN_RESOURCE, get_standard

NONE_WORDS = ("Non renseigné", "Not given")
MEASURE = "mesure"
# Colours of the series: contrast of at least 3:1 against white (WCAG 1.4.11, graphical objects).
PALETTE = ("#000091", "#18753c", "#ce0500", "#b34000", "#6e445a", "#0063cb", "#716043", "#a94645", "#447049",
           "#5e2a2b", "#3558a2", "#8d533e", "#66673d", "#465f9d", "#7d4e5b", "#006a6f", "#6a6156")
SEMANTIC = {"objectifs_atteints": "#18753c", "objectifs_partiellement_atteints": "#b34000",
            "objectifs_non_atteints": "#ce0500", "non_evalue": "#6a6156", NONE: "#929292"}


def code_label(field: str, code: str, lang: str = "fr") -> str:
    """The label of a code of a cross-table's row or column field."""
    if code == NONE:
        return NONE_WORDS[lang == "en"]
    if field in ("annee", "taille_commune"):
        return code
    if field == MEASURE:
        return get_standard().main.by_name[code].heading(lang)
    if field == "region":
        region = get_geography().region(code)
        return region.nom if region else code
    table, _, name = field.rpartition(".")
    spec = get_standard().table(table or MAIN_RESOURCE).by_name[name]
    return spec.label(code, lang) if spec.codes else code


def field_title(field: str, lang: str = "fr") -> str:
    words = {"annee": ("Année de début", "Start year"), "taille_commune": ("Taille de la commune (habitants)",
                                                                          "Commune size (inhabitants)"),
             MEASURE: ("Montant", "Amount"), "region": ("Région", "Region")}
    if field in words:
        return words[field][lang == "en"]
    table, _, name = field.rpartition(".")
    return get_standard().table(table or MAIN_RESOURCE).by_name[name].heading(lang)


def number(value: float, lang: str = "fr", digits: int = 0) -> str:
    return format_decimal(round(value, digits), locale="en" if lang == "en" else "fr_FR")


def crosstab_csv(table: CrossTab, lang: str = "fr") -> str:
    """The data table of a chart: one row per row code, one column per column code, codes and labels both."""
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\r\n")
    w.writerow([table.row_field, field_title(table.row_field, lang),
                *(f"{c} — {code_label(table.col_field, c, lang)}" for c in table.cols), "total"])
    for r in table.rows:
        values = [table.value(r, c) for c in table.cols]
        w.writerow([r, code_label(table.row_field, r, lang), *(_plain(v) for v in values), _plain(sum(values))])
    return out.getvalue()


def _plain(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:.2f}"


def colours(table: CrossTab) -> list[str]:
    if table.col_field == "resultat":
        return [SEMANTIC.get(c, PALETTE[i % len(PALETTE)]) for i, c in enumerate(table.cols)]
    return [PALETTE[i % len(PALETTE)] for i in range(len(table.cols))]


def bar_chart_svg(table: CrossTab, title: str, lang: str = "fr", max_rows: int = 20) -> str:
    """Horizontal bars, one per row: stacked (counts) or grouped (amounts); a legend; `<title>` on each bar."""
    rows = list(table.rows[:max_rows])
    cols = list(table.cols)
    palette = colours(table)
    label_w, chart_w, bar_h, gap = 230, 390, 18, 8
    group_h = bar_h if table.kind == "stacked" else bar_h * max(1, len(cols)) * 0.6
    top = 8
    legend_rows = (len(cols) + 1) // 2
    height = int(top + len(rows) * (group_h + gap) + 20 + legend_rows * 20 + 8)
    if table.kind == "stacked":
        peak = max((table.row_total(r) for r in rows), default=0) or 1
    else:
        peak = max((table.value(r, c) for r in rows for c in cols), default=0) or 1
    uid = "svg-" + table.key
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 680 {height}" role="img" '
             f'aria-labelledby="{uid}-t" class="chart" preserveAspectRatio="xMinYMin meet">',
             f'<title id="{uid}-t">{escape(title)}</title>']
    y = float(top)
    for r in rows:
        name = code_label(table.row_field, r, lang)
        short = name if len(name) <= 34 else name[:33] + "…"
        parts.append(f'<text x="{label_w - 6}" y="{y + min(group_h, bar_h) / 2 + 4:.1f}" text-anchor="end" '
                     f'class="chart-label">{escape(short)}</text>')
        x = float(label_w)
        for i, c in enumerate(cols):
            v = table.value(r, c)
            if not v:
                continue
            w = v / peak * chart_w
            tip = f"{name} — {code_label(table.col_field, c, lang)} : {number(v, lang)}"
            if table.kind == "stacked":
                parts.append(f'<rect x="{x:.1f}" y="{y:.1f}" width="{max(w, 1):.1f}" height="{bar_h}" '
                             f'fill="{palette[i]}"><title>{escape(tip)}</title></rect>')
                x += w
            else:
                h = group_h / len(cols)
                parts.append(f'<rect x="{label_w}" y="{y + i * h:.1f}" width="{max(w, 1):.1f}" height="{h - 1:.1f}" '
                             f'fill="{palette[i]}"><title>{escape(tip)}</title></rect>')
        total = table.row_total(r) if table.kind == "stacked" else None
        if total is not None:
            parts.append(f'<text x="{x + 4:.1f}" y="{y + bar_h / 2 + 4:.1f}" class="chart-value">'
                         f'{escape(number(total, lang))}</text>')
        y += group_h + gap
    y += 12
    for i, c in enumerate(cols):
        lx = 10 + (i % 2) * 340
        ly = y + (i // 2) * 20
        name = code_label(table.col_field, c, lang)
        parts.append(f'<rect x="{lx}" y="{ly:.1f}" width="12" height="12" fill="{palette[i]}"/>'
                     f'<text x="{lx + 18}" y="{ly + 10:.1f}" class="chart-legend">'
                     f'{escape(name if len(name) <= 48 else name[:47] + "…")}</text>')
    parts.append("</svg>")
    return "".join(parts)


def indicator_svg(values: Sequence[tuple[str, float | None]], label: str) -> str:
    """A small chart of one indicator: baseline, target and measured value side by side (absent ones skipped)."""
    present = [(name, v) for name, v in values if v is not None]
    if not present:
        return ""
    peak = max(abs(v) for _, v in present) or 1
    colour = {0: "#6a6156", 1: "#000091", 2: "#18753c"}
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 160 {len(values) * 16 + 4}" role="img" '
             f'aria-label="{escape(label, {chr(34): "&quot;"})}" class="mini-chart">']
    for i, (name, v) in enumerate(values):
        if v is None:
            continue
        w = max(abs(v) / peak * 150, 1)
        parts.append(f'<rect x="2" y="{i * 16 + 3}" width="{w:.1f}" height="12" fill="{colour[i % 3]}">'
                     f'<title>{escape(name)}</title></rect>')
    parts.append("</svg>")
    return "".join(parts)


HIT_COLUMNS = ("id_experience", "intitule", "nom_porteur", "date_debut", "date_maj", "domaine", "phase", "statut",
               "resultat", "region", "departement", "resultats_en_retard", "cibles_modifiees")


def hits_csv(hits: Iterable[Hit], base: str, lang: str = "fr") -> str:
    """Search results (or a compliance list) as CSV: codes and their labels, with the page address of each."""
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\r\n")
    coded = HIT_COLUMNS[5:]
    w.writerow([*HIT_COLUMNS[:5], *(x for name in coded for x in (name, f"{name}_libelle")), "adresse"])
    for h in hits:
        row = [h.id, _cell(h.intitule), _cell(h.nom_porteur), h.date_debut, h.date_maj]
        for name in coded:
            codes = h.facets.get(name, ())
            row += ["|".join(codes), " | ".join(facet_label(name, c, lang) for c in codes)]
        w.writerow([*row, f"{base.rstrip('/')}/experiences/{h.id}"])
    return out.getvalue()


def _cell(text: str) -> str:
    """No cell runs as a spreadsheet formula (CSV injection, registry/csvsafe.py)."""
    return csvsafe.escape(text)


def facet_heading(name: str, lang: str = "fr") -> str:
    return facet_title(name, lang)
