"""Reading what a territory sends (CSV, XLSX, JSON, a folder, a datapackage.json) into raw tables.

A raw table is a header and rows of strings, with the standard's table it belongs to.
Problems with the file itself go to the report; nothing here checks cell values.
"""

from __future__ import annotations

import codecs
import difflib
import io
import json
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from registry.standard import Standard
from registry.validation import csvtext, tabular
from registry.validation.raw import (
    DEFAULT_MAX_BYTES,
    Limits,
    RawTable,
    SourceError,
    check_size,
    guess_resource,
    human_size,
)
from registry.validation.raw import fail as _fail
from registry.validation.report import Issue, Report

ZIP_RATIO = 4  # a zipped package may hold this many times the upload limit once decompressed (each file: the limit)
__all__ = ["DEFAULT_MAX_BYTES", "Limits", "RawTable", "SourceError", "check_size", "guess_resource", "human_size",
           "read_path", "table_from_bytes"]

def table_from_bytes(std: Standard, data: bytes, name: str, report: Report, limits: Limits,
                     resource: str | None = None) -> list[RawTable]:
    """One uploaded file (CSV, XLSX or JSON), by its name and content."""
    check_size(len(data), name, limits)
    suffix = Path(name).suffix.lower()
    if resource is None and (suffix == ".zip" or is_zipped_package(data)):  # never a package inside a package
        return read_zipped_package(std, data, name, report, limits)
    if suffix == ".xlsx" or data[:4] == b"PK\x03\x04":
        return tabular.read_xlsx(std, data, name, report, resource)
    if suffix == ".json":
        return read_json_bytes(std, data, name, report)
    if suffix not in ("", ".csv", ".txt", ".tsv"):
        raise _fail("unsupported-format", name, detail=f"extension {suffix}")
    if len(data) >= csvtext.PARALLEL_MIN_SIZE:  # decoded and checked span by span: less memory, or more cores
        raw = large_csv(std, data, name, limits.workers, resource)
        if raw is not None:
            return [raw]
    return [read_csv_bytes(std, data, name, report, resource)]


def large_csv(std: Standard, data: bytes, name: str, workers: int, resource: str | None = None) -> RawTable | None:
    """A large CSV file cut into spans of whole records, left undecoded for several processes to decode
    and check (`parallel.py`); None when it cannot be cut exactly (then it is read in one go)."""
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return None
    bom = data.startswith(codecs.BOM_UTF8)
    start = 3 if bom else 0
    try:
        csvtext.check_nul(data)
        encoding = csvtext.detect_8bit(data[start:] if bom else data, start)
    except csvtext.DecodeError as exc:
        raise SourceError(Issue(exc.code, source=name, params=exc.params)) from None
    header_end = csvtext.record_end(data, start)
    header_text = data[start:header_end].decode(encoding)
    if "\r" in header_text.rstrip("\r\n") or len(header_text) > csvtext.MAX_HEADER_CHARS:
        return None  # bare CR line ends, or no real header: read in one go, which says so
    delimiter = csvtext.sniff_delimiter(header_text, std.all_field_names)
    header = [h.strip() for h in next(iter(csvtext.read_rows(header_text, delimiter)), [])]
    parts = max(max(workers, 1) * csvtext.SPANS_PER_WORKER, len(data) // csvtext.SPAN_BYTES + 1)
    spans = csvtext.split_records(data, header_end, parts, delimiter)
    if not header or spans is None or len(spans) < 2:
        return None
    res = resource or guess_resource(std, name, header, name)
    return RawTable(res, name, header, iter(()), decimal_comma=delimiter != ",", delimiter=delimiter,
                    data=data, spans=spans, bom=bom, encoding=encoding)


def read_csv_bytes(std: Standard, data: bytes, name: str, report: Report,
                   resource: str | None = None) -> RawTable:
    try:
        decoded = csvtext.decode(data)
        csvtext.check_header_line(decoded.text)
    except csvtext.DecodeError as exc:
        raise SourceError(Issue(exc.code, source=name, params=exc.params)) from None
    text = decoded.text
    if not text.strip():
        raise _fail("empty-file", name)
    delimiter = csvtext.sniff_delimiter(text, std.all_field_names)
    rows = csvtext.read_rows(text, delimiter)
    try:
        header = next(iter(rows))
    except Exception as exc:
        raise _fail("unreadable-file", name, detail=str(exc)) from None
    header = [h.strip() for h in header]
    res = resource or guess_resource(std, name, header, name)
    note = csvtext.dialect_note(decoded.encoding, decoded.bom, delimiter, csvtext.cr_only(text))
    report.note(*note, source=name, resource=res)
    return RawTable(res, name, header, tabular.guarded(rows, name, report, res),
                    decimal_comma=delimiter != ",", text=text, delimiter=delimiter,
                    data_start=csvtext.record_end(text, 0))


def read_json_bytes(std: Standard, data: bytes, name: str, report: Report) -> list[RawTable]:
    try:
        doc = json.loads(data.decode("utf-8-sig"))
    except RecursionError:
        raise _fail("unreadable-file", name, detail="JSON imbriqué trop profondément") from None
    except ValueError as exc:  # bad UTF-8, bad JSON, an integer of thousands of digits
        raise _fail("unreadable-file", name, detail=f"JSON invalide ({str(exc)[:200]})") from None
    return tabular.tables_from_json(std, doc, name)


def read_path(std: Standard, target: str | Path, report: Report, limits: Limits | None = None) -> list[RawTable]:
    """A file, a folder or a datapackage.json (URLs: `registry.net.validate_url`)."""
    limits = limits or Limits()
    text = str(target)
    path = Path(target)
    if path.is_dir():
        if (path / "datapackage.json").exists():
            return read_datapackage(std, path / "datapackage.json", report, limits)
        return read_folder(std, path, report, limits)
    if not path.exists():
        raise _fail("unreadable-file", text, detail="fichier introuvable")
    if path.name.endswith("datapackage.json"):
        return read_datapackage(std, path, report, limits)
    check_size(path.stat().st_size, path.name, limits)
    return table_from_bytes(std, path.read_bytes(), path.name, report, limits)


def read_folder(std: Standard, folder: Path, report: Report, limits: Limits) -> list[RawTable]:
    tables: list[RawTable] = []
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in (".csv", ".xlsx", ".json"))
    if not files:
        raise _fail("unsupported-format", folder.name, detail="dossier sans fichier CSV, XLSX ou JSON")
    for path in files:
        check_size(path.stat().st_size, path.name, limits)
        tables.extend(table_from_bytes(std, path.read_bytes(), path.name, report, limits))
    return tables


def read_datapackage(std: Standard, path: Path, report: Report, limits: Limits) -> list[RawTable]:
    def member(rel: str) -> bytes:
        file = path.parent / rel
        if not file.is_file():
            raise _fail("unreadable-file", rel, detail="fichier introuvable")
        check_size(file.stat().st_size, rel, limits)
        return file.read_bytes()

    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, ValueError) as exc:
        raise _fail("unreadable-file", path.name, detail=f"datapackage.json invalide ({exc})") from None
    return _package_tables(std, text, path.name, member, report, limits)


def _package_tables(std: Standard, descriptor: str, source: str, member: Callable[[str], bytes], report: Report,
                    limits: Limits) -> list[RawTable]:
    """The tables a Data Package descriptor names, each read through `member` (a file beside it, or in a zip)."""
    try:
        desc: dict[str, Any] = json.loads(descriptor)
        resources = desc["resources"]
        if not isinstance(resources, list) or not all(isinstance(r, dict) for r in resources):
            raise TypeError("« resources » : une liste d'objets attendue")
    except (RecursionError, ValueError, KeyError, TypeError) as exc:
        raise _fail("unreadable-file", source, detail=f"datapackage.json invalide ({str(exc)[:200]})") from None
    tables: list[RawTable] = []
    for res in resources:
        name, rel = res.get("name", ""), res.get("path")
        if name not in std.tables:
            hint = difflib.get_close_matches(str(name), list(std.tables), n=1)
            raise _fail("unknown-resource", source, name=str(name)[:100],
                        detail=f"ressource inconnue{' (' + hint[0] + ' ?)' if hint else ''}")
        if not isinstance(rel, str) or rel.startswith(("/", "\\", "http:", "https:")) or ".." in Path(rel).parts:
            raise _fail("unreadable-file", source, detail=f"chemin de ressource refusé : {str(rel)[:200]!r}")
        tables.extend(table_from_bytes(std, member(rel), rel, report, limits, resource=name))
    return tables


def is_zipped_package(data: bytes) -> bool:
    """A zip holding a datapackage.json (at its root or in its one top folder), not an XLSX workbook."""
    return _package_descriptor(data) is not None


def _package_descriptor(data: bytes) -> str | None:
    if data[:4] != b"PK\x03\x04":
        return None
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            names = [n for n in zf.namelist() if n.rsplit("/", 1)[-1] == "datapackage.json" and n.count("/") <= 1]
    except (zipfile.BadZipFile, ValueError, OSError):
        return None
    return min(names, key=len) if names else None


def read_zipped_package(std: Standard, data: bytes, name: str, report: Report, limits: Limits) -> list[RawTable]:
    """A Data Package sent as one zip (as the registry's own bulk download): descriptor and CSV files inside."""
    descriptor = _package_descriptor(data)
    if descriptor is None:
        raise _fail("unreadable-file", name, detail="archive zip sans datapackage.json")
    base = descriptor[: -len("datapackage.json")]
    try:
        zf = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, ValueError, OSError) as exc:
        raise _fail("unreadable-file", name, detail=f"archive zip illisible ({exc})") from None
    with zf:
        infos = {i.filename: i for i in zf.infolist() if not i.is_dir()}
        if sum(i.file_size for i in infos.values()) > limits.max_bytes * ZIP_RATIO:
            raise _fail("file-too-large", name, size="archive trop grande une fois décompressée",
                        limit=human_size(limits.max_bytes * ZIP_RATIO))

        def member(rel: str) -> bytes:
            info = infos.get(base + rel.replace("\\", "/"))
            if info is None:
                raise _fail("unreadable-file", rel, detail=f"fichier absent de l'archive {name}")
            check_size(info.file_size, rel, limits)
            try:
                return zf.read(info)
            except (zipfile.BadZipFile, ValueError, OSError, NotImplementedError) as exc:
                raise _fail("unreadable-file", rel, detail=f"illisible dans l'archive ({exc})") from None

        try:
            text = zf.read(infos[descriptor]).decode("utf-8-sig")
        except (zipfile.BadZipFile, ValueError, OSError, NotImplementedError, KeyError) as exc:
            raise _fail("unreadable-file", name, detail=f"datapackage.json illisible ({exc})") from None
        return _package_tables(std, text, f"{name}/datapackage.json", member, report, limits)
