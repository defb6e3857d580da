"""Answers shared by the processes of one server: files under `<home>/<kind>/<index version>/`.

Each gunicorn worker keeps its own answers in memory; with this second level one computed by a worker is read by
the others (a file read and a zlib inflate, ~0.1 ms) instead of being computed again: the site's pages
(`web/pages/shared_pages.py`) and PostgreSQL's counting passes (`registry/search/postgres.py`). A file is written
under a temporary name and renamed (readers never see half of one); a process writing for a new index version
removes the folders of versions untouched for a minute. At most `max_files` answers a version; any file error only
means the answer is computed.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import tempfile
import time
import zlib
from pathlib import Path

STALE = 60.0  # seconds without a new file after which another version's folder is removed
FOLDERS = ("pages", "search-passes", "search-matches")  # every kind, each a folder of the instance


def _name(value: object) -> str:
    return hashlib.sha256(repr(value).encode()).hexdigest()[:32]


class SharedFiles:
    def __init__(self, kind: str, max_files: int) -> None:
        if kind not in FOLDERS:
            raise ValueError(f"unknown kind of shared files: {kind}")
        self.kind = kind
        self.max_files = max_files
        self._written: dict[str, int] = {}  # per version folder: files written by this process
        self._full: set[str] = set()  # version folders holding max_files files

    def _folder(self, home: str, version: object) -> Path:
        return Path(home) / self.kind / _name(version)

    def has(self, home: str, version: object, key: object) -> bool:
        """An answer is there (not read: it may still be damaged)."""
        return (self._folder(home, version) / _name(key)).is_file()

    def get(self, home: str, version: object, key: object) -> bytes | None:
        try:
            return zlib.decompress((self._folder(home, version) / _name(key)).read_bytes())
        except (OSError, zlib.error):  # absent, half-removed or damaged: computed again
            return None

    def put(self, home: str, version: object, key: object, data: bytes) -> None:
        folder = self._folder(home, version)
        name = str(folder)
        if name in self._full:
            return
        if len(self._written) > 1000:  # a long-lived process sees many versions
            self._written.clear()
            self._full.clear()
        count = self._written[name] = self._written.get(name, 0) + 1
        try:
            if count == 1:  # new to this process
                self._new_version(folder)
            if count % 100 == 0 and sum(1 for _ in os.scandir(folder)) >= self.max_files:
                self._full.add(name)
                return
            try:
                fd, temp = tempfile.mkstemp(dir=folder, prefix=".tmp-")
            except FileNotFoundError:  # removed since (`clear`, an operator): made again
                self._new_version(folder)
                fd, temp = tempfile.mkstemp(dir=folder, prefix=".tmp-")
            with os.fdopen(fd, "wb") as out:
                out.write(zlib.compress(data, 1))
            os.replace(temp, folder / _name(key))
        except OSError:  # a read-only or full disk: the answer is only in this process's memory
            return

    def clear(self, home: str) -> None:
        shutil.rmtree(Path(home) / self.kind, ignore_errors=True)
        self._written.clear()
        self._full.clear()

    def _new_version(self, folder: Path) -> None:
        """This version's folder; the folders of other versions untouched for a minute are removed (a process
        that read the index version a moment before a write may still be writing to its folder)."""
        folder.mkdir(parents=True, exist_ok=True)
        now = time.time()
        for other in folder.parent.iterdir():
            with contextlib.suppress(OSError):
                if other != folder and other.stat().st_mtime < now - STALE:
                    shutil.rmtree(other, ignore_errors=True)
