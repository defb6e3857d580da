"""The raw table types shared by the readers (`sources.py`, `tabular.py`) and the checks: a leaf module,
importing nothing else from the validation package but the report."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from registry.standard import MAIN_RESOURCE, Standard
from registry.validation.report import Issue

DEFAULT_MAX_BYTES = 64 * 1024 * 1024


class SourceError(Exception):
    """The input cannot be read at all; the issue says why."""

    def __init__(self, issue: Issue) -> None:
        super().__init__(issue.message())
        self.issue = issue


@dataclass
class RawTable:
    resource: str
    source: str
    header: list[str]
    rows: Iterator[list[str]]
    first_row: int = 2
    decimal_comma: bool = False
    text: str | None = None  # the decoded file, when there is one (for whole-file pre-checks)
    delimiter: str = ","
    data_start: int = 0  # where the data rows start in `text`
    data: bytes | None = None  # a large file left undecoded, to be decoded and checked in spans
    spans: list[tuple[int, int]] | None = None  # spans of whole records in `data`
    bom: bool = False
    encoding: str | None = None  # of `data`, when decided for the whole file ("utf-8" or "cp1252")


@dataclass(frozen=True)
class Limits:
    max_bytes: int = DEFAULT_MAX_BYTES
    max_rows: int = 1_000_000
    workers: int = 1  # processes for checking a large CSV file (1: in this process only)
    max_errors: int | None = None  # stop checking after this many errors (None: check everything)


def human_size(n: int) -> str:
    for unit in ("octets", "Ko", "Mo", "Go"):
        if n < 1024 or unit == "Go":
            return f"{n:.0f} {unit}" if unit == "octets" else f"{n:.1f} {unit}"
        n /= 1024  # type: ignore[assignment]
    return str(n)


def fail(code: str, source: str, **params: str) -> SourceError:
    return SourceError(Issue(code, source=source, params=params))


def check_size(size: int, source: str, limits: Limits) -> None:
    if size > limits.max_bytes:
        raise fail("file-too-large", source, size=human_size(size), limit=human_size(limits.max_bytes))


def guess_resource(std: Standard, name: str, header: list[str], source: str) -> str:
    """The standard table a file holds: by its name, else by its columns."""
    stem = Path(name).stem.lower().replace("é", "e")
    if stem in std.tables:
        return stem
    cols = {c.strip() for c in header}
    scores = {t.name: len(cols & set(t.field_names)) for t in std.tables.values()}
    best = max(scores, key=lambda n: (scores[n], n == MAIN_RESOURCE))
    if scores[best] == 0:
        raise fail("unknown-resource", source, name=name, detail="aucune colonne du standard reconnue")
    return best
