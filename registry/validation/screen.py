"""Column-wise screening of a batch of rows: which rows are certainly valid, found per column and per
distinct value rather than cell by cell.

A row passes the screen when its shape is regular, its required cells are filled, every value is one its
field's pydantic type accepts (`rows.FieldMemo`, each distinct value checked once), no rule between fields
flags it and the row hook (geography) has nothing to say about its territory cells. Every other row is
checked one by one by the row model, which writes the issues: the screen only decides who needs that.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from registry.standard import Rule, TableSpec
from registry.validation.rows import MISS, RowChecker


class ScreeningHook(Protocol):
    """A row hook that can also say, for a whole batch given column by column, which rows it may flag."""

    def __call__(self, resource: str, row: int, values: dict[str, Any], cells: dict[str, str]) -> list[Any]: ...

    def screen_rows(self, resource: str, columns: dict[str, tuple[str, ...]], typed: dict[str, list[Any]]) -> set[int]:
        ...


@dataclass
class Screened:
    clean: list[bool]  # per row of the batch
    typed: dict[str, list[Any]] = field(default_factory=dict)  # per column, aligned with `slot`
    slot: list[int] = field(default_factory=list)  # batch index -> index in the typed columns (-1: none)


def wanted_columns(table: TableSpec, header: Sequence[str]) -> set[str]:
    """Columns whose typed values the screen and the caller need: rules and non-text output."""
    wanted = {f.name for f in table.fields if f.type != "string"}
    for rule in table.rules:
        wanted.update(rule.fields, rule.when, [rule.other] if rule.other else [])
    return wanted & set(header)


def screen(table: TableSpec, checker: RowChecker, header: Sequence[str], batch: list[list[str]],
           hook: Callable[..., list[Any]] | None, wanted: set[str]) -> Screened:
    width = len(header)
    clean = [len(r) == width and any(r) for r in batch]
    positions = [i for i, ok in enumerate(clean) if ok]
    slot = [-1] * len(batch)
    for j, i in enumerate(positions):
        slot[i] = j
    result = Screened(clean, {}, slot)
    if not positions:
        return result
    regular = batch if len(positions) == len(batch) else [batch[i] for i in positions]
    columns = dict(zip(header, zip(*regular, strict=True), strict=True))
    bad: set[int] = set()
    for name, col in columns.items():
        _screen_column(checker, name, col, bad, result.typed if name in wanted else None)
    for rule in table.rules:
        bad.update(_rule_flags(rule, result.typed, columns))
    screen_rows = getattr(hook, "screen_rows", None)
    if hook is not None:
        if screen_rows is None:
            bad.update(range(len(positions)))  # an opaque hook: ask it row by row
        else:
            bad.update(screen_rows(table.name, columns, result.typed))
    for j in bad:
        clean[positions[j]] = False
    return result


def _screen_column(checker: RowChecker, name: str, col: tuple[str, ...], bad: set[int],
                   typed: dict[str, list[Any]] | None) -> None:
    if name in checker.required and "" in col:
        bad.update(i for i, v in enumerate(col) if not v)
    bounds = checker.texts.get(name)
    if bounds is not None:
        low, high = bounds
        if max(map(len, col)) > high or (low > 1 and min((len(v) for v in col if v), default=low) < low):
            bad.update(i for i, v in enumerate(col) if v and not low <= len(v) <= high)
        if typed is not None:
            typed[name] = [v or None for v in col]
        return
    memo = checker.memos.get(name)
    if memo is None:
        return  # a column the standard does not have (reported once, with the header)
    distinct = set(col)
    distinct.discard("")
    accepted = memo.accepted
    new = list(distinct.difference(accepted))
    local = memo.typed_many(new) if new else {}
    memo.remember(local)
    rejected = {v for v, t in local.items() if t is MISS}
    if rejected:
        bad.update(i for i, v in enumerate(col) if v in rejected)
    if typed is not None:
        get = accepted.get
        typed[name] = [(local[v] if v in local else get(v)) if v else None for v in col]


def _rule_flags(rule: Rule, typed: dict[str, list[Any]], columns: dict[str, tuple[str, ...]]) -> list[int]:
    """Rows a rule may fail on (the row model then says exactly how)."""
    n = len(next(iter(columns.values())))
    none = [None] * n

    def column(name: str) -> list[Any]:
        return typed.get(name, none)

    if rule.type == "not_before":
        a, b = column(rule.fields[0]), column(rule.other or "")
        return [i for i, (x, y) in enumerate(zip(a, b, strict=True))
                if x is not None and y is not None and x is not MISS and y is not MISS and x < y]
    if rule.type == "required_if":
        hit = [False] * n
        for name, allowed in rule.when.items():
            hit = [h or v in allowed for h, v in zip(hit, column(name), strict=True)]
        flags: set[int] = set()
        for name in rule.fields:
            flags.update(i for i, (h, v) in enumerate(zip(hit, column(name), strict=True)) if h and v is None)
        return sorted(flags)
    return list(range(n))  # a rule type the screen does not know: row by row
