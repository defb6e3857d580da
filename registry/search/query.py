"""The query language people know from web search engines (PostgreSQL's websearch_to_tsquery follows it):
every word must match; "an exact phrase"; -word excludes; OR (or OU) between words offers alternatives.
Anything else — unbalanced quotes, stray operators, wildcards, field syntax — is read as plain words, so a
query is never an error and never costs more than plain words (no wildcard is ever expanded)."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

MAX_CHARS = 1000
MAX_CLAUSES = 32
_TOKEN = re.compile(r'(-?)"([^"]*)"|(\S+)')
_WORD = re.compile(r"\w+", re.UNICODE)


@dataclass(frozen=True)
class Clause:
    """A word, or a phrase (several words in this order)."""

    words: tuple[str, ...]

    @property
    def phrase(self) -> bool:
        return len(self.words) > 1


@dataclass(frozen=True)
class ParsedQuery:
    must: tuple[tuple[Clause, ...], ...] = ()  # each group: one of its clauses must match (OR inside)
    exclude: tuple[Clause, ...] = ()
    text: str = ""

    @property
    def empty(self) -> bool:
        return not self.must

    def words(self) -> list[str]:
        return [w for group in self.must for c in group for w in c.words]


def _clause(text: str) -> Clause | None:
    words = tuple(w.lower() for w in _WORD.findall(text))
    return Clause(words) if words else None


def parse(text: str) -> ParsedQuery:
    text = unicodedata.normalize("NFKC", (text or "")[:MAX_CHARS])  # words as the index made them (see `fold`)
    must: list[list[Clause]] = []
    exclude: list[Clause] = []
    pending_or = False
    for match in _TOKEN.finditer(text.replace("\u201c", '"').replace("\u201d", '"').replace("«", '"')
                                 .replace("»", '"')):
        negated, quoted, bare = match.group(1), match.group(2), match.group(3)
        if bare is not None and bare.upper() in ("OR", "OU"):
            pending_or = bool(must)
            continue
        if bare is not None and bare.startswith("-") and len(bare) > 1:
            negated, bare = "-", bare[1:]
        raw = quoted if quoted is not None else bare
        if quoted is None and raw is not None and len(_WORD.findall(raw)) > 1:
            # l'air, auto-partage, a:b: several words written together are read as a phrase
            clause = _clause(raw)
        else:
            clause = _clause(raw or "")
        if clause is None:
            continue
        # a compound with hyphens, or the same written together (« auto-partage », « autopartage »)
        together = _clause(raw.replace("-", "")) if quoted is None and raw and "-" in raw.strip("-") else None
        clauses = [clause] if together is None else [clause, together]
        if negated:
            exclude += clauses
        elif pending_or and must:
            must[-1] += clauses
        else:
            must.append(clauses)
        pending_or = False
    must = must[:MAX_CLAUSES]
    return ParsedQuery(tuple(tuple(g) for g in must), tuple(exclude[:MAX_CLAUSES]), text)
