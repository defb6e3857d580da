"""The API-token page of an organisation's admins: create (the secret shown once), list, revoke."""

from __future__ import annotations

from typing import Any

from flask import abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _

from registry.actions import Forbidden, tokens
from registry.actions.accounts import AccountError
from web.accounts import bp, current, login_required, user_caller
from web.context import registry


def _page(new: tokens.NewToken | None = None, errors: dict[str, str] | None = None, status: int = 200) -> Any:
    view = current()
    assert view is not None
    caller = user_caller()
    sirens = sorted(caller.admin_of) if not view.is_registry_admin else sorted({m.siren for m in view.organisations})
    listed = {s: tokens.list_tokens(registry(), caller, s) for s in sirens}
    names = {m.siren: m.organisation for m in view.organisations}
    body = render_template("accounts/tokens.html", listed=listed, names=names, new=new, errors=errors or {},
                           values={k: request.form.get(k, "")[:120] for k in ("name", "siren")})
    return body, status, {"Cache-Control": "no-store"}  # the page may hold a secret shown once


@bp.route("/jetons", methods=["GET", "POST"])
@login_required
def api_tokens() -> Any:
    if request.method == "GET":
        return _page()
    try:
        new = tokens.create(registry(), user_caller(), request.form.get("siren", "")[:20],
                            request.form.get("name", ""))
    except AccountError as exc:
        return _page(errors={exc.field or "name": str(exc)}, status=400)
    except Forbidden as exc:
        return _page(errors={"siren": str(exc)}, status=403)
    return _page(new=new, status=201)


@bp.post("/jetons/<int:token_id>/revoquer")
@login_required
def revoke_token(token_id: int) -> Any:
    try:
        view = tokens.revoke(registry(), user_caller(), token_id)
    except AccountError:
        abort(404)
    except Forbidden as exc:
        abort(403, str(exc))
    flash(_("Jeton « %(name)s » révoqué : ses requêtes sont refusées dès maintenant.", name=view.name))
    return redirect(url_for("accounts.api_tokens"))
