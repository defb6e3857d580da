"""What was expected, in plain words, built from the schema's own titles, descriptions and labels."""

from __future__ import annotations

import difflib
import re
import unicodedata

from registry.standard import FieldSpec

FR_DATE = re.compile(r"^\s*(\d{1,2})[/.-](\d{1,2})[/.-](\d{4})\s*$")
MAX_LISTED = 25


def fold(text: str) -> str:
    """Lower case, no accents, words joined by underscores: how a code is usually mistyped."""
    text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode().lower()
    return re.sub(r"[^a-z0-9]+", "_", text).strip("_")


def suggest(spec: FieldSpec, value: str) -> str | None:
    """The allowed code closest to what was typed (a label typed instead of its code counts)."""
    codes = spec.codes or ()
    folded = fold(value)
    for code in codes:
        if folded in (code, fold(spec.label(code)), fold(spec.label(code, "en"))):
            return code
    close = difflib.get_close_matches(folded, codes, n=1, cutoff=0.6)
    return close[0] if close else None


def _codes(spec: FieldSpec, en: bool) -> str:
    codes = spec.codes or ()
    listed = ", ".join(f"{c} ({spec.label(c, 'en' if en else 'fr')})" for c in codes[:MAX_LISTED])
    more = len(codes) - MAX_LISTED
    if more > 0:
        listed += f" … (+{more})"
    return listed


def expected(spec: FieldSpec, code: str, value: str, params: dict[str, str], en: bool) -> str:
    if code == "type-error":
        return _type_expected(spec, value, en)
    if code in ("enum-mismatch", "list-item-invalid") and spec.codes:
        typed = params.get("item", value)
        hint = suggest(spec, typed)
        text = ("Accepted values: " if en else "Valeurs acceptées : ") + _codes(spec, en) + "."
        if hint:
            text = (f"Did you mean “{hint}”? " if en else f"Vouliez-vous dire « {hint} » ? ") + text
        return text
    if code in ("pattern-mismatch", "list-item-invalid"):
        example = spec.example.split(spec.list_separator)[0] if spec.is_list and spec.list_separator else spec.example
        if en:
            return f"see the standard's description of this column; for example: {example}"
        return f"{spec.description} Exemple : {example}"
    if code == "out-of-range":
        if params.get("kind") == "min":
            return f"at least {spec.minimum:g}" if en else f"une valeur d'au moins {spec.minimum:g}"
        return f"at most {spec.maximum:g}" if en else f"une valeur d'au plus {spec.maximum:g}"
    return ""


def _type_expected(spec: FieldSpec, value: str, en: bool) -> str:
    if spec.type == "date":
        text = "a date written YYYY-MM-DD, e.g. 2024-03-15" if en else \
            "une date au format AAAA-MM-JJ, par exemple 2024-03-15"
        m = FR_DATE.match(value)
        if m:
            iso = f"{m[3]}-{int(m[2]):02d}-{int(m[1]):02d}"
            text += f" (write {iso})" if en else f" (écrivez {iso})"
        elif value != value.strip():
            text += " (remove the spaces)" if en else " (sans espace avant ni après)"
        return text
    if spec.type == "integer":
        return "a whole number, e.g. 2026" if en else "un nombre entier, par exemple 2026"
    text = "a number, digits with a decimal point, e.g. 12500.50" if en else \
        "un nombre : des chiffres, avec un point ou une virgule décimale, par exemple 12500.50"
    if any(ch in value for ch in "€$%"):
        text += " (no currency or % sign)" if en else " (sans symbole € ni %)"
    elif " " in value.strip() or "\u00a0" in value:
        text += " (no spaces between digits)" if en else " (sans espace entre les chiffres)"
    return text
