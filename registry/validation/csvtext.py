"""Decoding and dialect detection for CSV as French territories really export it.

UTF-8 with or without BOM, UTF-16 with BOM, Windows-1252 (a superset of Latin-1 for text);
`;`, `,` or tab as delimiter. Each decision is reported: nothing is guessed silently.
"""

from __future__ import annotations

import codecs
import csv
import io
import itertools
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

DELIMITERS = (";", ",", "\t")
DELIMITER_NAMES = {";": "point-virgule (;)", ",": "virgule (,)", "\t": "tabulation"}
DELIMITER_NAMES_EN = {";": "semicolon (;)", ",": "comma (,)", "\t": "tab"}


def dialect_note(encoding: str, bom: bool, delimiter: str) -> tuple[str, str]:
    """What was detected about a CSV file, in French and English."""
    return (f"encodage détecté : {encoding}{' avec BOM' if bom else ''} ; séparateur : {DELIMITER_NAMES[delimiter]}",
            f"encoding detected: {encoding}{' with BOM' if bom else ''}; delimiter: {DELIMITER_NAMES_EN[delimiter]}")
MAX_CELL_CHARS = 1_000_000
PARALLEL_MIN_SIZE = 4_000_000  # bytes or characters: below this, starting processes costs more than it saves
SPANS_PER_WORKER = 2
SPAN_BYTES = 16_000_000  # at most about this much decoded at once


class DecodeError(ValueError):
    """The bytes are not text in any encoding we accept."""


@dataclass(frozen=True)
class Decoded:
    text: str
    encoding: str
    bom: bool


def decode(data: bytes) -> Decoded:
    if data.startswith(codecs.BOM_UTF8):
        return Decoded(_strict(data[3:], "utf-8"), "UTF-8", True)
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return Decoded(_strict(data, "utf-16"), "UTF-16", True)
    if b"\x00" in data[:65536]:
        raise DecodeError("le fichier contient des octets nuls : ce n'est pas un fichier texte (binaire ?)")
    try:
        return Decoded(data.decode("utf-8"), "UTF-8", False)
    except UnicodeDecodeError as exc:
        utf8_error = exc
    try:
        text = data.decode("cp1252")
    except UnicodeDecodeError:
        raise DecodeError(
            f"octet invalide en UTF-8 à la position {utf8_error.start}, et pas du Windows-1252 non plus"
        ) from None
    return Decoded(text, "Windows-1252", False)


def _strict(data: bytes, encoding: str) -> str:
    try:
        return data.decode(encoding)
    except UnicodeDecodeError as exc:
        raise DecodeError(f"octet invalide en {encoding} à la position {exc.start}") from None


def first_line(text: str) -> str:
    """The header line (a quoted header with line breaks is rare enough to ignore here)."""
    end = text.find("\n")
    return (text if end < 0 else text[:end]).rstrip("\r")


def sniff_delimiter(text: str, known_names: Iterable[str]) -> str:
    """The delimiter that splits the header into the most known column names, else the most frequent."""
    header = first_line(text)
    names = set(known_names)

    def score(delim: str) -> tuple[int, int]:
        cells = next(csv.reader([header], delimiter=delim), [])
        return sum(1 for c in cells if c.strip().strip('"') in names), header.count(delim)

    return max(DELIMITERS, key=score)


def read_rows(text: str, delimiter: str) -> Iterable[list[str]]:
    csv.field_size_limit(MAX_CELL_CHARS)  # a process-wide setting that other libraries (frictionless) change
    if "\r" in text and text.count("\r") != text.count("\r\n"):  # bare CR line ends: let io handle them
        return csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    return csv.reader(_lines(text), delimiter=delimiter)


def _lines(text: str) -> Iterator[str]:
    """Lines ending in \\n, sliced lazily: io.StringIO would hold a 4-bytes-per-character copy of the text."""
    start, size = 0, len(text)
    while start < size:
        end = text.find("\n", start)
        if end < 0:
            yield text[start:]
            return
        yield text[start:end + 1]
        start = end + 1


Text = str | bytes  # boundaries are found the same way in decoded text and in UTF-8 / Windows-1252 bytes


def _marks(text: Text) -> tuple[Text, Text, Text]:
    return ("\n", '"', "\r") if isinstance(text, str) else (b"\n", b'"', b"\r")


def record_end(text: Text, start: int) -> int:
    """The position just after the record starting at `start`: the first newline outside quotes
    (quotes come in pairs in well-formed CSV, doubled quotes included). len(text) if none."""
    nl, quote, _ = _marks(text)
    pos = start
    quotes = 0
    while True:
        end = text.find(nl, pos)  # type: ignore[arg-type]
        if end < 0:
            return len(text)
        quotes += text.count(quote, pos, end)  # type: ignore[arg-type]
        if quotes % 2 == 0:
            return end + 1
        pos = end + 1


def split_records(text: Text, start: int, parts: int, delimiter: str) -> list[tuple[int, int]] | None:
    """`parts` spans of whole records covering text[start:], or None when quoting is irregular (a quote
    inside an unquoted cell) or lines end with a bare CR: then only a sequential read is exact."""
    nl, _, cr = _marks(text)
    if _irregular_quote(text, start, delimiter):
        return None
    if text.find(cr, start) >= 0 and text.count(cr) != text.count(cr + nl):  # type: ignore[arg-type,operator]
        return None
    size = len(text) - start
    cuts = [start]
    for i in range(1, parts):
        target = max(start + size * i // parts, cuts[-1])
        end = text.find(nl, target)  # type: ignore[arg-type]
        if end < 0:
            break
        cut = _boundary_after(text, cuts[-1], end)
        if cut >= len(text):
            break
        if cut > cuts[-1]:
            cuts.append(cut)
    cuts.append(len(text))
    return list(itertools.pairwise(cuts))


def _irregular_quote(text: Text, start: int, delimiter: str) -> bool:
    """A quote inside an unquoted cell, or text right after a closing quote (`ab"c`): the csv module
    reads those literally, so counting quotes would misplace record boundaries."""
    d = re.escape(delimiter)
    pattern = f'"(?<=[^{d}\r\n"]")(?=[^{d}\r\n"])'  # starts with a literal: a fast scan in C
    found = re.compile(pattern).search(text, start) if isinstance(text, str) \
        else re.compile(pattern.encode()).search(text, start)
    return found is not None


def _boundary_after(text: Text, record_start: int, end: int) -> int:
    """The first record boundary at or after the newline at `end`, counting quotes from a known boundary."""
    nl, quote, _ = _marks(text)
    quotes = text.count(quote, record_start, end)  # type: ignore[arg-type]
    while quotes % 2:
        nxt = text.find(nl, end + 1)  # type: ignore[arg-type]
        if nxt < 0:
            return len(text)
        quotes += text.count(quote, end, nxt)  # type: ignore[arg-type]
        end = nxt
    return end + 1
