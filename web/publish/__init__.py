"""Publishing: the form generated from the standard (pre-registration, then results), drafts saved on the
server as the territory types, uploads with their validation report before anything is stored, the XLSX
template. Every write goes through registry.actions with the logged-in user's Caller.

Nothing typed is ever lost: a POST always saves the draft first (then checks, then publishes when asked);
a POST from an expired session (login or CSRF token) re-shows the form with what was posted and asks the
person to log in again, then saves.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, abort, flash, g, jsonify, redirect, render_template, request, url_for
from flask_babel import gettext as _

from registry.actions import Forbidden, accounts, drafts, experiences
from registry.actions.drafts import STEPS, DraftNotFound, FormErrors
from registry.queries import NotFound
from registry.standard import MAIN_RESOURCE, get_standard
from web.accounts import check_csrf, csrf_ok, current, login_required, start_session, user_caller
from web.context import registry

bp = Blueprint("publish", __name__, url_prefix="/publier")
STEP_TITLES = {"preinscription": "Préinscription", "resultats": "Résultats"}
MAX_FORM = 2 * 1024 * 1024  # a whole form with every child table full is far below this


@bp.before_request
def _csrf() -> None:
    if request.endpoint not in ("publish.step", "publish.autosave"):  # these keep what was posted themselves
        check_csrf()


@bp.get("")
@login_required
def dashboard() -> Any:
    view = current()
    assert view is not None
    caller = user_caller()
    return render_template("publish/dashboard.html", user=view, drafts=drafts.list_drafts(registry(), caller),
                           published=request.args.get("publie", "")[:40])


@bp.post("/nouveau")
@login_required
def new() -> Any:
    view = current()
    assert view is not None
    text = request.form.get("organisation", "")
    siren = request.form.get("siren", "")
    if not siren and text:
        try:
            siren = accounts.resolve_organisation(text).siren
        except accounts.AccountError as exc:
            flash(str(exc))
            return redirect(url_for("publish.dashboard"))
    try:
        draft = drafts.new_draft(registry(), user_caller(), siren, view.id)
    except Forbidden as exc:
        abort(403, str(exc))
    return redirect(url_for("publish.step", draft_id=draft.id, step="preinscription"))


@bp.route("/experiences/<exp_id>/modifier", methods=["GET", "POST"])
@login_required
def edit(exp_id: str) -> Any:
    view = current()
    assert view is not None
    try:
        exp = experiences.get(registry(), user_caller(), exp_id)
    except NotFound:
        abort(404)
    if request.method == "GET":
        return render_template("publish/edit.html", exp=exp)
    try:
        draft = drafts.draft_for_experience(registry(), user_caller(), exp_id, view.id)
    except Forbidden as exc:
        abort(403, str(exc))
    return redirect(url_for("publish.step", draft_id=draft.id, step=request.form.get("step", "resultats")
                            if request.form.get("step") in STEPS else "resultats"))


def _form() -> dict[str, list[str]]:
    return {k: request.form.getlist(k) for k in request.form}


def _render(draft_id: int, step: str, data: dict[str, Any], errors: FormErrors | None = None,
            relogin: bool = False, status: int = 200, exp_id: str | None = None, siren: str = "") -> Any:
    std = get_standard()
    extra = request.args.get("ajouter", "")
    tables = drafts.step_tables(step)
    return render_template(
        "publish/form.html", draft_id=draft_id, step=step, steps=STEPS, step_titles=STEP_TITLES, data=data,
        errors=errors or FormErrors(), relogin=relogin, main_fields=drafts.form_fields(MAIN_RESOURCE, step),
        tables=[(std.table(t), drafts.form_fields(t), list(data.get(t) or []) + ([{}] if extra == t else []))
                for t in tables], exp_id=exp_id, siren=siren, commune_label=drafts.commune_label,
        field_errors=(errors or FormErrors()).fields), status


@bp.route("/brouillons/<int:draft_id>/<step>", methods=["GET", "POST"])
def step(draft_id: int, step: str) -> Any:
    if step not in STEPS:
        abort(404)
    if request.method == "POST" and (request.content_length or 0) > MAX_FORM:
        return render_template("error.html", status=413, message=_(
            "Envoi trop volumineux : rien n'a été modifié, le brouillon déjà enregistré est intact. Un champ "
            "compte au plus quelques milliers de caractères ; revenez en arrière pour raccourcir le texte.")), 413
    view = current()
    if request.method == "POST" and (view is None or not csrf_ok()):
        # An expired session or token: nothing is lost. The form comes back with what was posted; the
        # person logs in again in the same form, and the save happens then.
        posted = drafts.from_form(step, _form())
        email, password = request.form.get("login_email", ""), request.form.get("login_password", "")
        again = accounts.authenticate(registry(), email, password) if email and password else None
        if again is None or not csrf_ok():
            errors = FormErrors()
            if email or password:
                errors.add(None, _("Adresse électronique ou mot de passe incorrect."))
            return _render(draft_id, step, posted, errors, relogin=True, status=401)
        start_session(again)
        view = again
    if view is None:
        return redirect(url_for("accounts.login", next=request.path))
    caller = accounts.caller_for(view, "form")
    try:
        draft = drafts.get_draft(registry(), caller, draft_id)
    except DraftNotFound:
        abort(404)
    except Forbidden as exc:
        abort(403, str(exc))
    if request.method == "GET":
        errors = drafts.check_draft(registry(), caller, draft_id)[0] if request.args.get("verifier") else None
        return _render(draft_id, step, draft.data, errors, exp_id=draft.experience_id, siren=draft.siren)
    draft = drafts.save_draft(registry(), caller, draft_id, step, _form(), view.id)  # always saved first
    action = request.form.get("action", "save")
    if action.startswith("add:"):
        return redirect(url_for("publish.step", draft_id=draft_id, step=step, ajouter=action[4:]) + "#groupe-"
                        + action[4:])
    if action.startswith("remove:"):
        table, index = [*action.split(":"), "", ""][1:3]
        rows = list(draft.data.get(table) or [])
        if index.isdigit() and int(index) < len(rows):
            del rows[int(index)]
            form = {f"{table}.{i}.{k}": [v] for i, row in enumerate(rows) for k, v in row.items()}
            form |= {k: v for k, v in _form().items() if not k.startswith(f"{table}.")}
            drafts.save_draft(registry(), caller, draft_id, step, form, view.id)
        return redirect(url_for("publish.step", draft_id=draft_id, step=step) + "#groupe-" + table)
    if action in STEPS:
        return redirect(url_for("publish.step", draft_id=draft_id, step=action))
    if action == "publish":
        errors, result = drafts.publish_draft(registry(), caller, draft_id)
        if result is not None and result.accepted:
            return redirect(url_for("publish.dashboard", publie=draft.experience_id))
        if not errors:
            errors.add(None, _("La publication a échoué."))
        return _render(draft_id, step, draft.data, errors, status=400, exp_id=draft.experience_id,
                       siren=draft.siren)
    if action == "check":
        errors = drafts.check_draft(registry(), caller, draft_id)[0]
        return _render(draft_id, step, draft.data, errors, status=200, exp_id=draft.experience_id,
                       siren=draft.siren)
    flash(_("Brouillon enregistré."))
    return redirect(url_for("publish.step", draft_id=draft_id, step=step))


@bp.post("/brouillons/<int:draft_id>/<step>/auto")
def autosave(draft_id: int, step: str) -> Any:
    """The form's script saves as the person types; a JSON answer (the page keeps the text either way)."""
    view = current()
    if step not in STEPS:
        abort(404)
    if (request.content_length or 0) > MAX_FORM:
        return jsonify({"saved": False, "message": _("Envoi trop volumineux : le brouillon n'a pas changé.")}), 413
    if view is None or not csrf_ok():
        return jsonify({"saved": False, "message": _("Session expirée : reconnectez-vous pour enregistrer.")}), 401
    try:
        draft = drafts.save_draft(registry(), accounts.caller_for(view, "form"), draft_id, step, _form(), view.id)
    except DraftNotFound:
        abort(404)
    except Forbidden:
        return jsonify({"saved": False, "message": _("Accès refusé.")}), 403
    return jsonify({"saved": True, "at": draft.updated_at.isoformat(timespec="seconds")})


@bp.post("/brouillons/<int:draft_id>/supprimer")
@login_required
def delete(draft_id: int) -> Any:
    try:
        drafts.delete_draft(registry(), user_caller(), draft_id)
    except DraftNotFound:
        abort(404)
    except Forbidden as exc:
        abort(403, str(exc))
    flash(_("Brouillon supprimé."))
    return redirect(url_for("publish.dashboard"))


@bp.get("/communes.json")
def communes() -> Any:
    q = request.args.get("q", "")[:200]
    return jsonify({"q": q, "results": [{"code": c, "label": label} for c, label in drafts.find_communes(q, 15)]})


@bp.route("/deposer", methods=["GET", "POST"])
@login_required
def upload() -> Any:
    view = current()
    assert view is not None
    if request.method == "GET":
        return render_template("publish/upload.html", check=None)
    file = request.files.get("fichier")
    if file is None or not file.filename:
        return render_template("publish/upload.html", check=None, error=_("Choisissez un fichier.")), 400
    data = file.read(registry().settings.max_upload_bytes + 1)
    try:
        check = drafts.check_upload(registry(), user_caller("upload"), data, file.filename, view.id)
    except Forbidden as exc:
        return render_template("publish/upload.html", check=None, error=str(exc)), 403
    status = 200 if check.report.valid and not check.refused else 400
    return render_template("publish/upload.html", check=check, report=check.report.to_dict("fr"),
                           table_title=_table_title), status


def _table_title(table: str) -> str:
    spec = get_standard().table(table)
    return (spec.title_en if g.get("lang") == "en" and spec.title_en else spec.title) or table


@bp.post("/deposer/publier")
@login_required
def upload_publish() -> Any:
    view = current()
    assert view is not None
    if request.form.get("removals", "0") != "0" and request.form.get("confirm") != "1":
        return render_template("publish/upload.html", check=None, error=_(
            "Ce fichier supprime des lignes actuelles : cochez « Je confirme la suppression de ces lignes » pour "
            "le publier, ou déposez un fichier corrigé.")), 400
    try:
        result = drafts.publish_upload(registry(), user_caller("upload"), request.form.get("token", ""), view.id)
    except DraftNotFound:
        return render_template("publish/upload.html", check=None,
                               error=_("Ce dépôt n'est plus disponible : déposez le fichier à nouveau.")), 404
    except Forbidden as exc:
        return render_template("publish/upload.html", check=None, error=str(exc)), 403
    if not result.accepted:
        return render_template("publish/upload.html", check=None, report=result.report.to_dict("fr"),
                               error=_("Le registre a changé depuis la vérification : voici le nouveau "
                                       "rapport.")), 400
    return render_template("publish/uploaded.html", outcomes=result.outcomes)


@bp.get("/modele.xlsx")
def template() -> Response:
    return Response(drafts.xlsx_template(),
                    mimetype="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
                    headers={"Content-Disposition": 'attachment; filename="modele-retours-experience.xlsx"'})
