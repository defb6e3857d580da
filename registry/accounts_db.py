"""Account tables: users, their memberships of organisations (SIREN), registry admins, drafts, reset tokens.

Built on `registry.db.Base` (migration 0003_accounts). Only `registry/actions/accounts.py` and
`registry/actions/drafts.py` query them; `web/` reaches them through those actions.

- `users`: one person, by e-mail (stored lower-case); the password is an Argon2 hash, never the password.
- `memberships`: a user in an organisation (SIREN) with a role (member | org_admin) and a status
  (pending until an organisation admin or a registry admin approves it, then active).
- `registry_admins`: the users who may do everything (their `Caller` has the ADMIN role).
- `drafts`: what a territory typed in the publishing form, saved as it types; private to its organisation
  until published. `data` is the form's state: {"experiences": {...}, "indicateurs": [{...}], ...}.
- `password_resets`: one-time links; only the SHA-256 of the token is stored.
- `api_tokens`: API tokens, one organisation each (migration 0004_api_tokens); only the SHA-256 of the secret.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import DateTime, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from registry.db import Base, JsonType, utcnow


class MemberRole:
    MEMBER = "member"
    ORG_ADMIN = "org_admin"


class MemberStatus:
    PENDING = "pending"
    ACTIVE = "active"


class User(Base):
    __tablename__ = "users"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    name: Mapped[str] = mapped_column(String(120))
    password_hash: Mapped[str] = mapped_column(String(200))
    active: Mapped[bool] = mapped_column(default=True)
    session_version: Mapped[int] = mapped_column(Integer, default=1)  # bumped on password change: old sessions end
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    last_login_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))


class Membership(Base):
    __tablename__ = "memberships"
    __table_args__ = (UniqueConstraint("user_id", "siren", name="uq_memberships_user_siren"),
                      Index("ix_memberships_siren", "siren"))
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    siren: Mapped[str] = mapped_column(String(9))
    organisation_name: Mapped[str] = mapped_column(String(300))
    role: Mapped[str] = mapped_column(String(12), default=MemberRole.MEMBER)
    status: Mapped[str] = mapped_column(String(10), default=MemberStatus.PENDING)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class RegistryAdmin(Base):
    __tablename__ = "registry_admins"
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Draft(Base):
    __tablename__ = "drafts"
    __table_args__ = (Index("ix_drafts_siren", "siren"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    siren: Mapped[str] = mapped_column(String(9))
    experience_id: Mapped[str | None] = mapped_column(String(40))  # set once known (editing, or published)
    data: Mapped[dict[str, Any]] = mapped_column(JsonType, default=dict)
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    updated_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    published_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))


class PasswordReset(Base):
    __tablename__ = "password_resets"
    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    expires_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    used_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))


class ApiToken(Base):
    """A publisher's API token: it writes for one organisation (SIREN). Only the SHA-256 of the secret is kept;
    the secret is shown once, at creation. A revoked token stays listed (who revoked it, when)."""

    __tablename__ = "api_tokens"
    __table_args__ = (Index("ix_api_tokens_siren", "siren"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    siren: Mapped[str] = mapped_column(String(9))
    name: Mapped[str] = mapped_column(String(120))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(16))  # the secret's first characters, to recognise it in a list
    created_by: Mapped[str | None] = mapped_column(String(200))  # the actor, as the revision history says it
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    last_used_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    revoked_by: Mapped[str | None] = mapped_column(String(200))
