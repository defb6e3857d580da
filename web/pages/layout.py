"""The site's header and footer: the same on every page of one language and section, so rendered once per
application, language, page endpoint (the menu marks the current page) and path of the site, not at every page
(~0.15 ms a page: 5 % of a record page's CPU). Templates call `layout("header")`."""

from __future__ import annotations

from flask import Blueprint, current_app, g, render_template, request
from markupsafe import Markup

PARTS = ("header", "footer")  # templates/layout/<part>.html


def layout(part: str) -> Markup:
    if part not in PARTS:
        raise ValueError(f"no layout part {part!r}")
    kept: dict[tuple[str, str, str | None, str], Markup] = current_app.extensions.setdefault("layout", {})
    key = (part, str(g.get("lang", "fr")), request.endpoint, request.script_root)
    found = kept.get(key)
    if found is None:
        if len(kept) > 1000:  # (endpoints x languages: a few hundred at most)
            kept.clear()
        found = kept[key] = Markup(render_template(f"layout/{part}.html", here=request.endpoint).strip())
    return found


def register(bp: Blueprint) -> None:
    bp.add_app_template_global(layout, "layout")
