"""API tokens: an organisation's programs publish through the REST API with one.

A token writes for exactly one organisation (SIREN). The secret is made here, returned once, and only its
SHA-256 is stored (a 256-bit random secret needs no slow hash: nothing to guess from the digest); a lookup by
digest is one indexed query. Tokens are created and revoked by the organisation's admins or a registry admin;
a revoked token stays listed, with who revoked it and when.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from dataclasses import dataclass

from sqlalchemy import select, update

from registry.accounts_db import ApiToken
from registry.actions.accounts import AccountError, resolve_organisation
from registry.actions.authz import Caller, Permission, Role, check
from registry.db import utcnow
from registry.store import Registry

PREFIX = "rtc_"  # "registre des territoires connectés": recognisable in logs and by secret scanners
MAX_SECRET = 200
USE_RESOLUTION = dt.timedelta(minutes=5)  # last_used_at is written at most this often per token


@dataclass(frozen=True)
class TokenView:
    id: int
    siren: str
    name: str
    prefix: str
    created_by: str | None
    created_at: dt.datetime
    last_used_at: dt.datetime | None
    revoked_at: dt.datetime | None
    revoked_by: str | None

    @property
    def active(self) -> bool:
        return self.revoked_at is None


@dataclass(frozen=True)
class NewToken:
    view: TokenView
    secret: str  # shown once: the registry cannot show it again


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8", "replace")).hexdigest()


def _view(t: ApiToken) -> TokenView:
    return TokenView(t.id, t.siren, t.name, t.prefix, t.created_by, t.created_at, t.last_used_at, t.revoked_at,
                     t.revoked_by)


def _name(name: str) -> str:
    name = " ".join((name or "").split())
    if not name:
        raise AccountError("Donnez un nom au jeton (par exemple « export SIG nocturne »).", "name")
    if len(name) > 120 or any(ord(c) < 32 for c in name):
        raise AccountError("Nom du jeton trop long (120 caractères au plus) ou avec des caractères interdits.",
                           "name")
    return name


def create(registry: Registry, caller: Caller, organisation: str, name: str) -> NewToken:
    """A new token for an organisation (a SIREN or a name that designates one commune or EPCI)."""
    org = resolve_organisation(organisation)
    check(caller, Permission.MANAGE_TOKENS, [org.siren])
    name = _name(name)
    secret = PREFIX + secrets.token_urlsafe(32)
    with registry.session() as s:
        token = ApiToken(siren=org.siren, name=name, token_hash=digest(secret), prefix=secret[:12],
                         created_by=caller.actor, created_at=utcnow())
        s.add(token)
        s.flush()
        return NewToken(_view(token), secret)


def list_tokens(registry: Registry, caller: Caller, siren: str | None = None) -> list[TokenView]:
    """An organisation's tokens (every organisation's for a registry admin, when `siren` is None)."""
    if siren is None:
        check(caller, Permission.MANAGE_ACCOUNTS)
    else:
        check(caller, Permission.MANAGE_TOKENS, [siren])
    query = select(ApiToken).order_by(ApiToken.siren, ApiToken.id)
    if siren is not None:
        query = query.where(ApiToken.siren == siren)
    with registry.session() as s:
        return [_view(t) for t in s.scalars(query)]


def revoke(registry: Registry, caller: Caller, token_id: int) -> TokenView:
    with registry.session() as s:
        token = s.get(ApiToken, token_id)
        if token is None:
            raise AccountError("Jeton introuvable.", "token")
        check(caller, Permission.MANAGE_TOKENS, [token.siren])
        if token.revoked_at is None:
            token.revoked_at = utcnow()
            token.revoked_by = caller.actor
        s.flush()
        return _view(token)


def _aware(value: dt.datetime) -> dt.datetime:
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


def authenticate(registry: Registry, secret: str) -> Caller | None:
    """The Caller of an API request bearing this secret, or None (unknown, malformed or revoked)."""
    if not secret.startswith(PREFIX) or len(secret) > MAX_SECRET or not secret.isascii():
        return None
    with registry.session() as s:
        token = s.scalars(select(ApiToken).where(ApiToken.token_hash == digest(secret))).first()
        if token is None or token.revoked_at is not None:
            return None
        now = utcnow()
        if token.last_used_at is None or now - _aware(token.last_used_at) > USE_RESOLUTION:
            s.execute(update(ApiToken).where(ApiToken.id == token.id).values(last_used_at=now))
        actor = f"jeton {token.prefix}… ({token.name})"
        return Caller("api", actor[:200], frozenset({Role.PUBLISHER}), frozenset({token.siren}))


__all__ = ["NewToken", "TokenView", "authenticate", "create", "list_tokens", "revoke"]
