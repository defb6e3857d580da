"""Input edge cases through the bytes path (`validate_bytes`) and the file path (`validate_path`): each gives
a clear French report or is read exactly — never a traceback, never mojibake."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from registry.csvsafe import escape, unescape
from registry.validation import Limits, Submission, csvtext, validate_bytes, validate_path
from tests.helpers import csv_bytes, example

PARIS = "217500016-2023-001"
Validate = Callable[[bytes, str], Submission]


def by_bytes(data: bytes, name: str) -> Submission:
    return validate_bytes(data, name)


@pytest.fixture(params=["bytes", "file", "file-in-spans"])
def validate(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Validate:
    if request.param == "bytes":
        return by_bytes
    if request.param == "file-in-spans":
        monkeypatch.setattr(csvtext, "PARALLEL_MIN_SIZE", 0)  # the path of large files, cut in spans

    def by_file(data: bytes, name: str) -> Submission:
        path = tmp_path / name
        path.write_bytes(data)
        return validate_path(path, limits=Limits(workers=1))

    return by_file


def many(n: int = 200) -> list[dict[str, str]]:
    return [{**example(PARIS), "id_experience": f"217500016-2023-{i:03d}"} for i in range(1, n + 1)]


def test_cr_only_line_ends_are_read_and_said(validate: Validate) -> None:
    rows = [{**r, "resume": "capteurs, écrans, " * 40} for r in many(3)]  # more commas than semicolons
    sub = validate(csv_bytes(rows, delimiter=";").replace(b"\r\n", b"\r"), "experiences.csv")
    assert sub.valid, sub.report.to_text()
    assert [r["resume"] for r in sub.tables["experiences"].rows] == [r["resume"] for r in rows]
    assert "point-virgule" in sub.report.to_text() and "retour chariot seul" in sub.report.to_text()
    assert "bare carriage return" in sub.report.to_text("en")


def test_a_stray_latin1_byte_in_utf8_is_refused_with_its_place(validate: Validate) -> None:
    data = csv_bytes(many(3))
    spot = data.rindex("Métropole".encode()) if "Métropole".encode() in data else data.rindex("é".encode())
    bad = data[:spot] + b"\xe9" + data[spot:]  # one Latin-1 "é" pasted in a UTF-8 file
    sub = validate(bad, "experiences.csv")
    [err] = sub.report.errors()
    line = bad.count(b"\n", 0, spot) + 1
    assert err.code == "invalid-utf8"
    assert f"ligne {line} (octet n° {spot} : 0xE9, sans doute « é » écrit en Windows-1252)" in err.message()
    assert "Ã©" not in sub.report.to_text() and not sub.tables


def test_real_windows_1252_exports_are_still_read(validate: Validate) -> None:
    rows = many(3)
    sub = validate(csv_bytes(rows, delimiter=";", encoding="cp1252"), "experiences.csv")
    assert sub.valid, sub.report.to_text()
    assert "Windows-1252" in sub.report.to_text()
    assert sub.tables["experiences"].rows[0]["intitule"] == rows[0]["intitule"]


def test_nul_anywhere_is_refused_with_its_line(validate: Validate) -> None:
    data = csv_bytes(many(400))
    assert len(data) > 2 * 65536
    spot = data.rindex(b"Paris")
    sub = validate(data[:spot] + b"\x00" + data[spot:], "experiences.csv")
    [err] = sub.report.errors()
    line = data.count(b"\n", 0, spot) + 1
    assert err.code == "nul-byte" and f"ligne {line} (octet n° {spot})" in err.message()
    utf16 = csv_bytes(many(2)).decode().replace("Paris", "Pa\x00ris").encode("utf-16")
    assert [i.code for i in validate(utf16, "experiences.csv").report.errors()] == ["nul-byte"]


def test_a_header_over_128_kb_is_a_clear_error(validate: Validate) -> None:
    data = csv_bytes(many(2)).replace(b"intitule", b"intitule" + b"x" * 140_000, 1)
    [err] = validate(data, "experiences.csv").report.errors()
    assert err.code == "header-too-large" and "noms des colonnes" in err.message()


@pytest.mark.parametrize("cell", [" =1+1", "\t=1+1", "\r=1+1", "\n@SUM(A1)", "  -2+3", "=1", "'", "''=1",
                                  "' =1", "\t", "plain", "", "-", " text", "'plain"])
def test_formulas_are_neutralised_and_read_back_exactly(cell: str) -> None:
    escaped = escape(cell)
    assert unescape(escaped) == cell
    if cell.lstrip(" \t\r\n").startswith(("=", "+", "-", "@")) or cell.startswith(("\t", "\r")):
        assert escaped.startswith("'")


@pytest.mark.parametrize("cell", [" =1+1", "\t=1+1", "\r=1+1", "  @SUM(A1)"])
def test_neutralised_formulas_are_undone_on_import(validate: Validate, cell: str) -> None:
    row = {**example(PARIS), "impacts_negatifs": escape(cell)}
    sub = validate(csv_bytes([row]), "experiences.csv")
    assert sub.valid, sub.report.to_text()
    assert sub.tables["experiences"].rows[0]["impacts_negatifs"] == cell


def test_nul_in_a_json_string_is_refused() -> None:
    [err] = validate_bytes(b'{"id_experience": "x", "intitule": "a\\u0000b"}', "rex.json").report.errors()
    assert err.code == "unreadable-file" and "caractère nul" in err.message()
