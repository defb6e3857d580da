"""What every view needs: the registry of this application and the caller of this request."""

from __future__ import annotations

from flask import current_app

from registry.actions import Caller
from registry.store import Registry


def registry() -> Registry:
    reg: Registry = current_app.config["REGISTRY"]
    return reg


def caller(channel: str = "api") -> Caller:
    """Readers are anonymous until accounts exist; every read is public."""
    return Caller.anonymous("form" if channel == "form" else "api")


PAGE_SIZE = 25
MAX_PAGE_NUMBER = 400  # deep pages are for the bulk export, not for paging a search


def int_arg(name: str, default: int, low: int, high: int) -> int:
    """A bounded integer query parameter; anything else is a 400 with a French message."""
    from flask import request

    from registry.actions.experiences import InvalidRequest

    raw = request.args.get(name)
    if raw is None or raw == "":
        return default
    if not raw.isascii() or not raw.isdigit() or len(raw) > 12 or not low <= int(raw) <= high:
        raise InvalidRequest(f"« {name} » doit être un entier entre {low} et {high}.")
    return int(raw)


def search_args(facets: list[str]) -> tuple[str, dict[str, str], int]:
    from flask import request

    text = request.args.get("q", "")[:500]
    filters = {k: request.args[k][:200] for k in facets if request.args.get(k)}
    return text, filters, int_arg("page", 1, 1, MAX_PAGE_NUMBER)
