"""Applying the write path's outbox to the search index: by one writer at a time, never by a page view.

`sync` reads the pending events in order, writes the current state of the experiences they name, commits
the index, then marks the events processed: a crash in between only means the same update is made again.
`registry.jobs.Background` does it in a background thread (`registry serve`, `registry demo`,
`registry index sync --follow`).
"""

from __future__ import annotations

from sqlalchemy import func, select, update

from registry.db import OutboxEvent
from registry.search import documents
from registry.search.backend import Backend
from registry.store import Registry

BATCH = 500
BULK = 2000  # this many pending changes, and a fifth of the index or more: a rebuild is faster


def waiting(registry: Registry) -> bool:
    """Some event is waiting for the index (through `ix_outbox_pending`)."""
    with registry.session() as s:
        return bool(s.scalar(select(OutboxEvent.id).where(OutboxEvent.processed_at.is_(None)).limit(1)))


def pending(registry: Registry) -> list[tuple[int, str]]:
    with registry.session() as s:
        return list(s.execute(select(OutboxEvent.id, OutboxEvent.experience_id)
                              .where(OutboxEvent.processed_at.is_(None)).order_by(OutboxEvent.id)))


def _mark(registry: Registry, event_ids: list[int] | None, upto: int) -> None:
    """Marks events processed, after the index commit."""
    with registry.session() as s:
        if event_ids is None:
            s.execute(update(OutboxEvent).where(OutboxEvent.processed_at.is_(None), OutboxEvent.id <= upto)
                      .values(processed_at=registry.clock()))
            return
        for start in range(0, len(event_ids), BATCH):
            s.execute(update(OutboxEvent).where(OutboxEvent.id.in_(event_ids[start:start + BATCH]))
                      .values(processed_at=registry.clock()))


def sync(registry: Registry, wait: float = 60.0) -> int:
    """Applies the pending events; returns how many. Without an index of this format, builds it: then returns
    the number of documents, if larger (what an operator sees after an upgrade that changed the format)."""
    from registry.search import backend

    index = backend(registry)
    with index.writing(wait):
        events = pending(registry)
        if not index.exists():
            return max(len(events), _rebuild_locked(registry, index))
        if not events:
            return 0
        ids = list(dict.fromkeys(exp_id for _, exp_id in events))  # the latest state of each, once
        if len(ids) >= BULK:
            _rebuild_locked(registry, index, upto=events[-1][0])
            return len(events)
        index.apply(documents.load(registry, index.std, ids))
        _mark(registry, [event_id for event_id, _ in events], events[-1][0])
        return len(events)


def _rebuild_locked(registry: Registry, index: Backend, upto: int | None = None) -> int:
    if upto is None:  # events up to here are covered by the state read next
        with registry.session() as s:
            upto = s.scalar(select(func.max(OutboxEvent.id))) or 0
    count = index.rebuild(documents.load(registry, index.std))
    _mark(registry, None, upto)
    return count


def rebuild(registry: Registry, wait: float = 60.0) -> int:
    """The whole index again, swapped in when complete; returns the number of documents."""
    from registry.search import backend

    index = backend(registry)
    with index.writing(wait):
        return _rebuild_locked(registry, index)
