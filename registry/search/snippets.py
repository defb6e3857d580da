"""Snippets, the same for every backend: the record's own text around the matched words, escaped, the
words in <mark>."""

from __future__ import annotations

import html
import re
import unicodedata
from collections.abc import Iterable, Iterator
from functools import lru_cache
from typing import Any

from whoosh import highlight
from whoosh.analysis import Analyzer

from registry.search.analysis import COMPOUND, WORDS, fold


class MarkFormatter(highlight.Formatter):
    between = " … "

    def _text(self, text: str) -> str:
        return html.escape(text, quote=False)

    def format_token(self, text: str, token: Any, replace: bool = False) -> str:
        return f"<mark>{self._text(highlight.get_text(text, token, replace))}</mark>"


SURROUND = 60  # characters before the first marked word of a fragment
LENGTH = 180  # characters of a fragment
FRAGMENTS = 2


def _stems(word: str, analyzer: Analyzer, cache: dict[str, frozenset[str]]) -> frozenset[str]:
    found = cache.get(word)
    if found is None:
        found = cache[word] = frozenset(t.text for t in analyzer(word))
    return found


# each character of Latin scripts folding to one character (« y » as « i »), and the characters folding to each
ONE = {c: g for c, g in ((chr(i), fold(chr(i)).replace("y", "i")) for i in range(0x250)) if len(g) == 1}
FOLDING_TO: dict[str, str] = {}
for _c, _g in ONE.items():
    FOLDING_TO[_g] = FOLDING_TO.get(_g, "") + _c
# a word character that does not fold to one letter as it stands (« œ », « ﬁ », « Ａ », « ж »): found without
# making the set of the text's characters (a third of a snippet's time)
BEYOND = re.compile(r"[^\W" + re.escape("".join(ONE)) + "]")


@lru_cache(maxsize=4096)
def _folds_alone(c: str) -> bool:
    """A character outside Latin scripts that matches no head as it stands: not a letter, or a letter folding
    to one letter not in ASCII (« ж »); a fullwidth « Ａ » or a ligature « ﬁ » does not."""
    if not WORDS.match(c):
        return True
    g = fold(c).replace("y", "i")
    return len(g) == 1 and not g.isascii()


@lru_cache(maxsize=1024)
def _headed(heads: tuple[str, ...]) -> re.Pattern[str] | None:
    """The words (or words joined by hyphens) whose first letters fold to one of these heads, character by
    character; None when a head is not plain ASCII."""
    if any(not head.isascii() or any(letter not in FOLDING_TO for letter in head) for head in heads):
        return None
    firsts = sorted({head[0] for head in heads})
    # a class of the first letters leads (the regular expression engine then skips to them: 2-4 times faster
    # than a leading « (?<!\w) »), then « not inside a word », then the rest of the head that begins with it
    options = [("" if len(firsts) == 1 else f"(?<={_letter(head[0])})") + "".join(map(_letter, head[1:]))
               for head in heads]
    return re.compile("[" + "".join(re.escape(FOLDING_TO[f]) for f in firsts) + r"](?<!\w.)(?:" + "|".join(options)
                      + r")\w*(?:-\w+)*")


def _letter(letter: str) -> str:
    """The characters folding to this letter, as a class."""
    return "[" + re.escape(FOLDING_TO[letter]) + "]"


@lru_cache(maxsize=1024)
def _starting(chars: str) -> re.Pattern[str]:
    """The words (as WORDS finds them), or words joined by hyphens, that begin with one of these characters."""
    return re.compile(r"(?<!\w)[" + re.escape(chars) + r"]\w*(?:-\w+)*")


def _matches(text: str, wanted: frozenset[str], analyzer: Analyzer) -> list[tuple[int, int]]:
    """Every matched word's (start, end) (`_spans`)."""
    return list(_spans(text, wanted, analyzer))


def _spans(text: str, wanted: frozenset[str], analyzer: Analyzer) -> Iterator[tuple[int, int]]:
    """(start, end), in the text's order, of each word of the text whose stem is wanted, or of a compound whose
    words written together give a wanted stem (« vidéo-protection » for « vidéoprotection », as the index reads
    it). A stem begins like the folded words it comes from, but for a « y » the French stemmer turns into « i »
    (« voyant » → « voi »):
    only the words whose first three letters, « y » as « i », begin like a wanted stem are analysed, and only
    those whose first character folds to a stem's first letter are looked at (the regular expression skips the
    others)."""
    if not wanted:
        return
    heads = tuple(sorted({w[:3].replace("y", "i") for w in wanted}))
    # every letter of the text folding to one letter on its own: the words beginning like a head are found by
    # the regular expression alone (most texts); else those beginning with a head's first letter
    pattern = _headed(heads) if all(_folds_alone(c) for c in set(BEYOND.findall(text))) else None
    if pattern is None:
        firsts = {h[:1] for h in heads}
        chars = "".join(sorted(c for c in set(text) if fold(c)[:1].replace("y", "i") in firsts and WORDS.match(c)))
        if not chars:
            return
        pattern = _starting(chars)
    cache: dict[str, frozenset[str]] = {}

    def hit(word: str) -> bool:
        word = fold(word)
        return word[:3].replace("y", "i").startswith(heads) and bool(_stems(word, analyzer, cache) & wanted)

    for m in pattern.finditer(text):
        if "-" not in m.group():
            if hit(m.group()):
                yield m.span()
        elif COMPOUND.fullmatch(m.group()) and hit(m.group().replace("-", "")):
            yield m.span()
        else:
            yield from ((m.start() + w.start(), m.start() + w.end()) for w in WORDS.finditer(m.group())
                        if hit(w.group()))


def _fragment(text: str, marks: list[tuple[int, int]]) -> str:
    start = max(0, marks[0][0] - SURROUND)
    if start:  # from a word's start
        space = text.find(" ", start)
        start = space + 1 if 0 <= space < marks[0][0] else start
    end = min(len(text), start + LENGTH)
    end = max(end, marks[0][1])
    space = text.rfind(" ", marks[0][1], end)
    end = space if end < len(text) and space > 0 else end
    out, at = [], start
    for a, b in marks:
        if a >= end:
            break
        out += [html.escape(text[at:a], quote=False), "<mark>", html.escape(text[a:b], quote=False), "</mark>"]
        at = b
    out.append(html.escape(text[at:end], quote=False))
    return "".join(out).strip()


def snippet(text: str, terms: Iterable[str], analyzer: Analyzer) -> str:
    """Up to two fragments of the text around its first matched words, escaped, the words in <mark>."""
    wanted = frozenset(terms)
    if not wanted or not text:
        return ""
    text = unicodedata.normalize("NFC", text)  # an accent written apart is part of its word (shown the same)
    parts: list[str] = []
    inside: list[tuple[int, int]] = []  # the matched words of the fragment begun at the first of them
    for span in _spans(text, wanted, analyzer):  # read only as far as the last fragment needs
        if inside and span[0] >= inside[0][0] + LENGTH:
            parts.append(_fragment(text, inside))
            inside = []
            if len(parts) == FRAGMENTS:
                break
        inside.append(span)
    if inside and len(parts) < FRAGMENTS:
        parts.append(_fragment(text, inside))
    return MarkFormatter.between.join(parts)
