"""What a search backend does. Two exist: Whoosh (embedded, a folder per instance) and PostgreSQL full text
(several web servers share one search). Documents, the query language, facets and snippets are the same."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable
from typing import Protocol

from registry.search.documents import Doc
from registry.search.model import Results, SearchRequest
from registry.standard import Standard

# Similar experiences stored by the background work (`make_similar`), on both backends
KEPT = 10  # records kept in a stored list (a page shows 5)
MAX_AGE = 24 * 3600  # seconds after which a list is made again (records published since become candidates)
BATCH = 20  # lists made, then stored, at a time (~0.1 s at 100,000 records); writes waiting are asked between
IDLE = 60.0  # seconds before looking again for lists to make once none was left (sooner after an index change)


class Backend(Protocol):
    std: Standard

    def writing(self, wait: float) -> contextlib.AbstractContextManager[None]:
        """The writers' lock (one writer at a time, released if its process dies); IndexBusy after wait s."""

    def exists(self) -> bool:
        """The index has been built once."""

    def apply(self, docs: Iterable[Doc | str]) -> int:
        """Adds or replaces each Doc, removes each id (str). Under `writing`."""

    def rebuild(self, docs: Iterable[Doc | str]) -> int:
        """Replaces everything at once: readers see the old index until the new one is complete."""

    def search(self, req: SearchRequest) -> Results: ...

    def similar(self, exp_id: str, limit: int = 5) -> list[tuple[str, str]]: ...

    def make_similar(self, seconds: float, stop: Callable[[], bool] = lambda: False) -> int:
        """Background work: stores similar lists for about `seconds` (or until `stop()`, asked between batches);
        how many."""

    def version(self) -> str | None: ...  # changes with every write; None before the index exists

    def indexed(self) -> dict[str, str]:
        """id -> content hash of every indexed document."""
