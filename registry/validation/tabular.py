"""Spreadsheets and JSON records turned into the same raw tables as CSV files."""

from __future__ import annotations

import csv
import datetime as dt
import io
import zipfile
from collections.abc import Iterable, Iterator
from decimal import Decimal
from typing import Any

from registry.standard import KEY_FIELD, MAIN_RESOURCE, Standard
from registry.validation.csvtext import MAX_CELL_CHARS
from registry.validation.raw import RawTable, SourceError, guess_resource
from registry.validation.report import Issue, Report

MAX_XLSX_UNCOMPRESSED = 512 * 1024 * 1024


def guarded(rows: Iterable[list[str]], source: str, report: Report, resource: str) -> Iterator[list[str]]:
    """Rows of a CSV reader; a broken file ends the rows with an error in the report."""
    it = iter(rows)
    while True:
        try:
            row = next(it)
        except StopIteration:
            return
        except csv.Error as exc:
            code = "cell-too-large" if "field larger" in str(exc) else "unreadable-file"
            report.add(Issue(code, resource=resource, source=source,
                             params={"limit": str(MAX_CELL_CHARS), "detail": str(exc)}))
            return
        yield row


def cell_text(value: Any, separator: str = "|") -> str:
    """A JSON or spreadsheet value as the text a CSV cell would hold."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dt.datetime):
        return value.date().isoformat() if value.time() == dt.time() else value.isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() and abs(value) < 1e15 else repr(value)
    if isinstance(value, (int, Decimal)):
        return str(value)
    if isinstance(value, list):
        if any(isinstance(v, (list, dict)) for v in value):
            raise TypeError("une liste de listes ou d'objets")
        return separator.join(cell_text(v) for v in value)
    if isinstance(value, dict):
        raise TypeError("un objet JSON")
    return str(value)


def _json_cell(record: dict[str, Any], key: str, source: str) -> str:
    try:
        text = cell_text(record.get(key))
    except TypeError as exc:
        detail = f"la valeur de « {key} » est {exc} : un texte, un nombre ou une liste de textes attendu"
        raise SourceError(Issue("unreadable-file", source=source, field=key, params={"detail": detail})) from None
    if "\x00" in text:
        detail = f"la valeur de « {key} » contient un caractère nul (\\u0000), refusé dans un texte"
        raise SourceError(Issue("unreadable-file", source=source, field=key, params={"detail": detail}))
    return text


def _records_table(std: Standard, resource: str, records: list[Any], source: str,
                   parent_key: str | None = None) -> RawTable:
    spec = std.table(resource)
    keys: list[str] = []
    for rec in records:
        for k in rec if isinstance(rec, dict) else ():
            if k not in keys and not (resource == MAIN_RESOURCE and k in std.tables):
                keys.append(k)
    if parent_key is not None and KEY_FIELD not in keys:
        keys.insert(0, KEY_FIELD)
    header = [n for n in spec.field_names if n in keys] + [k for k in keys if k not in spec.field_names]
    rows = []
    for rec in records:
        rec = rec if isinstance(rec, dict) else {}
        if parent_key is not None:
            rec = {KEY_FIELD: parent_key, **rec}
        rows.append([_json_cell(rec, k, source) for k in header])
    return RawTable(resource, source, header, iter(rows))


def tables_from_json(std: Standard, doc: Any, source: str) -> list[RawTable]:
    """Accepts {table: [rows]}, one nested record, or a list of nested records.

    A nested record is an experience's fields with its child rows under the child table names.
    """
    if isinstance(doc, dict) and any(isinstance(doc.get(t), list) for t in std.tables) \
            and MAIN_RESOURCE in doc and isinstance(doc[MAIN_RESOURCE], list):
        return [_records_table(std, t, doc[t], source) for t in std.tables if isinstance(doc.get(t), list)]
    records = [doc] if isinstance(doc, dict) else doc
    if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
        raise SourceError(Issue("unreadable-file", source=source, params={
            "detail": "JSON attendu : un objet (une expérience) ou une liste d'objets"}))
    tables = [_records_table(std, MAIN_RESOURCE, records, source)]
    for child in std.children:
        rows: list[RawTable] = []
        for rec in records:
            sub = rec.get(child.name)
            if isinstance(sub, list) and sub:
                rows.append(_records_table(std, child.name, sub, source, cell_text(rec.get(KEY_FIELD))))
        if rows:
            header = rows[0].header
            merged = [r for t in rows for r in t.rows] if all(t.header == header for t in rows) else None
            if merged is None:
                flat = [dict(zip(t.header, r, strict=True)) for t in rows for r in t.rows]
                tables.append(_records_table(std, child.name, flat, source))
            else:
                tables.append(RawTable(child.name, source, header, iter(merged)))
    return tables


def read_xlsx(std: Standard, data: bytes, name: str, report: Report, resource: str | None) -> list[RawTable]:
    """Each sheet named after a table (or the only sheet) becomes a raw table."""
    from openpyxl import load_workbook

    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            if sum(i.file_size for i in zf.infolist()) > MAX_XLSX_UNCOMPRESSED:
                raise SourceError(Issue("file-too-large", source=name, params={
                    "size": "plus de 512 Mo décompressés", "limit": "512 Mo"}))
        book = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except SourceError:
        raise
    except Exception as exc:
        raise SourceError(Issue("unreadable-file", source=name, params={
            "detail": f"classeur XLSX illisible ({type(exc).__name__})"})) from None
    sheets = [ws for ws in book.worksheets if ws.title.lower() in std.tables] or book.worksheets[:1]
    tables = []
    for ws in sheets:
        rows = ([cell_text(v) for v in row] for row in ws.iter_rows(values_only=True))
        header = [h.strip() for h in next(rows, [])]
        while header and header[-1] == "":
            header.pop()
        width = len(header)
        source = f"{name} (feuille {ws.title})"
        res = resource if len(sheets) == 1 and resource else guess_resource(std, ws.title, header, source)
        report.note(f"classeur XLSX, feuille « {ws.title} » lue comme la table {res}",
                    f"XLSX workbook, sheet “{ws.title}” read as table {res}", source=source,
                    resource=res)
        trimmed = (_trim(r, width) for r in rows)
        tables.append(RawTable(res, source, header, trimmed))
    return tables


def _trim(row: list[str], width: int) -> list[str]:
    """Spreadsheets pad rows with empty cells: drop empty cells past the header's width."""
    while len(row) > width and row[-1] == "":
        row.pop()
    return row
