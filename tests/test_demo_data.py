"""The demo data set (data/demo) and the synthetic generator (data/synthetic.py), as a user would check them.

Codes are read from the schema files, never retyped here.
"""

from __future__ import annotations

import csv
import hashlib
import importlib.util
import json
from collections import Counter
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from frictionless import validate

from registry.validation import validate_path
from registry.validation.report import Report

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "data" / "demo"
SCHEMAS = ROOT / "schemas"
TABLES = ("experiences", "indicateurs", "enseignements", "acteurs", "documents")
TODAY = "2026-11-25"  # the demo's reference date (README): results are due 12 months after date_fin


def schema(table: str) -> dict[str, Any]:
    return json.loads((SCHEMAS / table / "schema.json").read_text("utf-8"))


def codes(table: str, field: str) -> list[str]:
    spec = next(f for f in schema(table)["fields"] if f["name"] == field)
    return list(spec.get("constraints", {}).get("enum") or spec.get("listItem", {}).get("enum") or [])


def rows(folder: Path, table: str) -> list[dict[str, str]]:
    with open(folder / f"{table}.csv", encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))


@pytest.fixture(scope="module")
def demo() -> dict[str, list[dict[str, str]]]:
    return {t: rows(DEMO, t) for t in TABLES}


def is_failure(row: dict[str, str]) -> bool:
    return row["statut"] == "abandonne" or row["resultat"] == "objectifs_non_atteints"


# ---------------------------------------------------------------- demo: validity


def test_demo_valid_for_frictionless() -> None:
    report = validate(DEMO / "datapackage.json")
    assert report.valid, report.flatten(["rowNumber", "fieldName", "type", "note"])[:20]


def test_demo_valid_for_registry_validator() -> None:
    submission = validate_path(DEMO)
    assert submission.valid, submission.report.to_text()
    assert len(submission.experience_ids()) == len(rows(DEMO, "experiences"))


def test_demo_package_metadata() -> None:
    desc = json.loads((DEMO / "datapackage.json").read_text("utf-8"))
    assert desc["name"] == "rex-demo"
    assert "FICTIVES" in desc["description"]
    assert desc["licenses"][0]["name"] == "etalab-2.0"
    assert [r["name"] for r in desc["resources"]] == list(TABLES)
    assert all(r["path"] == f"{r['name']}.csv" for r in desc["resources"])


def test_demo_inline_schemas_follow_the_standard() -> None:
    """The inline schemas are those of schemas/datapackage.json; if this fails after a change of the standard,
    copy each resource's `schema` from schemas/datapackage.json into data/demo/datapackage.json."""
    std = {r["name"]: r["schema"] for r in json.loads((SCHEMAS / "datapackage.json").read_text("utf-8"))["resources"]}
    demo = {r["name"]: r["schema"] for r in json.loads((DEMO / "datapackage.json").read_text("utf-8"))["resources"]}
    assert demo == std


def test_demo_columns_are_the_schema_fields() -> None:
    for table in TABLES:
        with open(DEMO / f"{table}.csv", encoding="utf-8", newline="") as fh:
            header = next(csv.reader(fh))
        assert header == [f["name"] for f in schema(table)["fields"]], table


# ---------------------------------------------------------------- demo: content


def test_demo_size(demo: dict[str, list[dict[str, str]]]) -> None:
    assert 38 <= len(demo["experiences"]) <= 48


@pytest.mark.parametrize("field", ["domaine", "phase", "statut", "resultat", "suite_donnee",
                                   "niveau_participation_citoyenne", "type_porteur"])
def test_demo_covers_every_code(demo: dict[str, list[dict[str, str]]], field: str) -> None:
    seen = {r[field] for r in demo["experiences"]}
    missing = set(codes("experiences", field)) - seen
    assert not missing, f"{field}: codes absent from the demo: {sorted(missing)}"


def test_demo_child_tables_cover_their_codes(demo: dict[str, list[dict[str, str]]]) -> None:
    for table, field in [("enseignements", "nature"), ("acteurs", "type_acteur"), ("acteurs", "role"),
                         ("documents", "type_document"), ("indicateurs", "type_valeur")]:
        missing = set(codes(table, field)) - {r[field] for r in demo[table]}
        assert not missing, f"{table}.{field}: {sorted(missing)}"


def test_demo_at_least_a_third_are_failures(demo: dict[str, list[dict[str, str]]]) -> None:
    failures = [r for r in demo["experiences"] if is_failure(r)]
    assert len(failures) * 3 >= len(demo["experiences"])
    for r in failures:
        assert r["ce_qui_n_a_pas_fonctionne"], r["id_experience"]
    for r in demo["experiences"]:
        if r["statut"] == "abandonne" or r["suite_donnee"] == "arret":
            assert r["motif_arret"] in codes("experiences", "motif_arret"), r["id_experience"]


def test_demo_is_marked_fictional(demo: dict[str, list[dict[str, str]]]) -> None:
    for r in demo["experiences"]:
        assert r["intitule"].startswith("[Fictif] "), r["id_experience"]
        assert "Expérience fictive (données de démonstration)" in r["resume"], r["id_experience"]
    readme = (DEMO / "README.md").read_text("utf-8")
    assert "fictive" in readme.lower()


def test_demo_ids_follow_bearer_siren(demo: dict[str, list[dict[str, str]]]) -> None:
    for r in demo["experiences"]:
        assert r["id_experience"].startswith(r["siren_porteur"] + "-"), r["id_experience"]


def test_demo_children(demo: dict[str, list[dict[str, str]]]) -> None:
    per = {t: Counter(r["id_experience"] for r in demo[t]) for t in TABLES[1:]}
    ids = [r["id_experience"] for r in demo["experiences"]]
    for i in ids:
        codes_ = {r["code_indicateur"] for r in demo["indicateurs"] if r["id_experience"] == i}
        assert 1 <= len(codes_) <= 6, i
        assert 1 <= per["acteurs"][i] <= 4, i
        assert per["enseignements"][i] <= 4 and per["documents"][i] <= 2, i
    assert sum(1 for i in ids if per["enseignements"][i]) > len(ids) * 0.75
    assert any(r["type_acteur"] == "habitants_usagers" for r in demo["acteurs"])
    assert all(r["url"].startswith("https://") for r in demo["documents"])


def test_demo_preregistered_and_overdue(demo: dict[str, list[dict[str, str]]]) -> None:
    measured = {r["id_experience"] for r in demo["indicateurs"] if r["type_valeur"] == "mesure"}
    prereg = [r for r in demo["experiences"] if r["phase"] in ("idee", "etude") and r["date_debut"] >= "2027"]
    assert len(prereg) >= 3
    for r in prereg:
        assert r["resultat"] == "non_evalue" and r["id_experience"] not in measured
        kinds = {x["type_valeur"] for x in demo["indicateurs"] if x["id_experience"] == r["id_experience"]}
        assert {"reference", "cible"} <= kinds
    overdue = [r for r in demo["experiences"] if r["resultat"] == "non_evalue" and r["date_fin"]
               and r["date_fin"] < str(int(TODAY[:4]) - 1) + TODAY[4:] and r["id_experience"] not in measured]
    assert len(overdue) >= 3


def test_demo_costs(demo: dict[str, list[dict[str, str]]]) -> None:
    ex = demo["experiences"]
    assert sum(1 for r in ex if r["cout_prevu"] and r["cout_reel"]) >= 20
    assert any(r["economies_annuelles"].startswith("-") for r in ex)
    assert any(r["economies_annuelles"] and not r["economies_annuelles"].startswith("-") for r in ex)


# ---------------------------------------------------------------- synthetic generator


def load_synthetic() -> ModuleType:
    spec = importlib.util.spec_from_file_location("synthetic_data", ROOT / "data" / "synthetic.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def digest(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


@pytest.fixture(scope="module")
def synthetic() -> ModuleType:
    return load_synthetic()


@pytest.fixture(scope="module")
def synthetic_valid(synthetic: ModuleType, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("synthetic") / "a"
    counts = synthetic.generate(out, 200, seed=1)
    assert counts["experiences"] == 200 and counts["invalid_rows"] == 0
    assert 400 <= counts["indicateurs"] <= 800 and counts["acteurs"] >= 200
    return out


def test_synthetic_is_deterministic(synthetic: ModuleType, synthetic_valid: Path, tmp_path: Path) -> None:
    synthetic.generate(tmp_path / "b", 200, seed=1)
    assert digest(tmp_path / "b") == digest(synthetic_valid)
    synthetic.generate(tmp_path / "c", 200, seed=2)
    assert digest(tmp_path / "c") != digest(synthetic_valid)


def test_synthetic_valid_for_registry_validator(synthetic_valid: Path) -> None:
    submission = validate_path(synthetic_valid)
    assert submission.valid, submission.report.to_text()


def test_synthetic_valid_for_frictionless(synthetic_valid: Path) -> None:
    report = validate(synthetic_valid / "datapackage.json")
    assert report.valid, report.flatten(["rowNumber", "fieldName", "type", "note"])[:20]


def test_synthetic_uses_schema_codes(synthetic_valid: Path) -> None:
    ex = rows(synthetic_valid, "experiences")
    assert all(r["intitule"].startswith("[Synthétique]") for r in ex)
    for field in ("domaine", "phase", "statut", "resultat", "type_porteur"):
        assert {r[field] for r in ex} <= set(codes("experiences", field)), field
    assert len({r["domaine"] for r in ex}) > len(codes("experiences", "domaine")) // 2


def test_synthetic_invalid_rows_are_found_by_registry_validator(synthetic: ModuleType, tmp_path: Path) -> None:
    counts = synthetic.generate(tmp_path, 200, seed=1, invalid_rate=0.2)
    expected = json.loads((tmp_path / "expected-errors.json").read_text("utf-8"))
    assert expected["invalid_rows"] == counts["invalid_rows"] == len(expected["errors"])
    assert 20 <= counts["invalid_rows"] <= 60
    assert len({e["kind"] for e in expected["errors"]}) >= 5  # varied kinds of errors
    submission = validate_path(tmp_path, report=Report(max_per_code=10_000))
    found = {(i.resource, i.row, i.field) for i in submission.report.errors()}
    listed = {(e["resource"], e["row"], e["field"]) for e in expected["errors"]}
    assert found == listed


def test_synthetic_invalid_rows_frictionless_types(synthetic: ModuleType, tmp_path: Path) -> None:
    synthetic.generate(tmp_path, 200, seed=1, invalid_rate=0.2)
    expected = json.loads((tmp_path / "expected-errors.json").read_text("utf-8"))
    report = validate(tmp_path / "datapackage.json")
    found = {(task.name, e.row_number, e.field_name, e.type) for task in report.tasks for e in task.errors}
    listed = {(e["resource"], e["row"], e["field"], e["frictionless_type"]) for e in expected["errors"]
              if e["frictionless_type"]}
    assert found == listed
