"""Browsing by facets on PostgreSQL, answered in the web process: every record's facet values as bitmasks.

A search without words (browsing by facets, the compliance pages) counts every match exactly: in SQL that is an
`unnest` of every matching record's values and a hash aggregate, 130-270 ms at 100,000 records, once per process
and index version. Here each value is a bitmask of record positions, positions in the default order (`date_maj`
DESC, id): a count is an AND and a bit count (~1 ms for every facet at 100,000), and the first page of that order
is the first bits set. A search with words lists its matches' keys in SQL and counts their facets here
(`among`). A snapshot is of one index version, read in one transaction (REPEATABLE READ): it answers
only searches of that very version; a search of another is answered in SQL while a thread of the process reads the
new one (never more than a fifth of the time: under a stream of writes, SQL answers).
"""

from __future__ import annotations

import functools
import operator
import os
import threading
import time
from array import array
from collections.abc import Callable, Mapping
from concurrent.futures import Executor
from dataclasses import dataclass, field

from sqlalchemy import text
from sqlalchemy.engine import Engine

from registry.search.bits import bitmask, counted
from registry.search.fields import NO, OVERDUE, YES

VERSION = "SELECT version FROM search_meta WHERE id = 1"  # the index's version (`postgres.py` writes it)
SEPARATOR = "\x1f"  # between the values of a record, as read (faster than reading a text[])
MAX_BYTES = 64 * 2**20  # bitmasks beyond this (values × records / 8) stay in SQL
PAUSE = 4.0  # after a read of d seconds, the next waits 4 d: reading takes at most a fifth of the time


def version_name(number: int) -> str:
    """The index's version as both the search's cache and the pages' memory key it."""
    return f"pg:{number}"


@dataclass
class Snapshot:
    version: str
    ids: list[str]  # by position: the default order (date_maj DESC, id)
    values: dict[str, dict[str, int]]  # facet → value → the positions holding it
    due: dict[str, array[int]]  # results_due → the positions of unpublished results due then
    late: dict[str, int] = field(default_factory=dict)  # today → the positions whose results are overdue
    position: dict[str, int] | None = None  # id → position (see `among`)

    @property
    def all(self) -> int:
        return (1 << len(self.ids)) - 1

    def overdue(self, today: str) -> int:
        if today not in self.late:  # the same all day long
            self.late = {today: bitmask([p for due, held in self.due.items() if due < today for p in held],
                                        len(self.ids))}
        return self.late[today]

    def _values(self, name: str, today: str) -> dict[str, int]:
        if name != OVERDUE:
            return self.values.get(name, {})
        late = self.overdue(today)
        return {YES: late, NO: self.all & ~late}

    def counts(self, facets: list[str], filters: Mapping[str, tuple[str, ...]], today: str,
               among: int | None = None) -> tuple[int, dict[str, dict[str, int]], int]:
        """(total, every facet's counts, the matches) among the records of `among` (a mask; None: all): any value
        of a filter (a value no record has matches nothing), every filter; a filtered facet is counted without
        its own filter."""
        start = self.all if among is None else among
        chosen: dict[str, int] = {}
        for name, wanted in filters.items():
            if name in facets:
                values = self._values(name, today)
                chosen[name] = functools.reduce(operator.or_, (values.get(v, 0) for v in wanted), 0)
        matches = functools.reduce(operator.and_, chosen.values(), start)
        out: dict[str, dict[str, int]] = {}
        for name in facets:
            base = functools.reduce(operator.and_, (m for n, m in chosen.items() if n != name), start)
            out[name] = counted(base, self._values(name, today))
        return matches.bit_count(), out, matches

    def mask_of(self, ids: list[str]) -> int | None:
        """These records as a mask of their positions; None when one is not in this snapshot (written since it
        was read)."""
        if self.position is None:  # made at the first word search: 100,000 keys, ~10 MiB
            self.position = {doc_id: p for p, doc_id in enumerate(self.ids)}
        try:  # (one C call for every key: a third of a list comprehension's time for 10,000)
            found = operator.itemgetter(*ids)(self.position) if len(ids) > 1 else [self.position[i] for i in ids]
        except KeyError:
            return None
        return bitmask(found, len(self.ids))

    def among(self, ids: list[str], facets: list[str], today: str) -> dict[str, dict[str, int]] | None:
        """Every facet's counts among these records (a word search's matches, read from SQL); None when one is
        not in this snapshot."""
        mask = self.mask_of(ids)
        if mask is None:
            return None
        return {name: counted(mask, self._values(name, today)) for name in facets}


def read(engine: Engine) -> tuple[str, Snapshot | None]:
    """The index's version and, read in the same transaction, its snapshot (None when too large for bitmasks, or
    when a value holds the separator, which the standard's codes never do)."""
    ids: list[str] = []
    positions: dict[str, array[int]] = {}
    due: dict[str, array[int]] = {}
    with engine.connect().execution_options(isolation_level="REPEATABLE READ", stream_results=True,
                                            yield_per=2000) as conn:
        version = version_name(conn.scalar(text(VERSION)))
        rows = conn.execute(text(
            f"SELECT id, array_to_string(facet_values, '{SEPARATOR}'), results_due, results_published, "
            "cardinality(facet_values) FROM search_documents ORDER BY date_maj DESC, id"))
        for pos, (doc_id, values, results_due, published, count) in enumerate(rows):
            ids.append(doc_id)
            split = values.split(SEPARATOR) if values else []
            if len(split) != count:  # a value holding the separator: this index is answered in SQL
                conn.rollback()
                return version, None
            for value in split:
                held = positions.get(value)
                if held is None:
                    held = positions[value] = array("I")
                held.append(pos)
            if results_due and not published:
                due.setdefault(results_due, array("I")).append(pos)
        conn.rollback()
    size = len(ids)
    if (len(positions) + 2) * (size / 8) > MAX_BYTES:
        return version, None
    values: dict[str, dict[str, int]] = {}
    for value, held in positions.items():
        name, _, code = value.partition("=")
        values.setdefault(name, {})[code] = bitmask(held, size)
    return version, Snapshot(version, ids, values, due)


class FacetMemory:
    """This process's snapshot, read again in the background when the index has changed."""

    def __init__(self, engine: Engine, threads: Callable[[], Executor], background: bool = True) -> None:
        self.engine = engine
        self.threads = threads
        self.background = background  # False: a search waits for the read (tests)
        self.snapshot: Snapshot | None = None
        self.reads = 0  # snapshots read by this process
        self._lock = threading.Lock()
        self._pid = os.getpid()  # a forked child makes its own lock (the parent's may be held by a thread)
        self._reading: int | None = None  # the process reading (a fork does not inherit the thread)
        self._next = 0.0  # monotonic time before which no new read starts
        self._too_large: str | None = None  # the version found too large for bitmasks

    def get(self, version: str) -> Snapshot | None:
        """The snapshot of `version`, or None (then read in the background, if not too large)."""
        snap = self.snapshot
        if snap is not None and snap.version == version:
            return snap
        if self._too_large == version:
            return None
        if self._pid != os.getpid():
            self._lock, self._pid = threading.Lock(), os.getpid()
        with self._lock:
            if self._reading == os.getpid() or (self.background and time.monotonic() < self._next):
                return None
            self._reading = os.getpid()
        if not self.background:
            self._read()
            snap = self.snapshot
            return snap if snap is not None and snap.version == version else None
        self.threads().submit(self._read)
        return None

    def _read(self) -> None:
        start = time.monotonic()
        try:
            version, snap = read(self.engine)
            if snap is None:
                self._too_large = version
            else:
                self.snapshot, self.reads = snap, self.reads + 1
        finally:
            with self._lock:
                end = time.monotonic()
                self._reading, self._next = None, end + PAUSE * (end - start)
