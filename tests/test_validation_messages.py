"""Messages for non-specialist readers: only dates that exist are suggested, the decimal-comma advice fits
the file's separator, enum suggestions by prefix and by label (labels read from the schema)."""

from __future__ import annotations

import json

import pytest

from registry.standard import get_standard
from registry.validation import validate_bytes
from registry.validation.messages import MESSAGES
from tests.helpers import csv_bytes, example

PARIS = "217500016-2023-001"


def error(row: dict[str, str], delimiter: str = ",", lang: str = "fr") -> str:
    [err] = validate_bytes(csv_bytes([{**example(PARIS), **row}], delimiter=delimiter),
                           "experiences.csv").report.errors()
    return err.message(lang)


@pytest.mark.parametrize("value", ["31/02/2024", "30/02/2023", "2024-02-30", "31/04/2024"])
def test_an_impossible_date_gets_no_suggestion(value: str) -> None:
    text = error({"date_debut": value})
    assert "écrivez" not in text and f"le {value} n'existe pas" in text
    assert f"{value} does not exist" in error({"date_debut": value}, lang="en")


def test_a_french_date_gets_its_iso_form() -> None:
    assert "(écrivez 2024-02-29)" in error({"date_debut": "29/02/2024"})


def test_decimal_comma_advice_fits_the_separator() -> None:
    text = error({"cout_prevu": "11,5"}, delimiter=",")
    assert "point ou une virgule" not in text
    assert "écrivez 11.5, ou enregistrez le fichier avec des points-virgules « ; »" in text
    assert "write 11.5, or save the file with semicolons" in error({"cout_prevu": "11,5"}, lang="en")
    semicolons = error({"cout_prevu": "11,5,2"}, delimiter=";")
    assert "avec un point ou une virgule décimale" in semicolons  # here a decimal comma is read
    doc = json.dumps({**example(PARIS), "cout_prevu": "11,5"}).encode()
    [err] = validate_bytes(doc, "rex.json").report.errors()
    assert "(écrivez 11.5)" in err.message() and "virgule décimale" not in err.message()


def domain_codes() -> list[tuple[str, str, str]]:
    spec = get_standard().table("experiences").by_name["domaine"]
    return [(code, spec.label(code), spec.label(code, "en")) for code in spec.codes or ()]


@pytest.mark.parametrize(("code", "label", "label_en"), domain_codes())
def test_enum_suggestions_by_label_and_prefix(code: str, label: str, label_en: str) -> None:
    for typed in (label, label.upper(), label_en.lower()):
        assert f"Vouliez-vous dire « {code} » ?" in error({"domaine": typed}), typed
    prefix = code.split("_")[0]
    others = [c for c, _, _ in domain_codes() if c.startswith(prefix) and c != code]
    if not others and prefix != code:
        assert f"Vouliez-vous dire « {code} » ?" in error({"domaine": prefix})


def test_risques_suggests_its_code() -> None:
    assert "Vouliez-vous dire « risques_resilience » ?" in error({"domaine": "risques"})


def test_every_message_is_a_sentence_in_both_languages() -> None:
    for code, (fr, en) in MESSAGES.items():
        if code == "detected":
            continue
        assert fr != en and fr.strip() and en.strip(), code
        assert fr.rstrip().endswith((".", "?", "}")) and en.rstrip().endswith((".", "?", "}")), code
