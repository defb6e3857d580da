"""Search: reads for everyone; keeping the index up to date after writes, and rebuilding it for the operator.

A page view or an API read never writes: the index follows the outbox after each write made through the
actions (here), in the background thread of `registry serve`, and in `registry index sync --follow`.
"""

from __future__ import annotations

import logging

from registry import search as backend
from registry.actions.authz import Caller, Permission, check
from registry.search import Hit, Results, SearchRequest
from registry.search.fields import NONE, SORTS
from registry.standard import get_standard
from registry.store import Registry

log = logging.getLogger(__name__)
MAX_LIMIT = 1000
MAX_FILTER_VALUES = 300  # values filtered on, all facets together (more than every value of every facet)
__all__ = ["NONE", "SORTS", "Hit", "InvalidSearch", "Results", "SearchRequest", "after_write", "background_round",
           "facet_fields", "make_similar", "rebuild", "request", "search", "similar", "sync", "verify", "version"]


class InvalidSearch(ValueError):
    """A search asked with impossible parameters: the message says which, in French."""


def after_write(registry: Registry) -> None:
    """Applies the outbox to the index; a failure here never undoes a committed write (the outbox keeps it)."""
    try:
        backend.sync(registry, wait=30.0)
    except Exception:  # the background syncer (or `registry index sync`) applies what is left
        log.exception("search index not updated after a write; `registry index sync` will catch up")


def sync(registry: Registry, caller: Caller) -> int:
    check(caller, Permission.REINDEX)
    return backend.sync(registry)


def rebuild(registry: Registry, caller: Caller) -> int:
    check(caller, Permission.REINDEX)
    return backend.rebuild(registry)


def background_round(registry: Registry, caller: Caller) -> None:
    """One round of the background work (search index, bulk downloads): what `registry worker` runs."""
    from registry.jobs import run_once

    check(caller, Permission.REINDEX)
    run_once(registry)


def make_similar(registry: Registry, caller: Caller, seconds: float) -> int:
    """Stores similar experiences for about `seconds` (the background work): how many."""
    check(caller, Permission.REINDEX)
    return backend.make_similar(registry, seconds)


def verify(registry: Registry, caller: Caller) -> tuple[set[str], set[str], set[str]]:
    check(caller, Permission.REINDEX)
    return backend.check(registry)


def facet_fields() -> list[str]:
    return backend.facet_names(get_standard())


def request(text: str = "", filters: dict[str, tuple[str, ...]] | None = None, sort: str = "pertinence",
            limit: int = 20, offset: int = 0) -> SearchRequest:
    """A checked search request: unknown facets, sorts or sizes are refused with a French message."""
    names = facet_fields()
    filters = {k: tuple(dict.fromkeys(v for v in values if v)) for k, values in (filters or {}).items()}
    unknown = [k for k in filters if k not in names]
    if unknown:
        raise InvalidSearch(f"Filtre inconnu : {', '.join(unknown)}. Filtres possibles : {', '.join(names)}.")
    values = sum(len(v) for v in filters.values())
    if values > MAX_FILTER_VALUES:  # (a search page links each value with all the others: quadratic in them)
        raise InvalidSearch(f"Trop de valeurs de filtre : {values} (au plus {MAX_FILTER_VALUES}).")
    if sort not in SORTS:
        raise InvalidSearch(f"Tri inconnu : « {sort} ». Tris possibles : {', '.join(SORTS)}.")
    if not 1 <= limit <= MAX_LIMIT:
        raise InvalidSearch(f"« limit » doit être un entier entre 1 et {MAX_LIMIT}.")
    if offset < 0:
        raise InvalidSearch("« offset » doit être un entier positif.")
    return SearchRequest(text[:1000], {k: v for k, v in filters.items() if v}, sort, limit, offset)


def search(registry: Registry, caller: Caller, req: SearchRequest) -> Results:
    check(caller, Permission.READ)
    return backend.search(registry, req)


def version(registry: Registry, caller: Caller) -> str | None:
    """A key that changes whenever the index does (None: unknown): pages cache what a search answers under it."""
    check(caller, Permission.READ)
    return backend.version(registry)


def similar(registry: Registry, caller: Caller, exp_id: str, limit: int = 5) -> list[tuple[str, str]]:
    check(caller, Permission.READ)
    return backend.similar(registry, exp_id, limit)
