"""Snippets, the same for every backend: the record's own text around the matched words, escaped, the
words in <mark>."""

from __future__ import annotations

import html
from collections.abc import Iterable
from typing import Any

from whoosh import highlight
from whoosh.analysis import Analyzer


class MarkFormatter(highlight.Formatter):
    between = " … "

    def _text(self, text: str) -> str:
        return html.escape(text, quote=False)

    def format_token(self, text: str, token: Any, replace: bool = False) -> str:
        return f"<mark>{self._text(highlight.get_text(text, token, replace))}</mark>"


def snippet(text: str, terms: Iterable[str], analyzer: Analyzer) -> str:
    wanted = frozenset(terms)
    if not wanted or not text:
        return ""
    return highlight.highlight(text, wanted, analyzer, highlight.ContextFragmenter(maxchars=180, surround=60),
                               MarkFormatter(), top=2)
