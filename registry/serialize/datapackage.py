"""Data Package and CSV in the standard: one experience's row, and the streaming writers of the bulk files.

CSV as registry.export writes it (UTF-8, `,`, `\\n`, every field in schema order, formulas neutralised
by registry.csvsafe, a row holding a bare CR quoted whole), so a file from here is read back by
`registry import` unchanged.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
from typing import IO, Any

from registry.csvsafe import escape
from registry.queries import ExperienceView
from registry.standard import MAIN_RESOURCE, Standard, TableSpec, get_standard


def _cells(table: TableSpec, row: dict[str, str]) -> list[str]:
    texts = {f.name for f in table.fields if f.type == "string"}
    return [escape(row.get(n, "")) if n in texts else row.get(n, "") for n in table.field_names]


def csv_line(table: TableSpec, row: dict[str, str] | None = None) -> str:
    """One CSV record (the header when `row` is None)."""
    buf = io.StringIO()
    cells = list(table.field_names) if row is None else _cells(table, row)
    quoting = csv.QUOTE_ALL if any("\r" in c for c in cells) else csv.QUOTE_MINIMAL
    csv.writer(buf, lineterminator="\n", quoting=quoting).writerow(cells)
    return buf.getvalue()


def experience_csv(view: ExperienceView, table: str = MAIN_RESOURCE) -> str:
    """One experience in the standard: its row of `experiences` (or its rows of a child table)."""
    spec = get_standard().table(table)
    rows = [view.main] if table == MAIN_RESOURCE else list(view.record.get(table, []))
    return csv_line(spec) + "".join(csv_line(spec, r) for r in rows)


def experience_package(view: ExperienceView, base: str) -> dict[str, Any]:
    """One experience as a Data Package of the standard: one remote CSV per table (its rows only)."""
    from registry.serialize.ckan import urls

    std = get_standard()
    package = {k: v for k, v in std.package.items() if k != "resources"}
    package["name"] = f"{std.package['name']}-{view.id}"
    package["resources"] = [{**{k: v for k, v in res.items() if k not in ("path", "schema")},
                             "path": f"{urls(base, view.id)['tables']}{res['name']}.csv", "schema": res["schema"]}
                            for res in std.package["resources"]]
    return package


class TableWriter:
    """Writes one table's CSV to a binary stream, counting rows and hashing bytes as they go."""

    def __init__(self, table: TableSpec, out: IO[bytes]) -> None:
        self.table, self.out = table, out
        self.rows = self.bytes = 0
        self.sha256 = hashlib.sha256()
        self._write(csv_line(table))

    def _write(self, text: str) -> None:
        data = text.encode("utf-8")
        self.out.write(data)
        self.sha256.update(data)
        self.bytes += len(data)

    def row(self, row: dict[str, str]) -> None:
        self._write(csv_line(self.table, row))
        self.rows += 1


def package_descriptor(std: Standard, writers: dict[str, TableWriter], paths: dict[str, str],
                       created: dt.datetime) -> dict[str, Any]:
    """The standard's own package descriptor, pointing at the written files."""
    package = {k: v for k, v in std.package.items() if k != "resources"}
    package["name"] = f"{std.package['name']}-export"
    package["created"] = created.astimezone(dt.UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")
    package["resources"] = []
    for res in std.package["resources"]:
        w = writers[res["name"]]
        package["resources"].append({
            **{k: v for k, v in res.items() if k not in ("path", "schema")},
            "path": paths[res["name"]], "schema": res["schema"], "bytes": w.bytes,
            "hash": "sha256:" + w.sha256.hexdigest(), "count": w.rows,
        })
    return package
