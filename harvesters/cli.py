"""`registry harvest …` and `registry worker`, added to the `registry` command by the `registry.commands`
entry-point group (pyproject.toml): the core never imports harvesters/."""

from __future__ import annotations

import json
import sys
import time

import click

from registry.actions import Caller, Forbidden
from registry.actions import harvest as actions
from registry.actions import index as search_index
from registry.cli.common import EXIT_INVALID, home_option, operator, registry, table
from registry.cli.i18n import tr
from registry.jobs import Background
from registry.store import Registry

STATUS = {"running": ("en cours", "running"), "done": ("terminé", "done"), "failed": ("échoué", "failed")}
COUNT_LABELS = {"new": ("nouvelles", "new"), "updated": ("mises à jour", "updated"),
                "unchanged": ("inchangées", "unchanged"), "withdrawn": ("retirées", "withdrawn"),
                "invalid": ("invalides", "invalid"), "failed": ("échecs", "failed")}


def _en() -> bool:
    return tr("", "en") == "en"


def _fail(exc: Exception) -> click.ClickException:
    return click.ClickException(str(exc))


def _reg(home: str | None):
    reg = registry(home)
    reg.migrate()
    return reg


@click.group()
def harvest() -> None:
    """Moissonnage des portails de données (CKAN) et des fichiers publiés à une adresse fixe."""


@harvest.group()
def source() -> None:
    """Gère les sources de moissonnage (réservé à l'exploitant)."""


@source.command("add")
@click.argument("name", metavar="NOM")
@click.argument("url", metavar="URL")
@click.option("--type", "type_", type=click.Choice(actions.TYPES), default="ckan", show_default=True,
              help="Portail CKAN, ou un seul fichier (CSV, XLSX, JSON, datapackage.json) à une adresse fixe.")
@click.option("--organization", "organisations", multiple=True, metavar="SIREN",
              help="SIREN d'une organisation pour laquelle la source peut publier (option répétable ; "
                   "sans elle, la source publie avec les droits de l'exploitant).")
@click.option("--query", help="Requête de recherche CKAN (paramètre q de package_search), par exemple "
                              "« organization:ville-de-lyon ».")
@click.option("--schedule", type=click.Choice(tuple(actions.SCHEDULES)),
              help="Fréquence des moissonnages lancés par « registry worker » (sans elle : à la main).")
@click.option("--allow-private-network", is_flag=True,
              help="Autorise les adresses locales ou privées (127.0.0.1, 10.x…) pour ce portail et ses liens.")
@home_option
def source_add(name: str, url: str, type_: str, organisations: tuple[str, ...], query: str | None,
               schedule: str | None, allow_private_network: bool, home: str | None) -> None:
    """Ajoute une source de moissonnage."""
    try:
        view = actions.add_source(_reg(home), operator(), name, url, type_, organisations, query, schedule,
                                  allow_private_network)
    except (actions.HarvestError, Forbidden) as exc:
        raise _fail(exc) from None
    click.echo(tr(f"Source « {view.name} » ajoutée ({view.type}, {view.url}).",
                  f"Source '{view.name}' added ({view.type}, {view.url})."))


@source.command("update")
@click.argument("name", metavar="NOM")
@click.option("--url", help="Nouvelle adresse du portail ou du fichier.")
@click.option("--type", "type_", type=click.Choice(actions.TYPES), help="Nouveau type.")
@click.option("--organization", "organisations", multiple=True, metavar="SIREN",
              help="Remplace les organisations autorisées (option répétable).")
@click.option("--query", help="Nouvelle requête CKAN (chaîne vide : aucune).")
@click.option("--schedule", type=click.Choice((*actions.SCHEDULES, "manual")),
              help="Nouvelle fréquence (« manual » : à la main seulement).")
@click.option("--allow-private-network/--deny-private-network", "private", default=None,
              help="Autorise ou refuse les adresses locales ou privées.")
@home_option
def source_update(name: str, url: str | None, type_: str | None, organisations: tuple[str, ...], query: str | None,
                  schedule: str | None, private: bool | None, home: str | None) -> None:
    """Modifie une source : seuls les réglages donnés changent ; ses moissonnages et rapports restent."""
    reg = _reg(home)
    try:
        cur = actions.get_source(reg, operator(), name)
        view = actions.update_source(
            reg, operator(), name, url or cur.url, type_ or cur.type, organisations or cur.organisations,
            cur.query if query is None else (query or None),
            cur.schedule if schedule is None else (None if schedule == "manual" else schedule),
            cur.allow_private_network if private is None else private)
    except (actions.HarvestError, Forbidden) as exc:
        raise _fail(exc) from None
    click.echo(tr(f"Source « {view.name} » modifiée ({view.type}, {view.url}).",
                  f"Source '{view.name}' updated ({view.type}, {view.url})."))


@source.command("list")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True,
              help="Liste en texte ou en JSON.")
@home_option
def source_list(fmt: str, home: str | None) -> None:
    """Liste les sources de moissonnage."""
    views = actions.list_sources(_reg(home), operator())
    if fmt == "json":
        click.echo(json.dumps([v.to_dict() for v in views], ensure_ascii=False, indent=2))
        return
    if not views:
        click.echo(tr("Aucune source de moissonnage.", "No harvest source."))
        return
    en = _en()
    headers = [tr("Nom", "Name"), "Type", tr("Adresse", "URL"), tr("Fréquence", "Schedule"), tr("État", "State"),
               tr("Dernier succès (UTC)", "Last success (UTC)")]
    rows = [[v.name, v.type, v.url, v.schedule or "-",
             (("active", "enabled") if v.enabled else ("désactivée", "disabled"))[en]
             + (tr(" (en cours)", " (running)") if v.running else ""),
             f"{v.last_success_at:%Y-%m-%d %H:%M}" if v.last_success_at else "-"] for v in views]
    click.echo(table(headers, rows))


@source.command("show")
@click.argument("name", metavar="NOM")
@home_option
def source_show(name: str, home: str | None) -> None:
    """Affiche une source de moissonnage (JSON)."""
    try:
        view = actions.get_source(_reg(home), operator(), name)
    except actions.HarvestError as exc:
        raise _fail(exc) from None
    click.echo(json.dumps(view.to_dict(), ensure_ascii=False, indent=2))


@source.command("remove")
@click.argument("name", metavar="NOM")
@home_option
def source_remove(name: str, home: str | None) -> None:
    """Supprime une source (ses moissonnages sont oubliés ; les expériences publiées restent)."""
    try:
        actions.remove_source(_reg(home), operator(), name)
    except actions.HarvestError as exc:
        raise _fail(exc) from None
    click.echo(tr(f"Source « {name} » supprimée.", f"Source '{name}' removed."))


def _toggle(name: str, home: str | None, enabled: bool) -> None:
    try:
        actions.set_enabled(_reg(home), operator(), name, enabled)
    except actions.HarvestError as exc:
        raise _fail(exc) from None
    click.echo(tr(f"Source « {name} » {'activée' if enabled else 'désactivée'}.",
                  f"Source '{name}' {'enabled' if enabled else 'disabled'}."))


@source.command("enable")
@click.argument("name", metavar="NOM")
@home_option
def source_enable(name: str, home: str | None) -> None:
    """Active une source."""
    _toggle(name, home, True)


@source.command("disable")
@click.argument("name", metavar="NOM")
@home_option
def source_disable(name: str, home: str | None) -> None:
    """Désactive une source (le worker ne la moissonne plus)."""
    _toggle(name, home, False)


def _counts(counts: dict[str, int]) -> str:
    en = _en()
    return ", ".join(f"{counts.get(k, 0)} {labels[en]}" for k, labels in COUNT_LABELS.items())


@harvest.command("run")
@click.argument("names", nargs=-1, metavar="[NOM]...")
@click.option("--full", is_flag=True, help="Tout revérifier (seul moyen de déduire les retraits).")
@home_option
def run(names: tuple[str, ...], full: bool, home: str | None) -> None:
    """Moissonne maintenant les sources nommées (sinon toutes les actives) ; code de sortie 1 si une a échoué."""
    from harvesters.run import run_source

    reg = _reg(home)
    caller = operator()
    targets = list(names) or [v.name for v in actions.list_sources(reg, caller) if v.enabled]
    if not targets:
        click.echo(tr("Aucune source à moissonner.", "No source to harvest."))
        return
    failed = False
    tty = sys.stderr.isatty()
    for name in targets:
        done = [0]

        def progress(dataset: str, name: str = name, done: list[int] = done) -> None:
            done[0] += 1
            if tty:
                click.echo(f"\r{name} : {done[0]} " + tr("jeux de données", "datasets") + f" ({dataset[:40]})"
                           + " " * 10, err=True, nl=False)

        try:
            view = run_source(reg, caller, name, full, progress=progress)
        except actions.HarvestError as exc:
            click.echo(tr(f"{name} : {exc}", f"{name}: {exc}"), err=True)
            failed = True
            continue
        if tty:
            click.echo("", err=True)
        en = _en()
        click.echo(f"{name} : " + tr("moissonnage", "job") + f" n° {view.id} {STATUS[view.status][en]} — "
                   f"{_counts(view.counts)}")
        if view.message:
            click.echo(f"  {view.message}")
        failed |= view.status == "failed"
    sys.exit(EXIT_INVALID if failed else 0)


@harvest.command("jobs")
@click.argument("name", required=False, metavar="[NOM]")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True,
              help="Historique en texte ou en JSON.")
@click.option("--limit", type=click.IntRange(1, 1000), default=50, show_default=True,
              help="Nombre de moissonnages affichés.")
@home_option
def jobs(name: str | None, fmt: str, limit: int, home: str | None) -> None:
    """Historique des moissonnages : état, nombres, début et fin."""
    try:
        views = actions.list_jobs(_reg(home), operator(), name, limit)
    except actions.HarvestError as exc:
        raise _fail(exc) from None
    if fmt == "json":
        click.echo(json.dumps([v.to_dict(items=False) for v in views], ensure_ascii=False, indent=2))
        return
    en = _en()
    headers = ["N°", "Source", tr("État", "Status"), tr("Début (UTC)", "Started (UTC)"),
               tr("Fin (UTC)", "Finished (UTC)"), tr("Nombres", "Counts")]
    rows = [[str(v.id), v.source, STATUS[v.status][en] + (tr(" (complet)", " (full)") if v.full else ""),
             f"{v.started_at:%Y-%m-%d %H:%M:%S}", f"{v.finished_at:%Y-%m-%d %H:%M:%S}" if v.finished_at else "-",
             _counts(v.counts)] for v in views]
    click.echo(table(headers, rows) if views else tr("Aucun moissonnage.", "No harvest job."))


@harvest.command("job")
@click.argument("job_id", type=int, metavar="N")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True,
              help="Rapport en texte ou en JSON.")
@home_option
def job(job_id: int, fmt: str, home: str | None) -> None:
    """Le rapport d'un moissonnage, jeu de données par jeu de données."""
    try:
        view = actions.get_job(_reg(home), operator(), job_id)
    except actions.HarvestError as exc:
        raise _fail(exc) from None
    if fmt == "json":
        click.echo(json.dumps(view.to_dict(), ensure_ascii=False, indent=2))
        return
    en = _en()
    click.echo(tr(f"Moissonnage n° {view.id} de « {view.source} » : {STATUS[view.status][en]}",
                  f"Job {view.id} of '{view.source}': {STATUS[view.status][en]}")
               + (tr(" (complet)", " (full)") if view.full else ""))
    click.echo(f"  {_counts(view.counts)}")
    if view.message:
        click.echo(f"  {view.message}")
    for item in view.items:
        where = item.dataset_name or item.dataset_id or "-"
        click.echo(f"- [{item.status}] {where}" + (f" <{item.url}>" if item.url else ""))
        for m in item.messages:
            place = [m.get("source") or ""]
            if m.get("row") is not None:
                place.append(tr(f"ligne {m['row']}", f"row {m['row']}"))
            if m.get("field"):
                place.append(tr(f"colonne {m['field']}", f"column {m['field']}"))
            prefix = ", ".join(p for p in place if p)
            click.echo(f"    {m.get('code', '')} : " + (f"{prefix} : " if prefix else "") + str(m.get("message", "")))


@click.command()
@click.option("--once", is_flag=True, help="Un seul passage : lance les moissonnages dus, puis s'arrête.")
@click.option("--interval", type=click.IntRange(min=1), default=60, show_default=True,
              help="Secondes entre deux passages (sous 60 : un diviseur de 60).")
@click.option("--concurrency", type=click.IntRange(1, 16), default=1, show_default=True,
              help="PostgreSQL : moissonnages menés en même temps par ce worker.")
@click.option("--heartbeat", type=click.FloatRange(min=0.5), default=10, show_default=True,
              help="PostgreSQL : secondes entre deux signes de vie de ce worker.")
@click.option("--stalled-after", type=click.FloatRange(min=1), default=30, show_default=True,
              help="PostgreSQL : un worker sans signe de vie depuis ce nombre de secondes est tenu pour mort ; "
                   "ses moissonnages sont relancés par un autre.")
@home_option
def worker(once: bool, interval: int, concurrency: int, heartbeat: float, stalled_after: float,
           home: str | None) -> None:
    """Lance les moissonnages programmés et le travail de fond (PostgreSQL : file procrastinate, N workers)."""
    from harvesters import queue

    reg = _reg(home)
    caller = operator("worker")
    if queue.is_postgresql(reg):
        if interval < 60 and 60 % interval:
            raise click.BadParameter(tr("sous 60 s, un diviseur de 60", "below 60 s, a divisor of 60"),
                                     param_hint="--interval")
        settings = queue.WorkerSettings(interval=interval, heartbeat=heartbeat, stalled_after=stalled_after,
                                        concurrency=concurrency)
        background = None
        if not once:
            background = Background(reg, interval=5.0)  # the search index and the downloads, in this process
            background.start()
        try:
            queue.run_worker(reg, caller, settings, once=once)
        finally:
            if background is not None:
                background.stop()
        if once:
            search_index.background_round(reg, caller)
        return
    _sqlite_loop(reg, caller, once, interval)


def _sqlite_loop(reg: Registry, caller: Caller, once: bool, interval: float) -> None:
    """One process runs the schedule: dead jobs closed (their source is then due again at once), due
    sources harvested one after the other, then the background work."""
    from harvesters.run import run_source

    while True:
        closed = actions.close_dead_jobs(reg, caller)
        if closed:
            click.echo(tr(f"{closed} moissonnage(s) interrompu(s) clos comme échoués.",
                          f"{closed} interrupted job(s) closed as failed."))
        for src in actions.due_sources(reg, caller):
            try:
                view = run_source(reg, caller, src.name, scheduled=True)
            except actions.HarvestError:
                continue  # another process has it, or it was just disabled
            click.echo(f"{src.name} : n° {view.id} {STATUS[view.status][_en()]} — {_counts(view.counts)}")
        search_index.background_round(reg, caller)  # the search index and the downloads follow the database
        if once:
            return
        time.sleep(interval)
