"""One function per output shape, each fed by the same typed read views (registry.queries)."""

from registry.serialize.registry_json import (
    change_json,
    experience_json,
    page_json,
    revision_json,
    search_json,
    summary_json,
)

__all__ = ["change_json", "experience_json", "page_json", "revision_json", "search_json", "summary_json"]
