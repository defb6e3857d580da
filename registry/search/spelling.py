"""« Did you mean »: the word of the index closest to a word found nowhere, the same rule on both backends."""

from __future__ import annotations

from collections.abc import Iterable

MOST = 2  # edits at most between a word and its correction


def distance(a: str, b: str) -> int:
    """Levenshtein distance."""
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        current = [i]
        for j, cb in enumerate(b, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ca != cb)))
        previous = current
    return previous[-1]


def closest(folded: str, options: Iterable[tuple[str, int]]) -> str | None:
    """Among the index's (word, number of records), the closest to `folded` (MOST edits at most); among equally
    close ones, the word of most records (« mobilte »: « mobilite » where it is the more common), then the first
    in alphabetical order."""
    scored = sorted((distance(folded, word), -docs, word) for word, docs in options if word != folded)
    return scored[0][2] if scored and scored[0][0] <= MOST else None
