"""Commands for the operator: init, index, search, schema."""

from __future__ import annotations

import sys

import click

from registry.actions import index as search_index
from registry.cli.common import EXIT_INVALID, home_option, operator, registry, table
from registry.cli.i18n import tr


@click.command()
@home_option
def init(home: str | None) -> None:
    """Crée (ou met à jour) la base de données et le dossier d'instance."""
    reg = registry(home)
    reg.migrate()
    click.echo(tr(f"Base prête : {reg.settings.db_url}", f"Database ready: {reg.settings.db_url}"))


@click.command()
@home_option
@click.option("--rebuild", is_flag=True, help="Reconstruire l'index entier au lieu d'appliquer les changements.")
def index(home: str | None, rebuild: bool) -> None:
    """Met à jour l'index de recherche plein texte depuis la file des changements (outbox)."""
    reg = registry(home)
    reg.migrate()
    if rebuild:
        n = search_index.rebuild(reg, operator())
        click.echo(tr(f"Index reconstruit : {n} expérience(s).", f"Index rebuilt: {n} experience(s)."))
    else:
        n = search_index.sync(reg, operator())
        click.echo(tr(f"{n} changement(s) appliqué(s) à l'index.", f"{n} change(s) applied to the index."))


@click.command(name="search")
@click.argument("text", default="", metavar="TEXTE")
@click.option("--filter", "filters", multiple=True, metavar="CHAMP=CODE", help="Filtre sur une facette, ex. "
              "--filter statut=abandonne (répétable).")
@click.option("--limit", default=20, show_default=True, type=click.IntRange(1, 500),
              help="Nombre de résultats affichés.")
@home_option
def search(text: str, filters: tuple[str, ...], limit: int, home: str | None) -> None:
    """Recherche plein texte en français (racinisation, sans accents), avec filtres."""
    reg = registry(home)
    reg.migrate()
    facets = search_index.facet_fields()
    wanted: dict[str, str] = {}
    for item in filters:
        name, sep, code = item.partition("=")
        if not sep or name not in facets:
            raise click.BadParameter(tr(f"« {item} » : écrivez CHAMP=CODE, avec CHAMP parmi {', '.join(facets)}.",
                                        f"'{item}': write FIELD=CODE, FIELD among {', '.join(facets)}."),
                                     param_hint="--filter")
        wanted[name] = code
    results = search_index.search(reg, operator(), text, wanted, limit)
    click.echo(tr(f"{results.total} résultat(s)", f"{results.total} result(s)"))
    if results.hits:
        click.echo(table(["ID", tr("Intitulé", "Title"), tr("Porteur", "Bearer")],
                         [[h.id, h.intitule, h.nom_porteur] for h in results.hits]))


@click.group()
def schema() -> None:
    """Le standard : régénérer ou vérifier les README et le datapackage.json."""


@schema.command("build")
def schema_build() -> None:
    """Régénère les README des tables et les schémas intégrés au datapackage.json."""
    from registry.schemadoc import build

    for path in build():
        click.echo(tr(f"écrit : {path}", f"written: {path}"))


@schema.command("check")
def schema_check() -> None:
    """Échoue si un fichier généré n'est pas à jour."""
    from registry.schemadoc import stale

    outdated = stale()
    for path in outdated:
        click.echo(tr(f"pas à jour : {path}", f"out of date: {path}"), err=True)
    if outdated:
        sys.exit(EXIT_INVALID)
    click.echo(tr("Fichiers générés à jour.", "Generated files are up to date."))


COMMANDS = (init, index, search, schema)
