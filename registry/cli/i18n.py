"""The command line in French (click's own strings too), in English with `--lang en`, REGISTRY_LANG or LANG.

Click marks its strings with gettext; `install` points those names at our catalogues
(`registry/locale/click.fr.json` for click, `registry/locale/cli.en.json` for our own help texts, which are
written in French).
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from functools import cache
from pathlib import Path

import click

LOCALE = Path(__file__).resolve().parents[1] / "locale"
LANGS = ("fr", "en")
_current = {"lang": "fr"}


def detect(argv: Sequence[str], environ: dict[str, str] | os._Environ[str] = os.environ) -> str:
    """`--lang xx` anywhere on the line, else REGISTRY_LANG, else the locale (LC_ALL, LC_MESSAGES, LANG)."""
    for i, arg in enumerate(argv):
        if arg == "--lang" and i + 1 < len(argv) and argv[i + 1] in LANGS:
            return argv[i + 1]
        if arg.startswith("--lang=") and arg[7:] in LANGS:
            return arg[7:]
    if environ.get("REGISTRY_LANG") in LANGS:
        return environ["REGISTRY_LANG"]
    for name in ("LC_ALL", "LC_MESSAGES", "LANG"):
        value = environ.get(name, "")
        if value:
            return "en" if value.lower().startswith("en") else "fr"
    return "fr"


def lang() -> str:
    return _current["lang"]


def tr(fr: str, en: str) -> str:
    """A message of ours, in the language in use."""
    return en if _current["lang"] == "en" else fr


@cache
def catalogue(name: str) -> dict[str, str]:
    return json.loads((LOCALE / name).read_text(encoding="utf-8"))


def _gettext(message: str) -> str:
    return catalogue("click.fr.json").get(message, message)


def _ngettext(singular: str, plural: str, n: int) -> str:
    return _gettext(singular if n == 1 else plural)


def install(language: str, root: click.Command) -> None:
    """Sets the language for click's strings, our messages and the help texts of every command under root."""
    _current["lang"] = language
    import click.core
    import click.decorators
    import click.exceptions
    import click.formatting
    import click.parser
    import click.termui
    import click.types

    modules = (click.core, click.decorators, click.exceptions, click.formatting, click.parser, click.termui,
               click.types)
    for module in modules:
        if hasattr(module, "_"):
            module._ = _gettext if language == "fr" else _identity  # type: ignore[attr-defined]
        if hasattr(module, "ngettext"):
            module.ngettext = _ngettext if language == "fr" else _identity_n  # type: ignore[attr-defined]
    type_names = {"fr": ("entier", "nombre", "texte"), "en": ("integer", "float", "text")}[language]
    click.INT.name, click.FLOAT.name, click.STRING.name = type_names
    click.IntRange.name, click.FloatRange.name = type_names[:2]
    if language == "en":
        _translate_help(root, catalogue("cli.en.json"))


def _identity(message: str) -> str:
    return message


def _identity_n(singular: str, plural: str, n: int) -> str:
    return singular if n == 1 else plural


def help_texts(root: click.Command) -> list[str]:
    """Every help text of ours under root (commands and options), for the catalogue test."""
    texts: list[str] = []
    for command in walk(root):
        texts += [t for t in (command.help, command.short_help) if t]
        texts += [p.help for p in command.params if isinstance(p, click.Option) and p.help]
    return texts


def walk(root: click.Command) -> list[click.Command]:
    commands = [root]
    if isinstance(root, click.Group):
        for sub in root.commands.values():
            commands += walk(sub)
    return commands


def _translate_help(root: click.Command, english: dict[str, str]) -> None:
    for command in walk(root):
        if command.help:
            command.help = english.get(command.help, command.help)
        if command.short_help:
            command.short_help = english.get(command.short_help, command.short_help)
        for param in command.params:
            if isinstance(param, click.Option) and param.help:
                param.help = english.get(param.help, param.help)
