"""Accounts: users, their organisations (SIREN) and roles, registry admins, password resets.

The site (web/accounts, web/admin) calls these; the rights are decided in `authz`. A logged-in user acts
through `caller_for(user)`: a publisher for the organisations where its membership is active, or the
ADMIN role for a registry admin; its `actor` ("Name <email>") is what the revision history records.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import secrets
import unicodedata
from dataclasses import dataclass
from functools import cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import func, select

from registry.accounts_db import MemberRole, Membership, MemberStatus, PasswordReset, RegistryAdmin, User
from registry.actions.authz import Caller, Permission, Role, check
from registry.db import Experience, Status
from registry.folding import LIGATURES
from registry.geo import get_geography
from registry.service import Channel
from registry.store import Registry

HASHER = PasswordHasher()  # Argon2id with argon2-cffi's recommended parameters
_DUMMY_HASH = HASHER.hash("mot de passe factice pour un temps constant")
MIN_PASSWORD = 12
MAX_PASSWORD = 1000
RESET_LIFETIME = dt.timedelta(hours=1)
EMAIL_RE = re.compile(r"^[^@\s<>\"',;]{1,64}@[^@\s<>\"',;]{1,190}\.[^@\s<>\"',;.]{2,}$")
SIREN_RE = re.compile(r"^[0-9]{9}$")


class AccountError(ValueError):
    """A request about accounts that cannot be done: the message says why, in French; `field` says where."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


@dataclass(frozen=True)
class MembershipView:
    id: int
    user_id: int
    siren: str
    organisation: str
    role: str
    status: str
    user_email: str = ""
    user_name: str = ""

    @property
    def active(self) -> bool:
        return self.status == MemberStatus.ACTIVE


@dataclass(frozen=True)
class UserView:
    id: int
    email: str
    name: str
    active: bool
    is_registry_admin: bool
    session_version: int
    memberships: tuple[MembershipView, ...]
    created_at: dt.datetime | None = None
    last_login_at: dt.datetime | None = None

    @property
    def organisations(self) -> tuple[MembershipView, ...]:
        return tuple(m for m in self.memberships if m.active)

    @property
    def actor(self) -> str:
        return f"{self.name} <{self.email}>"[:200]


@dataclass(frozen=True)
class OrganisationView:
    siren: str
    nom: str
    members: int
    pending: int
    experiences: int


@dataclass(frozen=True)
class OrgChoice:
    """A commune or an EPCI of the official geography, to be chosen by name."""

    siren: str
    nom: str
    kind: str  # commune | epci
    detail: str  # département, or the EPCI's type

    @property
    def label(self) -> str:
        return f"{self.nom} ({self.detail}) — SIREN {self.siren}"


@dataclass(frozen=True)
class WithdrawnView:
    id: str
    intitule: str
    siren: str
    reason: str | None
    revision: int


def caller_for(user: UserView, channel: Channel = "form") -> Caller:
    """The Caller of a logged-in user: what the action layer checks and what the history records."""
    if user.is_registry_admin:
        return Caller(channel, user.actor, frozenset({Role.ADMIN}),
                      frozenset(m.siren for m in user.organisations))
    return Caller(channel, user.actor, frozenset({Role.PUBLISHER}), frozenset(m.siren for m in user.organisations),
                  frozenset(m.siren for m in user.organisations if m.role == MemberRole.ORG_ADMIN))


# --- the geography, by name ------------------------------------------------------------------------------

def fold(text: str) -> str:
    """Lower case without accents, hyphens and apostrophes as spaces: how names are compared."""
    text = unicodedata.normalize("NFKD", text.casefold().translate(LIGATURES))
    text = "".join(c for c in text if not unicodedata.combining(c))
    return " ".join(re.sub(r"[-'’_()]", " ", text).split())


@cache
def _org_choices() -> tuple[tuple[str, OrgChoice], ...]:
    geo = get_geography()
    out: dict[str, OrgChoice] = {}
    for c in geo.communes():
        if c.siren:
            out[c.siren] = OrgChoice(c.siren, c.nom, "commune", f"{c.departement_nom}, {c.departement}")
        if c.epci_siren and c.epci_siren not in out and c.epci_nom:
            out[c.epci_siren] = OrgChoice(c.epci_siren, c.epci_nom, "epci", "intercommunalité")
    return tuple(sorted(((fold(o.nom), o) for o in out.values()), key=lambda p: (p[0], p[1].siren)))


def find_organisations(text: str, limit: int = 20) -> list[OrgChoice]:
    """Communes and EPCIs whose name starts with (then contains) the text, or whose SIREN is the text."""
    text = (text or "")[:200]
    siren = re.sub(r"\s", "", text)
    if SIREN_RE.match(siren):
        return [o for _, o in _org_choices() if o.siren == siren][:1]
    q = fold(text)
    if len(q) < 2:
        return []
    starts = [o for name, o in _org_choices() if name.startswith(q)]
    contains = [o for name, o in _org_choices() if q in name and not name.startswith(q)] if len(starts) < limit else []
    return (starts + contains)[:limit]


def resolve_organisation(text: str) -> OrgChoice:
    """The organisation a user typed: a SIREN, a label from the list, or a name that designates only one."""
    text = (text or "").strip()
    found = re.search(r"SIREN\s*([0-9]{9})\s*$", text)
    if found:
        text = found.group(1)
    choices = find_organisations(text, limit=50)
    if len(choices) == 1:
        return choices[0]
    exact = [o for o in choices if fold(o.nom) == fold(text)]
    if len(exact) == 1:
        return exact[0]
    if not choices:
        raise AccountError("Organisation introuvable : saisissez le nom de la commune ou de l'intercommunalité, "
                           "ou son numéro SIREN (9 chiffres).", "organisation")
    names = " ; ".join(o.label for o in (exact or choices)[:5])
    raise AccountError(f"Plusieurs organisations correspondent : précisez (par exemple {names}).", "organisation")


# --- users -----------------------------------------------------------------------------------------------

def _email(email: str) -> str:
    email = (email or "").strip().lower()
    if len(email) > 254 or not EMAIL_RE.match(email):
        raise AccountError("Adresse électronique invalide (par exemple agent@mairie-exemple.fr).", "email")
    return email


def _password(password: str) -> str:
    if len(password or "") < MIN_PASSWORD:
        raise AccountError(f"Le mot de passe doit compter au moins {MIN_PASSWORD} caractères.", "password")
    if len(password) > MAX_PASSWORD:
        raise AccountError(f"Le mot de passe doit compter au plus {MAX_PASSWORD} caractères.", "password")
    return password


def _name(name: str) -> str:
    name = " ".join((name or "").split())
    if not name:
        raise AccountError("Indiquez votre nom.", "name")
    if len(name) > 120 or any(ord(c) < 32 for c in name):
        raise AccountError("Nom trop long (120 caractères au plus) ou avec des caractères interdits.", "name")
    return name


def _view(s: object, user: User) -> UserView:
    rows = s.execute(select(Membership).where(Membership.user_id == user.id).order_by(Membership.id))  # type: ignore[attr-defined]
    members = tuple(MembershipView(m.id, m.user_id, m.siren, m.organisation_name, m.role, m.status, user.email,
                                   user.name) for (m,) in rows)
    admin = s.get(RegistryAdmin, user.id) is not None  # type: ignore[attr-defined]
    return UserView(user.id, user.email, user.name, user.active, admin, user.session_version, members,
                    user.created_at, user.last_login_at)


def register(registry: Registry, email: str, name: str, password: str, organisation: str) -> UserView:
    """A new account, with a membership request for one organisation (pending until approved). The first
    member of an organisation is its organisation admin once approved."""
    email, name, password = _email(email), _name(name), _password(password)
    org = resolve_organisation(organisation)
    with registry.session() as s:
        if s.scalar(select(User.id).where(User.email == email)) is not None:
            raise AccountError("Un compte existe déjà avec cette adresse : connectez-vous, ou demandez un nouveau "
                               "mot de passe.", "email")
        user = User(email=email, name=name, password_hash=HASHER.hash(password), created_at=registry.clock())
        s.add(user)
        s.flush()
        first = s.scalar(select(func.count()).select_from(Membership).where(Membership.siren == org.siren)) == 0
        s.add(Membership(user_id=user.id, siren=org.siren, organisation_name=org.nom[:300],
                         role=MemberRole.ORG_ADMIN if first else MemberRole.MEMBER, status=MemberStatus.PENDING,
                         created_at=registry.clock()))
        s.flush()
        return _view(s, user)


def authenticate(registry: Registry, email: str, password: str) -> UserView | None:
    """The user if the e-mail and password match an active account, else None (same work either way)."""
    email = (email or "").strip().lower()[:254]
    password = (password or "")[:MAX_PASSWORD]
    with registry.session() as s:
        user = s.scalar(select(User).where(User.email == email))
        try:
            HASHER.verify(user.password_hash if user else _DUMMY_HASH, password)
        except (VerificationError, InvalidHashError):
            return None
        if user is None or not user.active:
            return None
        if HASHER.check_needs_rehash(user.password_hash):
            user.password_hash = HASHER.hash(password)
        user.last_login_at = registry.clock()
        return _view(s, user)


def get_user(registry: Registry, user_id: int) -> UserView | None:
    with registry.session() as s:
        user = s.get(User, user_id)
        return _view(s, user) if user is not None and user.active else None


def create_user(registry: Registry, caller: Caller, email: str, name: str, password: str,
                registry_admin: bool = False) -> UserView:
    """An account made by the operator (the CLI, a registry admin): no membership, optionally registry admin."""
    check(caller, Permission.MANAGE_ACCOUNTS)
    email, name, password = _email(email), _name(name), _password(password)
    with registry.session() as s:
        if s.scalar(select(User.id).where(User.email == email)) is not None:
            raise AccountError("Un compte existe déjà avec cette adresse.", "email")
        user = User(email=email, name=name, password_hash=HASHER.hash(password), created_at=registry.clock())
        s.add(user)
        s.flush()
        if registry_admin:
            s.add(RegistryAdmin(user_id=user.id, created_at=registry.clock()))
            s.flush()
        return _view(s, user)


def add_membership(registry: Registry, caller: Caller, user_id: int, organisation: str,
                   role: str = MemberRole.MEMBER, active: bool = True) -> MembershipView:
    org = resolve_organisation(organisation)
    check(caller, Permission.MANAGE_MEMBERS, [org.siren])
    if role not in (MemberRole.MEMBER, MemberRole.ORG_ADMIN):
        raise AccountError("Rôle inconnu.", "role")
    with registry.session() as s:
        user = s.get(User, user_id)
        if user is None:
            raise AccountError("Utilisateur introuvable.")
        m = s.scalar(select(Membership).where(Membership.user_id == user_id, Membership.siren == org.siren))
        if m is None:
            m = Membership(user_id=user_id, siren=org.siren, organisation_name=org.nom[:300],
                           created_at=registry.clock())
            s.add(m)
        m.role, m.status = role, MemberStatus.ACTIVE if active else MemberStatus.PENDING
        s.flush()
        return MembershipView(m.id, m.user_id, m.siren, m.organisation_name, m.role, m.status, user.email, user.name)


# --- password reset --------------------------------------------------------------------------------------

def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "replace")).hexdigest()


def request_reset(registry: Registry, email: str) -> str | None:
    """A one-time token for the account with this e-mail (None when there is none: the page says the same
    thing either way). Only its SHA-256 is stored; it expires after an hour."""
    try:
        email = _email(email)
    except AccountError:
        return None
    with registry.session() as s:
        user = s.scalar(select(User).where(User.email == email, User.active.is_(True)))
        if user is None:
            return None
        token = secrets.token_urlsafe(32)
        s.add(PasswordReset(token_hash=_token_hash(token), user_id=user.id,
                            expires_at=registry.clock() + RESET_LIFETIME))
        return token


def _aware(value: dt.datetime) -> dt.datetime:
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


def reset_valid(registry: Registry, token: str) -> bool:
    with registry.session() as s:
        row = s.get(PasswordReset, _token_hash(token or ""))
        return row is not None and row.used_at is None and _aware(row.expires_at) > registry.clock()


def reset_password(registry: Registry, token: str, password: str) -> UserView:
    """Sets a new password with a one-time token; the token is spent and every older session ends."""
    password = _password(password)
    with registry.session() as s:
        row = s.get(PasswordReset, _token_hash(token or ""))
        if row is None or row.used_at is not None or _aware(row.expires_at) <= registry.clock():
            raise AccountError("Ce lien n'est plus valable (déjà utilisé ou expiré) : demandez-en un nouveau.")
        user = s.get(User, row.user_id)
        assert user is not None
        row.used_at = registry.clock()
        user.password_hash = HASHER.hash(password)
        user.session_version += 1
        return _view(s, user)


# --- administration --------------------------------------------------------------------------------------

def list_users(registry: Registry, caller: Caller) -> list[UserView]:
    check(caller, Permission.MANAGE_ACCOUNTS)
    with registry.session() as s:
        return [_view(s, u) for u in s.scalars(select(User).order_by(User.email))]


def members(registry: Registry, caller: Caller, siren: str) -> list[MembershipView]:
    """The members of an organisation (and requests), for its organisation admins and registry admins."""
    check(caller, Permission.MANAGE_MEMBERS, [siren])
    with registry.session() as s:
        rows = s.execute(select(Membership, User).join(User, User.id == Membership.user_id)
                         .where(Membership.siren == siren).order_by(Membership.status, User.email))
        return [MembershipView(m.id, m.user_id, m.siren, m.organisation_name, m.role, m.status, u.email, u.name)
                for m, u in rows]


def pending_memberships(registry: Registry, caller: Caller) -> list[MembershipView]:
    check(caller, Permission.MANAGE_ACCOUNTS)
    with registry.session() as s:
        rows = s.execute(select(Membership, User).join(User, User.id == Membership.user_id)
                         .where(Membership.status == MemberStatus.PENDING).order_by(Membership.id))
        return [MembershipView(m.id, m.user_id, m.siren, m.organisation_name, m.role, m.status, u.email, u.name)
                for m, u in rows]


def set_membership(registry: Registry, caller: Caller, membership_id: int, status: str | None = None,
                   role: str | None = None, remove: bool = False) -> None:
    """Approve (status=active), change the role of, or remove a membership."""
    with registry.session() as s:
        m = s.get(Membership, membership_id)
        if m is None:
            raise AccountError("Adhésion introuvable.")
        check(caller, Permission.MANAGE_MEMBERS, [m.siren])
        if remove:
            s.delete(m)
            return
        if status is not None:
            if status not in (MemberStatus.ACTIVE, MemberStatus.PENDING):
                raise AccountError("Statut inconnu.")
            m.status = status
        if role is not None:
            if role not in (MemberRole.MEMBER, MemberRole.ORG_ADMIN):
                raise AccountError("Rôle inconnu.")
            m.role = role


def set_user(registry: Registry, caller: Caller, user_id: int, active: bool | None = None,
             registry_admin: bool | None = None) -> None:
    check(caller, Permission.MANAGE_ACCOUNTS)
    with registry.session() as s:
        user = s.get(User, user_id)
        if user is None:
            raise AccountError("Utilisateur introuvable.")
        if active is not None:
            user.active = active
            user.session_version += 1
        if registry_admin is True and s.get(RegistryAdmin, user_id) is None:
            s.add(RegistryAdmin(user_id=user_id, created_at=registry.clock()))
        elif registry_admin is False and (row := s.get(RegistryAdmin, user_id)) is not None:
            s.delete(row)


def list_organisations(registry: Registry, caller: Caller) -> list[OrganisationView]:
    """Every organisation with members or experiences: its members, pending requests and experiences."""
    check(caller, Permission.MANAGE_ACCOUNTS)
    geo = get_geography()
    with registry.session() as s:
        names: dict[str, str] = {}
        counts: dict[str, list[int]] = {}
        for m in s.scalars(select(Membership)):
            names[m.siren] = m.organisation_name
            c = counts.setdefault(m.siren, [0, 0, 0])
            c[0 if m.status == MemberStatus.ACTIVE else 1] += 1
        for siren, n in s.execute(select(Experience.siren_porteur, func.count()).where(
                Experience.status == Status.PUBLISHED).group_by(Experience.siren_porteur)):
            counts.setdefault(siren, [0, 0, 0])[2] = n
    out = []
    for siren, (active, pending, exps) in counts.items():
        org = geo.organisation(siren)
        out.append(OrganisationView(siren, names.get(siren) or (org.nom if org else siren), active, pending, exps))
    return sorted(out, key=lambda o: fold(o.nom))


def withdrawn_records(registry: Registry, caller: Caller, limit: int = 500) -> list[WithdrawnView]:
    check(caller, Permission.MANAGE_ACCOUNTS)
    with registry.session() as s:
        rows = s.scalars(select(Experience).where(Experience.status == Status.WITHDRAWN)
                         .order_by(Experience.id).limit(limit))
        return [WithdrawnView(e.id, e.intitule, e.siren_porteur, e.withdrawn_reason, e.revision) for e in rows]


__all__ = ["AccountError", "MembershipView", "OrgChoice", "OrganisationView", "UserView", "WithdrawnView",
           "add_membership", "authenticate", "caller_for", "create_user", "find_organisations", "get_user",
           "list_organisations", "list_users", "members", "pending_memberships", "register", "request_reset",
           "reset_password", "reset_valid", "resolve_organisation", "set_membership", "set_user",
           "withdrawn_records"]
