"""The search index: brought up to date after each write, rebuilt on the operator's request; read by searches.

A page view or an API read never writes: the index follows the outbox after writes (here) and in
`registry index` or a worker.
"""

from __future__ import annotations

import logging

from registry import search as backend
from registry.actions.authz import Caller, Permission, check
from registry.store import Registry

log = logging.getLogger(__name__)


def after_write(registry: Registry) -> None:
    """Applies the outbox to the index; a failure here never undoes a committed write (the outbox keeps it)."""
    try:
        backend.sync(registry)
    except Exception:  # the next sync (or `registry index`) applies what is left
        log.exception("search index not updated after a write; `registry index` will catch up")


def sync(registry: Registry, caller: Caller) -> int:
    check(caller, Permission.REINDEX)
    return backend.sync(registry)


def rebuild(registry: Registry, caller: Caller) -> int:
    check(caller, Permission.REINDEX)
    return backend.rebuild(registry)


def search(registry: Registry, caller: Caller, text: str, filters: dict[str, str], limit: int = 25,
           offset: int = 0) -> backend.Results:
    check(caller, Permission.READ)
    return backend.search(registry, text[:500], filters, limit, offset)


def facet_fields() -> list[str]:
    from registry.standard import get_standard

    return backend.facet_fields(get_standard())
