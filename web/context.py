"""What every view needs: the registry of this application and the caller of this request."""

from __future__ import annotations

from flask import current_app

from registry.actions import Caller
from registry.actions.index import SearchRequest
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


def search_request(page_size: int = PAGE_SIZE) -> tuple[SearchRequest, int]:
    """The search of this request's URL (the whole state is in it): q, one or more values per facet, sort,
    page. Unknown parameters are ignored; impossible values are a 400 with a French message."""
    from flask import request

    from registry.actions import index as search_index

    page = int_arg("page", 1, 1, MAX_PAGE_NUMBER)
    filters = {name: tuple(v[:200] for v in request.args.getlist(name) if v)
               for name in search_index.facet_fields() if request.args.get(name)}
    sort = request.args.get("sort") or ("pertinence" if request.args.get("q", "").strip() else "date_maj")
    req = search_index.request(request.args.get("q", "")[:1000], filters, sort, page_size, (page - 1) * page_size)
    return req, page
