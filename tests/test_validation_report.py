"""One complete report per file: a cell error does not hide the other checks of the row, missing or extra
columns do not stop the checks of the columns that are there, every issue names its file, and an error
limit stops the work early and says what was left unchecked."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from registry.standard import get_standard
from registry.validation import Limits, csvtext, validate_bytes, validate_path
from registry.validation.report import Report
from tests.helpers import children, csv_bytes, example

PARIS = "217500016-2023-001"


def found(data: bytes, name: str = "experiences.csv", **kw: object) -> set[tuple[str, str | None]]:
    return {(i.code, i.field) for i in validate_bytes(data, name, **kw).report.errors()}  # type: ignore[arg-type]


def test_a_bad_siren_does_not_hide_an_unknown_commune() -> None:
    row = {**example(PARIS), "siren_porteur": "217500017", "code_insee_commune": "75999"}
    assert found(csv_bytes([row])) == {("siren-checksum", "siren_porteur"), ("commune-unknown", "code_insee_commune")}


def test_a_bad_bearer_type_skips_only_the_siren_lookup() -> None:
    row = {**example(PARIS), "type_porteur": "mairie", "code_insee_commune": "75999"}
    assert found(csv_bytes([row])) == {("enum-mismatch", "type_porteur"), ("commune-unknown", "code_insee_commune")}


def test_rules_run_only_on_valid_fields() -> None:
    row = {**example(PARIS), "date_fin": "2020-01-01", "code_insee_commune": "75999", "siren_porteur": "217500017"}
    assert ("rule-date-order", "date_fin") in found(csv_bytes([row]))
    row = {**example(PARIS), "date_debut": "31/02/2024", "date_fin": "2020-01-01"}
    assert found(csv_bytes([row])) == {("type-error", "date_debut")}  # no order to check against a non-date


def test_missing_and_extra_columns_do_not_stop_the_other_checks() -> None:
    header = [h for h in get_standard().table("experiences").field_names if h != "intitule"] + ["bidule"]
    row = {**example(PARIS), "code_insee_commune": "75999", "date_debut": "2024-13-01", "bidule": "x"}
    assert found(csv_bytes([row], header=header)) == {
        ("missing-column", "intitule"), ("unknown-column", "bidule"),
        ("type-error", "date_debut"), ("commune-unknown", "code_insee_commune")}


def test_every_issue_names_its_file_and_table() -> None:
    row = {**example(PARIS), "code_insee_commune": "75999"}
    sub = validate_bytes(csv_bytes([row]), "experiences.csv")
    [err] = sub.report.errors()
    assert err.source == "experiences.csv"
    assert sub.report.to_text().splitlines()[1].startswith("ERREUR [commune-unknown] experiences.csv, ligne 2")
    lesson = {**children("enseignements", PARIS)[0], "nature": "inconnu"}
    doc = {"experiences": [row], "enseignements": [lesson]}
    text = validate_bytes(json.dumps(doc).encode(), "rex.json").report.to_text()
    assert "rex.json, table experiences, ligne 2, colonne code_insee_commune" in text
    assert "rex.json, table enseignements, ligne 2" in text


def bad_rows(n: int) -> list[dict[str, str]]:
    return [{**example(PARIS), "code_insee_commune": "75999", "id_experience": f"217500016-2023-{i:03d}"}
            for i in range(1, n + 1)]


def test_max_errors_stops_the_work_and_says_what_was_not_checked() -> None:
    sub = validate_bytes(csv_bytes(bad_rows(30)), "experiences.csv", limits=Limits(max_errors=5))
    assert sub.report.count("error") == 5 and len(sub.report.errors()) == 5
    assert sub.report.rows["experiences"] == 5  # rows 2 to 6: the rest was never read
    text = sub.report.to_text()
    assert "Validation arrêtée après 5 erreurs" in text and "experiences.csv, lignes 7 et suivantes" in text
    assert "rows 7 onwards" in sub.report.to_text("en")
    assert sub.report.to_dict()["stopped_after_errors"] == 5
    same = validate_bytes(csv_bytes(bad_rows(30)), "experiences.csv", report=Report(max_errors=5, max_per_code=2))
    assert same.report.count("error") == 5 and len(same.report.errors()) == 2  # the display cap stays apart
    whole = validate_bytes(csv_bytes(bad_rows(30)), "experiences.csv", limits=Limits(max_errors=30))
    assert whole.report.count("error") == 30


def test_max_errors_names_the_tables_left_unchecked(tmp_path: Path) -> None:
    (tmp_path / "experiences.csv").write_bytes(csv_bytes(bad_rows(3)))
    (tmp_path / "indicateurs.csv").write_bytes(csv_bytes(children("indicateurs", PARIS), "indicateurs"))
    sub = validate_path(tmp_path, limits=Limits(max_errors=2))
    [note] = [i for i in sub.report.issues if i.code == "validation-stopped"]
    assert "lignes 4 et suivantes" in note.message() and "indicateurs.csv" in note.message()
    assert sub.report.rows["indicateurs"] == 0


@pytest.mark.parametrize("workers", [1, 2])
def test_max_errors_in_large_files_checked_by_spans(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                    workers: int) -> None:
    monkeypatch.setattr(csvtext, "PARALLEL_MIN_SIZE", 0)
    path = tmp_path / "experiences.csv"
    path.write_bytes(csv_bytes(bad_rows(400)))
    sub = validate_path(path, limits=Limits(max_errors=7, workers=workers))
    assert sub.report.count("error") == 7
    assert [i.row for i in sub.report.errors()] == list(range(2, 9))
    assert "lignes 9 et suivantes" in sub.report.to_text()
