"""Snippets, the same for every backend: the record's own text around the matched words, escaped, the
words in <mark>."""

from __future__ import annotations

import html
from collections.abc import Iterable
from typing import Any

from whoosh import highlight
from whoosh.analysis import Analyzer
from whoosh.support.charset import accent_map


class MarkFormatter(highlight.Formatter):
    between = " … "

    def _text(self, text: str) -> str:
        return html.escape(text, quote=False)

    def format_token(self, text: str, token: Any, replace: bool = False) -> str:
        return f"<mark>{self._text(highlight.get_text(text, token, replace))}</mark>"


WINDOW = 240  # characters analysed around each place where a query word may be
PLACES = 4


def _excerpts(text: str, terms: frozenset[str]) -> list[tuple[int, int]]:
    """Where the query's words may be: each stem is the start of the folded words it comes from, so a plain
    search in the folded text finds the candidates; only those windows are analysed."""
    folded = text.lower().translate(accent_map)
    spans: list[tuple[int, int]] = []
    for term in sorted(terms):
        start = 0
        while len(spans) < PLACES * len(terms):
            at = folded.find(term, start)
            if at < 0:
                break
            spans.append((max(0, at - WINDOW), min(len(text), at + WINDOW)))
            start = at + len(term)
    spans.sort()
    merged: list[tuple[int, int]] = []
    for a, b in spans:
        if merged and a <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(b, merged[-1][1]))
        else:
            merged.append((a, b))
    return merged[:PLACES]


def snippet(text: str, terms: Iterable[str], analyzer: Analyzer) -> str:
    wanted = frozenset(terms)
    if not wanted or not text:
        return ""
    parts = []
    for a, b in _excerpts(text, wanted):
        # cut at word boundaries so that no word is analysed in half
        a = text.rfind(" ", 0, a) + 1 if a else 0
        b_space = text.find(" ", b)
        b = len(text) if b_space < 0 else b_space
        found = highlight.highlight(text[a:b], wanted, analyzer, highlight.ContextFragmenter(maxchars=180,
                                    surround=60), MarkFormatter(), top=1)
        if found:
            parts.append(found)
        if len(parts) == 2:
            break
    return MarkFormatter.between.join(parts)
