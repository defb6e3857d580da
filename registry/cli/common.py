"""What the commands share: options, the registry handle, tables with headers, errors in the user's language."""

from __future__ import annotations

from collections.abc import Sequence

import click

from registry.actions import Caller
from registry.config import load_settings
from registry.store import Registry

EXIT_INVALID = 1
# Local files named on the command line are trusted for size; uploads keep `max_upload_bytes`.
LOCAL_MAX_BYTES = 1 << 40


def registry(home: str | None, database_url: str | None = None) -> Registry:
    try:
        return Registry(load_settings(home=home, database_url=database_url))
    except ValueError as exc:  # a bad registry.toml or setting
        raise click.ClickException(str(exc)) from None


def operator(actor: str | None = None) -> Caller:
    """Whoever runs the command line runs the registry."""
    return Caller.operator("cli", actor)


home_option = click.option("--home", envvar="REGISTRY_HOME", metavar="DOSSIER",
                           help="Dossier d'instance (base SQLite, index). Défaut : ./instance")


def _lang_default() -> str:
    from registry.cli.i18n import lang

    return lang()


lang_option = click.option("--lang", type=click.Choice(["fr", "en"]), default=_lang_default,
                           help="Langue des messages (fr par défaut ; aussi REGISTRY_LANG ou LANG).")


def table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A plain text table with a header line, columns as wide as their content."""
    cells = [list(headers), *[[str(c) for c in row] for row in rows]]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)
