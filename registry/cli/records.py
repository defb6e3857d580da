"""Commands on experience reports: validate, import, export, show, history, diff, withdraw."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import click

from registry.actions import Forbidden, experiences
from registry.cli.common import EXIT_INVALID, LOCAL_MAX_BYTES, home_option, lang_option, operator, registry, table
from registry.cli.i18n import tr
from registry.queries import NotFound
from registry.serialize import experience_json
from registry.service import InvalidProvenance, WithdrawError

ACTIONS = {"create": ("création", "created"), "update": ("mise à jour", "updated"),
           "withdraw": ("retrait", "withdrawn"), "restore": ("rétablissement", "restored")}
CHANNELS = {"cli": ("ligne de commande", "command line"), "form": ("formulaire", "form"),
            "upload": ("dépôt de fichier", "upload"), "api": ("API", "API"), "harvest": ("moissonnage", "harvest")}


def _local(target: str) -> bool:
    return not target.startswith(("http://", "https://"))


@click.command()
@click.argument("target", metavar="FICHIER_OU_URL")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True,
              help="Rapport en texte ou en JSON.")
@lang_option
@click.option("--max-errors", type=click.IntRange(min=1), metavar="N",
              help="Arrêter la vérification après N erreurs (par défaut : tout vérifier).")
def validate(target: str, fmt: str, lang: str, max_errors: int | None) -> None:
    """Valide un fichier CSV/XLSX/JSON, un dossier, un datapackage.json ou une URL (sans rien enregistrer)."""
    from registry.validation import Limits, validate_path

    limits = Limits(max_bytes=LOCAL_MAX_BYTES, workers=os.cpu_count() or 1, max_errors=max_errors) \
        if _local(target) else Limits(max_errors=max_errors)
    sub = validate_path(target, limits=limits, keep_rows=False)
    if fmt == "json":
        click.echo(json.dumps(sub.report.to_dict(lang), ensure_ascii=False, indent=2))
    else:
        click.echo(sub.report.to_text(lang))
    sys.exit(0 if sub.valid else EXIT_INVALID)


@click.command(name="import")
@click.argument("target", metavar="FICHIER_OU_URL")
@home_option
@click.option("--actor", help="Qui publie (nom ou adresse), gardé dans l'historique.")
@click.option("--comment", help="Commentaire de révision.")
@lang_option
def import_(target: str, home: str | None, actor: str | None, comment: str | None, lang: str) -> None:
    """Importe un fichier, un dossier ou un data package : tout est accepté, ou rien."""
    from registry.validation import Limits
    from registry.validation.report import Report

    reg = registry(home)
    reg.migrate()
    report = Report(progress=_progress if sys.stderr.isatty() else None)
    limits = Limits(max_bytes=LOCAL_MAX_BYTES, max_rows=reg.settings.max_rows, workers=os.cpu_count() or 1) \
        if _local(target) else None
    try:
        result = experiences.publish_file(reg, operator(actor), target, comment, report, limits)
    except (InvalidProvenance, Forbidden) as exc:
        raise click.ClickException(str(exc)) from None
    if not result.accepted:
        click.echo(result.report.to_text(lang), err=True)
        click.echo(tr("Rien n'a été enregistré.", "Nothing was stored."), err=True)
        sys.exit(EXIT_INVALID)
    n = {a: result.count(a) for a in ("created", "updated", "restored", "unchanged")}
    click.echo(tr(f"{len(result.outcomes)} expérience(s) : {n['created']} créée(s), {n['updated']} mise(s) à jour, "
                  f"{n['restored']} rétablie(s), {n['unchanged']} inchangée(s).",
                  f"{len(result.outcomes)} experience(s): {n['created']} created, {n['updated']} updated, "
                  f"{n['restored']} restored, {n['unchanged']} unchanged."))


def _progress(table_name: str, rows: int) -> None:
    text = tr(f"{table_name} : {rows:,} lignes vérifiées", f"{table_name}: {rows:,} rows checked")
    click.echo("\r" + text.replace(",", "\u202f"), err=True, nl=False)


@click.command()
@click.argument("folder", type=click.Path(file_okay=False, path_type=Path), metavar="DOSSIER")
@home_option
def export(folder: Path, home: str | None) -> None:
    """Exporte tout le registre publié en Data Package (CSV + datapackage.json)."""
    from registry.export import export_registry

    result = export_registry(registry(home), folder)
    rows = ", ".join(f"{n} : {c}" for n, c in result.rows.items())
    click.echo(tr(f"Export dans {folder} ({rows})", f"Exported to {folder} ({rows})"))


def _unknown(exp_id: str) -> click.ClickException:
    return click.ClickException(tr(f"Expérience inconnue : {exp_id}", f"Unknown experience: {exp_id}"))


@click.command()
@click.argument("exp_id", metavar="ID")
@home_option
def show(exp_id: str, home: str | None) -> None:
    """Affiche une expérience (JSON), avec ce que le registre en dérive."""
    try:
        view = experiences.get(registry(home), operator(), exp_id)
    except NotFound:
        raise _unknown(exp_id) from None
    click.echo(json.dumps(experience_json(view), ensure_ascii=False, indent=2))


@click.command()
@click.argument("exp_id", metavar="ID")
@home_option
def history(exp_id: str, home: str | None) -> None:
    """Liste les révisions d'une expérience : qui, quand, par quel canal, depuis quelle source."""
    try:
        revs = experiences.history(registry(home), operator(), exp_id)
    except NotFound:
        raise _unknown(exp_id) from None
    en = tr("", "en") == "en"
    headers = [tr("Rév.", "Rev."), tr("Date (UTC)", "Date (UTC)"), "Action", tr("Canal", "Channel"),
               tr("Auteur", "Actor"), "Source", tr("Empreinte", "Hash")]
    rows = [[str(r.number), f"{r.created_at:%Y-%m-%d %H:%M}", ACTIONS.get(r.action, (r.action,) * 2)[en],
             CHANNELS.get(r.channel, (r.channel,) * 2)[en], r.actor or "-", r.source_url or r.source_name or "-",
             r.content_hash[:12]] for r in revs]
    click.echo(table(headers, rows))


@click.command()
@click.argument("exp_id", metavar="ID")
@click.argument("old", type=int, metavar="REV_A")
@click.argument("new", type=int, metavar="REV_B")
@home_option
def diff(exp_id: str, old: int, new: int, home: str | None) -> None:
    """Compare deux révisions d'une expérience, champ par champ."""
    try:
        changes = experiences.diff(registry(home), operator(), exp_id, old, new)
    except NotFound as exc:
        raise click.ClickException(tr(f"Introuvable : {exc}", f"Not found: {exc}")) from None
    for c in changes:
        where = c.key if c.table == "experiences" else f"{c.table}[{c.key}]" + (f".{c.field}" if c.field else "")
        click.echo(f"{where}\n  - {c.before!r}\n  + {c.after!r}")
    if not changes:
        click.echo(tr("Aucune différence.", "No difference."))


@click.command()
@click.argument("exp_id", metavar="ID")
@click.option("--reason", required=True, help="Raison du retrait (obligatoire).")
@click.option("--actor", help="Qui retire (nom ou adresse), gardé dans l'historique.")
@home_option
def withdraw(exp_id: str, reason: str, actor: str | None, home: str | None) -> None:
    """Retire une expérience (pierre tombale avec raison : l'historique reste consultable)."""
    try:
        out = experiences.withdraw(registry(home), operator(actor), exp_id, reason)
    except (WithdrawError, InvalidProvenance, Forbidden) as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(tr(f"{exp_id} retirée (révision {out.revision}).", f"{exp_id} withdrawn (revision {out.revision})."))


COMMANDS = (validate, import_, export, show, history, diff, withdraw)
