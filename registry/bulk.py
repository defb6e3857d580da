"""Bulk downloads: the whole registry (current state) as a Data Package zip and one CSV per table.

Built into `<home>/bulk/` by background work (`refresh`: the worker, `registry` commands, a test), never by
a request: pages only serve what is there. `refresh` rebuilds only when the registry changed since the
last build: the newest revision id is compared with the marker file written last. Records are streamed by
id, a batch at a time, into the five CSV files at once (memory flat in the number of experiences); the
files are written in a temporary folder, then moved into place, the marker last.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

from registry import catalog_queries
from registry.serialize.datapackage import TableWriter, package_descriptor
from registry.standard import MAIN_RESOURCE, get_standard
from registry.store import Registry

ZIP_NAME = "registre-territoires-connectes.zip"
MARKER = "revision.json"


@dataclass(frozen=True)
class BulkFile:
    name: str
    path: Path
    media_type: str


def folder(registry: Registry) -> Path:
    return registry.settings.home / "bulk"


def files(registry: Registry) -> dict[str, BulkFile]:
    """What a build leaves: the zip, datapackage.json and one CSV per table (present or not yet)."""
    root = folder(registry)
    out = {ZIP_NAME: BulkFile(ZIP_NAME, root / ZIP_NAME, "application/zip"),
           "datapackage.json": BulkFile("datapackage.json", root / "datapackage.json", "application/json")}
    for name in get_standard().tables:
        out[f"{name}.csv"] = BulkFile(f"{name}.csv", root / f"{name}.csv", "text/csv; charset=utf-8")
    return out


def built_revision(registry: Registry) -> int | None:
    try:
        return int(json.loads((folder(registry) / MARKER).read_text(encoding="utf-8"))["revision_id"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def refresh(registry: Registry, force: bool = False) -> bool:
    """Rebuilds the bulk files when the registry changed since the last build; True when it built."""
    newest, _ = catalog_queries.newest_revision(registry)
    if not force and built_revision(registry) == newest and all(f.path.exists() for f in files(registry).values()):
        return False
    build(registry, newest)
    return True


def build(registry: Registry, revision_id: int) -> None:
    std = get_standard()
    root = folder(registry)
    root.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".build-", dir=root))
    try:
        handles = {name: (tmp / f"{name}.csv").open("wb") for name in std.tables}
        try:
            writers = {name: TableWriter(table, handles[name]) for name, table in std.tables.items()}
            for record in catalog_queries.iter_records(registry):
                writers[MAIN_RESOURCE].row(record[MAIN_RESOURCE])
                for child in std.children:
                    for row in record.get(child.name, []):
                        writers[child.name].row(row)
        finally:
            for fh in handles.values():
                fh.close()
        paths = {name: f"{name}.csv" for name in std.tables}
        descriptor = package_descriptor(std, writers, paths, registry.clock())
        text = json.dumps(descriptor, ensure_ascii=False, indent=2) + "\n"
        (tmp / "datapackage.json").write_text(text, encoding="utf-8")
        with zipfile.ZipFile(tmp / ZIP_NAME, "w", compression=zipfile.ZIP_DEFLATED) as zf:
            zf.write(tmp / "datapackage.json", "datapackage.json")
            for name in std.tables:
                zf.write(tmp / f"{name}.csv", f"{name}.csv")
        for f in files(registry).values():
            os.replace(tmp / f.name, f.path)
        marker = {"revision_id": revision_id, "built_at": registry.clock().isoformat()}
        (tmp / MARKER).write_text(json.dumps(marker), encoding="utf-8")
        os.replace(tmp / MARKER, root / MARKER)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
