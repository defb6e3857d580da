"""Spreadsheet formula neutralisation for CSV exports (OWASP "CSV injection"), reversible on import.

A text cell that a spreadsheet would run as a formula (starting with = + - @ tab or CR) is written with a
leading apostrophe; a cell already starting with an apostrophe gets one more, so that reading back
(`unescape`) gives the exact original text.
"""

TRIGGERS = ("=", "+", "-", "@", "\t", "\r", "'")


def escape(text: str) -> str:
    return "'" + text if text.startswith(TRIGGERS) else text


def unescape(text: str) -> str:
    return text[1:] if len(text) > 1 and text[0] == "'" and text[1] in TRIGGERS else text
