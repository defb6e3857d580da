"""Decoding and dialect detection for CSV as French territories really export it.

UTF-8 with or without BOM, UTF-16 with BOM, Windows-1252 (a superset of Latin-1 for text);
`;`, `,` or tab as delimiter. Each decision is reported: nothing is guessed silently.
"""

from __future__ import annotations

import codecs
import csv
import io
from collections.abc import Iterable
from dataclasses import dataclass

DELIMITERS = (";", ",", "\t")
DELIMITER_NAMES = {";": "point-virgule (;)", ",": "virgule (,)", "\t": "tabulation"}
MAX_CELL_CHARS = 1_000_000


class DecodeError(ValueError):
    """The bytes are not text in any encoding we accept."""


@dataclass(frozen=True)
class Decoded:
    text: str
    encoding: str
    bom: bool

    def describe(self) -> str:
        bom = " avec BOM" if self.bom else ""
        return f"encodage détecté : {self.encoding}{bom}"


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
    return csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
