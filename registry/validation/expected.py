"""What was expected, in plain words, built from the schema's own titles, descriptions and labels."""

from __future__ import annotations

import datetime as dt
import difflib
import re
import unicodedata

from registry.standard import FieldSpec

FR_DATE = re.compile(r"^\s*(\d{1,2})[/.-](\d{1,2})[/.-](\d{4})\s*$")
ISO_LIKE = re.compile(r"^\s*(\d{4})-(\d{1,2})-(\d{1,2})\s*$")  # 2024-02-30: the right form, no such day
DECIMAL_COMMA = re.compile(r"^\s*[-+]?\d[\d \u00a0\u202f]*,\d+\s*$")
SPACES = re.compile(r"[ \u00a0\u202f]")
MAX_LISTED = 25


def fold(text: str) -> str:
    """Lower case, no accents, words joined by underscores: how a code is usually mistyped."""
    text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode().lower()
    return re.sub(r"[^a-z0-9]+", "_", text).strip("_")


def suggest(spec: FieldSpec, value: str) -> str | None:
    """The allowed code closest to what was typed: a label typed instead of its code (any case, accents or
    not, French or English), the start of one code or label ("risques"), else a close spelling."""
    codes = spec.codes or ()
    folded = fold(value)
    if not folded:
        return None
    labels = {code: (code, fold(spec.label(code)), fold(spec.label(code, "en"))) for code in codes}
    for code, names in labels.items():
        if folded in names:
            return code
    starts = [code for code, names in labels.items() if any(n.startswith(folded) for n in names)]
    if len(starts) == 1:
        return starts[0]
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
        return _type_expected(spec, value, en, params)
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


def _type_expected(spec: FieldSpec, value: str, en: bool, params: dict[str, str]) -> str:
    if spec.type == "date":
        return _date_expected(value, en)
    if spec.type == "integer":
        return "a whole number, e.g. 2026" if en else "un nombre entier, par exemple 2026"
    if params.get("decimal_comma"):  # `;` or tab separators: 12,5 is read as 12.5
        text = "a number: digits, with a decimal point or comma, e.g. 12500.50" if en else \
            "un nombre : des chiffres, avec un point ou une virgule décimale, par exemple 12500,50"
    else:
        text = "a number: digits, with a decimal point, e.g. 12500.50" if en else \
            "un nombre : des chiffres, avec un point décimal, par exemple 12500.50"
    if any(ch in value for ch in "€$%"):
        text += " (no currency or % sign)" if en else " (sans symbole € ni %)"
    elif DECIMAL_COMMA.match(value) and not params.get("decimal_comma"):
        text += _comma_advice(value, params.get("delimiter") == ",", en)
    elif " " in value.strip() or "\u00a0" in value:
        text += " (no spaces between digits)" if en else " (sans espace entre les chiffres)"
    return text


def _comma_advice(value: str, comma_separated: bool, en: bool) -> str:
    dotted = SPACES.sub("", value.strip()).replace(",", ".")
    if comma_separated:  # the comma separates the columns of this file: 1,500 could be 1.5 or 1500
        return (f" (this file separates its columns with commas, so a decimal comma is ambiguous: write {dotted}, "
                "or save the file with semicolons “;” as separators)") if en else \
            (f" (ce fichier sépare ses colonnes par des virgules, une virgule décimale y est ambiguë : écrivez "
             f"{dotted}, ou enregistrez le fichier avec des points-virgules « ; » comme séparateur)")
    return f" (write {dotted})" if en else f" (écrivez {dotted})"


def _date_expected(value: str, en: bool) -> str:
    text = "a date written YYYY-MM-DD, e.g. 2024-03-15" if en else \
        "une date au format AAAA-MM-JJ, par exemple 2024-03-15"
    m = FR_DATE.match(value)
    if m:
        try:
            iso = dt.date(int(m[3]), int(m[2]), int(m[1])).isoformat()
        except ValueError:  # 31/02/2024: no date to suggest
            return text + (f" ({value.strip()} does not exist: check the day and the month)" if en else
                           f" (le {value.strip()} n'existe pas : vérifiez le jour et le mois)")
        text += f" (write {iso})" if en else f" (écrivez {iso})"
    elif ISO_LIKE.match(value):
        text += f" ({value.strip()} does not exist)" if en else f" (le {value.strip()} n'existe pas)"
    elif value != value.strip():
        text += " (remove the spaces)" if en else " (sans espace avant ni après)"
    return text
