"""An experience's page: every part of the standard laid out for reading, its history and diffs."""

from __future__ import annotations

from typing import Any

from flask import abort, render_template, request, url_for

from registry.actions import experiences
from registry.actions import index as search_index
from registry.actions.authz import Permission, allowed
from registry.actions.experiences import InvalidRequest
from registry.queries import ExperienceView, NotFound, RevisionInfo
from registry.serialize import dataset_ld, experience_json, script_json
from registry.serialize.stats import indicator_svg
from registry.standard import MAIN_RESOURCE, get_standard
from web.accounts import current, user_caller
from web.context import caller, registry
from web.pages import bp
from web.pages.memory import remembered

# How the main table's fields are grouped for reading (a layout, not a field list: any field of the standard
# not named here is still shown, under « Autres informations »).
SECTIONS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("projet", ("contexte_besoin", "solution", "objectifs", "technologies", "domaines_secondaires")),
    ("bilan", ("ce_qui_a_fonctionne", "ce_qui_n_a_pas_fonctionne", "recommandations", "suite_donnee",
               "motif_arret")),
    ("impacts", ("impacts_positifs", "impacts_negatifs")),
    ("couts", ("cout_prevu", "cout_reel", "economies_annuelles", "financements")),
    ("participation", ("niveau_participation_citoyenne", "modalites_participation",
                       "demarche_numerique_responsable")),
)
HEADER_FIELDS = ("id_experience", "intitule", "resume", "nom_porteur", "siren_porteur", "type_porteur",
                 "code_insee_commune", "communes_concernees", "millesime_cog", "domaine", "date_debut", "date_fin",
                 "phase", "statut", "resultat", "liens", "contact_courriel", "date_maj")
VALUE_TYPES = ("reference", "cible", "mesure")


def _other_fields() -> list[str]:
    named = {f for _, fields in SECTIONS for f in fields} | set(HEADER_FIELDS)
    return [f.name for f in get_standard().main.fields if f.name not in named]


def indicators(rows: list[dict[str, str]]) -> list[dict[str, Any]]:
    """One entry per indicator code: its label, unit, direction, and baseline/target/measured side by side."""
    out: dict[str, dict[str, Any]] = {}
    for row in rows:
        item = out.setdefault(row.get("code_indicateur", ""), {"code": row.get("code_indicateur", ""),
                                                              "first": row, "values": {}})
        kind = row.get("type_valeur", "")
        item["values"].setdefault(kind, []).append(row)
    for item in out.values():
        numbers = []
        for kind in VALUE_TYPES:
            found = item["values"].get(kind) or []
            try:
                numbers.append((kind, float(found[-1]["valeur"])) if found and found[-1].get("valeur") else
                               (kind, None))
            except ValueError:
                numbers.append((kind, None))
        item["chart"] = indicator_svg(numbers, item["first"].get("libelle_indicateur", item["code"]))
    return list(out.values())


def _record(exp_id: str) -> tuple[ExperienceView, list[RevisionInfo]]:
    """An experience and its revisions, or a 404."""
    try:
        return experiences.get_with_history(registry(), caller(), exp_id)
    except NotFound:
        abort(404)


@bp.get("/experiences/<exp_id>")
def experience(exp_id: str) -> object:
    if request.accept_mimetypes.best == "application/json":
        return experience_json(_record(exp_id)[0])
    if current() is None:  # the page of anonymous readers is the same for all: kept per index version
        return remembered(("record", exp_id), lambda: _experience_page(exp_id))
    return _experience_page(exp_id)


def _experience_page(exp_id: str) -> tuple[str, int]:
    reg, who = registry(), caller()
    view, revisions = _record(exp_id)
    data = experience_json(view)
    similar = search_index.similar(reg, who, exp_id)
    std = get_standard()
    lessons: dict[str, list[dict[str, str]]] = {}
    for row in view.record.get("enseignements", []):
        lessons.setdefault(row.get("categorie", ""), []).append(row)
    permalink = url_for("pages.experience", exp_id=view.id, _external=True)
    ld = script_json(dataset_ld(view, request.url_root))
    # the members of its organisation (and registry admins) get a « Modifier » link; the page stays public
    may_edit = view.published and allowed(user_caller(), Permission.PUBLISH, view.main.get("siren_porteur"))
    return render_template("experience.html", view=view, data=data, revisions=revisions, similar=similar,
                           may_edit=may_edit,
                           sections=[(k, [f for f in fs if view.main.get(f)]) for k, fs in SECTIONS],
                           other_fields=_other_fields(), indicators=indicators(
                               view.record.get("indicateurs", [])), lessons=lessons, std=std, permalink=permalink,
                           json_ld=ld, MAIN=MAIN_RESOURCE), 200


@bp.get("/experiences/<exp_id>/diff")
def diff(exp_id: str) -> object:
    """The field-by-field differences between two revisions (?old=&new=, by default the last two)."""
    reg, who = registry(), caller()
    view, revisions = _record(exp_id)
    numbers = [r.number for r in revisions]
    new = _revision_arg("new", numbers[-1], numbers)
    old = _revision_arg("old", numbers[-2] if len(numbers) > 1 else numbers[-1], numbers)
    changes = experiences.diff(reg, who, exp_id, old, new)
    return render_template("pages/diff.html", view=view, revisions=revisions, old=old, new=new, changes=changes,
                           MAIN=MAIN_RESOURCE)


def _revision_arg(name: str, default: int, numbers: list[int]) -> int:
    raw = request.args.get(name, "")
    if not raw:
        return default
    if not (raw.isascii() and raw.isdigit() and len(raw) < 9 and int(raw) in numbers):
        raise InvalidRequest(f"« {name} » doit être un numéro de révision de cette expérience "
                             f"({', '.join(map(str, numbers))}).")
    return int(raw)
