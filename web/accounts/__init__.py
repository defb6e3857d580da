"""Accounts: register, log in (rate-limited), log out, reset a password by a one-time link.

`register(app)` also sets up what the publishing and admin blueprints share: Flask-Login (the user is
reloaded from the registry on each request: a changed password or a deactivated account ends its sessions),
Flask-Limiter, the session cookie (HttpOnly, SameSite=Lax, Secure when served over https) and the CSRF token
checked on every POST of these blueprints (Flask-WTF's token, without a global CSRFProtect that would also
apply to the JSON APIs).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar
from urllib.parse import urlsplit

from flask import (
    Blueprint,
    Flask,
    abort,
    current_app,
    flash,
    g,
    jsonify,
    redirect,
    render_template,
    request,
    url_for,
)
from flask.sessions import SecureCookieSessionInterface
from flask_babel import gettext as _
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_login import LoginManager, UserMixin, current_user, login_user, logout_user
from flask_wtf.csrf import CSRFError, generate_csrf, validate_csrf
from wtforms.validators import ValidationError

from registry.actions import Caller, accounts
from registry.actions.accounts import AccountError, UserView
from web.context import registry
from web.ratelimit import RegistryStorage

bp = Blueprint("accounts", __name__, url_prefix="/compte")
login_manager = LoginManager()
F = TypeVar("F", bound=Callable[..., Any])


def _limit_key() -> str:
    return get_remote_address()  # one bucket per address, counted in the registry's database (web/ratelimit.py)


limiter = Limiter(key_func=_limit_key, storage_uri=f"{RegistryStorage.STORAGE_SCHEME[0]}://", default_limits=[])
SESSION_LIFETIME = dt.timedelta(hours=12)


class SessionUser(UserMixin):
    def __init__(self, view: UserView) -> None:
        self.view = view

    def get_id(self) -> str:
        return f"{self.view.id}:{self.view.session_version}"


@login_manager.user_loader
def _load(user_id: str) -> SessionUser | None:
    try:
        uid, version = (int(x) for x in user_id.split(":"))
    except ValueError:
        return None
    view = accounts.get_user(registry(), uid)
    return SessionUser(view) if view is not None and view.session_version == version else None


class _SessionInterface(SecureCookieSessionInterface):
    """The session cookie is Secure when the request came over https (or SESSION_COOKIE_SECURE says so)."""

    def get_cookie_secure(self, app: Flask) -> bool:
        return bool(app.config.get("SESSION_COOKIE_SECURE")) or request.is_secure


def register(app: Flask) -> None:
    app.config["SESSION_COOKIE_HTTPONLY"] = True  # Flask has defaults for these: set, not setdefault
    app.config["SESSION_COOKIE_SAMESITE"] = "Lax"
    app.config["PERMANENT_SESSION_LIFETIME"] = SESSION_LIFETIME
    app.config.setdefault("WTF_CSRF_TIME_LIMIT", int(SESSION_LIFETIME.total_seconds()))
    app.config.setdefault("LOGIN_RATE_LIMIT", "10 per minute")
    app.session_interface = _SessionInterface()
    login_manager.init_app(app)
    login_manager.login_view = "accounts.login"
    login_manager.login_message = ""
    limiter.init_app(app)
    app.register_blueprint(bp)
    app.jinja_env.globals["csrf_token"] = generate_csrf
    app.context_processor(lambda: {"account": current()})


# --- what the other blueprints use --------------------------------------------------------------------------

def current() -> UserView | None:
    user = current_user if current_user and current_user.is_authenticated else None
    return user.view if user is not None else None


def user_caller(channel: str = "form") -> Caller:
    view = current()
    if view is None:
        return Caller.anonymous("form")
    return accounts.caller_for(view, "upload" if channel == "upload" else "form")


def login_required(view: F) -> F:
    """Anonymous: a redirect to the login page, coming back here afterwards."""

    @wraps(view)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        if current() is None:
            return redirect(url_for("accounts.login", next=request.full_path.rstrip("?")))
        return view(*args, **kwargs)

    return wrapped  # type: ignore[return-value]


def csrf_ok() -> bool:
    try:
        validate_csrf(request.form.get("csrf_token", ""))
    except (ValidationError, CSRFError):
        return False
    return True


def check_csrf() -> None:
    """Every POST of the accounts, publishing and admin blueprints carries the session's CSRF token."""
    if request.method == "POST" and not csrf_ok():
        g.csrf_failed = True
        abort(400, _("Le formulaire a expiré ou ne vient pas de ce site : rechargez la page et recommencez."))


def safe_next(target: str | None) -> str:
    """Only a path of this site (no scheme, no host, no //): never an open redirect."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return url_for("publish.dashboard")
    parts = urlsplit(target)
    return target if not parts.scheme and not parts.netloc else url_for("publish.dashboard")


def start_session(view: UserView) -> None:
    from flask import session

    session.clear()  # a new session on login: no fixation
    session.permanent = True
    login_user(SessionUser(view))


# --- pages --------------------------------------------------------------------------------------------------

@bp.before_request
def _csrf() -> None:
    check_csrf()


@bp.route("/inscription", methods=["GET", "POST"])
def signup() -> Any:
    errors: dict[str, str] = {}
    values = {k: request.form.get(k, "")[:300] for k in ("email", "name", "organisation")}
    if request.method == "POST":
        if request.form.get("password", "") != request.form.get("password2", ""):
            errors["password2"] = _("Les deux mots de passe ne sont pas identiques.")
        else:
            try:
                view = accounts.register(registry(), values["email"], values["name"],
                                         request.form.get("password", ""), values["organisation"])
            except AccountError as exc:
                errors[exc.field or "email"] = str(exc)
            else:
                start_session(view)
                return redirect(url_for("publish.dashboard"))
    return render_template("accounts/signup.html", values=values, errors=errors), 400 if errors else 200


@bp.route("/connexion", methods=["GET", "POST"])
@limiter.limit(lambda: current_app.config["LOGIN_RATE_LIMIT"], methods=["POST"],
               error_message="Trop de tentatives de connexion : attendez une minute avant de réessayer.")
def login() -> Any:
    error = None
    email = request.form.get("email", "")[:254]
    if request.method == "POST":
        view = accounts.authenticate(registry(), email, request.form.get("password", ""))
        if view is None:
            error = _("Adresse électronique ou mot de passe incorrect.")
        else:
            start_session(view)
            return redirect(safe_next(request.form.get("next")))
    return render_template("accounts/login.html", email=email, error=error,
                           next=request.values.get("next", "")[:500]), 401 if error else 200


@bp.post("/deconnexion")
def logout() -> Any:
    logout_user()
    from flask import session

    session.clear()
    return redirect(url_for("pages.index"))


@bp.route("/mot-de-passe-oublie", methods=["GET", "POST"])
@limiter.limit(lambda: current_app.config["LOGIN_RATE_LIMIT"], methods=["POST"])
def forgot() -> Any:
    sent = False
    if request.method == "POST":
        token = accounts.request_reset(registry(), request.form.get("email", ""))
        if token is not None:
            link = url_for("accounts.reset", token=token, _external=True)
            if not current_app.config.get("MAIL_SERVER"):
                current_app.logger.warning("Lien de réinitialisation du mot de passe (aucun serveur de courrier "
                                           "configuré) : %s", link)
        sent = True  # the same answer whether the account exists or not
    return render_template("accounts/forgot.html", sent=sent)


@bp.route("/reinitialiser/<token>", methods=["GET", "POST"])
def reset(token: str) -> Any:
    token = token[:100]
    error = None
    if request.method == "POST":
        if request.form.get("password", "") != request.form.get("password2", ""):
            error = _("Les deux mots de passe ne sont pas identiques.")
        else:
            try:
                view = accounts.reset_password(registry(), token, request.form.get("password", ""))
            except AccountError as exc:
                error = str(exc)
            else:
                start_session(view)
                return redirect(url_for("publish.dashboard"))
    valid = accounts.reset_valid(registry(), token)
    return render_template("accounts/reset.html", token=token, valid=valid, error=error), 400 if error else 200


@bp.get("/organisations.json")
def organisations() -> Any:
    """Communes and EPCIs by name, for the registration form's list."""
    q = request.args.get("q", "")[:200]
    found = accounts.find_organisations(q, limit=15)
    return jsonify({"q": q, "results": [{"siren": o.siren, "label": o.label} for o in found]})


@bp.get("")
@login_required
def me() -> Any:
    view = current()
    assert view is not None
    caller = user_caller()
    managed = {m.siren: accounts.members(registry(), caller, m.siren)
               for m in view.organisations if m.siren in caller.admin_of}
    return render_template("accounts/me.html", user=view, managed=managed)


@bp.post("/membres/<int:membership_id>")
@login_required
def member(membership_id: int) -> Any:
    """An organisation admin approves, promotes or removes a member of its organisation."""
    change_membership(membership_id)
    return redirect(url_for("accounts.me"))


MEMBERSHIP_ACTIONS: dict[str, dict[str, Any]] = {"approve": {"status": "active"}, "remove": {"remove": True},
                                                 "promote": {"role": "org_admin"}, "demote": {"role": "member"}}


def change_membership(membership_id: int) -> None:
    """Approve, remove, promote or demote a member, as the form's `action` says (rights: the actions)."""
    kwargs = MEMBERSHIP_ACTIONS.get(request.form.get("action", ""))
    if not kwargs:
        abort(400)
    try:
        accounts.set_membership(registry(), user_caller(), membership_id, **kwargs)
    except AccountError as exc:
        abort(404, str(exc))
    flash(_("Modification enregistrée."))

from web.accounts import tokens as _tokens  # noqa: E402,F401  (the API-token page, on this blueprint)
