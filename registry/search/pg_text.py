"""Words and lexemes as PostgreSQL full text is given them (`postgres.py`, `pg_similar.py`)."""

from __future__ import annotations

from registry.search.analysis import WORDS, fold


def folded_words(value: str) -> list[str]:
    """The words of a text as « did you mean » and « similar experiences » count them: folded, 3 to 40 letters."""
    return [w for w in WORDS.findall(fold(value)) if 3 <= len(w) <= 40]


def quote(word: str) -> str:
    """A lexeme written in a tsquery or tsvector literal."""
    return "'" + word.replace("\\", "\\\\").replace("'", "''") + "'"
