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


def dialect_note(encoding: str, bom: bool, delimiter: str, cr: bool = False) -> tuple[str, str]:
    """What was detected about a CSV file, in French and English (`cr`: lines end with a bare CR)."""
    return (f"encodage détecté : {encoding}{' avec BOM' if bom else ''} ; séparateur : {DELIMITER_NAMES[delimiter]}"
            + (" ; fins de ligne : retour chariot seul (ancien format Mac), lues correctement" if cr else ""),
            f"encoding detected: {encoding}{' with BOM' if bom else ''}; delimiter: {DELIMITER_NAMES_EN[delimiter]}"
            + ("; line ends: bare carriage return (old Mac format), read correctly" if cr else ""))
MAX_CELL_CHARS = 1_000_000
PARALLEL_MIN_SIZE = 4_000_000  # bytes or characters: below this, starting processes costs more than it saves
SPANS_PER_WORKER = 2
SPAN_BYTES = 16_000_000  # at most about this much decoded at once


MAX_HEADER_CHARS = 65_536  # the standard's widest header is about 1 500 characters
BAD_BYTES_SHOWN = 5
BAD_BYTES_COUNTED = 100
CHECK_CHUNK = 1 << 20
# a valid UTF-8 sequence of two to four bytes (what a Windows-1252 file almost never holds)
UTF8_MULTIBYTE = re.compile(rb"[\xc2-\xdf][\x80-\xbf]|[\xe0-\xef][\x80-\xbf]{2}|[\xf0-\xf4][\x80-\xbf]{3}")


class DecodeError(ValueError):
    """The bytes are not text we accept; `code` and `params` make the report's issue."""

    def __init__(self, code: str, **params: str) -> None:
        super().__init__(params.get("detail", code))
        self.code = code
        self.params = params


@dataclass(frozen=True)
class Decoded:
    text: str
    encoding: str
    bom: bool


def line_of(data: bytes | str, pos: int) -> int:
    """The line (1-based) of a position, counting LF line ends, else CR ones (old Mac files)."""
    nl = b"\n" if isinstance(data, bytes) else "\n"
    cr = b"\r" if isinstance(data, bytes) else "\r"
    lines = data.count(nl, 0, pos)  # type: ignore[arg-type]
    return 1 + (lines if lines or data.find(nl) >= 0 else data.count(cr, 0, pos))  # type: ignore[arg-type]


def check_nul(data: bytes | str, offset: int = 0) -> None:
    """A NUL byte anywhere: the file is not text (and databases refuse it)."""
    pos = data.find(b"\x00" if isinstance(data, bytes) else "\x00")  # type: ignore[arg-type]
    if pos >= 0:
        raise DecodeError("nul-byte", line=str(line_of(data, pos)), offset=str(pos + offset))


def utf8_errors(data: bytes, limit: int = BAD_BYTES_COUNTED) -> list[int]:
    """Positions of the bytes that are not UTF-8 (at most `limit`), decoding a chunk at a time."""
    bad: list[int] = []
    pos, size = 0, len(data)
    while pos < size and len(bad) < limit:
        end = min(size, pos + CHECK_CHUNK)
        while end < size and end > pos and 0x80 <= data[end] < 0xC0:  # not inside a character
            end -= 1
        try:
            data[pos:end].decode("utf-8")
            pos = end
        except UnicodeDecodeError as exc:
            bad.append(pos + exc.start)
            pos += max(exc.end, exc.start + 1)
    return bad


def detect_8bit(data: bytes, offset: int = 0) -> str:
    """"utf-8" or "cp1252" for text without BOM. A file with valid UTF-8 accents and a few invalid bytes is
    UTF-8 with errors (DecodeError giving each bad byte's line and offset), never re-read as Windows-1252;
    a file whose high bytes are never UTF-8 sequences is a Windows-1252 export."""
    bad = utf8_errors(data)
    if not bad:
        return "utf-8"
    valid = sum(1 for _ in itertools.islice(UTF8_MULTIBYTE.finditer(data), len(bad)))
    if valid and valid >= len(bad):
        raise _utf8_error(data, bad, offset)
    try:
        data.decode("cp1252")
    except UnicodeDecodeError as exc:
        raise DecodeError("encoding-error", detail=f"octet invalide en UTF-8 à la position {bad[0] + offset}, "
                          f"et pas du Windows-1252 non plus (position {exc.start + offset})") from None
    return "cp1252"


def _utf8_error(data: bytes, bad: list[int], offset: int) -> DecodeError:
    shown = bad[:BAD_BYTES_SHOWN]
    where = ", ".join(f"ligne {line_of(data, p)} (octet n° {p + offset} : 0x{data[p]:02X}{_as_1252(data[p], False)})"
                      for p in shown)
    where_en = ", ".join(f"line {line_of(data, p)} (byte {p + offset}: 0x{data[p]:02X}{_as_1252(data[p], True)})"
                         for p in shown)
    if len(bad) > len(shown):
        more = f"{len(bad)}+" if len(bad) >= BAD_BYTES_COUNTED else str(len(bad))
        where += f", et d'autres ({more} en tout)"
        where_en += f", and more ({more} in all)"
    count = f"{len(bad)}+" if len(bad) >= BAD_BYTES_COUNTED else str(len(bad))
    return DecodeError("invalid-utf8", count=count, where=where, where_en=where_en)


def _as_1252(byte: int, en: bool) -> str:
    char = bytes([byte]).decode("cp1252", "replace")
    if not char.isprintable() or char == "\ufffd":
        return ""
    return f", “{char}” in Windows-1252" if en else f", sans doute « {char} » écrit en Windows-1252"


def decode(data: bytes) -> Decoded:
    if data.startswith(codecs.BOM_UTF8):
        text = _strict(data[3:], "utf-8")
        check_nul(text)
        return Decoded(text, "UTF-8", True)
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        text = _strict(data, "utf-16")
        check_nul(text)
        return Decoded(text, "UTF-16", True)
    check_nul(data)
    encoding = detect_8bit(data)
    return Decoded(data.decode(encoding), "UTF-8" if encoding == "utf-8" else "Windows-1252", False)


def _strict(data: bytes, encoding: str) -> str:
    try:
        return data.decode(encoding)
    except UnicodeDecodeError as exc:
        if encoding == "utf-8":
            detect_8bit(data, 3)  # says where the bad bytes are
        raise DecodeError("encoding-error", detail=f"octet invalide en {encoding} à la position {exc.start}") from None


def first_line(text: str) -> str:
    """The header line (a quoted header with line breaks is rare enough to ignore here); lines may end in
    CR LF, LF, or CR alone (old Mac exports)."""
    end = text.find("\n")
    cr = text.find("\r", 0, end if end >= 0 else len(text))
    if cr >= 0 and text[cr + 1:cr + 2] != "\n":
        end = cr
    return (text if end < 0 else text[:end]).rstrip("\r")


def cr_only(text: str) -> bool:
    """Lines end with a bare CR (Excel for old Macs)."""
    return "\r" in text and "\n" not in text


def check_header_line(text: str) -> None:
    size = len(first_line(text))
    if size > MAX_HEADER_CHARS:
        raise DecodeError("header-too-large", size=str(size), limit=str(MAX_HEADER_CHARS))


def sniff_delimiter(text: str, known_names: Iterable[str]) -> str:
    """The delimiter that splits the header into the most known column names, else the most frequent."""
    header = first_line(text)
    names = set(known_names)
    csv.field_size_limit(MAX_CELL_CHARS)

    def score(delim: str) -> tuple[int, int]:
        try:
            cells = next(csv.reader([header], delimiter=delim), [])
        except csv.Error:
            cells = []
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
