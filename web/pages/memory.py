"""Pages that are the same for everyone, kept in memory per process until the search index changes.

The search, home, statistics, compliance and organisation pages, and record pages as anonymous readers see them,
show no account data, and what they show changes
only with a write, after which the index changes version (`index.version`: in the writer's process at once, in the
others within the searchers' re-check delay, 0.5 s). A page asked again on the same version, day and language is
sent from memory: on 2 cores, most of a search page's CPU is Whoosh's scoring and the markup of about 240 facet
values, and the home page's latest updates are a scan of the experiences table.
"""

from __future__ import annotations

import datetime as dt
import os
import threading
from collections import OrderedDict
from collections.abc import Callable

from flask import g, request

from registry.actions import index as search_index
from web.context import caller, registry
from web.pages.shared_pages import SHARED, Page

CACHE_SIZE = int(os.environ.get("REGISTRY_PAGE_CACHE", "512"))  # pages per process (10-110 KB each); 0: none


class PageCache:
    """A small LRU of rendered pages, per process and thread-safe."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._pages: OrderedDict[tuple[object, ...], Page] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: tuple[object, ...]) -> Page | None:
        with self._lock:
            found = self._pages.get(key)
            if found is not None:
                self._pages.move_to_end(key)
            return found

    def put(self, key: tuple[object, ...], page: Page) -> None:
        with self._lock:
            self._pages[key] = page
            self._pages.move_to_end(key)
            while len(self._pages) > self.size:
                self._pages.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._pages.clear()


PAGES = PageCache(CACHE_SIZE)


def remembered(key: tuple[object, ...], render: Callable[[], Page]) -> Page:
    """The page under `key` (plus index version, day, language and the site's address, which a record page's
    permalink names) from memory, else `render()`, kept."""
    version = search_index.version(registry(), caller())
    if version is None or not PAGES.size:
        return render()
    full = (version, dt.date.today(), str(g.get("lang", "fr")), request.url_root, *key)
    found = PAGES.get(full)
    if found is None:
        home = str(registry().settings.shared_path)
        found = SHARED.get(home, version, full)  # computed by another process of this server?
        if found is None:
            found = render()
            SHARED.put(home, version, full, found)
        PAGES.put(full, found)
    return found


def forget(home: str) -> None:
    """Every page kept: this process's, and the files shared by the server's processes for the instance `home`."""
    PAGES.clear()
    SHARED.clear(home)
