"""Extract, update and compile the site's catalogues with Babel's own API (see web/translations/__init__.py)."""

from __future__ import annotations

import sys
from io import BytesIO
from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_dir
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po, write_po

HERE = Path(__file__).resolve().parent
WEB = HERE.parent
LANGS = ("en",)
JINJA = {"extensions": "jinja2.ext.i18n", "trimmed": "true"}

# Which files feed which domain (Babel's mapping: glob patterns relative to web/).
DOMAINS: dict[str, list[tuple[str, str]]] = {
    "messages": [("pages/**.py", "python"), ("errors.py", "python"), ("app.py", "python"),
                 ("templates/base.html", "jinja2"), ("templates/index.html", "jinja2"),
                 ("templates/experience.html", "jinja2"), ("templates/error.html", "jinja2"),
                 ("templates/pages/**.html", "jinja2")],
    "publish": [("accounts/**.py", "python"), ("publish/**.py", "python"), ("admin/**.py", "python"),
                ("templates/accounts/**.html", "jinja2"), ("templates/publish/**.html", "jinja2"),
                ("templates/admin/**.html", "jinja2")],
}


def template_catalog(domain: str) -> Catalog:
    """Every msgid of a domain, read from its files."""
    catalog = Catalog(project="registre-territoires-connectes", locale="fr", charset="utf-8")
    mapping = DOMAINS[domain]
    options = {pattern: (JINJA if method == "jinja2" else {}) for pattern, method in mapping}
    for filename, lineno, message, comments, context in extract_from_dir(
            str(WEB), method_map=mapping, options_map=options, keywords={"_": None, "gettext": None,
                                                                         "ngettext": (1, 2), "lazy_gettext": None}):
        catalog.add(message, None, [(filename, lineno)], auto_comments=comments, context=context)
    return catalog


def po_path(lang: str, domain: str) -> Path:
    return HERE / lang / "LC_MESSAGES" / f"{domain}.po"


def load_po(lang: str, domain: str) -> Catalog:
    path = po_path(lang, domain)
    if not path.exists():
        return Catalog(locale=lang, domain=domain)
    with path.open("rb") as fh:
        return read_po(fh, locale=lang, domain=domain)


def extract() -> None:
    for domain in DOMAINS:
        template = template_catalog(domain)
        for lang in LANGS:
            catalog = load_po(lang, domain)
            catalog.update(template, no_fuzzy_matching=True)
            path = po_path(lang, domain)
            path.parent.mkdir(parents=True, exist_ok=True)
            with path.open("wb") as fh:
                write_po(fh, catalog, width=120, omit_header=False, ignore_obsolete=True)
            missing = [m.id for m in catalog if m.id and not m.string]
            print(f"{path.relative_to(WEB)}: {len(catalog)} messages, {len(missing)} sans traduction")


def mo_bytes(lang: str, domain: str) -> bytes:
    out = BytesIO()
    write_mo(out, load_po(lang, domain), use_fuzzy=False)
    return out.getvalue()


def compile_all() -> None:
    for domain in DOMAINS:
        for lang in LANGS:
            if po_path(lang, domain).exists():
                po_path(lang, domain).with_suffix(".mo").write_bytes(mo_bytes(lang, domain))
                print(f"{lang}/{domain}.mo")


if __name__ == "__main__":
    {"extract": extract, "compile": compile_all}[sys.argv[1] if len(sys.argv) > 1 else "compile"]()
