"""Registry admins: users and their memberships, organisations, withdrawn records with their reasons,
harvest sources (add, edit, enable, run now) and jobs with their per-item reports. Anonymous: the login page;
a logged-in user who is not a registry admin: 403. The rights are checked again by each action."""

from __future__ import annotations

import threading
from typing import Any

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _

from registry.actions import Forbidden, accounts
from registry.actions import harvest as harvest_actions
from registry.actions.accounts import AccountError
from registry.actions.harvest import HarvestError
from web.accounts import change_membership, check_csrf, current, login_required, user_caller
from web.context import registry

bp = Blueprint("admin", __name__, url_prefix="/admin")


@bp.before_request
@login_required
def _guard() -> Any:
    view = current()
    if view is None or not view.is_registry_admin:
        abort(403, _("Réservé aux administrateurs du registre."))
    check_csrf()
    return None


@bp.get("")
def index() -> Any:
    caller = user_caller()
    return render_template(
        "admin/index.html", pending=accounts.pending_memberships(registry(), caller),
        users=accounts.list_users(registry(), caller), organisations=accounts.list_organisations(registry(), caller),
        withdrawn=accounts.withdrawn_records(registry(), caller),
        sources=harvest_actions.list_sources(registry(), caller),
        jobs=harvest_actions.list_jobs(registry(), caller, limit=20))


@bp.post("/adhesions/<int:membership_id>")
def membership(membership_id: int) -> Any:
    change_membership(membership_id)
    return redirect(url_for("admin.index") + "#adhesions")


@bp.post("/utilisateurs/<int:user_id>")
def user(user_id: int) -> Any:
    action = request.form.get("action", "")
    kwargs: dict[str, Any] = {"activate": {"active": True}, "deactivate": {"active": False},
                              "make_admin": {"registry_admin": True},
                              "remove_admin": {"registry_admin": False}}.get(action, {})
    if not kwargs:
        abort(400)
    view = current()
    if view is not None and view.id == user_id and action in ("deactivate", "remove_admin"):
        flash(_("Vous ne pouvez pas vous retirer vos propres droits."))
        return redirect(url_for("admin.index") + "#utilisateurs")
    try:
        accounts.set_user(registry(), user_caller(), user_id, **kwargs)
    except AccountError as exc:
        abort(404, str(exc))
    flash(_("Modification enregistrée."))
    return redirect(url_for("admin.index") + "#utilisateurs")


@bp.post("/utilisateurs/<int:user_id>/organisations")
def add_member(user_id: int) -> Any:
    try:
        accounts.add_membership(registry(), user_caller(), user_id, request.form.get("organisation", ""),
                                request.form.get("role", "member"))
    except AccountError as exc:
        flash(str(exc))
    return redirect(url_for("admin.index") + "#utilisateurs")


@bp.post("/moissonnage/<name>")
def source(name: str) -> Any:
    action = request.form.get("action", "")
    caller = user_caller()
    try:
        if action in ("enable", "disable"):
            harvest_actions.set_enabled(registry(), caller, name, action == "enable")
            flash(_("Modification enregistrée."))
        elif action == "run":
            harvest_actions.get_source(registry(), caller, name)
            _run_in_background(name)
            flash(_("Moissonnage lancé : son rapport apparaît dans la liste des moissonnages."))
        else:
            abort(400)
    except (HarvestError, Forbidden) as exc:
        flash(str(exc))
    return redirect(url_for("admin.index") + "#moissonnage")


SOURCE_FIELDS = ("name", "url", "type", "organisations", "query", "schedule")


def _source_form() -> dict[str, str]:
    return {k: request.form.get(k, "").strip()[:2000] for k in SOURCE_FIELDS} | {
        "allow_private_network": "1" if request.form.get("allow_private_network") == "1" else ""}


def _add(form: dict[str, str]) -> harvest_actions.SourceView:
    return harvest_actions.add_source(
        registry(), user_caller(), form["name"], form["url"], form["type"] or "ckan",
        [s for s in form["organisations"].replace(",", " ").split() if s], form["query"] or None,
        form["schedule"] or None, form["allow_private_network"] == "1")


def _source_page(form: dict[str, str], error: str | None = None, source: harvest_actions.SourceView | None = None,
                 harvested: bool = False) -> Any:
    page = render_template("admin/source.html", form=form, error=error, source=source, harvested=harvested,
                           types=harvest_actions.TYPES, schedules=list(harvest_actions.SCHEDULES))
    return page, 400 if error else 200


@bp.route("/moissonnage/sources/nouvelle", methods=["GET", "POST"])
def add_source() -> Any:
    """A new harvest source (harvest.add_source checks every value and says what is wrong, in French)."""
    if request.method == "GET":
        return _source_page({"type": "ckan", "schedule": "daily"})
    form = _source_form()
    try:
        _add(form)
    except (HarvestError, Forbidden) as exc:
        return _source_page(form, str(exc))
    flash(_("Source « %(name)s » ajoutée.", name=form["name"]))
    return redirect(url_for("admin.index") + "#moissonnage")


@bp.route("/moissonnage/sources/<name>/modifier", methods=["GET", "POST"])
def edit_source(name: str) -> Any:
    """A source's settings (its name stays: jobs, reports and claims are filed under it)."""
    caller = user_caller()
    try:
        found = harvest_actions.get_source(registry(), caller, name)
    except HarvestError:
        abort(404)
    harvested = bool(harvest_actions.list_jobs(registry(), caller, name, limit=1))
    if request.method == "GET":
        return _source_page(_form_of(found), None, found, harvested)
    form = {**_source_form(), "name": name}
    try:
        harvest_actions.update_source(
            registry(), caller, name, form["url"], form["type"] or "ckan",
            [s for s in form["organisations"].replace(",", " ").split() if s], form["query"] or None,
            form["schedule"] or None, form["allow_private_network"] == "1")
    except (HarvestError, Forbidden) as exc:
        return _source_page(form, str(exc), found, harvested)
    flash(_("Modification enregistrée."))
    return redirect(url_for("admin.index") + "#moissonnage")


def _form_of(found: harvest_actions.SourceView) -> dict[str, str]:
    return {"name": found.name, "url": found.url, "type": found.type, "organisations": " ".join(found.organisations),
            "query": found.query or "", "schedule": found.schedule or "",
            "allow_private_network": "1" if found.allow_private_network else ""}


def _run_in_background(name: str) -> None:
    from harvesters.run import run_source

    reg, caller, log = registry(), user_caller(), current_app.logger

    def run() -> None:
        try:
            run_source(reg, caller, name)
        except Exception:  # reported in the job and the log; never in the request
            log.exception("moissonnage %s", name)

    threading.Thread(target=run, name=f"harvest-{name}", daemon=True).start()


@bp.get("/moissonnage/travaux/<int:job_id>")
def job(job_id: int) -> Any:
    try:
        found = harvest_actions.get_job(registry(), user_caller(), job_id)
    except HarvestError:
        abort(404)
    return render_template("admin/job.html", job=found)
