"""The whole registry as a Data Package of the standard: one CSV per table and a datapackage.json.

CSV: UTF-8, `,`, `\\n`, every field of the schema in schema order, experiences by id and child rows in
their published order, so the same registry always gives the same bytes. Text cells that a spreadsheet
would run as formulas are neutralised (registry.csvsafe), and read back unchanged by `registry import`.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from registry.csvsafe import escape
from registry.queries import published_records
from registry.records import Record
from registry.standard import MAIN_RESOURCE, Standard, TableSpec, get_standard
from registry.store import Registry


@dataclass(frozen=True)
class ExportResult:
    folder: Path
    rows: dict[str, int]


def _cells(table: TableSpec, row: dict[str, str]) -> list[str]:
    texts = {f.name for f in table.fields if f.type == "string"}
    return [escape(row.get(n, "")) if n in texts else row.get(n, "") for n in table.field_names]


def write_csv(path: Path, table: TableSpec, rows: Iterable[dict[str, str]]) -> int:
    count = 0
    with path.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        # csv quotes a cell holding the line terminator (LF), not one holding a bare CR: such a row is quoted
        # whole, or readers would end the record at the CR
        quoted = csv.writer(fh, lineterminator="\n", quoting=csv.QUOTE_ALL)
        writer.writerow(table.field_names)
        for row in rows:
            cells = _cells(table, row)
            (quoted if any("\r" in c for c in cells) else writer).writerow(cells)
            count += 1
    return count


def descriptor(std: Standard, rows: dict[str, int], files: dict[str, Path], created: dt.datetime) -> dict[str, Any]:
    """The standard's own package descriptor, pointing at the exported files."""
    package = {k: v for k, v in std.package.items() if k != "resources"}
    package["name"] = f"{std.package['name']}-export"
    package["created"] = created.replace(microsecond=0).isoformat()
    package["resources"] = []
    for res in std.package["resources"]:
        name = res["name"]
        data = files[name].read_bytes()
        package["resources"].append({
            **{k: v for k, v in res.items() if k not in ("path", "schema")},
            "path": files[name].name,
            "schema": res["schema"],
            "bytes": len(data),
            "hash": "sha256:" + hashlib.sha256(data).hexdigest(),
            "count": rows[name],
        })
    return package


def export_records(std: Standard, records: list[Record], folder: Path, created: dt.datetime) -> ExportResult:
    folder.mkdir(parents=True, exist_ok=True)
    rows: dict[str, int] = {}
    files: dict[str, Path] = {}
    for name, table in std.tables.items():
        files[name] = folder / f"{name}.csv"
        if name == MAIN_RESOURCE:
            data: Iterable[dict[str, str]] = (r[MAIN_RESOURCE] for r in records)
        else:
            data = (row for r in records for row in r.get(name, []))
        rows[name] = write_csv(files[name], table, data)
    package = descriptor(std, rows, files, created)
    text = json.dumps(package, ensure_ascii=False, indent=2) + "\n"
    (folder / "datapackage.json").write_text(text, encoding="utf-8")
    return ExportResult(folder, rows)


def export_registry(registry: Registry, folder: Path) -> ExportResult:
    return export_records(get_standard(), published_records(registry), folder, registry.clock())
