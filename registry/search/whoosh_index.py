"""The Whoosh index on disk, written by one process at a time and read by many.

Layout of the index folder: `CURRENT` names the generation folder readers open (`g000001`, ...);
`write.lock` is held (flock: the kernel releases it when its process dies, even by kill -9) by whoever
writes. A rebuild writes a new generation beside the current one and swaps `CURRENT` atomically when it is
complete, so readers never see a half-built or empty index, and two rebuilds never run at once.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import os
import re
import shutil
import time
import unicodedata
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

from whoosh import index as windex
from whoosh.analysis import (
    Analyzer,
    CharsetFilter,
    Filter,
    LowercaseFilter,
    RegexTokenizer,
    StemFilter,
    StopFilter,
)
from whoosh.codec.whoosh3 import W3Codec, W3PerDocReader, W3Segment
from whoosh.fields import ID, KEYWORD, STORED, TEXT, Schema
from whoosh.lang import stemmer_for_language, stopwords_for_language
from whoosh.support.charset import accent_map

from registry.folding import LIGATURES
from registry.search import whoosh_similar
from registry.search.documents import Doc
from registry.search.fields import facet_names
from registry.standard import Standard

# How words are made, in the `FORMAT` file of each generation (none: 1). 2: NFKC, ligatures written out, « -os »
# as « -o », hyphenated compounds also written together. A generation of another format is rebuilt by the next
# sync.
FORMAT = "2"


class IndexBusy(RuntimeError):
    """Another process is writing the index."""


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


class _PerDocReader(W3PerDocReader):
    """Whoosh's reader of a segment's per-document columns, remembering a missing column too: Whoosh's asks the
    file system again at each posting of a field that keeps no lengths (facets, ids: about 180 `stat()` a record,
    ~12 % of writing)."""

    def has_column(self, fieldname: str) -> bool:
        known: dict[str, bool] = self.__dict__.setdefault("_columns", {})
        if fieldname not in known:
            known[fieldname] = bool(super().has_column(fieldname))
        return known[fieldname]


class Codec(W3Codec):
    """Whoosh's codec for writing, with `_PerDocReader` (its writer reads a new segment's lengths once its columns
    are closed: none appears later). The segments it makes name Whoosh's own codec: the index's files are Whoosh's
    alone, and its readers use Whoosh's codec."""

    def per_document_reader(self, storage: Any, segment: Any) -> W3PerDocReader:
        return _PerDocReader(storage, segment)

    def new_segment(self, storage: Any, indexname: str) -> W3Segment:
        return W3Segment(W3Codec(), indexname)


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


def schema(std: Standard) -> Schema:
    fr = analyzer()
    fields: dict[str, Any] = {
        "id": ID(stored=True, unique=True), "content_hash": STORED(),
        "intitule": TEXT(analyzer=fr, stored=True, field_boost=3.0, spelling=True),
        "nom_porteur": TEXT(analyzer=fr, stored=True, field_boost=1.5),
        "texte": TEXT(analyzer=fr, stored=True, spelling=True),
        "date_maj": ID(stored=True, sortable=True), "date_debut": ID(stored=True, sortable=True),
        "cout": ID(sortable=True), "results_due": ID(stored=True),
        "results_published": ID(stored=True),
    }
    fields |= {name: KEYWORD(stored=True, commas=False, scorable=False) for name in facet_names(std)}
    return Schema(**fields)


def fields_of(doc: Doc) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": doc.id, "content_hash": doc.content_hash, "intitule": doc.intitule, "nom_porteur": doc.nom_porteur,
        "texte": doc.texte, "date_maj": doc.date_maj, "date_debut": doc.date_debut,
        "cout": f"{doc.cout:018.2f}" if doc.cout is not None and doc.cout >= 0 else "",
        "results_published": "oui" if doc.results_published else "non",
    }
    if doc.results_due:
        out["results_due"] = doc.results_due
    out |= {name: " ".join(values) for name, values in doc.facets.items()}
    return out


class IndexFolder:
    writes = 0  # index commits made by this process: its searchers then look again at once

    def __init__(self, path: Path, std: Standard) -> None:
        self.path = path
        self.std = std

    def current(self) -> Path | None:
        try:
            name = (self.path / "CURRENT").read_text(encoding="ascii").strip()
        except FileNotFoundError:
            return None
        folder = self.path / name
        return folder if windex.exists_in(str(folder)) else None

    def current_format(self) -> str | None:
        """The format of the current generation (None without one; "1" before formats were written)."""
        folder = self.current()
        if folder is None:
            return None
        try:
            return (folder / "FORMAT").read_text(encoding="ascii").strip()
        except FileNotFoundError:
            return "1"

    def open(self) -> windex.Index | None:
        folder = self.current()
        return windex.open_dir(str(folder)) if folder else None

    @contextlib.contextmanager
    def locked(self, wait: float = 60.0) -> Iterator[None]:
        """The writers' lock; IndexBusy after `wait` seconds."""
        self.path.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path / "write.lock", os.O_CREAT | os.O_RDWR, 0o644)
        try:
            deadline = time.monotonic() + wait
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() >= deadline:
                        raise IndexBusy(f"index {self.path} en cours d'écriture par un autre processus") from None
                    time.sleep(0.05)
            yield
        finally:
            os.close(fd)  # releases the lock

    def _new_generation(self) -> Path:
        numbers = [int(p.name[1:]) for p in self.path.glob("g[0-9]*") if p.name[1:].isdigit()]
        folder = self.path / f"g{max(numbers, default=0) + 1:06d}"
        folder.mkdir()
        windex.create_in(str(folder), schema(self.std))
        (folder / "FORMAT").write_text(FORMAT, encoding="ascii")
        return folder

    def _swap(self, folder: Path) -> None:
        previous = self.current()
        tmp = self.path / "CURRENT.tmp"
        tmp.write_text(folder.name, encoding="ascii")
        os.replace(tmp, self.path / "CURRENT")
        # the previous generation stays for the readers still on it (they move on at their next search)
        for old in self.path.glob("g[0-9]*"):  # abandoned (a killed rebuild) or older: removed
            if old not in (folder, previous):
                shutil.rmtree(old, ignore_errors=True)

    def apply(self, docs: Iterable[Doc | str]) -> int:
        """Adds, replaces (a Doc) or removes (an id) documents in the current generation. Call under `locked`."""
        ix = self.open()
        if ix is None:
            folder = self._new_generation()
            self._swap(folder)
            ix = windex.open_dir(str(folder))
        writer = ix.writer(timeout=5.0, limitmb=128, codec=Codec())
        changed: list[str] = []
        try:
            for doc in docs:
                if isinstance(doc, str):
                    writer.delete_by_term("id", doc)
                    changed.append(doc)
                else:
                    writer.update_document(**fields_of(doc))
                    changed.append(doc.id)
        except BaseException:
            writer.cancel()
            raise
        writer.commit()
        folder = self.current()
        if folder is not None:  # their similar experiences, made from their former text
            whoosh_similar.drop(folder, changed)
        IndexFolder.writes += 1
        return len(changed)

    def rebuild(self, docs: Iterable[Doc | str]) -> int:
        """A complete new generation, swapped in when done. Call under `locked`."""
        folder = self._new_generation()
        writer = windex.open_dir(str(folder)).writer(limitmb=256, codec=Codec())
        count = 0
        try:
            for doc in docs:
                if not isinstance(doc, str):
                    writer.add_document(**fields_of(doc))
                    count += 1
        except BaseException:
            writer.cancel()
            shutil.rmtree(folder, ignore_errors=True)
            raise
        writer.commit()
        self._swap(folder)
        IndexFolder.writes += 1
        return count
