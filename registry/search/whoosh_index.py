"""The Whoosh index on disk, written by one process at a time and read by many.

Layout of the index folder: `CURRENT` names the generation folder readers open (`g000001`, ...);
`write.lock` is held (flock: the kernel releases it when its process dies, even by kill -9) by whoever
writes. A rebuild writes a new generation beside the current one and swaps `CURRENT` atomically when it is
complete, so readers never see a half-built or empty index, and two rebuilds never run at once.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from whoosh import index as windex
from whoosh.codec.whoosh3 import W3Codec, W3PerDocReader, W3Segment
from whoosh.fields import ID, KEYWORD, STORED, TEXT, Schema

from registry.search import whoosh_similar

# (besides `analyzer`: Whoosh indexes keep their analyser pickled, and those written before `analysis` was a module
# of its own name its classes as this module's; they open only while these names stay importable from here)
from registry.search.analysis import (  # noqa: F401
    CachedStemFilter,
    FeminineFilter,
    NormalizingTokenizer,
    PlaceFilter,
    PluralOFilter,
    WordFilter,
    analyzer,
)
from registry.search.documents import Doc
from registry.search.fields import facet_names
from registry.standard import Standard

# How words are made, in the `FORMAT` file of each generation (none: 1). 2: NFKC, ligatures written out, « -os »
# as « -o », hyphenated compounds also written together. A generation of another format is rebuilt by the next
# sync.
FORMAT = "2"


class IndexBusy(RuntimeError):
    """Another process is writing the index."""


class _PerDocReader(W3PerDocReader):
    """Whoosh's reader of a segment's per-document columns, remembering a missing column too: Whoosh's asks the
    file system again at each posting of a field that keeps no lengths (facets, ids: about 180 `stat()` a record,
    ~12 % of writing)."""

    def has_column(self, fieldname: str) -> bool:
        known: dict[str, bool] = self.__dict__.setdefault("_columns", {})
        if fieldname not in known:
            known[fieldname] = bool(super().has_column(fieldname))
        return known[fieldname]


class Codec(W3Codec):
    """Whoosh's codec for writing, with `_PerDocReader` (its writer reads a new segment's lengths once its columns
    are closed: none appears later). The segments it makes name Whoosh's own codec: the index's files are Whoosh's
    alone, and its readers use Whoosh's codec."""

    def per_document_reader(self, storage: Any, segment: Any) -> W3PerDocReader:
        return _PerDocReader(storage, segment)

    def new_segment(self, storage: Any, indexname: str) -> W3Segment:
        return W3Segment(W3Codec(), indexname)


def schema(std: Standard) -> Schema:
    fr = analyzer()
    fields: dict[str, Any] = {
        "id": ID(stored=True, unique=True), "content_hash": STORED(),
        "intitule": TEXT(analyzer=fr, stored=True, field_boost=3.0, spelling=True),
        "nom_porteur": TEXT(analyzer=fr, stored=True, field_boost=1.5),
        "texte": TEXT(analyzer=fr, stored=True, spelling=True),
        "date_maj": ID(stored=True, sortable=True), "date_debut": ID(stored=True, sortable=True),
        "cout": ID(sortable=True), "results_due": ID(stored=True),
        "results_published": ID(stored=True),
    }
    fields |= {name: KEYWORD(stored=True, commas=False, scorable=False) for name in facet_names(std)}
    return Schema(**fields)


def fields_of(doc: Doc) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": doc.id, "content_hash": doc.content_hash, "intitule": doc.intitule, "nom_porteur": doc.nom_porteur,
        "texte": doc.texte, "date_maj": doc.date_maj, "date_debut": doc.date_debut,
        "cout": f"{doc.cout:018.2f}" if doc.cout is not None and doc.cout >= 0 else "",
        "results_published": "oui" if doc.results_published else "non",
    }
    if doc.results_due:
        out["results_due"] = doc.results_due
    out |= {name: " ".join(values) for name, values in doc.facets.items()}
    return out


class IndexFolder:
    writes = 0  # index commits made by this process: its searchers then look again at once

    def __init__(self, path: Path, std: Standard) -> None:
        self.path = path
        self.std = std

    def current(self) -> Path | None:
        try:
            name = (self.path / "CURRENT").read_text(encoding="ascii").strip()
        except FileNotFoundError:
            return None
        folder = self.path / name
        return folder if windex.exists_in(str(folder)) else None

    def current_format(self) -> str | None:
        """The format of the current generation (None without one; "1" before formats were written)."""
        folder = self.current()
        if folder is None:
            return None
        try:
            return (folder / "FORMAT").read_text(encoding="ascii").strip()
        except FileNotFoundError:
            return "1"

    def open(self) -> windex.Index | None:
        folder = self.current()
        return windex.open_dir(str(folder)) if folder else None

    @contextlib.contextmanager
    def locked(self, wait: float = 60.0) -> Iterator[None]:
        """The writers' lock; IndexBusy after `wait` seconds."""
        self.path.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path / "write.lock", os.O_CREAT | os.O_RDWR, 0o644)
        try:
            deadline = time.monotonic() + wait
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() >= deadline:
                        raise IndexBusy(f"index {self.path} en cours d'écriture par un autre processus") from None
                    time.sleep(0.05)
            yield
        finally:
            os.close(fd)  # releases the lock

    def _new_generation(self) -> Path:
        numbers = [int(p.name[1:]) for p in self.path.glob("g[0-9]*") if p.name[1:].isdigit()]
        folder = self.path / f"g{max(numbers, default=0) + 1:06d}"
        folder.mkdir()
        windex.create_in(str(folder), schema(self.std))
        (folder / "FORMAT").write_text(FORMAT, encoding="ascii")
        return folder

    def _swap(self, folder: Path) -> None:
        previous = self.current()
        tmp = self.path / "CURRENT.tmp"
        tmp.write_text(folder.name, encoding="ascii")
        os.replace(tmp, self.path / "CURRENT")
        # the previous generation stays for the readers still on it (they move on at their next search)
        for old in self.path.glob("g[0-9]*"):  # abandoned (a killed rebuild) or older: removed
            if old not in (folder, previous):
                shutil.rmtree(old, ignore_errors=True)

    def apply(self, docs: Iterable[Doc | str]) -> int:
        """Adds, replaces (a Doc) or removes (an id) documents in the current generation. Call under `locked`."""
        ix = self.open()
        if ix is None:
            folder = self._new_generation()
            self._swap(folder)
            ix = windex.open_dir(str(folder))
        writer = ix.writer(timeout=5.0, limitmb=128, codec=Codec())
        changed: list[str] = []
        try:
            for doc in docs:
                if isinstance(doc, str):
                    writer.delete_by_term("id", doc)
                    changed.append(doc)
                else:
                    writer.update_document(**fields_of(doc))
                    changed.append(doc.id)
        except BaseException:
            writer.cancel()
            raise
        writer.commit()
        folder = self.current()
        if folder is not None:  # their similar experiences, made from their former text
            whoosh_similar.drop(folder, changed)
        IndexFolder.writes += 1
        return len(changed)

    def rebuild(self, docs: Iterable[Doc | str]) -> int:
        """A complete new generation, swapped in when done. Call under `locked`."""
        folder = self._new_generation()
        writer = windex.open_dir(str(folder)).writer(limitmb=256, codec=Codec())
        count = 0
        try:
            for doc in docs:
                if not isinstance(doc, str):
                    writer.add_document(**fields_of(doc))
                    count += 1
        except BaseException:
            writer.cancel()
            shutil.rmtree(folder, ignore_errors=True)
            raise
        writer.commit()
        self._swap(folder)
        IndexFolder.writes += 1
        return count
