"""The standard, read from the Frictionless files in `schemas/` (the single source of truth).

Nothing here lists fields, types or codes: everything comes from `schemas/*/schema.json`.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from functools import cache, cached_property
from pathlib import Path
from typing import Any

from registry.paths import SCHEMAS_DIR

MAIN_RESOURCE = "experiences"
KEY_FIELD = "id_experience"


@dataclass(frozen=True)
class FieldSpec:
    name: str
    type: str
    title: str
    title_en: str
    description: str
    example: str
    required: bool = False
    pattern: str | None = None
    enum: tuple[str, ...] | None = None
    min_length: int | None = None
    max_length: int | None = None
    minimum: float | None = None
    maximum: float | None = None
    labels: dict[str, str] = field(default_factory=dict)
    labels_en: dict[str, str] = field(default_factory=dict)
    list_separator: str | None = None
    item_enum: tuple[str, ...] | None = None
    item_pattern: str | None = None
    checks: tuple[str, ...] = ()

    @property
    def is_list(self) -> bool:
        return self.list_separator is not None

    @property
    def codes(self) -> tuple[str, ...] | None:
        """The allowed codes, for an enum field or a list of enum items."""
        return self.enum or self.item_enum

    def label(self, code: str, lang: str = "fr") -> str:
        labels = self.labels_en if lang == "en" else self.labels
        return labels.get(code, code)

    def heading(self, lang: str = "fr") -> str:
        return self.title_en if lang == "en" and self.title_en else self.title


@dataclass(frozen=True)
class Rule:
    code: str
    type: str
    fields: tuple[str, ...]
    other: str | None
    when: dict[str, tuple[str, ...]]
    description: str
    description_en: str


@dataclass(frozen=True)
class TableSpec:
    name: str
    title: str
    title_en: str
    description: str
    fields: tuple[FieldSpec, ...]
    primary_key: tuple[str, ...]
    foreign_keys: tuple[dict[str, Any], ...]
    rules: tuple[Rule, ...]
    descriptor: dict[str, Any]
    path: Path

    @property
    def field_names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.fields)

    @cached_property
    def by_name(self) -> dict[str, FieldSpec]:
        return {f.name: f for f in self.fields}

    @property
    def required_names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.fields if f.required)


@dataclass(frozen=True)
class Standard:
    package: dict[str, Any]
    tables: dict[str, TableSpec]
    root: Path

    @property
    def version(self) -> str:
        return str(self.package["version"])

    @property
    def main(self) -> TableSpec:
        return self.tables[MAIN_RESOURCE]

    @property
    def children(self) -> tuple[TableSpec, ...]:
        return tuple(t for name, t in self.tables.items() if name != MAIN_RESOURCE)

    def table(self, name: str) -> TableSpec:
        return self.tables[name]

    @cached_property
    def all_field_names(self) -> frozenset[str]:
        """Every column name of the standard (to recognise a header and its delimiter)."""
        return frozenset(n for t in self.tables.values() for n in t.field_names)


def list_pattern(item: str) -> str:
    """The anchored pattern of a `|` list whose items match `item` (an anchored pattern or enum)."""
    return rf"^(?:{item})(?:\|(?:{item}))*$"


def item_regex(spec: dict[str, Any]) -> str:
    if "enum" in spec:
        return "|".join(re.escape(code) for code in spec["enum"])
    return str(spec["pattern"]).removeprefix("^").removesuffix("$")


def _field(desc: dict[str, Any]) -> FieldSpec:
    cons = desc.get("constraints", {})
    item = desc.get("listItem") or {}
    return FieldSpec(
        name=desc["name"],
        type=desc.get("type", "string"),
        title=desc.get("title", desc["name"]),
        title_en=desc.get("titleEn", ""),
        description=desc.get("description", ""),
        example=str(desc.get("example", "")),
        required=bool(cons.get("required", False)),
        pattern=cons.get("pattern"),
        enum=tuple(cons["enum"]) if "enum" in cons else None,
        min_length=cons.get("minLength"),
        max_length=cons.get("maxLength"),
        minimum=cons.get("minimum"),
        maximum=cons.get("maximum"),
        labels=dict(desc.get("enumLabels", {})),
        labels_en=dict(desc.get("enumLabelsEn", {})),
        list_separator=desc.get("listSeparator"),
        item_enum=tuple(item["enum"]) if "enum" in item else None,
        item_pattern=item.get("pattern"),
        checks=tuple(desc.get("registryChecks", ())),
    )


def _rule(desc: dict[str, Any]) -> Rule:
    fields = desc.get("fields") or [desc["field"]]
    return Rule(
        code=desc["code"],
        type=desc["type"],
        fields=tuple(fields),
        other=desc.get("other"),
        when={k: tuple(v) for k, v in desc.get("when", {}).items()},
        description=desc.get("description", ""),
        description_en=desc.get("descriptionEn", ""),
    )


def _as_tuple(value: str | list[str] | None) -> tuple[str, ...]:
    if value is None:
        return ()
    return (value,) if isinstance(value, str) else tuple(value)


def load_table(path: Path) -> TableSpec:
    desc = json.loads(path.read_text(encoding="utf-8"))
    return TableSpec(
        name=desc["name"],
        title=desc.get("title", desc["name"]),
        title_en=desc.get("titleEn", ""),
        description=desc.get("description", ""),
        fields=tuple(_field(f) for f in desc["fields"]),
        primary_key=_as_tuple(desc.get("primaryKey")),
        foreign_keys=tuple(desc.get("packageForeignKeys", ())),
        rules=tuple(_rule(r) for r in desc.get("crossFieldRules", ())),
        descriptor=desc,
        path=path,
    )


def load_standard(root: Path = SCHEMAS_DIR) -> Standard:
    package = json.loads((root / "datapackage.json").read_text(encoding="utf-8"))
    tables: dict[str, TableSpec] = {}
    for res in package["resources"]:
        tables[res["name"]] = load_table(root / res["name"] / "schema.json")
    return Standard(package=package, tables=tables, root=root)


@cache
def get_standard() -> Standard:
    return load_standard()
