"""`registry serve` and `registry demo`, added to the `registry` command through the `registry.commands`
entry-point group (pyproject.toml): the core never imports web/.
"""

from __future__ import annotations

import errno
import socket
import sys

import click
from click.core import ParameterSource
from flask import Flask
from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

from registry.actions import experiences
from registry.actions import index as search_index
from registry.cli.common import EXIT_INVALID, home_option, operator, registry
from registry.cli.i18n import tr
from registry.jobs import Background
from registry.paths import DEMO_DIR
from web.app import create_app

PORT_TRIES = 20


class QuietHandler(WSGIRequestHandler):
    """The development server without its name and Python version in every answer."""

    def version_string(self) -> str:
        return "registre"


def _listen(host: str, port: int) -> socket.socket | None:
    """A listening socket on (host, port), or None when the port is taken."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
        sock.listen(128)
    except OSError as exc:
        sock.close()
        if exc.errno in (errno.EADDRINUSE, errno.EACCES):
            return None
        raise click.ClickException(tr(f"Adresse {host} inutilisable : {exc.strerror}.",
                                      f"Cannot use address {host}: {exc.strerror}.")) from None
    return sock


def bind(app: Flask, host: str, port: int, explicit: bool) -> BaseWSGIServer:
    """A server on the port asked for; when it was the default and is taken, on the next free one."""
    for candidate in range(port, min(port + (1 if explicit else PORT_TRIES), 65536)):
        sock = _listen(host, candidate)
        if sock is not None:
            with sock:  # werkzeug serves on a duplicate of this socket
                return make_server(host, candidate, app, threaded=True, request_handler=QuietHandler,
                                   fd=sock.fileno())
    raise click.ClickException(tr(
        f"Le port {port} est déjà utilisé sur {host}. Choisissez-en un autre avec --port, par exemple "
        f"« --port {port + 1} ».",
        f"Port {port} is already in use on {host}. Choose another one with --port, e.g. '--port {port + 1}'."))


def _serve(home: str | None, host: str, port: int, explicit: bool) -> None:
    reg = registry(home)
    reg.migrate()
    server = bind(create_app(reg, dev=True), host, port, explicit)
    if server.port != port:
        click.echo(tr(f"Le port {port} est occupé : le registre prend le port {server.port}.",
                      f"Port {port} is taken: the registry uses port {server.port}."))
    shown = f"[{host}]" if ":" in host else host
    click.echo(tr(f"Registre en ligne : http://{shown}:{server.port}/  (Ctrl+C pour arrêter ; serveur de "
                  "développement, en production utilisez un serveur WSGI)",
                  f"Registry online: http://{shown}:{server.port}/  (Ctrl+C to stop; development server, use "
                  "a WSGI server in production)"))
    sys.stdout.flush()
    background = Background(reg)  # the search index and the downloads follow the database
    background.start()
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        click.echo(tr("Arrêté.", "Stopped."))
    finally:
        background.stop()
        server.server_close()


def _explicit(ctx: click.Context) -> bool:
    return ctx.get_parameter_source("port") not in (ParameterSource.DEFAULT, ParameterSource.DEFAULT_MAP)


host_option = click.option("--host", default="127.0.0.1", show_default=True, help="Adresse d'écoute.")
port_option = click.option("--port", default=5000, show_default=True, type=click.IntRange(1, 65535),
                           help="Port d'écoute (si le port par défaut est pris, le suivant libre est choisi).")


@click.command()
@home_option
@host_option
@port_option
@click.pass_context
def serve(ctx: click.Context, home: str | None, host: str, port: int) -> None:
    """Démarre le site web du registre (serveur de développement ; en production, un serveur WSGI)."""
    _serve(home, host, port, _explicit(ctx))


@click.command()
@home_option
@host_option
@port_option
@click.option("--no-serve", is_flag=True, help="Charger les données sans démarrer le site.")
@click.pass_context
def demo(ctx: click.Context, home: str | None, host: str, port: int, no_serve: bool) -> None:
    """Initialise, charge les données de démonstration (fictives) et démarre le site."""
    reg = registry(home)
    reg.migrate()
    result = experiences.publish_file(reg, operator("demo"), DEMO_DIR)
    if not result.accepted:
        click.echo(result.report.to_text(), err=True)
        sys.exit(EXIT_INVALID)
    search_index.sync(reg, operator())
    click.echo(tr(f"Données de démonstration : {len(result.outcomes)} expériences fictives chargées et indexées.",
                  f"Demo data: {len(result.outcomes)} fictional experiences loaded and indexed."))
    if not no_serve:
        _serve(home, host, port, _explicit(ctx))
