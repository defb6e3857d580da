"""Checking one raw table: its columns, then each row, then the rules between fields."""

from __future__ import annotations

import dataclasses
import datetime as dt
import difflib
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from itertools import islice
from typing import Any

from registry.csvsafe import ESCAPED_PATTERN, unescape
from registry.standard import FieldSpec, Rule, TableSpec
from registry.validation.expected import expected, fold
from registry.validation.raw import RawTable
from registry.validation.report import PROGRESS_EVERY, Issue, Report
from registry.validation.rows import RowChecker
from registry.validation.screen import screen, wanted_columns

FRENCH_DECIMAL = re.compile(r"^\s*[-+]?\d{1,3}(?:[ \u00a0\u202f]\d{3})*,\d+\s*$|^\s*[-+]?\d+,\d+\s*$")
SPACES = re.compile(r"[ \u00a0\u202f]")
ESCAPED = re.compile(ESCAPED_PATTERN)  # how a neutralised formula starts (registry.csvsafe)
CELL_START = ",;\t\"\n"

RowHook = Callable[[str, int, dict[str, Any], dict[str, str]], list[Issue]]


@dataclass
class CheckedTable:
    resource: str
    source: str
    columns: list[str]
    rows: list[dict[str, str]] = field(default_factory=list)
    row_numbers: list[int] = field(default_factory=list)
    keys: list[tuple[tuple[str, ...], int]] = field(default_factory=list)  # primary key of every row, valid or not


def issue(code: str, table: TableSpec, raw: RawTable, row: int | None, spec: FieldSpec | None,
          value: str | None = None, params: dict[str, str] | None = None,
          severity: str = "error") -> Issue:
    params = dict(params or {})
    if spec is not None:
        if spec.type == "number":  # what this file allows as a decimal separator
            params["delimiter"] = raw.delimiter if raw.text is not None or raw.data is not None else ""
            params["decimal_comma"] = "1" if raw.decimal_comma else ""
        params.setdefault("field", spec.title)
        params.setdefault("field_en", spec.title_en or spec.title)
        params["expected"] = expected(spec, code, value or "", params, en=False)
        params["expected_en"] = expected(spec, code, value or "", params, en=True)
    return Issue(code, severity, resource=table.name, row=row, field=spec.name if spec else None,  # type: ignore[arg-type]
                 value=value, params=params, source=raw.source)


def _closest(name: str, by_fold: dict[str, str], known: set[str]) -> str | None:
    """The column meant: same name once accents and case are folded, or one it is the start of, or close."""
    folded = fold(name)
    if folded in by_fold:
        return by_fold[folded]
    starts = sorted((n for n in known if folded and n.startswith(folded)), key=len)
    if starts:
        return starts[0]
    return next(iter(difflib.get_close_matches(folded, known, 1, 0.75)), None)


def check_header(table: TableSpec, raw: RawTable, report: Report) -> bool:
    """Columns are matched by name, in any order. False when a required column is missing."""
    seen: set[str] = set()
    known = set(table.field_names)
    by_fold = {fold(n): n for n in table.field_names} | {fold(f.title): f.name for f in table.fields}
    for pos, name in enumerate(raw.header, start=1):
        if not name:
            report.add(Issue("blank-column-name", resource=table.name, source=raw.source,
                             params={"position": str(pos)}))
        elif name in seen:
            report.add(Issue("duplicate-column", resource=table.name, source=raw.source, field=name,
                             params={"name": name}))
        elif name not in known:
            close = _closest(name, by_fold, known)
            hint = f" Vouliez-vous dire « {close} » ?" if close else ""
            report.add(Issue("unknown-column", resource=table.name, source=raw.source, field=name,
                             params={"name": name, "hint": hint,
                                     "hint_en": f" Did you mean “{close}”?" if close else ""}))
        seen.add(name)
    ok = True
    for spec in table.fields:
        if spec.required and spec.name not in seen:
            ok = False
            report.add(Issue("missing-column", resource=table.name, source=raw.source, field=spec.name,
                             params={"name": spec.name, "field": spec.title, "field_en": spec.title_en}))
    return ok


def _cells(table: TableSpec, raw: RawTable, row: list[str], number: int, report: Report,
           numbers: set[str], texts: set[str]) -> tuple[dict[str, str] | None, int]:
    header = raw.header
    if not row or all(c == "" for c in row):
        report.add(Issue("blank-row", resource=table.name, row=number, source=raw.source))
        return None, 0
    if len(row) > len(header):
        report.add(Issue("extra-cell", resource=table.name, row=number, source=raw.source,
                         params={"count": str(len(row) - len(header))}))
    elif len(row) < len(header):
        specs = table.by_name
        for name in header[len(row):]:
            report.add(Issue("missing-cell", resource=table.name, row=number, source=raw.source,
                             field=name, params={"count": str(len(header) - len(row)),
                                                 "field": specs[name].title if name in specs else name}))
    cells = {h: c for h, c in zip(header, row, strict=False) if c != ""}
    for name in texts & cells.keys():
        if cells[name][0] == "'":
            cells[name] = unescape(cells[name])
    converted = 0
    if raw.decimal_comma:
        for name in numbers & cells.keys():
            if FRENCH_DECIMAL.match(cells[name]):
                cells[name] = SPACES.sub("", cells[name]).strip().replace(",", ".")
                converted += 1
    return cells, converted


def _key_part(spec: FieldSpec, text: str) -> str:
    """A key cell as compared for uniqueness: integers by value (frictionless compares typed values)."""
    if spec.type == "integer":
        try:
            return str(int(text.strip()))
        except ValueError:
            return text
    return text


PLAIN_NUMBER = re.compile(r"-?[0-9]+(?:\.[0-9]+)?", re.ASCII)


def canonical(spec: FieldSpec, value: Any, text: str) -> str:
    """How a valid cell is stored: ISO dates, plain integers, numbers as written when they are plain
    decimals (1500.50 stays 1500.50), else in plain notation (1e3, 1_000 → 1000)."""
    if isinstance(value, dt.date):
        return value.isoformat()
    if spec.type == "integer":
        return str(value)
    if spec.type == "number":
        text = text.strip()
        return text if PLAIN_NUMBER.fullmatch(text) else format(value, "f")
    return text


def rule_issues(table: TableSpec, raw: RawTable, number: int, values: dict[str, Any]) -> Iterator[Issue]:
    specs = table.by_name
    for rule in table.rules:
        yield from _rule(rule, table, raw, number, values, specs)


def _rule(rule: Rule, table: TableSpec, raw: RawTable, number: int, values: dict[str, Any],
          specs: dict[str, FieldSpec]) -> Iterator[Issue]:
    if rule.type == "not_before":
        a, b = values.get(rule.fields[0]), values.get(rule.other or "")
        if a is not None and b is not None and a < b:
            spec, other = specs[rule.fields[0]], specs[rule.other or ""]
            yield issue("rule-date-order", table, raw, number, spec, str(a), {
                "other": other.title, "other_en": other.title_en, "other_value": str(b), "rule": rule.code})
    elif rule.type == "required_if":
        hits = [(f, values.get(f)) for f, allowed in rule.when.items() if values.get(f) in allowed]
        if not hits:
            return
        f, v = hits[0]
        cond_spec = specs[f]
        condition = f"« {cond_spec.title} » vaut « {cond_spec.label(str(v))} »"
        condition_en = f"“{cond_spec.title_en}” is “{cond_spec.label(str(v), 'en')}”"
        for name in rule.fields:
            if values.get(name) is None:
                yield issue("rule-required-if", table, raw, number, specs[name], "", {
                    "condition": condition, "condition_en": condition_en, "rule": rule.code})
    else:
        raise ValueError(f"unknown rule type {rule.type} in schema {table.name}")


def _has_escapes(raw: RawTable) -> bool:
    """Whether any cell may start with a neutralised formula (decided once per file when the text is known)."""
    if raw.text is None:
        return True
    return any(m.start() == 0 or raw.text[m.start() - 1] in CELL_START for m in ESCAPED.finditer(raw.text))


BATCH = 2048


@dataclass
class _Context:
    table: TableSpec
    raw: RawTable
    report: Report
    hook: RowHook | None
    checker: RowChecker
    header_ok: bool
    numbers: set[str]
    texts: set[str]
    slow: bool


def check_table(table: TableSpec, raw: RawTable, report: Report, hook: RowHook | None = None,
                max_rows: int = 1_000_000, keep_rows: bool = True, header_ok: bool | None = None) -> CheckedTable:
    """Checks every row; rows that pass are kept as canonical text cells, keyed by column (unless
    `keep_rows` is false: validation only). `header_ok` given: the columns were checked already.

    Rows come in batches: a column-wise screen (`screen.py`) clears the rows that are certainly valid; the
    others are checked one by one (`_check_row`), in file order, so the report is the same either way."""
    if header_ok is None:
        header_ok = check_header(table, raw, report)
    if report.full:
        return CheckedTable(table.name, raw.source, [h for h in raw.header if h in table.by_name])
    specs = table.by_name
    header = raw.header
    numbers = {f.name for f in table.fields if f.type in ("number", "integer")}
    texts = {f.name for f in table.fields if f.type == "string"} if _has_escapes(raw) else set()
    slow = (raw.decimal_comma and bool(numbers & set(header))) or bool(texts) or len(set(header)) != len(header)
    checker = RowChecker(table)
    slow = slow or not checker.required <= set(header)  # rows without a required column: all invalid
    ctx = _Context(table, raw, report, hook, checker, header_ok, numbers, texts, slow)
    columns = [h for h in header if h in specs]
    out = CheckedTable(table.name, raw.source, columns)
    positions = {c: header.index(c) for c in columns}
    pk = [(header.index(k), specs[k].type == "integer") for k in table.primary_key] \
        if set(table.primary_key) <= set(header) else None
    wanted = wanted_columns(table, header)
    converted = 0
    index = 0
    rows = iter(raw.rows)
    first_key = pk[0][0] if pk is not None and len(pk) == 1 and not pk[0][1] else None
    while batch := list(islice(rows, min(BATCH, max_rows + 1 - index))):
        over = index + len(batch) > max_rows  # the row after the last one allowed
        if over:
            batch.pop()
        screened = None if slow or not batch else screen(table, ctx.checker, header, batch, hook, wanted)
        clean = screened.clean if screened is not None else None
        base = raw.first_row + index
        for k, row in enumerate(batch):
            if clean is None or not clean[k]:
                converted += _check_row(ctx, row, base + k, out, keep_rows)
                if report.full:  # the error limit: stop here
                    del batch[k + 1:]
                    over = False
                    break
                continue
            if first_key is not None:
                out.keys.append(((row[first_key],), base + k))
            elif pk is not None:
                out.keys.append((tuple(_key_part_text(row[i], is_int) for i, is_int in pk), base + k))
            if keep_rows:
                s = screened.slot[k]  # type: ignore[union-attr]
                text = {c: row[positions[c]] for c in columns}
                typed = screened.typed  # type: ignore[union-attr]
                out.rows.append(stored_row(specs, columns, text, lambda c, s=s, typed=typed: typed[c][s]))
                out.row_numbers.append(base + k)
        done = index + len(batch)
        report.rows[table.name] += len(batch)
        if report.progress and done // PROGRESS_EVERY > index // PROGRESS_EVERY:
            report.progress(table.name, done)
        index = done
        if report.full:
            break
        if over:
            report.add(Issue("too-many-rows", resource=table.name, source=raw.source, params={"limit": str(max_rows)}))
            break
    return _finish(out, report, raw, table, converted)


def _finish(out: CheckedTable, report: Report, raw: RawTable, table: TableSpec, converted: int) -> CheckedTable:
    if converted:
        report.note(f"{converted} nombre(s) à virgule décimale lus comme des décimaux (ex. 12,5 = 12.5)",
                    f"{converted} number(s) with a decimal comma read as decimals (e.g. 12,5 = 12.5)",
                    source=raw.source, resource=table.name)
    return out


def stored_row(specs: dict[str, FieldSpec], columns: list[str], text: dict[str, str],
               typed: Callable[[str], Any]) -> dict[str, str]:
    """A valid row as it is stored: the cells' text, non-text cells in canonical form."""
    for c in columns:
        if text[c] and specs[c].type != "string":
            text[c] = canonical(specs[c], typed(c), text[c])
    return text


def _key_part_text(text: str, is_int: bool) -> str:
    return str(int(text.strip())) if is_int else text


def _later_checks(ctx: _Context, number: int, values: dict[str, Any], cells: dict[str, str],
                  bad: set[str]) -> list[Issue]:
    """Rules between fields and the row hook (geography), on the fields without a cell error (`bad`):
    a rule runs when none of its fields is in error; the hook sees only the cells without error."""
    table, raw = ctx.table, ctx.raw
    rules = [r for r in table.rules if not bad & _rule_fields(r)]
    problems = [p for r in rules for p in _rule(r, table, raw, number, values, table.by_name)]
    if ctx.hook is not None:
        kept = cells if not bad else {k: v for k, v in cells.items() if k not in bad}
        problems += [p if p.source else dataclasses.replace(p, source=raw.source)
                     for p in ctx.hook(table.name, number, values, kept)]
    for p in problems:
        ctx.report.add(p)
    return problems


def _rule_fields(rule: Rule) -> set[str]:
    return {*rule.fields, *rule.when, *([rule.other] if rule.other else [])}


def _check_row(ctx: _Context, row: list[str], number: int, out: CheckedTable, keep_rows: bool) -> int:
    """One row checked by the row model, with its issues; returns how many decimal commas it converted."""
    table, raw, report = ctx.table, ctx.raw, ctx.report
    specs = table.by_name
    cells, converted = _cells(table, raw, row, number, report, ctx.numbers, ctx.texts)
    if cells is None:
        return converted
    pk = table.primary_key
    if pk and all(cells.get(k) for k in pk):
        out.keys.append((tuple(_key_part(specs[k], cells[k]) for k in pk), number))
    result = ctx.checker.check(cells)
    values = result.values
    if values is None:
        for name, code, params in result.errors:
            if code == "missing-value" and name not in raw.header and not ctx.header_ok:
                continue  # already reported once, as a missing column
            report.add(issue(code, table, raw, number, specs[name], cells.get(name, ""), params))
        # the other fields still get the checks they can: one report per file, not one per fix
        bad = {name for name, _, _ in result.errors}
        _later_checks(ctx, number, ctx.checker.partial(cells, bad), cells, bad)
        return converted
    problems = _later_checks(ctx, number, values, cells, set())
    if any(p.severity == "error" for p in problems) or not keep_rows:
        return converted
    text = {c: cells.get(c, "") for c in out.columns}
    out.rows.append(stored_row(specs, out.columns, text, values.__getitem__))
    out.row_numbers.append(number)
    return converted
