"""Statistics, results compliance, organisations and the page on the standard."""

from __future__ import annotations

import datetime as dt

from flask import Response, abort, g, render_template, request, send_from_directory, url_for
from flask_babel import gettext as _

from registry.actions import stats
from registry.paths import SCHEMAS_DIR
from registry.serialize import atom_feed
from registry.serialize.stats import bar_chart_svg, code_label, crosstab_csv, field_title, hits_csv
from registry.standard import get_standard
from web.context import caller, registry
from web.pages import bp
from web.pages.memory import remembered


def chart_titles() -> dict[str, str]:
    """The title of each statistic, in the page's language (keys are stats' own)."""
    return {
        "resultats_par_domaine": _("Résultats par domaine"),
        "motifs_arret_par_domaine": _("Motifs d'arrêt par domaine"),
        "enseignements_par_theme": _("Enseignements par thème (freins, leviers, recommandations)"),
        "experiences_par_annee_et_phase": _("Expériences par année de début et par phase"),
        "couts_et_economies_par_domaine": _("Coûts prévus, coûts réels et économies annuelles par domaine"),
        "resultats_par_region": _("Résultats par région"),
        "resultats_par_taille_de_commune": _("Résultats par taille de la commune principale"),
    }


def _csv(body: str, name: str) -> Response:
    return Response("\ufeff" + body, content_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="{name}"'})


def _charts(statistics: stats.Statistics) -> list[dict[str, object]]:
    lang = g.get("lang", "fr")
    titles = chart_titles()
    return [{"key": key, "title": titles[key], "table": table, "svg": bar_chart_svg(table, titles[key], lang)}
            for key, table in statistics.tables.items() if table.rows]


@bp.get("/statistiques")
def statistics() -> object:
    return remembered(("statistics",), lambda: (_statistics_page(stats.statistics(registry(), caller())), 200))


def _statistics_page(s: stats.Statistics) -> str:
    return render_template("pages/statistics.html", figures=s.figures, charts=_charts(s), code_label=code_label,
                           field_title=field_title)


@bp.get("/statistiques/<chart>.csv")
def statistics_csv(chart: str) -> Response:
    table = stats.statistics(registry(), caller()).tables.get(chart)
    if table is None:
        abort(404)
    return _csv(crosstab_csv(table, g.get("lang", "fr")), f"{chart}.csv")


def _region_arg() -> str | None:
    region = request.args.get("region", "")
    return region if region.isascii() and region.isalnum() and len(region) <= 3 else None


@bp.get("/conformite")
def compliance() -> object:
    region = _region_arg()
    return remembered(("compliance", region), lambda: (render_template(
        "pages/compliance.html", c=stats.compliance(registry(), caller(), region), region=region), 200))


@bp.get("/conformite.csv")
def compliance_csv() -> Response:
    c = stats.compliance(registry(), caller(), _region_arg())
    return _csv(hits_csv(c.overdue, request.url_root, g.get("lang", "fr")), "resultats-en-retard.csv")


@bp.get("/conformite.atom")
def compliance_atom() -> Response:
    """Experiences whose results are past due, as an Atom feed (newest change first)."""
    reg, who = registry(), caller()
    c = stats.compliance(reg, who, _region_arg())
    views = sorted(stats.views(reg, who, [h.id for h in c.overdue][:200]), key=lambda v: v.updated_at, reverse=True)
    updated = max((v.updated_at for v in views), default=None)
    body = atom_feed(views, request.url_root, url_for("pages.compliance_atom", _external=True),
                     "Résultats en retard — registre des territoires connectés", updated)
    return Response(body, content_type="application/atom+xml; charset=utf-8")


@bp.get("/organisations")
def organisations() -> object:
    return remembered(("organisations",), lambda: (render_template(
        "pages/organisations.html", organisations=stats.organisations(registry(), caller())), 200))


@bp.get("/organisations/<siren>")
def organisation(siren: str) -> object:
    if not (len(siren) == 9 and siren.isascii() and siren.isdigit()):
        abort(404)
    return remembered(("organisation", siren), lambda: _organisation_page(siren))


def _organisation_page(siren: str) -> tuple[str, int]:
    org = stats.organisation(registry(), caller(), siren)
    if org is None:
        abort(404)
    return render_template("pages/organisation.html", org=org, charts=_charts(org.statistics),
                           code_label=code_label, field_title=field_title), 200


@bp.get("/organisations/<siren>/statistiques/<chart>.csv")
def organisation_csv(siren: str, chart: str) -> Response:
    org = stats.organisation(registry(), caller(), siren)
    table = None if org is None else org.statistics.tables.get(chart)
    if table is None:
        abort(404)
    return _csv(crosstab_csv(table, g.get("lang", "fr")), f"{siren}-{chart}.csv")


@bp.get("/standard")
def standard() -> str:
    std = get_standard()
    changelog = (SCHEMAS_DIR / "CHANGELOG.md").read_text(encoding="utf-8")
    files = sorted(p.relative_to(SCHEMAS_DIR).as_posix() for p in SCHEMAS_DIR.rglob("*")
                   if p.is_file() and p.suffix in (".csv", ".json", ".md"))
    return render_template("pages/standard.html", std=std, changelog=changelog, files=files,
                           today=dt.date.today())


@bp.get("/standard/fichiers/<path:schema_file>")
def standard_file(schema_file: str) -> Response:
    """The standard's own files (schemas, examples, READMEs, changelog), as they are in schemas/."""
    if not schema_file.endswith((".csv", ".json", ".md")) or ".." in schema_file.split("/"):
        abort(404)
    return send_from_directory(SCHEMAS_DIR, schema_file)
