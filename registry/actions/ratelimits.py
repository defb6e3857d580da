"""Rate-limit counters in the registry's database, so that every server process counts the same hits.

Fixed windows, as Flask-Limiter's default strategy: a key's counter starts at its first hit and expires
`expiry` seconds later (migration 0005_rate_limits). One statement a hit (an upsert returning the count), so
that two processes never both read 9 and both write 10. `web/ratelimit.py` plugs it into Flask-Limiter;
the table is `registry/ratelimits_db.py`.
"""

from __future__ import annotations

import time

from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from registry.store import Registry

Unavailable = SQLAlchemyError  # the database could not count

SWEEP_EVERY = 200  # hits between two deletions of the expired counters (by this process)
_hits_since_sweep = 0


def hit(registry: Registry, key: str, expiry: int, amount: int = 1) -> int:
    """Adds `amount` to the key's counter (a new window when the last one has expired); its new count."""
    global _hits_since_sweep
    now = time.time()
    with registry.engine.begin() as conn:
        count = conn.scalar(text(
            "INSERT INTO rate_limits (key, hits, expires_at) VALUES (:k, :a, :e) ON CONFLICT (key) DO UPDATE SET "
            "hits = CASE WHEN rate_limits.expires_at <= :now THEN :a ELSE rate_limits.hits + :a END, "
            "expires_at = CASE WHEN rate_limits.expires_at <= :now THEN :e ELSE rate_limits.expires_at END "
            "RETURNING hits"), {"k": key, "a": amount, "e": now + expiry, "now": now})
        _hits_since_sweep += 1
        if _hits_since_sweep >= SWEEP_EVERY:
            _hits_since_sweep = 0
            conn.execute(text("DELETE FROM rate_limits WHERE expires_at <= :now"), {"now": now})
    return int(count or 0)


def count(registry: Registry, key: str) -> int:
    with registry.engine.connect() as conn:
        found = conn.scalar(text("SELECT hits FROM rate_limits WHERE key = :k AND expires_at > :now"),
                            {"k": key, "now": time.time()})
    return int(found or 0)


def expiry(registry: Registry, key: str) -> float:
    """When the key's window ends (Unix time): now when it has none."""
    now = time.time()
    with registry.engine.connect() as conn:
        found = conn.scalar(text("SELECT expires_at FROM rate_limits WHERE key = :k AND expires_at > :now"),
                            {"k": key, "now": now})
    return float(found) if found is not None else now


def clear(registry: Registry, key: str | None = None) -> int:
    """Forgets one key's counter, or every counter (None); how many were forgotten."""
    with registry.engine.begin() as conn:
        if key is None:
            return conn.execute(text("DELETE FROM rate_limits")).rowcount
        return conn.execute(text("DELETE FROM rate_limits WHERE key = :k"), {"k": key}).rowcount
