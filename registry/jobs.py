"""Background work that follows the database: the search index and the bulk downloads, never built inside a
request. One thread in `registry serve`/`registry demo`; `registry index sync --follow` or `registry worker`
in production. Each task is safe to run in several processes at once (the index has its writers' lock, the
bulk files are swapped in whole)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from registry import bulk, search
from registry.search import IndexBusy
from registry.store import Registry

log = logging.getLogger(__name__)
Task = Callable[[Registry], object]


def _search(registry: Registry) -> object:
    return search.sync(registry, wait=0.5)


def _similar(registry: Registry) -> object:
    """Similar experiences stored for the record pages, two seconds of work a round at most."""
    return search.make_similar(registry, SIMILAR_SECONDS)


SIMILAR_SECONDS = 2.0
DEFAULT_TASKS: tuple[Task, ...] = (_search, bulk.refresh, _similar)


def run_once(registry: Registry, tasks: tuple[Task, ...] = DEFAULT_TASKS) -> None:
    for task in tasks:
        try:
            task(registry)
        except IndexBusy:
            pass  # another process is writing the index: it applies the same events
        except Exception:
            log.exception("background task %s failed; retried at the next round", getattr(task, "__name__", task))


class Background(threading.Thread):
    """Runs the tasks every `interval` seconds until `stop()`."""

    def __init__(self, registry: Registry, interval: float = 1.0, tasks: tuple[Task, ...] = DEFAULT_TASKS) -> None:
        super().__init__(name="registry-background", daemon=True)
        self.registry, self.interval, self.tasks = registry, interval, tasks
        self._stop_event = threading.Event()

    def run(self) -> None:
        while not self._stop_event.is_set():
            run_once(self.registry, self.tasks)
            self._stop_event.wait(self.interval)

    def stop(self) -> None:
        self._stop_event.set()
