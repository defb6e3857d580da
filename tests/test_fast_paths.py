"""The fast paths give exactly what a plain row-by-row check gives: large files checked by several processes,
and the column-wise screen of row batches."""

from __future__ import annotations

from pathlib import Path

import pytest

from registry.validation import Limits, csvtext, validate_path
from registry.validation.report import Report
from tests.helpers import csv_bytes, example

PARIS = "217500016-2023-001"


def rows(n: int) -> list[dict[str, str]]:
    out = []
    for i in range(n):
        row = {**example(PARIS), "id_experience": f"217500016-{2000 + i // 1000}-{i % 1000:03d}"}
        row["resume"] = f"Ligne {i} :\n« guillemets \"doublés\" », virgules, retours\r\nà la ligne."
        if i % 37 == 5:
            row["statut"] = "fini"
        if i % 53 == 7:
            row["date_debut"] = "07/03/2024"
        if i % 97 == 11:
            row["id_experience"] = "217500016-2000-000"  # a duplicate key far from the first one
        out.append(row)
    return out


@pytest.mark.parametrize("workers", [2, 3])
def test_parallel_equals_sequential(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, workers: int) -> None:
    monkeypatch.setattr(csvtext, "PARALLEL_MIN_SIZE", 0)
    path = tmp_path / "experiences.csv"
    path.write_bytes(csv_bytes(rows(600)))
    serial = validate_path(path, report=Report(max_per_code=10**6))
    split = validate_path(path, report=Report(max_per_code=10**6), limits=Limits(workers=workers))
    assert [(i.row, i.field, i.code) for i in split.report.issues] == \
        [(i.row, i.field, i.code) for i in serial.report.issues]
    assert split.report.counts == serial.report.counts and split.report.rows == serial.report.rows
    assert serial.report.count() > 30


def test_parallel_keeps_the_same_rows(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(csvtext, "PARALLEL_MIN_SIZE", 0)
    valid = [{**r, "statut": "termine", "date_debut": "2023-03-01"} for r in rows(300)]
    valid = [r for r in valid if r["id_experience"] != "217500016-2000-000"] + [valid[0]]
    valid.pop()
    path = tmp_path / "experiences.csv"
    path.write_bytes(csv_bytes(valid))
    serial = validate_path(path)
    split = validate_path(path, limits=Limits(workers=2))
    assert serial.valid and split.valid
    assert split.tables["experiences"].rows == serial.tables["experiences"].rows
    assert split.tables["experiences"].row_numbers == serial.tables["experiences"].row_numbers


def test_irregular_quotes_are_not_split() -> None:
    assert csvtext.split_records('a,b\n1,x"y\n2,3\n', 4, 2, ",") is None  # a quote inside an unquoted cell
    assert csvtext.split_records('a,b\n1,"x"y\n2,3\n', 4, 2, ",") is None  # text after a closing quote
    assert csvtext.split_records("a,b\r1,2\r3,4\r", 4, 2, ",") is None  # bare CR line ends
    spans = csvtext.split_records('a,b\n1,"x\n""y"""\n2,"3\n4"\n5,6\n', 4, 3, ",")
    assert spans is not None
    text = 'a,b\n1,"x\n""y"""\n2,"3\n4"\n5,6\n'
    assert [text[s:e] for s, e in spans] == ['1,"x\n""y"""\n', '2,"3\n4"\n', "5,6\n"]


def test_large_windows_1252_file_in_spans(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(csvtext, "PARALLEL_MIN_SIZE", 0)
    path = tmp_path / "experiences.csv"
    path.write_bytes(csv_bytes(rows(200), delimiter=";", encoding="cp1252"))
    serial = validate_path(path, report=Report(max_per_code=10**6))
    split = validate_path(path, report=Report(max_per_code=10**6), limits=Limits(workers=2))
    assert [(i.row, i.field, i.code) for i in split.report.issues if i.code != "detected"] == \
        [(i.row, i.field, i.code) for i in serial.report.issues if i.code != "detected"]
    [note] = [i.message() for i in split.report.issues if i.code == "detected"]
    assert "Windows-1252" in note and "point-virgule" in note


def test_undecodable_large_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(csvtext, "PARALLEL_MIN_SIZE", 0)
    path = tmp_path / "experiences.csv"
    path.write_bytes(csv_bytes(rows(50)) + b"\x81\x8d\x8f\x90,x\n" + csv_bytes(rows(50)).split(b"\n", 1)[1])
    sub = validate_path(path, limits=Limits(workers=2))
    [err] = sub.report.errors()  # UTF-8 with a few bad bytes: said where, never re-read as Windows-1252
    assert err.code == "invalid-utf8" and "4 octet(s)" in err.message()
    line = csv_bytes(rows(50)).count(b"\n") + 1
    assert f"ligne {line} (octet n° {len(csv_bytes(rows(50)))} : 0x81" in err.message()
    with_1252 = csv_bytes(rows(50)).decode().encode("cp1252") + b"\x81\x8d,x\n"
    path.write_bytes(with_1252)  # no valid UTF-8 sequence, and bytes Windows-1252 leaves undefined
    assert [i.code for i in validate_path(path, limits=Limits(workers=2)).report.errors()] == ["encoding-error"]


def test_column_screen_equals_row_by_row(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The column-wise screen only decides which rows the row model must see: forcing every row through
    the row model gives the same issues and the same rows."""
    import registry.validation.tables as tables
    from registry.validation.screen import Screened

    variants = rows(300)
    for i, row in enumerate(variants):
        if i % 41 == 3:
            row["code_insee_commune"] = "75999"  # unknown commune
        if i % 43 == 4:
            row["communes_concernees"] = "75056|01340"  # merged commune: error, or warning with an old vintage
            row["millesime_cog"] = "2015" if i % 2 else ""
        if i % 47 == 5:
            row["type_porteur"] = "epci"  # a commune's SIREN declared as an EPCI
        if i % 59 == 6:
            row["date_fin"] = "2001-01-01"  # before date_debut
        if i % 61 == 7:
            row["statut"], row["motif_arret"] = "abandonne", ""
        if i % 67 == 8:
            row["intitule"] = "x" * 201
        if i % 71 == 9:
            row["siren_porteur"] = "217500017"
    path = tmp_path / "experiences.csv"
    path.write_bytes(csv_bytes(variants))

    def run() -> list[tuple[int | None, str | None, str, str]]:
        sub = validate_path(path, report=Report(max_per_code=10**6))
        return [(i.row, i.field, i.code, i.severity) for i in sub.report.issues]

    screened_issues = run()
    assert {code for _, _, code, _ in screened_issues} >= {"commune-unknown", "commune-merged", "siren-kind-mismatch",
                                                          "rule-date-order", "rule-required-if", "too-long",
                                                          "siren-checksum", "enum-mismatch", "type-error"}
    monkeypatch.setattr(tables, "screen", lambda _t, _c, _h, batch, *_: Screened([False] * len(batch)))
    assert run() == screened_issues

    valid = [r for r in rows(300) if r["statut"] != "fini" and "/" not in r["date_debut"]
             and r["id_experience"] != "217500016-2000-000"]
    path.write_bytes(csv_bytes(valid))
    monkeypatch.undo()
    fast = validate_path(path).tables["experiences"].rows
    monkeypatch.setattr(tables, "screen", lambda _t, _c, _h, batch, *_: Screened([False] * len(batch)))
    assert validate_path(path).tables["experiences"].rows == fast and len(fast) == len(valid)
