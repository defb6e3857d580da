"""The `registry` command: init, validate, import, export, serve, demo, schema, show, history, diff, withdraw."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import click

from registry.config import load_settings
from registry.paths import DEMO_DIR
from registry.store import Registry

EXIT_INVALID = 1
# Local files named on the command line are trusted for size; uploads keep `max_upload_bytes`.
LOCAL_MAX_BYTES = 1 << 40


def _registry(home: str | None, database_url: str | None = None) -> Registry:
    return Registry(load_settings(home=home, database_url=database_url))


home_option = click.option("--home", envvar="REGISTRY_HOME",
                           help="Dossier d'instance (base SQLite, index). Défaut : ./instance")
lang_option = click.option("--lang", type=click.Choice(["fr", "en"]), default="fr", show_default=True,
                           help="Langue des messages.")


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="registre-territoires-connectes")
def main() -> None:
    """Registre ouvert des retours d'expérience des territoires connectés."""


@main.command()
@home_option
def init(home: str | None) -> None:
    """Crée (ou met à jour) la base de données et le dossier d'instance."""
    reg = _registry(home)
    reg.migrate()
    click.echo(f"Base prête : {reg.settings.db_url}")


@main.command()
@click.argument("target")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
@lang_option
@click.option("--max-errors", default=100, show_default=True, help="Erreurs détaillées par type et par table.")
def validate(target: str, fmt: str, lang: str, max_errors: int) -> None:
    """Valide un fichier CSV/XLSX/JSON, un dossier, un datapackage.json ou une URL (sans rien enregistrer)."""
    from registry.validation import Limits, validate_path

    local = not target.startswith(("http://", "https://"))
    limits = Limits(max_bytes=LOCAL_MAX_BYTES, workers=os.cpu_count() or 1) if local else None
    sub = validate_path(target, limits=limits, keep_rows=False)
    sub.report.max_per_code = max_errors
    if fmt == "json":
        click.echo(json.dumps(sub.report.to_dict(lang), ensure_ascii=False, indent=2))
    else:
        click.echo(sub.report.to_text(lang))
    sys.exit(0 if sub.valid else EXIT_INVALID)


@main.command(name="import")
@click.argument("target")
@home_option
@click.option("--actor", help="Qui publie (nom ou adresse), gardé dans l'historique.")
@click.option("--comment", help="Commentaire de révision.")
@lang_option
def import_(target: str, home: str | None, actor: str | None, comment: str | None, lang: str) -> None:
    """Importe un fichier, un dossier ou un data package : tout est accepté, ou rien."""
    from registry.service import Provenance, publish_path
    from registry.validation.report import Report

    reg = _registry(home)
    reg.migrate()
    prov = Provenance("cli", actor=actor, source_name=str(target), comment=comment)
    from registry.validation import Limits

    report = Report(progress=_progress if sys.stderr.isatty() else None)
    local = not target.startswith(("http://", "https://"))
    limits = Limits(max_bytes=LOCAL_MAX_BYTES, max_rows=reg.settings.max_rows, workers=os.cpu_count() or 1) \
        if local else None
    result = publish_path(reg, target, prov, report, limits)
    if not result.accepted:
        click.echo(result.report.to_text(lang), err=True)
        click.echo("Rien n'a été enregistré." if lang == "fr" else "Nothing was stored.", err=True)
        sys.exit(EXIT_INVALID)
    counts = {a: result.count(a) for a in ("created", "updated", "restored", "unchanged")}
    click.echo(f"{len(result.outcomes)} expérience(s) : {counts['created']} créée(s), {counts['updated']} "
               f"mise(s) à jour, {counts['restored']} rétablie(s), {counts['unchanged']} inchangée(s).")


def _progress(table: str, rows: int) -> None:
    click.echo(f"\r{table} : {rows:,} lignes vérifiées".replace(",", "\u202f"), err=True, nl=False)


@main.command()
@click.argument("folder", type=click.Path(file_okay=False, path_type=Path))
@home_option
def export(folder: Path, home: str | None) -> None:
    """Exporte tout le registre publié en Data Package (CSV + datapackage.json)."""
    from registry.export import export_registry

    result = export_registry(_registry(home), folder)
    rows = ", ".join(f"{n} : {c}" for n, c in result.rows.items())
    click.echo(f"Export dans {folder} ({rows})")


@main.command()
@home_option
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5000, show_default=True, type=int)
def serve(home: str | None, host: str, port: int) -> None:
    """Démarre le site web du registre."""
    from registry import search
    from web.app import create_app

    reg = _registry(home)
    reg.migrate()
    search.sync(reg)
    app = create_app(reg)
    click.echo(f"Registre en ligne : http://{host}:{port}/")
    app.run(host=host, port=port, debug=False)


@main.command()
@home_option
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5000, show_default=True, type=int)
@click.option("--no-serve", is_flag=True, help="Charger les données sans démarrer le site.")
@click.pass_context
def demo(ctx: click.Context, home: str | None, host: str, port: int, no_serve: bool) -> None:
    """Initialise, charge les données de démonstration (fictives) et démarre le site."""
    from registry.service import Provenance, publish_path

    reg = _registry(home)
    reg.migrate()
    result = publish_path(reg, DEMO_DIR, Provenance("cli", actor="demo", source_name="data/demo"))
    if not result.accepted:
        click.echo(result.report.to_text(), err=True)
        sys.exit(EXIT_INVALID)
    from registry import search

    search.sync(reg)
    click.echo(f"Données de démonstration : {len(result.outcomes)} expériences fictives chargées et indexées.")
    if not no_serve:
        ctx.invoke(serve, home=home, host=host, port=port)


@main.command()
@click.argument("exp_id")
@home_option
def show(exp_id: str, home: str | None) -> None:
    """Affiche une expérience (JSON), avec ce que le registre en dérive."""
    from registry.queries import NotFound, get_experience
    from registry.views import experience_json

    try:
        view = get_experience(_registry(home), exp_id)
    except NotFound:
        raise click.ClickException(f"Expérience inconnue : {exp_id}") from None
    click.echo(json.dumps(experience_json(view), ensure_ascii=False, indent=2))


@main.command()
@click.argument("exp_id")
@home_option
def history(exp_id: str, home: str | None) -> None:
    """Liste les révisions d'une expérience."""
    from registry.queries import NotFound
    from registry.queries import history as revisions

    try:
        revs = revisions(_registry(home), exp_id)
    except NotFound:
        raise click.ClickException(f"Expérience inconnue : {exp_id}") from None
    for r in revs:
        where = r.source_url or r.source_name or ""
        click.echo(f"{r.number:>3}  {r.created_at:%Y-%m-%d %H:%M}  {r.action:<8} {r.channel:<7} "
                   f"{r.actor or '-'}  {where}  {r.content_hash[:12]}")


@main.command()
@click.argument("exp_id")
@click.argument("old", type=int)
@click.argument("new", type=int)
@home_option
def diff(exp_id: str, old: int, new: int, home: str | None) -> None:
    """Compare deux révisions d'une expérience, champ par champ."""
    from registry.queries import NotFound, compare

    try:
        changes = compare(_registry(home), exp_id, old, new)
    except NotFound as exc:
        raise click.ClickException(f"Introuvable : {exc}") from None
    for c in changes:
        where = f"{c.table}[{c.key}]" + (f".{c.field}" if c.field and c.table != "experiences" else "")
        if c.table == "experiences":
            where = c.key
        click.echo(f"{where}\n  - {c.before!r}\n  + {c.after!r}")
    if not changes:
        click.echo("Aucune différence.")


@main.command()
@click.argument("exp_id")
@click.option("--reason", required=True, help="Raison du retrait (obligatoire).")
@click.option("--actor")
@home_option
def withdraw(exp_id: str, reason: str, actor: str | None, home: str | None) -> None:
    """Retire une expérience (pierre tombale avec raison : l'historique reste consultable)."""
    from registry.service import Provenance, WithdrawError
    from registry.service import withdraw as do_withdraw

    try:
        out = do_withdraw(_registry(home), exp_id, reason, Provenance("cli", actor=actor))
    except WithdrawError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"{exp_id} retirée (révision {out.revision}).")


@main.command()
@home_option
@click.option("--rebuild", is_flag=True, help="Reconstruire l'index entier au lieu d'appliquer les changements.")
def index(home: str | None, rebuild: bool) -> None:
    """Met à jour l'index de recherche plein texte depuis la file des changements (outbox)."""
    from registry import search

    reg = _registry(home)
    reg.migrate()
    if rebuild:
        click.echo(f"Index reconstruit : {search.rebuild(reg)} expérience(s).")
    else:
        click.echo(f"{search.sync(reg)} changement(s) appliqué(s) à l'index.")


@main.command(name="search")
@click.argument("text", default="")
@click.option("--filter", "filters", multiple=True, metavar="CHAMP=CODE", help="Ex. --filter statut=abandonne")
@click.option("--limit", default=20, show_default=True)
@home_option
def search_(text: str, filters: tuple[str, ...], limit: int, home: str | None) -> None:
    """Recherche plein texte en français (racinisation, sans accents), avec filtres."""
    from registry import search

    reg = _registry(home)
    reg.migrate()
    search.sync(reg)
    wanted = dict(f.split("=", 1) for f in filters if "=" in f)
    results = search.search(reg, text, wanted, limit)
    click.echo(f"{results.total} résultat(s)")
    for hit in results.hits:
        click.echo(f"{hit.id}  {hit.intitule}  ({hit.nom_porteur})")


@main.group()
def schema() -> None:
    """Le standard : régénérer ou vérifier les README et le datapackage.json."""


@schema.command("build")
def schema_build() -> None:
    """Régénère les README des tables et les schémas intégrés au datapackage.json."""
    from registry.schemadoc import build

    for path in build():
        click.echo(f"écrit : {path}")


@schema.command("check")
def schema_check() -> None:
    """Échoue si un fichier généré n'est pas à jour."""
    from registry.schemadoc import stale

    outdated = stale()
    for path in outdated:
        click.echo(f"pas à jour : {path}", err=True)
    if outdated:
        sys.exit(EXIT_INVALID)
    click.echo("Fichiers générés à jour.")
