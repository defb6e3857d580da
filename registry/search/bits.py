"""Sets of document positions as Python integers (bit d for position d), as both backends count facets: an AND
and a bit count per value, where intersecting sets cost ~4.5 ms a search over ~240 values at 10,000 records."""

from __future__ import annotations

import collections
import itertools
from collections.abc import Collection, Mapping

DIGITS = bytes.maketrans(b"\x00\x01", b"01")


def bitmask(positions: Collection[int], size: int) -> int:
    """The positions (each below `size`) as a bitmask. Many of them (a thirtieth of `size` or more): a byte a
    position set in C (`map`) and read as the number's binary digits (100,000 positions 6.1 → 2.7 ms); few: bit
    by bit (the other way costs ~0.2 ms at any number at 100,000 records)."""
    if len(positions) * 30 < size:
        small = bytearray((size >> 3) + 1)
        for p in positions:
            small[p >> 3] |= 1 << (p & 7)
        return int.from_bytes(small, "little")
    buf = bytearray(size)
    collections.deque(map(buf.__setitem__, positions, itertools.repeat(1)), maxlen=0)
    return int(buf[::-1].translate(DIGITS), 2)


def counted(base: int, values: Mapping[str, int]) -> dict[str, int]:
    """How many of `base` each value holds, the values holding none left out."""
    counts = {code: (base & held).bit_count() for code, held in values.items()}
    return {code: n for code, n in counts.items() if n}


def first_positions(mask: int, offset: int, limit: int) -> list[int]:
    """The positions of the bits set in `mask`, from the lowest: the `limit` after the first `offset`."""
    out: list[int] = []
    if limit <= 0:
        return out
    data = mask.to_bytes((mask.bit_length() + 7) >> 3 or 1, "little")
    step = 64  # 512 bits: whole chunks skipped by their bit count, the bits of one walked
    for start in range(0, len(data), step):
        chunk = int.from_bytes(data[start:start + step], "little")
        n = chunk.bit_count()
        if n <= offset:
            offset -= n
            continue
        while chunk:
            low = chunk & -chunk
            if offset:
                offset -= 1
            else:
                out.append(start * 8 + low.bit_length() - 1)
                if len(out) == limit:
                    return out
            chunk ^= low
    return out
