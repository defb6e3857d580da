"""Accounts from the command line: the first registry admin of a new instance, members added by hand."""

from __future__ import annotations

import click

from registry.actions import accounts
from registry.cli.common import home_option, operator, registry
from registry.cli.i18n import tr


@click.group(subcommand_metavar="COMMANDE [ARGS]...")
def account() -> None:
    """Les comptes du site : créer un compte (le premier administrateur du registre), ajouter un membre."""


@account.command("create")
@click.argument("email", metavar="COURRIEL")
@click.option("--name", required=True, help="Nom affiché.")
@click.option("--admin", is_flag=True, help="Administrateur du registre (tous les droits).")
@click.option("--organisation", metavar="SIREN_OU_NOM", help="Membre (administrateur) de cette organisation.")
@click.password_option(prompt="Mot de passe", confirmation_prompt="Répétez le mot de passe",
                       help="Le mot de passe (demandé sans l'afficher).")
@home_option
def create(email: str, name: str, admin: bool, organisation: str | None, password: str, home: str | None) -> None:
    """Crée un compte ; avec --admin, un administrateur du registre (le premier d'une instance)."""
    reg = registry(home)
    reg.migrate()
    try:
        user = accounts.create_user(reg, operator(), email, name, password, registry_admin=admin)
        if organisation:
            accounts.add_membership(reg, operator(), user.id, organisation, role="org_admin")
    except accounts.AccountError as exc:
        raise click.ClickException(str(exc)) from None
    role = tr("administrateur du registre", "registry admin") if admin else tr("compte", "account")
    click.echo(tr(f"Créé : {user.email} ({role}).", f"Created: {user.email} ({role})."))


COMMANDS = (account,)
