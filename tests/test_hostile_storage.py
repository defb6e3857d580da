"""Hostile and malformed uploads through the action layer into real storage, on SQLite and PostgreSQL:
each is refused with a report and nothing stored changes, or is stored exactly and exported safely."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest

from registry.actions import Caller, experiences
from registry.export import export_registry
from registry.store import Registry
from tests.helpers import csv_bytes, example

PARIS = "217500016-2023-001"
OPERATOR = Caller.operator("upload", "agent@ville.example.fr")


def stored(registry: Registry) -> dict[str, object]:
    return experiences.get(registry, OPERATOR, PARIS).record


def with_stray_byte() -> bytes:
    data = csv_bytes([{**example(PARIS), "resume": "Synthétique " * 20}])
    return data.replace("Synthétique".encode(), b"Synth\xe9tique", 1)  # one Latin-1 byte in UTF-8


def with_late_nul() -> bytes:
    return csv_bytes([{**example(PARIS), "resume": "x" * 70_000 + "\x00" + "fin"}])


# name: (the file, the error code, words of its French message)
HOSTILE = {
    "stray Latin-1 byte": (with_stray_byte, "invalid-utf8", "0xE9"),
    "NUL after 64 KB": (with_late_nul, "nul-byte", "caractère nul"),
    "header over 128 KB": (lambda: b"id_experience," + b"x" * 140_000 + b"\r\n1,2\r\n", "header-too-large", ""),
    "JSON with U+0000": (lambda: json.dumps({**example(PARIS), "intitule": "a\u0000b"}).encode(), "unreadable-file",
                         "caractère nul"),
    "deep JSON": (lambda: b"[" * 100_000 + b"]" * 100_000, "unreadable-file", "trop profondément"),
    "binary": (lambda: bytes(range(256)) * 100, "nul-byte", "fichier binaire"),
}


@pytest.mark.parametrize("name", list(HOSTILE))
def test_hostile_upload_is_refused_and_nothing_stored_changes(registry: Registry, name: str) -> None:
    assert experiences.publish_upload(registry, OPERATOR, csv_bytes([example(PARIS)]), "v1.csv").accepted
    before = stored(registry)
    make, code, words = HOSTILE[name]
    result = experiences.publish_upload(registry, OPERATOR, make(), "rex.json" if "JSON" in name else "rex.csv")
    assert not result.accepted
    assert code in {i.code for i in result.report.errors()}
    assert words in result.report.to_text()
    assert stored(registry) == before
    assert len(experiences.history(registry, OPERATOR, PARIS)) == 1


@pytest.mark.parametrize("cell", ["=1+1", " =1+1", "\t=HYPERLINK(\"http://x\")", "\r@SUM(A1)", "+33 1 23", "-2"])
def test_formula_text_is_stored_exactly_and_exported_neutralised(registry: Registry, tmp_path: Path,
                                                                 cell: str) -> None:
    row = {**example(PARIS), "ce_qui_a_fonctionne": cell + " et la suite"}
    assert experiences.publish_upload(registry, OPERATOR, csv_bytes([row]), "rex.csv").accepted
    assert stored(registry)["experiences"]["ce_qui_a_fonctionne"] == row["ce_qui_a_fonctionne"]
    export_registry(registry, tmp_path / "out")
    text = (tmp_path / "out" / "experiences.csv").read_text(encoding="utf-8")
    exported = next(csv.DictReader(io.StringIO(text)))["ce_qui_a_fonctionne"]
    assert exported.startswith("'"), exported  # a spreadsheet shows it as text and never runs it
    again = experiences.publish_file(registry, OPERATOR, tmp_path / "out" / "datapackage.json")
    assert again.accepted and again.count("unchanged") == 1  # read back exactly


def test_cr_only_file_is_stored_exactly(registry: Registry) -> None:
    row = {**example(PARIS), "resume": "Premier paragraphe ; second, avec virgules. " * 5}
    data = csv_bytes([row], delimiter=";").replace(b"\r\n", b"\r")
    result = experiences.publish_upload(registry, OPERATOR, data, "mac.csv")
    assert result.accepted, result.report.to_text()
    assert stored(registry)["experiences"]["resume"] == row["resume"]


def test_a_bare_cr_inside_a_cell_survives_export_and_reimport(registry: Registry, tmp_path: Path) -> None:
    row = {**example(PARIS), "resume": "Ligne un\rligne deux sans autre fin de ligne"}
    assert experiences.publish_upload(registry, OPERATOR, csv_bytes([row]), "rex.csv").accepted
    export_registry(registry, tmp_path / "out")
    again = experiences.publish_file(registry, OPERATOR, tmp_path / "out" / "datapackage.json")
    assert again.accepted and again.count("unchanged") == 1, again.report.to_text()
    assert stored(registry)["experiences"]["resume"] == row["resume"]
