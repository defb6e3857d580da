"""A record's values as HTML, by what the standard says of each field: codes as their labels, amounts in euros,
dates and numbers in French (or English), lists item by item, web addresses as links. Python rather than a Jinja
macro: a record page shows about 30 values (templates call `field_value(table, field, value)`, `label(table,
field, code)` and `title(table, field)`)."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from flask import Blueprint, g
from markupsafe import Markup, escape

from registry.actions.stats import COST_FIELDS
from registry.standard import FieldSpec, get_standard
from web.pages.formatting import amount_text, date_text, is_web_address, number_text

NOT_A_NUMBER = ("millesime_cog",)  # an integer read as a year (« 2025 », not « 2 025 »)


def field_value(table: str, name: str, value: Any) -> Markup:
    """One value of the field `name` of `table`, escaped, links made only of http(s) addresses."""
    spec = _spec(table, name)
    if spec.codes:
        return escape(field_label(table, name, value))
    if name in COST_FIELDS:
        return escape(amount_text(value))
    if spec.type == "date":
        return escape(date_text(value))
    if spec.type in ("number", "integer") and name not in NOT_A_NUMBER:
        return escape(number_text(value))
    if spec.is_list:
        return Markup(", ").join(_linked(item) for item in str(value).split(spec.list_separator or "|") if item)
    return _linked(value)


def field_label(table: str, name: str, code: Any) -> str:
    """A coded value's label in the request's language (a list's: each item's, joined by commas); any other value
    as it is."""
    spec, lang = _spec(table, name), str(g.get("lang", "fr"))
    if spec.is_list:
        return ", ".join(spec.label(c, lang) for c in str(code).split(spec.list_separator or "|") if c)
    return spec.label(code, lang) if spec.codes else code


def field_heading(table: str, name: str) -> str:
    """The field's title in the request's language."""
    return _heading(table, name, str(g.get("lang", "fr")))


def _linked(value: Any) -> Markup:
    text = escape(value)
    return Markup(f'<a href="{text}">{text}</a>') if is_web_address(value) else text


@lru_cache(maxsize=512)
def _spec(table: str, name: str) -> FieldSpec:
    return get_standard().table(table).by_name[name]


@lru_cache(maxsize=1024)
def _heading(table: str, name: str, lang: str) -> str:
    return _spec(table, name).heading(lang)


def register(bp: Blueprint) -> None:
    bp.add_app_template_global(field_value, "field_value")
    bp.add_app_template_global(field_label, "label")
    bp.add_app_template_global(field_heading, "title")
