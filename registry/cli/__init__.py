"""The `registry` command. The core's commands live here; `web` (serve, demo) and `harvesters` add theirs
through the `registry.commands` entry-point group, as Flask extensions add `flask` commands, so the core
never imports them.
"""

from __future__ import annotations

import sys
from importlib.metadata import entry_points

import click

from registry.cli import accounts, admin, i18n, records, tokens
from registry.cli.common import lang_option

CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 110}


HELP = ("Registre ouvert des retours d'expérience des territoires connectés. Chaque commande a son aide : "
        "registry COMMANDE --help. Messages en anglais : --lang en.")


@click.group(context_settings=CONTEXT, subcommand_metavar="COMMANDE [ARGS]...", help=HELP)
@click.version_option(package_name="registre-territoires-connectes", help="Affiche la version et quitte.")
@lang_option
def cli(lang: str | None) -> None:
    pass


for command in (*records.COMMANDS, *admin.COMMANDS, *accounts.COMMANDS, *tokens.COMMANDS):
    cli.add_command(command)


def load_plugins(group: click.Group) -> None:
    """Commands that other packages (web, harvesters) declare in the `registry.commands` entry-point group."""
    for ep in entry_points(group="registry.commands"):
        if ep.name not in group.commands:
            group.add_command(ep.load(), ep.name)


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    load_plugins(cli)
    i18n.install(i18n.detect(args), cli)
    cli.main(args=args, prog_name="registry")
