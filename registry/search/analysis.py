"""How texts are made into words, for every search of the registry: Whoosh's analyser (its index, queries and
snippets) and PostgreSQL's tsvectors alike (`stem_places`), so that both backends find the same words.

Words in NFKC, lower case, accents folded before the French stemmer, ligatures written out, French stop words
away, « -ée(s) » and « -os » evened out, hyphenated compounds also written together.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Callable, Iterator
from typing import Any

from whoosh.analysis import (
    Analyzer,
    CharsetFilter,
    Filter,
    LowercaseFilter,
    RegexTokenizer,
    StemFilter,
    StopFilter,
)
from whoosh.lang import stemmer_for_language, stopwords_for_language
from whoosh.support.charset import accent_map

from registry.folding import LIGATURES

FOLD = {**accent_map, **LIGATURES}  # accents away, ligatures written out (« œuvre » as « oeuvre »)


def fold(text: str) -> str:
    """Compatibility forms as plain ones (NFKC: « CO₂ » as « CO2 », « ﬁ » as « fi », accents decomposed by
    some systems put back on their letter), lower case, accents away, ligatures written out."""
    return unicodedata.normalize("NFKC", text).lower().translate(FOLD)


EXTRA_STOP_WORDS = ("les", "cet", "cette", "ni", "car", "donc", "dont", "ainsi")
# Longer "words" are not indexed: no word is that long, and PostgreSQL refuses a lexeme over 2,046 bytes (one
# such word failed the record's indexing, and every sync after it)
MAX_WORD = 120


def feminine(text: str) -> str:
    """Once accents are folded the French stemmer no longer sees « -ée(s) »: « connectées » would stem to
    « connecte » and « connecté » to « connect ». Folding « -ee(s) » to « -e » first makes them meet."""
    if text.endswith("ees"):
        return text[:-2]
    return text[:-1] if text.endswith("ee") else text


def plural_o(text: str) -> str:
    """The French stemmer keeps an « s » after « o » (« gros »): « vidéos » and « vidéo », « vélos » and « vélo »
    would never meet. A final « -os » is made « -o » first (words of four letters or more)."""
    return text[:-1] if len(text) > 3 and text.endswith("os") else text


class FeminineFilter(Filter):
    """`feminine`, as a filter (named by indexes written before `WordFilter`)."""

    def __call__(self, tokens: Iterator[Any]) -> Iterator[Any]:
        for t in tokens:
            t.text = feminine(t.text)
            yield t


class PluralOFilter(Filter):
    """`plural_o`, as a filter (named by indexes written before `WordFilter`)."""

    def __call__(self, tokens: Iterator[Any]) -> Iterator[Any]:
        for t in tokens:
            t.text = plural_o(t.text)
            yield t


class WordFilter(Filter):
    """Lower case, accents folded, « -ée(s) » and « -os » evened out, stop words (folded) and words shorter than 2
    or longer than MAX_WORD characters stopped: what LowercaseFilter | CharsetFilter(FOLD) | FeminineFilter |
    PluralOFilter | StopFilter(renumber=False) do (indexes written before it still name those), in one step, each
    word worked out once (a text repeats most of its words: analysing took most of an index rebuild)."""

    MEMO = 100_000  # words remembered (then forgotten all at once: ~10 MB at most)

    def __init__(self, stops: frozenset[str]) -> None:
        self.stops = stops
        self.memo: dict[str, tuple[str, bool]] = {}

    def __eq__(self, other: object) -> bool:
        return isinstance(other, WordFilter) and self.stops == other.stops

    def __hash__(self) -> int:
        return hash(self.stops)

    def __getstate__(self) -> dict[str, Any]:  # (a Whoosh index keeps its analyser pickled: not the memo)
        return {"stops": self.stops}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.stops, self.memo = state["stops"], {}

    def word(self, raw: str) -> tuple[str, bool]:
        """(the word's text, stopped)."""
        found = self.memo.get(raw)
        if found is None:
            text = plural_o(feminine(raw.lower().translate(FOLD)))
            found = (text, not 2 <= len(text) <= MAX_WORD or text in self.stops)
            if len(raw) <= MAX_WORD:  # (a longer « word » is stopped anyway: not kept, however many come)
                if len(self.memo) >= self.MEMO:
                    self.memo = {}
                self.memo[raw] = found
        return found

    def __call__(self, tokens: Iterator[Any]) -> Iterator[Any]:
        word = self.word
        for t in tokens:
            t.text, t.stopped = word(t.text)
            if not t.stopped or not t.removestops:
                yield t


class CachedStemFilter(StemFilter):
    """Whoosh's StemFilter with functools' cache (its own took a sixth of analysing)."""

    def clear(self) -> None:
        super().clear()
        self._stem = functools.lru_cache(maxsize=self.cachesize)(stemmer_for_language(self.lang))


WORDS = re.compile(r"\w+")  # a text's words as snippets and PostgreSQL's word counts read them
# words of letters joined by hyphens (tried at a word's start only, never backtracking: a third of the time of
# r"[^\W\d_]+(?:-[^\W\d_]+)+", which finds the same)
COMPOUND = re.compile(r"(?<![^\W\d_])[^\W\d_]++(?:-[^\W\d_]++)+")


def compounds(value: str) -> dict[int, str]:
    """Each compound of the text (NFKC) by its first character's place, written together (« vidéoprotection »)."""
    return {m.start(): m.group().replace("-", "") for m in COMPOUND.finditer(value)} if "-" in value else {}


class NormalizingTokenizer(RegexTokenizer):
    """Words of the text in NFKC (see `fold`): a word whose accents are decomposed is still one word. A
    compound written with hyphens is also one word written together, at the place of its first part
    (« vidéo-protection » is found by « vidéoprotection », « e-mail » by « email », and the other way round,
    see `query.parse`)."""

    def __call__(self, value: str, **kwargs: Any) -> Any:
        value = unicodedata.normalize("NFKC", value)
        joined = compounds(value)
        if not joined or not kwargs.get("tokenize", True):
            yield from super().__call__(value, **kwargs)
            return
        for t in super().__call__(value, **{**kwargs, "chars": True}):
            start, t.joined = t.startchar, False
            yield t  # the part first: a phrase's word pairs follow the parts (see PostgresSearch.tsvector)
            if start in joined:  # (one token object, reused: the part is done with downstream)
                t.text, t.stopped, t.joined = joined[start], False, True
                yield t


class PlaceFilter(Filter):
    """Positions one after another, stop words taking none (as StopFilter's `renumber`); a compound written
    together (`NormalizingTokenizer`) at the place of its first part."""

    def __call__(self, tokens: Iterator[Any]) -> Iterator[Any]:
        pos, last = None, None
        for t in tokens:
            if t.positions:
                if getattr(t, "joined", False) and last == t.startchar and pos is not None:
                    t.pos = pos
                else:
                    pos = t.pos if pos is None else pos + 1
                    t.pos = pos
                last = getattr(t, "startchar", None)
            yield t


def analyzer() -> Analyzer:
    """Words (NFKC), lower case, accents folded BEFORE the French stemmer (so « sécurité » and « securite »
    meet), ligatures written out, stop words (folded too) and words over MAX_WORD characters removed, « -ée(s) »
    and « -os » endings evened out."""
    return NormalizingTokenizer() | WordFilter(stop_words()) | PlaceFilter() | CachedStemFilter(lang="fr")


@functools.cache
def stop_words() -> frozenset[str]:
    """French stop words, folded as the words they are compared with."""
    return frozenset(fold(w) for w in (*stopwords_for_language("fr"), *EXTRA_STOP_WORDS))


def stem_places(fr: Analyzer) -> Callable[[str], Iterator[tuple[int, str]]]:
    """`fr(value, positions=True)` as (place, stem) pairs, `fr` an `analyzer()`, without Whoosh's token objects
    (what an index's tsvectors are made of: a third of a PostgreSQL rebuild's time went into them)."""
    tokenizer, words, _, stems = fr.items  # (NormalizingTokenizer, WordFilter, PlaceFilter, CachedStemFilter)
    word, stem, expression = words.word, stems._stem, tokenizer.expression

    def places(value: str) -> Iterator[tuple[int, str]]:
        value = unicodedata.normalize("NFKC", value)
        joined = compounds(value)
        pos, last = None, None
        for n, match in enumerate(expression.finditer(value)):
            start = match.start()
            text, stopped = word(match.group())
            if not stopped:  # (PlaceFilter: the first word kept at its place, the others one after another)
                pos, last = (n if pos is None else pos + 1), start
                yield pos, stem(text)
            if start in joined:  # a compound written together, at its first part's place when that part is kept
                text, stopped = word(joined[start])
                if not stopped:
                    if last != start or pos is None:
                        pos, last = (n if pos is None else pos + 1), start
                    yield pos, stem(text)

    return places


def former_analyzer() -> Analyzer:
    """The same analysis in Whoosh's filters, one after another, as before `WordFilter` (to check they agree)."""
    stops = stop_words()
    return (NormalizingTokenizer() | LowercaseFilter() | CharsetFilter(FOLD) | FeminineFilter() | PluralOFilter()
            | StopFilter(stoplist=stops, minsize=2, maxsize=MAX_WORD, renumber=False) | PlaceFilter()
            | StemFilter(lang="fr"))
