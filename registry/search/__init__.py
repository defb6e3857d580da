"""Full-text search in French: documents and facets read from the standard, one query language, a Whoosh
backend on the instance folder, fed by the outbox (`outbox.sync`, run by `registry.jobs`), never by a page view.
"""

from __future__ import annotations

import time
import weakref
from functools import cache
from pathlib import Path

from registry.search import outbox
from registry.search.backend import IDLE, Backend
from registry.search.fields import NONE, SORTS, facet_names
from registry.search.model import Hit, Results, SearchRequest
from registry.search.outbox import BULK, pending, rebuild, sync
from registry.search.whoosh_index import IndexBusy, IndexFolder
from registry.search.whoosh_search import WhooshSearch
from registry.standard import get_standard
from registry.store import Registry


@cache
def _whoosh(path: Path) -> WhooshSearch:
    std = get_standard()
    return WhooshSearch(IndexFolder(path, std), std)


def backend(registry: Registry) -> Backend:
    """The search backend of this registry: Whoosh in the instance folder (one per folder and process, its
    searchers kept open), or PostgreSQL full text when `search_backend = "postgresql"`."""
    if registry.settings.search_backend == "postgresql":
        from registry.search.postgres import PostgresSearch

        found: Backend | None = getattr(registry, "_search_backend", None)
        if found is None:
            made = PostgresSearch(registry.engine, get_standard(), str(registry.settings.shared_path))
            registry.on_close(made.close)
            found = registry._search_backend = made  # type: ignore[attr-defined]
        return found
    return _whoosh(registry.settings.index_path.resolve())


def search(registry: Registry, request: SearchRequest) -> Results:
    return backend(registry).search(request)


def version(registry: Registry) -> str | None:
    """The index's version (None before it exists: callers then do not cache)."""
    return backend(registry).version()


def similar(registry: Registry, exp_id: str, limit: int = 5) -> list[tuple[str, str]]:
    return backend(registry).similar(exp_id, limit)


# a backend that found no list to make, on this index version: not asked again before this monotonic time
similar_idle: weakref.WeakKeyDictionary[Backend, tuple[str, float]] = weakref.WeakKeyDictionary()


def make_similar(registry: Registry, seconds: float) -> int:
    """Stores similar lists for about `seconds`, stopping sooner when a write waits for the index: the index
    follows the database first. After a round with nothing to make, the next looks again at the next index
    change, or after IDLE seconds (lists grow old)."""
    found = backend(registry)
    version = found.version()
    idle = similar_idle.get(found)
    if version is None or (idle is not None and idle[0] == version and time.monotonic() < idle[1]):
        return 0
    count = found.make_similar(seconds, lambda: outbox.waiting(registry))
    if not count:
        similar_idle[found] = (version, time.monotonic() + IDLE)
    return count


def check(registry: Registry) -> tuple[set[str], set[str], set[str]]:
    """(missing from the index, in the index but not published, indexed with an older content)."""
    from sqlalchemy import select

    from registry.db import Experience, Status

    with registry.session() as s:
        published = dict(s.execute(select(Experience.id, Experience.content_hash)
                                   .where(Experience.status == Status.PUBLISHED)).all())
    indexed = backend(registry).indexed()
    stale = {i for i, h in indexed.items() if i in published and published[i] != h}
    return set(published) - set(indexed), set(indexed) - set(published), stale


__all__ = [
    "BULK",
    "NONE",
    "SORTS",
    "Backend",
    "Hit",
    "IndexBusy",
    "Results",
    "SearchRequest",
    "backend",
    "check",
    "facet_names",
    "make_similar",
    "outbox",
    "pending",
    "rebuild",
    "search",
    "similar",
    "similar_idle",
    "sync",
    "version",
]
