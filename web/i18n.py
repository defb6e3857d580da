"""Languages of the site: French first, English available (?lang=en, then a cookie)."""

from flask import g

LANGS = ("fr", "en")


def tr(fr: str, en: str) -> str:
    return en if g.get("lang") == "en" else fr
