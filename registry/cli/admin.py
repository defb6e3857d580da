"""Commands for the operator: init, index, search, schema."""

from __future__ import annotations

import json
import sys

import click

from registry.actions import index as search_index
from registry.cli.common import EXIT_INVALID, home_option, operator, registry, table
from registry.cli.i18n import lang, tr
from registry.search.fields import SORTS


@click.command()
@home_option
def init(home: str | None) -> None:
    """Crée (ou met à jour) la base de données et le dossier d'instance."""
    reg = registry(home)
    reg.migrate()
    click.echo(tr(f"Base prête : {reg.settings.db_url}", f"Database ready: {reg.settings.db_url}"))


@click.group(subcommand_metavar="COMMANDE [ARGS]...")
def index() -> None:
    """L'index de recherche plein texte : le tenir à jour, le reconstruire, le vérifier."""


@index.command("sync")
@home_option
@click.option("--follow", is_flag=True, help="Continuer à suivre les changements (Ctrl+C pour arrêter).")
@click.option("--interval", default=1.0, show_default=True, type=click.FloatRange(0.1, 3600),
              help="Secondes entre deux vérifications, avec --follow.")
def index_sync(home: str | None, follow: bool, interval: float) -> None:
    """Applique à l'index les changements en attente (file « outbox »)."""
    reg = registry(home)
    reg.migrate()
    n = search_index.sync(reg, operator())
    click.echo(tr(f"{n} changement(s) appliqué(s) à l'index.", f"{n} change(s) applied to the index."))
    if follow:
        from registry.jobs import Background

        syncer = Background(reg, interval)
        syncer.start()
        click.echo(tr("Suivi des changements… (Ctrl+C pour arrêter)", "Following changes… (Ctrl+C to stop)"))
        try:
            while syncer.is_alive():
                syncer.join(1.0)
        except KeyboardInterrupt:
            syncer.stop()


@index.command("rebuild")
@home_option
def index_rebuild(home: str | None) -> None:
    """Reconstruit l'index entier à côté de l'ancien, puis le remplace d'un coup."""
    reg = registry(home)
    reg.migrate()
    n = search_index.rebuild(reg, operator())
    click.echo(tr(f"Index reconstruit : {n} expérience(s).", f"Index rebuilt: {n} experience(s)."))


@index.command("similar")
@home_option
def index_similar(home: str | None) -> None:
    """Enregistre les expériences similaires de chaque fiche (le travail de fond le fait aussi)."""
    reg = registry(home)
    reg.migrate()
    search_index.sync(reg, operator())  # (lists give way to writes waiting for the index)
    total = 0
    while n := search_index.make_similar(reg, operator(), 10.0):
        total += n
        click.echo(tr(f"{total} liste(s) enregistrée(s)…", f"{total} list(s) stored…"))
    click.echo(tr(f"Expériences similaires à jour ({total} liste(s) faite(s)).",
                  f"Similar experiences up to date ({total} list(s) made)."))


@index.command("check")
@home_option
def index_check(home: str | None) -> None:
    """Vérifie que l'index et la base disent la même chose (code de sortie 1 sinon)."""
    reg = registry(home)
    reg.migrate()
    missing, extra, stale = search_index.verify(reg, operator())
    for label_fr, label_en, ids in (("absente(s) de l'index", "missing from the index", missing),
                                    ("dans l'index mais pas publiée(s)", "indexed but not published", extra),
                                    ("indexée(s) dans une version ancienne", "indexed in an older version", stale)):
        if ids:
            shown = ", ".join(sorted(ids)[:20]) + (" …" if len(ids) > 20 else "")
            click.echo(tr(f"{len(ids)} expérience(s) {label_fr} : {shown}", f"{len(ids)} experience(s) {label_en}: "
                          f"{shown}"), err=True)
    if missing or extra or stale:
        click.echo(tr("Lancez « registry index rebuild ».", "Run 'registry index rebuild'."), err=True)
        sys.exit(EXIT_INVALID)
    click.echo(tr("L'index et la base concordent.", "The index and the database agree."))


@click.command(name="search")
@click.argument("text", default="", metavar="TEXTE")
@click.option("--filter", "filters", multiple=True, metavar="CHAMP=CODE", help="Filtre sur une facette, ex. "
              "--filter statut=abandonne (répétable : ET entre champs, OU dans un champ).")
@click.option("--sort", type=click.Choice(SORTS), default="pertinence", show_default=True, help="Ordre des résultats.")
@click.option("--limit", default=20, show_default=True, type=click.IntRange(1, 1000),
              help="Nombre de résultats affichés.")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True,
              help="Résultats en texte ou en JSON (résultats, total, facettes avec leurs libellés).")
@home_option
def search(text: str, filters: tuple[str, ...], sort: str, limit: int, fmt: str, home: str | None) -> None:
    """Recherche plein texte en français : tous les mots, « expression exacte », -exclu, mot OU autre."""
    from registry.actions.index import InvalidSearch
    from registry.serialize import search_json

    reg = registry(home)
    wanted: dict[str, tuple[str, ...]] = {}
    for item in filters:
        name, sep, code = item.partition("=")
        if not sep:
            raise click.BadParameter(tr(f"« {item} » : écrivez CHAMP=CODE.", f"'{item}': write FIELD=CODE."),
                                     param_hint="--filter")
        wanted[name] = (*wanted.get(name, ()), code)
    try:
        req = search_index.request(text, wanted, sort, limit)
    except InvalidSearch as exc:
        raise click.BadParameter(str(exc), param_hint="--filter/--sort") from None
    results = search_index.search(reg, operator(), req)
    if fmt == "json":
        click.echo(json.dumps(search_json(results, lang()), ensure_ascii=False, indent=2))
        return
    at_least = "" if results.exact else tr("au moins ", "at least ")  # counting stopped there
    click.echo(tr(f"{at_least}{results.total} résultat(s)", f"{at_least}{results.total} result(s)"))
    if results.suggestion:
        click.echo(tr(f"Vouliez-vous dire : {results.suggestion} ?", f"Did you mean: {results.suggestion}?"))
    if results.hits:
        click.echo(table(["ID", tr("Intitulé", "Title"), tr("Porteur", "Bearer"), tr("Mise à jour", "Updated")],
                         [[h.id, h.intitule, h.nom_porteur, h.date_maj] for h in results.hits]))


@click.group(subcommand_metavar="COMMANDE [ARGS]...")
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
