"""Similar experiences on Whoosh, made in the background and stored beside the index generation.

Making a record's list (`WhooshSearch.similar`) is half of a record page's CPU at 10,000 records (~3 ms). The
background work (`registry.jobs`, `registry index similar`) keeps each record's list in `similar.sqlite3` in the
index generation's folder: made under the index writers' lock from a searcher of the last commit, so no write
can come in between; a write drops the lists of the records it indexes (`IndexFolder.apply`), a rebuild starts a
new generation with none; every list is made again after `backend.MAX_AGE`. A page reads the list (the records no longer
indexed left out) and makes it itself, without storing it, while it is not there.
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Iterable
from pathlib import Path

log = logging.getLogger(__name__)
FILE = "similar.sqlite3"


class Lists:
    """The stored lists of the generations of one index folder, a connection per thread and generation."""

    def __init__(self) -> None:
        self._local = threading.local()

    def _conn(self, generation: Path, create: bool) -> sqlite3.Connection | None:
        if getattr(self._local, "pid", None) != os.getpid():  # (a forked child opens its own)
            self._local.pid, self._local.conns = os.getpid(), {}
        held: dict[Path, sqlite3.Connection] = self._local.conns
        conn = held.get(generation)
        if conn is None:
            path = generation / FILE
            if not create and not path.exists():
                return None
            conn = sqlite3.connect(path, timeout=10.0, isolation_level=None)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("CREATE TABLE IF NOT EXISTS lists (id TEXT PRIMARY KEY, made REAL NOT NULL, "
                         "ids TEXT NOT NULL)")
            for old in [g for g in held if not g.exists()]:  # generations removed since
                held.pop(old).close()
            held[generation] = conn
        return conn

    def read(self, generation: Path, exp_id: str) -> list[str] | None:
        """The stored list; None when not made yet, or when the file cannot be read (logged: the page then makes
        the list itself rather than failing)."""
        try:
            conn = self._conn(generation, create=False)
            row = conn.execute("SELECT ids FROM lists WHERE id = ?", (exp_id,)).fetchone() if conn else None
            return None if row is None else list(json.loads(row[0]))
        except (sqlite3.Error, ValueError) as exc:
            log.error("similar experiences of %s not read from %s: %s", exp_id, generation / FILE, exc)
            self.forget(generation)  # (opened again at the next read: the background work replaces a damaged file)
            return None

    def forget(self, generation: Path) -> None:
        conn = getattr(self._local, "conns", {}).pop(generation, None)
        if conn is not None:
            conn.close()

    def stored(self, generation: Path) -> dict[str, float]:
        """id → when its list was made."""
        conn = self._conn(generation, create=True)
        assert conn is not None
        return dict(conn.execute("SELECT id, made FROM lists").fetchall())

    def write(self, generation: Path, lists: dict[str, list[str]]) -> None:
        conn = self._conn(generation, create=True)
        assert conn is not None
        with conn:
            conn.execute("BEGIN")
            conn.executemany("INSERT OR REPLACE INTO lists VALUES (?, ?, ?)",
                             [(i, time.time(), json.dumps(ids)) for i, ids in lists.items()])


def discard(generation: Path) -> None:
    """Under the writers' lock: a damaged lists file removed (derived data: every list is made again)."""
    for suffix in ("", "-wal", "-shm"):
        (generation / (FILE + suffix)).unlink(missing_ok=True)


def drop(generation: Path, ids: Iterable[str]) -> None:
    """Under the writers' lock, after a commit: the lists of the records it indexed again or removed."""
    path = generation / FILE
    if path.exists():
        conn = sqlite3.connect(path, timeout=10.0)
        try:
            with conn:
                conn.executemany("DELETE FROM lists WHERE id = ?", [(i,) for i in ids])
        finally:
            conn.close()
