"""The standard itself: valid with frictionless, invalid examples fail as documented, generated files in
sync, conventions of schema.data.gouv.fr held, and the registry's validator agreeing with frictionless."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from frictionless import Report as FlReport
from frictionless import Resource, Schema, validate

from registry.paths import SCHEMAS_DIR
from registry.schemadoc import stale
from registry.standard import get_standard, item_regex, list_pattern
from registry.validation import validate_path
from registry.validation.report import Report
from registry.validation.rows import RowChecker

STD = get_standard()
INVALID = [(t.name, name, errors) for t in STD.tables.values()
           for name, errors in t.descriptor.get("invalidExamples", {}).items()]
COLUMN_ERRORS = {"missing-label", "extra-label", "incorrect-label", "duplicate-label", "blank-label"}
SNAKE = re.compile(r"^[a-z][a-z0-9_]*$")


def fl_validate(path: Path, schema: Path) -> FlReport:
    """frictionless on one file with one schema.json (it refuses absolute paths: give a basepath)."""
    descriptor = json.loads(schema.read_text(encoding="utf-8"))
    resource = Resource(path=path.name, basepath=str(path.parent), schema=Schema.from_descriptor(descriptor))
    return resource.validate()


def frictionless_errors(path: Path, schema: Path) -> set[tuple[int | None, str, str]]:
    report = fl_validate(path, schema)
    found = set()
    for task in report.tasks:
        for e in task.errors:
            field = getattr(e, "field_name", "") or getattr(e, "label", "") or ""
            found.add((getattr(e, "row_number", None) or (1 if e.type in COLUMN_ERRORS else None), field, e.type))
    return found


def test_package_is_valid_with_frictionless() -> None:
    report = validate(str(SCHEMAS_DIR / "datapackage.json"))
    assert report.valid, report.flatten(["type", "note"])


@pytest.mark.parametrize(("table", "name", "expected"), INVALID, ids=[f"{t}/{n}" for t, n, _ in INVALID])
def test_invalid_examples_fail_as_documented(table: str, name: str, expected: list[dict]) -> None:
    got = frictionless_errors(SCHEMAS_DIR / table / name, SCHEMAS_DIR / table / "schema.json")
    assert got == {(e["row"], e["field"], e["code"]) for e in expected}


@pytest.mark.parametrize(("table", "name", "expected"), INVALID, ids=[f"{t}/{n}" for t, n, _ in INVALID])
def test_registry_validator_agrees_on_invalid_examples(table: str, name: str, expected: list[dict]) -> None:
    sub = validate_path(SCHEMAS_DIR / table / name, report=Report(max_per_code=10**6))
    assert not sub.valid
    errors = sub.report.errors()
    if any(e["code"] in COLUMN_ERRORS for e in expected):
        # Columns are matched by name here (by position in frictionless): a renamed column is both unknown
        # and missing; every column frictionless complains about is named in our report.
        assert {i.code for i in errors} <= {"missing-column", "unknown-column", "duplicate-column"}
        named = {i.field for i in errors}
        assert {e["field"] for e in expected if e["code"] != "incorrect-label"} <= named
        return
    # child files alone also refer to experiences absent from the registry: that is the registry's check
    ours = {(i.row, i.field or "", i.frictionless_type) for i in errors if i.frictionless_type
            and i.code != "foreign-key"}
    if any(e["code"] == "primary-key" for e in expected):
        ours = {(r, "" if t == "primary-key" else f, t) for r, f, t in ours}
    assert ours == {(e["row"], e["field"], e["code"]) for e in expected}


@pytest.mark.parametrize("table", list(STD.tables))
def test_valid_examples_are_valid(table: str) -> None:
    report = fl_validate(SCHEMAS_DIR / table / "exemple-valide.csv", SCHEMAS_DIR / table / "schema.json")
    assert report.valid, report.flatten(["rowNumber", "fieldName", "type"])
    if table == "experiences":  # child tables alone refer to experiences absent from the registry
        sub = validate_path(SCHEMAS_DIR / table / "exemple-valide.csv")
        assert sub.valid, sub.report.to_text()


def test_generated_files_are_in_sync() -> None:
    assert stale() == [], "run `registry schema build`"


def test_version_is_the_same_everywhere() -> None:
    version = STD.package["version"]
    assert re.fullmatch(r"\d+\.\d+\.\d+", version)
    assert {t.descriptor["version"] for t in STD.tables.values()} == {version}
    assert f"## [{version}]" in (SCHEMAS_DIR / "CHANGELOG.md").read_text(encoding="utf-8")


def test_package_metadata_as_schema_data_gouv_fr_publishes_it() -> None:
    for key in ("name", "title", "description", "homepage", "contributors", "created", "lastModified", "licenses"):
        assert STD.package.get(key), key
    assert STD.package["countryCode"] == "FR"
    for table in STD.tables.values():
        d = table.descriptor
        assert d["missingValues"] == [""] and d["countryCode"] == "FR"
        assert any(lic["name"] == "etalab-2.0" for lic in d["licenses"])


@pytest.mark.parametrize("table", list(STD.tables))
def test_every_field_is_documented_in_french_and_english(table: str) -> None:
    for f in STD.table(table).fields:
        assert SNAKE.match(f.name), f.name
        assert f.title and f.title_en and f.description and f.example, f.name
        for code in f.codes or ():
            assert SNAKE.match(code) and code.isascii(), code
            assert f.labels.get(code) and f.labels_en.get(code), f"{f.name}: {code}"


@pytest.mark.parametrize("table", list(STD.tables))
def test_field_examples_are_valid_values(table: str) -> None:
    spec = STD.table(table)
    row = {f.name: f.example for f in spec.fields}
    result = RowChecker(spec).check(row)
    assert result.errors == []


def test_list_patterns_are_built_from_their_items() -> None:
    lists = [f for t in STD.tables.values() for f in t.fields if f.is_list]
    assert lists
    for f in lists:
        item = {"enum": list(f.item_enum)} if f.item_enum else {"pattern": f.item_pattern}
        assert f.pattern == list_pattern(item_regex(item)), f.name
        assert f.list_separator == "|"


def test_shared_code_lists_are_identical() -> None:
    stop = STD.main.by_name["motif_arret"]
    lesson = STD.table("enseignements").by_name["categorie"]
    assert stop.enum == lesson.enum and stop.labels == lesson.labels and stop.labels_en == lesson.labels_en
    assert STD.main.by_name["phase"].enum == STD.table("enseignements").by_name["phase"].enum
    assert STD.main.by_name["domaines_secondaires"].item_enum == STD.main.by_name["domaine"].enum


def test_child_tables_reference_experiences_only_in_the_package() -> None:
    for child in STD.children:
        own = json.loads((SCHEMAS_DIR / child.name / "schema.json").read_text(encoding="utf-8"))
        assert "foreignKeys" not in own  # each schema.json validates a file on its own
        inline = next(r["schema"] for r in STD.package["resources"] if r["name"] == child.name)
        assert inline["foreignKeys"][0]["reference"]["resource"] == "experiences"


def test_only_table_schema_v1_features() -> None:
    for table in STD.tables.values():
        d = table.descriptor
        assert "uniqueKeys" not in d
        for f in d["fields"]:
            assert "categories" not in f and f["type"] in ("string", "integer", "number", "date")
            pattern = f.get("constraints", {}).get("pattern")
            if pattern:
                assert pattern.startswith("^") and pattern.endswith("$"), f["name"]
