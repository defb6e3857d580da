"""Files as territories really send them, and files nobody should send: encodings, delimiters, decimal
commas, spreadsheets, JSON records, folders, URLs; malformed, hostile and oversized input."""

from __future__ import annotations

import http.server
import io
import json
import threading
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from openpyxl import Workbook

from registry.queries import list_experiences
from registry.service import Provenance, publish_bytes
from registry.store import Registry
from registry.validation import Limits, Submission, validate_bytes, validate_path
from tests.helpers import children, csv_bytes, example

PARIS = "217500016-2023-001"


def codes(sub: Submission) -> set[tuple[str, str | None]]:
    return {(i.code, i.field) for i in sub.report.errors()}


def notes(sub: Submission) -> str:
    return " ".join(i.message() for i in sub.report.issues if i.code == "detected")


@pytest.mark.parametrize(("encoding", "bom", "label"), [
    ("utf-8", False, "UTF-8"), ("utf-8", True, "UTF-8 avec BOM"), ("cp1252", False, "Windows-1252"),
    ("latin-1", False, "Windows-1252"), ("utf-16", False, "UTF-16"),
])
def test_encodings_are_detected_and_said(encoding: str, bom: bool, label: str) -> None:
    row = example(PARIS)
    data = csv_bytes([row], delimiter=";", encoding=encoding)
    if bom:
        data = b"\xef\xbb\xbf" + data
    sub = validate_bytes(data, "experiences.csv")
    assert sub.valid, sub.report.to_text()
    assert label in notes(sub) and "point-virgule" in notes(sub)
    assert sub.tables["experiences"].rows[0]["intitule"] == row["intitule"]  # accents intact


def test_undecodable_and_binary_files_get_a_clear_error() -> None:
    sub = validate_bytes(b"id;intitule\n\x81\x8d\x8f\x90\x9d;x\n", "experiences.csv")
    assert [i.code for i in sub.report.errors()] == ["encoding-error"]
    sub = validate_bytes(b"\x00\x01\x02binary\x00" * 100, "experiences.csv")
    assert "binaire" in sub.report.errors()[0].message()


def test_decimal_comma_with_semicolons_is_read_and_said() -> None:
    row = {**example(PARIS), "cout_prevu": "95 000,50", "cout_reel": "1234,5"}
    sub = validate_bytes(csv_bytes([row], delimiter=";"), "experiences.csv")
    assert sub.valid, sub.report.to_text()
    stored = sub.tables["experiences"].rows[0]
    assert (stored["cout_prevu"], stored["cout_reel"]) == ("95000.50", "1234.5")
    assert "virgule décimale" in notes(sub)


def test_ambiguous_comma_number_in_comma_file_is_refused_not_guessed() -> None:
    row = {**example(PARIS), "cout_prevu": "1,500"}
    sub = validate_bytes(csv_bytes([row]), "experiences.csv")
    assert codes(sub) == {("type-error", "cout_prevu")}


def test_missing_and_extra_columns() -> None:
    row = example(PARIS)
    header = [h for h in row if h != "date_maj"] + ["Intitulé", "notes internes"]
    sub = validate_bytes(csv_bytes([row], header=header), "experiences.csv")
    found = {(i.code, i.field) for i in sub.report.errors()}
    assert ("missing-column", "date_maj") in found
    assert ("unknown-column", "notes internes") in found
    hint = next(i for i in sub.report.errors() if i.field == "Intitulé")
    assert "intitule" in hint.message()
    assert not any(i.code == "missing-value" and i.field == "date_maj" for i in sub.report.issues)


def test_ragged_rows_and_blank_rows() -> None:
    good = csv_bytes([example(PARIS)]).decode()
    header, line = good.split("\r\n")[:2]
    text = "\r\n".join([header, line + ",extra", ",".join([""] * 37), line.rsplit(",", 3)[0]]) + "\r\n"
    sub = validate_bytes(text.encode(), "experiences.csv")
    got = {(i.code, i.row) for i in sub.report.errors()}
    assert {("extra-cell", 2), ("blank-row", 3), ("missing-cell", 4)} <= got


def test_report_in_english_and_json_with_stable_codes() -> None:
    row = {**example(PARIS), "statut": "En cours", "siren_porteur": "217500017"}
    sub = validate_bytes(csv_bytes([row]), "experiences.csv")
    by_field = {i.field: i for i in sub.report.errors()}
    assert by_field["statut"].code == "enum-mismatch"
    assert "en_cours" in by_field["statut"].message("en") and "Did you mean" in by_field["statut"].message("en")
    data = json.loads(json.dumps(sub.report.to_dict("fr")))
    assert data["valid"] is False and data["error_count"] == 2
    assert {i["code"] for i in data["issues"] if i["severity"] == "error"} == {"enum-mismatch", "siren-checksum"}
    issue = data["issues"][-1]
    assert {"code", "severity", "resource", "row", "field", "value", "message"} <= set(issue)


def test_siren_checksum_and_geography() -> None:
    wrong_checksum = {**example(PARIS), "siren_porteur": "217500017", "id_experience": "217500017-2023-001"}
    sub = validate_bytes(csv_bytes([wrong_checksum]), "experiences.csv")
    assert codes(sub) == {("siren-checksum", "siren_porteur")}
    lyon_siren = {**example(PARIS), "siren_porteur": "216901231"}  # Lyon's SIREN with Paris as a commune: fine
    assert validate_bytes(csv_bytes([lyon_siren]), "experiences.csv").valid
    as_epci = {**example(PARIS), "type_porteur": "epci"}
    sub = validate_bytes(csv_bytes([as_epci]), "experiences.csv")
    [err] = sub.report.errors()
    assert err.code == "siren-kind-mismatch" and "Paris" in err.message()


def test_unknown_and_merged_commune_codes() -> None:
    unknown = {**example(PARIS), "code_insee_commune": "75999"}
    [err] = validate_bytes(csv_bytes([unknown]), "experiences.csv").report.errors()
    assert err.code == "commune-unknown"
    merged = {**example(PARIS), "communes_concernees": "75056|01340", "millesime_cog": ""}  # now Arboys en Bugey
    [err] = validate_bytes(csv_bytes([merged]), "experiences.csv").report.errors()
    assert err.code == "commune-merged" and "01015" in err.message() and err.value == "01340"
    old_vintage = {**merged, "millesime_cog": "2015"}
    sub = validate_bytes(csv_bytes([old_vintage]), "experiences.csv")
    assert sub.valid and any(i.code == "commune-merged" and i.severity == "warning" for i in sub.report.issues)


def test_cross_field_rules() -> None:
    row = {**example(PARIS), "date_fin": "2020-01-01"}
    assert codes(validate_bytes(csv_bytes([row]), "experiences.csv")) == {("rule-date-order", "date_fin")}
    row = {**example(PARIS), "statut": "abandonne", "motif_arret": ""}
    [err] = validate_bytes(csv_bytes([row]), "experiences.csv").report.errors()
    assert err.code == "rule-required-if" and "Abandonné" in err.message()
    measured = {**children("indicateurs", PARIS)[1], "periode_fin": ""}
    assert measured["type_valeur"] == "mesure"
    sub = validate_bytes(csv_bytes([measured], "indicateurs"), "indicateurs.csv")
    assert ("rule-required-if", "periode_fin") in codes(sub)


def test_xlsx_workbook_with_one_sheet_per_table() -> None:
    book = Workbook()
    ws = book.active
    ws.title = "experiences"
    row = example(PARIS)
    ws.append(list(row))
    ws.append([int(v) if k == "millesime_cog" else v for k, v in row.items()])
    ws2 = book.create_sheet("indicateurs")
    rows = children("indicateurs", PARIS)
    ws2.append(list(rows[0]))
    for r in rows:
        ws2.append([float(v) if k == "valeur" and v else v for k, v in r.items()])
    buf = io.BytesIO()
    book.save(buf)
    sub = validate_bytes(buf.getvalue(), "rex.xlsx")
    assert sub.valid, sub.report.to_text()
    assert len(sub.tables["indicateurs"].rows) == len(rows)
    assert sub.tables["experiences"].rows[0]["date_debut"] == row["date_debut"]


def test_broken_xlsx_is_refused_clearly() -> None:
    sub = validate_bytes(b"PK\x03\x04 this is not a workbook", "rex.xlsx")
    assert [i.code for i in sub.report.errors()] == ["unreadable-file"]


def test_json_nested_record_and_list() -> None:
    row = example(PARIS)
    record = {**row, "millesime_cog": 2023, "cout_prevu": 120000, "indicateurs": children("indicateurs", PARIS)}
    record["technologies"] = row["technologies"].split("|")
    for ind in record["indicateurs"]:
        del ind["id_experience"]
    sub = validate_bytes(json.dumps(record).encode(), "rex.json")
    assert sub.valid, sub.report.to_text()
    assert sub.tables["experiences"].rows[0]["technologies"] == row["technologies"]
    assert {r["id_experience"] for r in sub.tables["indicateurs"].rows} == {PARIS}
    for bad in (b"[1, 2]", b"{not json", b'"text"'):
        assert validate_bytes(bad, "rex.json").report.errors()[0].code == "unreadable-file"


def test_oversized_file_is_refused_before_reading(tmp_path: Path) -> None:
    big = tmp_path / "experiences.csv"
    with big.open("wb") as fh:
        fh.write(csv_bytes([example(PARIS)]))
        chunk = b"x" * (1024 * 1024)
        for _ in range(50):
            fh.write(chunk)
    assert big.stat().st_size > 50 * 1024 * 1024
    sub = validate_path(big, limits=Limits(max_bytes=20 * 1024 * 1024))
    [err] = sub.report.errors()
    assert err.code == "file-too-large" and "50.0 Mo" in err.message() and "20.0 Mo" in err.message()


def test_50_mb_of_garbage_under_the_limit_gives_a_bounded_report(tmp_path: Path) -> None:
    big = tmp_path / "experiences.csv"
    line = csv_bytes([{**example(PARIS), "statut": "???"}]).split(b"\r\n")[1] + b"\r\n"
    with big.open("wb") as fh:
        fh.write(csv_bytes([]))
        fh.write(line * (50 * 1024 * 1024 // len(line) + 1))
    sub = validate_path(big)
    assert not sub.valid
    kept = Counter(i.code for i in sub.report.issues)
    assert kept["enum-mismatch"] == kept["duplicate-key"] == 100  # the same id on every row, too
    total = sub.report.to_dict()["counts"]["experiences:enum-mismatch"]
    assert total == sub.report.rows["experiences"] > 10_000
    assert "en tout" in sub.report.to_text()


def test_huge_single_cell_is_reported(tmp_path: Path) -> None:
    data = csv_bytes([example(PARIS)]) + b'"' + b"a" * 2_000_000 + b'"\r\n'
    sub = validate_bytes(data, "experiences.csv")
    assert "cell-too-large" in {i.code for i in sub.report.errors()}


def test_text_length_limits_and_control_content() -> None:
    row = {**example(PARIS), "intitule": "x" * 201}
    [err] = validate_bytes(csv_bytes([row]), "experiences.csv").report.errors()
    assert err.code == "too-long" and "201" in err.message() and "200" in err.message()


@pytest.fixture
def served(tmp_path: Path) -> Iterator[str]:
    (tmp_path / "experiences.csv").write_bytes(csv_bytes([example(PARIS)]))
    handler = lambda *a: http.server.SimpleHTTPRequestHandler(*a, directory=str(tmp_path))  # noqa: E731
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_validate_a_url(served: str) -> None:
    assert validate_path(f"{served}/experiences.csv").valid
    sub = validate_path(f"{served}/missing.csv")
    assert sub.report.errors()[0].code == "unreadable-file"


def test_refused_upload_keeps_what_was_stored(sqlite_registry: Registry) -> None:
    prov = Provenance("upload")
    assert publish_bytes(sqlite_registry, csv_bytes([example(PARIS)]), "ok.csv", prov).accepted
    for bad, name in [(b"\x00\xff" * 1000, "x.csv"), (b"PK\x03\x04junk", "x.xlsx"), (b"{", "x.json"),
                      (csv_bytes([{**example(PARIS), "date_maj": "hier"}]), "x.csv")]:
        assert not publish_bytes(sqlite_registry, bad, name, prov).accepted
    total, [item] = list_experiences(sqlite_registry)
    assert total == 1 and item.date_maj == example(PARIS)["date_maj"]


def test_numbers_and_dates_are_stored_in_plain_notation() -> None:
    row = {**example(PARIS), "cout_prevu": "1e3", "cout_reel": "1_500.50", "economies_annuelles": "+12",
           "millesime_cog": "+2023", "date_debut": "2023-3-1"}
    sub = validate_bytes(csv_bytes([row]), "experiences.csv")
    assert sub.valid, sub.report.to_text()
    stored = sub.tables["experiences"].rows[0]
    assert [stored[k] for k in ("cout_prevu", "cout_reel", "economies_annuelles", "millesime_cog", "date_debut")] \
        == ["1000", "1500.50", "12", "2023", "2023-03-01"]


@pytest.mark.parametrize(("data", "said"), [
    (b"[" * 100_000, "imbriqué trop profondément"),
    (b'{"cout_prevu": ' + b"1" * 5000 + b"}", "JSON invalide"),
    (b'{"id_experience": "x", "intitule": {"fr": "Titre"}}', "« intitule » est un objet JSON"),
    (b'{"id_experience": "x", "technologies": [["capteurs_iot"]]}', "« technologies » est une liste de listes"),
    (b"\xff\xfe{}", "JSON invalide"),
])
def test_hostile_json_gets_a_clear_error(data: bytes, said: str) -> None:
    [err] = validate_bytes(data, "rex.json").report.errors()
    assert err.code == "unreadable-file" and said in err.message()


def test_everything_said_in_english_is_english() -> None:
    row = {**example(PARIS), "cout_prevu": "95 000", "statut": "Terminé"}
    header = [*list(row), "code_insee"]
    sub = validate_bytes(csv_bytes([row], header=header, delimiter=";", encoding="cp1252"), "experiences.csv")
    text = sub.report.to_text("en")
    assert "encoding detected: Windows-1252; delimiter: semicolon (;)" in text
    assert "Did you mean “code_insee_commune”?" in text and "Did you mean “termine”?" in text
    for french in ("encodage", "colonne", "ligne", "Vouliez", "Valeurs acceptées", "obligatoire", "erreur"):
        assert french not in text, french


def test_too_many_rows_are_refused_with_the_limit() -> None:
    many = [{**example(PARIS), "id_experience": f"217500016-2023-{i:03d}"} for i in range(12)]
    sub = validate_bytes(csv_bytes(many), "experiences.csv", limits=Limits(max_rows=10))
    assert [(i.code, i.message()) for i in sub.report.errors()] == [
        ("too-many-rows", "Le fichier a plus de 10 lignes, la limite autorisée : envoyez-le en plusieurs fichiers.")]
    assert sub.report.rows["experiences"] == 10
    assert validate_bytes(csv_bytes(many[:10]), "experiences.csv", limits=Limits(max_rows=10)).valid
