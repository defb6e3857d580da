"""An experience record: its main row and its child rows, as canonical text cells.

    {"experiences": {field: text, ...}, "indicateurs": [{...}, ...], "enseignements": [...], ...}

Every field of the standard is present ("" when empty), so records compare and hash stably.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from registry.standard import KEY_FIELD, MAIN_RESOURCE, Standard

Record = dict[str, Any]


def full_row(std: Standard, table: str, row: dict[str, str]) -> dict[str, str]:
    return {name: row.get(name, "") for name in std.table(table).field_names}


def empty_record(std: Standard) -> Record:
    return {MAIN_RESOURCE: {}, **{t.name: [] for t in std.children}}


def merge(std: Standard, current: Record | None, main_row: dict[str, str] | None,
          children: dict[str, list[dict[str, str]]]) -> Record:
    """The record after a submission.

    Main table: submitted columns replace the current values, absent columns keep them (an empty
    cell clears a value). Child tables: a submitted table replaces all of the experience's rows
    in that table; a table not submitted keeps the current rows.
    """
    record = json.loads(json.dumps(current)) if current else empty_record(std)
    main = dict(record[MAIN_RESOURCE])
    if main_row is not None:
        main.update(main_row)
    record[MAIN_RESOURCE] = full_row(std, MAIN_RESOURCE, main)
    for table, rows in children.items():
        names = std.table(table).field_names  # once per table, not per row
        record[table] = [{name: r.get(name, "") for name in names} for r in rows]
    return record


def content_hash(record: Record) -> str:
    data = json.dumps(record, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(data.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Change:
    """One difference between two versions: a field of the main row, or a child row added/removed/changed."""

    table: str
    key: str  # field name for the main table, row key for child tables
    field: str | None
    before: str | None
    after: str | None


def child_key(std: Standard, table: str, row: dict[str, str], index: int) -> str:
    """A readable key for a child row: its primary key, or its code/type columns, or its position."""
    pk = [k for k in std.table(table).primary_key if k != KEY_FIELD]
    if pk:
        return " / ".join(row.get(k, "") for k in pk)
    return f"#{index + 1}"


def diff(std: Standard, old: Record | None, new: Record | None) -> list[Change]:
    """Field-by-field differences between two records (None: no record)."""
    old = old or empty_record(std)
    new = new or empty_record(std)
    changes: list[Change] = []
    a, b = old.get(MAIN_RESOURCE, {}), new.get(MAIN_RESOURCE, {})
    for name in std.main.field_names:
        if a.get(name, "") != b.get(name, ""):
            changes.append(Change(MAIN_RESOURCE, name, name, a.get(name, ""), b.get(name, "")))
    for child in std.children:
        rows_a = {child_key(std, child.name, r, i): r for i, r in enumerate(old.get(child.name, []))}
        rows_b = {child_key(std, child.name, r, i): r for i, r in enumerate(new.get(child.name, []))}
        for key in list(rows_a) + [k for k in rows_b if k not in rows_a]:
            ra, rb = rows_a.get(key), rows_b.get(key)
            if ra is None or rb is None:
                changes.append(Change(child.name, key, None, _summary(ra), _summary(rb)))
                continue
            for name in child.field_names:
                if ra.get(name, "") != rb.get(name, ""):
                    changes.append(Change(child.name, key, name, ra.get(name, ""), rb.get(name, "")))
    return changes


def _summary(row: dict[str, str] | None) -> str | None:
    if row is None:
        return None
    return " ; ".join(f"{k}={v}" for k, v in row.items() if v and k != KEY_FIELD)
