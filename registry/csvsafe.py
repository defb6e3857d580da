"""Spreadsheet formula neutralisation for CSV exports (OWASP "CSV injection"), reversible on import.

A text cell that a spreadsheet would run as a formula is written with a leading apostrophe: one starting
with = + - @, also behind leading spaces, tabs or line breaks (" =1+1", "\\t=1+1", "\\r=1+1"), and one starting
with a tab or CR. A cell already starting with an apostrophe gets one more, so that reading back
(`unescape`) gives the exact original text: import → export → import is byte-identical.
"""

FORMULA = ("=", "+", "-", "@")
BLANKS = " \t\r\n"
TRIGGERS = (*FORMULA, "\t", "\r", "'")  # what a neutralised cell may start with after its apostrophe
ESCAPED_PATTERN = "'[=+\\-@\t\r\n ']"  # how a neutralised cell starts (a regex; for a quick scan of a file)


def needs_escape(text: str) -> bool:
    return text.startswith(TRIGGERS) or text.lstrip(BLANKS).startswith(FORMULA)


def escape(text: str) -> str:
    return "'" + text if needs_escape(text) else text


def unescape(text: str) -> str:
    return text[1:] if len(text) > 1 and text[0] == "'" and needs_escape(text[1:]) else text
