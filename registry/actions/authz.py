"""Who may do what, decided in one place for the CLI, the pages, the APIs and the harvesters."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum

from registry.service import Channel


class Role(StrEnum):
    ADMIN = "admin"  # the operator: the CLI, the worker
    PUBLISHER = "publisher"  # a territory's agent, for the organisations (SIREN) it belongs to
    HARVESTER = "harvester"  # a harvest job, for the organisations its source is allowed to publish for


class Permission(StrEnum):
    READ = "read"
    PUBLISH = "publish"
    WITHDRAW = "withdraw"
    REINDEX = "reindex"
    HARVEST = "harvest"  # manage harvest sources and run them: the operator only
    MANAGE_ACCOUNTS = "manage_accounts"  # users, organisations, registry admins: the operator (registry admins)
    MANAGE_MEMBERS = "manage_members"  # approve the members of an organisation: its organisation admins
    MANAGE_TOKENS = "manage_tokens"  # create and revoke an organisation's API tokens: its organisation admins


@dataclass(frozen=True)
class Caller:
    """The person or process behind an action; `actor` is what the history records."""

    channel: Channel
    actor: str | None = None
    roles: frozenset[Role] = frozenset()
    organisations: frozenset[str] = field(default_factory=frozenset)  # SIRENs, for publishers and harvesters
    admin_of: frozenset[str] = field(default_factory=frozenset)  # SIRENs whose members this publisher manages

    @classmethod
    def operator(cls, channel: Channel = "cli", actor: str | None = None) -> Caller:
        return cls(channel, actor, frozenset({Role.ADMIN}))

    @classmethod
    def anonymous(cls, channel: Channel = "api") -> Caller:
        return cls(channel)


class Forbidden(PermissionError):
    """Refused: the message says why, in French."""


_MESSAGES = {
    Permission.PUBLISH: "Vous ne pouvez pas publier pour cette organisation (SIREN {siren}).",
    Permission.WITHDRAW: "Vous ne pouvez pas retirer une expérience de cette organisation (SIREN {siren}).",
    Permission.REINDEX: "Seul l'exploitant du registre peut reconstruire l'index.",
    Permission.HARVEST: "Seul l'exploitant du registre peut gérer et lancer les moissonnages.",
    Permission.MANAGE_ACCOUNTS: "Seul un administrateur du registre peut gérer les comptes.",
    Permission.MANAGE_MEMBERS: "Seul un administrateur de l'organisation (SIREN {siren}) peut gérer ses membres.",
    Permission.MANAGE_TOKENS: "Seul un administrateur de l'organisation (SIREN {siren}) peut gérer ses jetons d'API.",
}


def allowed(caller: Caller, permission: Permission, siren: str | None = None) -> bool:
    if permission is Permission.READ or Role.ADMIN in caller.roles:
        return True
    if permission in (Permission.PUBLISH, Permission.WITHDRAW) and siren is not None:
        writers = {Role.PUBLISHER, Role.HARVESTER}  # a harvester withdraws what its source no longer publishes
        return bool(writers & caller.roles) and siren in caller.organisations
    if permission in (Permission.MANAGE_MEMBERS, Permission.MANAGE_TOKENS) and siren is not None:
        return Role.PUBLISHER in caller.roles and siren in caller.admin_of
    return False


def check(caller: Caller, permission: Permission, sirens: Iterable[str | None] = (None,)) -> None:
    """Raises Forbidden unless the caller may do this for every organisation named."""
    for siren in sirens:
        if not allowed(caller, permission, siren):
            raise Forbidden(_MESSAGES.get(permission, "Action non autorisée.").format(siren=siren or "-"))
