"""French (or English) formats for the templates, with Babel: dates, numbers, amounts, links."""

from __future__ import annotations

import datetime as dt
from functools import lru_cache
from typing import Any

from flask import Blueprint, g
from flask_babel import format_currency, format_date, format_datetime, format_decimal, format_percent


def _lang() -> str:
    return str(g.get("lang", "fr"))


def date_text(value: Any, style: str = "long") -> str:
    """An ISO date (or a date/datetime) as « 3 mars 2024 »; anything unreadable is shown as it is."""
    if value in (None, ""):
        return ""
    if isinstance(value, dt.datetime):
        return format_datetime(value, "d MMMM y, HH:mm" if style == "long" else "short")
    if isinstance(value, dt.date):
        return format_date(value, style)
    return _iso_date_text(str(value), style, _lang())


@lru_cache(maxsize=8192)
def _iso_date_text(text: str, style: str, lang: str) -> str:
    """Dates in text (most of a page's) formatted once per language: a search page shows 50 of them."""
    try:
        return format_date(dt.date.fromisoformat(text[:10]), style)
    except ValueError:
        return text


def number_text(value: Any, digits: int = 2) -> str:
    if value in (None, ""):
        return ""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return str(value)
    return format_decimal(round(number, digits))


def amount_text(value: Any) -> str:
    """An amount in euros: « 52 000 € » (no cents when there are none)."""
    if value in (None, ""):
        return ""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return str(value)
    fmt = "#,##0 ¤" if number.is_integer() else "#,##0.00 ¤"
    return format_currency(number, "EUR", format=fmt, currency_digits=False)


def percent_text(value: float) -> str:
    return format_percent(value, "#,##0 %")


def is_web_address(value: Any) -> bool:
    """Only http(s) addresses become links (never `javascript:` or `data:`)."""
    text = str(value or "").strip().lower()
    return text.startswith(("https://", "http://")) and " " not in text


def register(bp: Blueprint) -> None:
    for name, fn in (("date_text", date_text), ("number_text", number_text), ("amount_text", amount_text),
                     ("percent_text", percent_text)):
        bp.add_app_template_filter(fn, name)
    bp.add_app_template_test(is_web_address, "web_address")
