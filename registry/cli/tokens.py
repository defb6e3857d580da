"""API tokens from the command line (the operator): create one for an organisation, list, revoke."""

from __future__ import annotations

import click

from registry.actions import accounts, tokens
from registry.cli.common import home_option, operator, registry
from registry.cli.i18n import tr


@click.group(subcommand_metavar="COMMANDE [ARGS]...")
def token() -> None:
    """Les jetons d'API : un programme d'une organisation publie avec l'un d'eux (API REST)."""


@token.command("create")
@click.argument("organisation", metavar="SIREN_OU_NOM")
@click.option("--name", required=True, help="Nom du jeton (à quoi il sert).")
@home_option
def create(organisation: str, name: str, home: str | None) -> None:
    """Crée un jeton pour une organisation et l'affiche, une seule fois."""
    reg = registry(home)
    reg.migrate()
    try:
        new = tokens.create(reg, operator(), organisation, name)
    except accounts.AccountError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(tr(f"Jeton n° {new.view.id} pour le SIREN {new.view.siren} ({new.view.name}). Conservez-le : "
                  f"il ne sera plus affiché.", f"Token #{new.view.id} for SIREN {new.view.siren} "
                  f"({new.view.name}). Keep it: it will not be shown again."), err=True)
    click.echo(new.secret)


@token.command("list")
@click.argument("siren", required=False)
@home_option
def list_(siren: str | None, home: str | None) -> None:
    """Liste les jetons (d'une organisation, ou de toutes) : jamais leur secret."""
    reg = registry(home)
    rows = tokens.list_tokens(reg, operator(), siren)
    if not rows:
        click.echo(tr("Aucun jeton.", "No token."))
        return
    click.echo(tr("n°\tSIREN\tdébut\tnom\tcréé le\tdernier usage\tétat",
                  "#\tSIREN\tprefix\tname\tcreated\tlast used\tstate"))
    for t in rows:
        state = tr("actif", "active") if t.active else tr(f"révoqué le {t.revoked_at:%Y-%m-%d}",
                                                          f"revoked on {t.revoked_at:%Y-%m-%d}")
        used = f"{t.last_used_at:%Y-%m-%d %H:%M}" if t.last_used_at else "-"
        click.echo(f"{t.id}\t{t.siren}\t{t.prefix}…\t{t.name}\t{t.created_at:%Y-%m-%d}\t{used}\t{state}")


@token.command("revoke")
@click.argument("token_id", metavar="N", type=int)
@home_option
def revoke(token_id: int, home: str | None) -> None:
    """Révoque un jeton : ses requêtes sont refusées dès maintenant."""
    try:
        view = tokens.revoke(registry(home), operator(), token_id)
    except accounts.AccountError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(tr(f"Jeton n° {view.id} révoqué.", f"Token #{view.id} revoked."))


COMMANDS = (token,)
