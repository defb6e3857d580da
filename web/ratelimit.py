"""Flask-Limiter's counters in the registry's database (`registry/actions/ratelimits.py`): the limits hold across every
gunicorn worker and every server of one registry (with its memory storage, each process counted its own hits,
so two workers let through twice the limit). Storage URI `registry://`; the registry is the current app's."""

from __future__ import annotations

from typing import Any

from limits.storage import Storage

from registry.actions import ratelimits
from web.context import registry


class RegistryStorage(Storage):
    STORAGE_SCHEME = ["registry"]  # noqa: RUF012 (the type limits declares)

    def __init__(self, uri: str | None = None, wrap_exceptions: bool = False, **options: Any) -> None:
        super().__init__(uri, wrap_exceptions, **options)

    @property
    def base_exceptions(self) -> type[Exception] | tuple[type[Exception], ...]:
        return ratelimits.Unavailable

    def incr(self, key: str, expiry: int, amount: int = 1) -> int:
        return ratelimits.hit(registry(), key, int(expiry), amount)

    def get(self, key: str) -> int:
        return ratelimits.count(registry(), key)

    def get_expiry(self, key: str) -> float:
        return ratelimits.expiry(registry(), key)

    def check(self) -> bool:
        try:
            ratelimits.count(registry(), "")
        except (ratelimits.Unavailable, RuntimeError):
            return False
        return True

    def reset(self) -> int | None:
        return ratelimits.clear(registry())

    def clear(self, key: str) -> None:
        ratelimits.clear(registry(), key)
