"""Checking a large CSV table span by span, with several processes when asked.

The file is cut into spans of whole records (`csvtext.split_records`, on the undecoded bytes of a large
file, or on decoded text); forked workers decode, parse and check one span each with the same
`check_table`, numbering rows from 0; the parent then shifts row numbers and merges reports in file order,
so the result is the one a sequential check gives. The encoding is decided as for a whole file: UTF-8
when every span is UTF-8, else Windows-1252. With one worker (the web server never forks) the spans are
checked one after the other in this process, which keeps memory bounded by a span.
"""

from __future__ import annotations

import dataclasses
import multiprocessing
from dataclasses import dataclass
from typing import Any

from registry.standard import TableSpec
from registry.validation import csvtext
from registry.validation.raw import RawTable
from registry.validation.report import Issue, Report
from registry.validation.tables import CheckedTable, RowHook, check_header, check_table

ENCODINGS = (("utf-8", "UTF-8"), ("cp1252", "Windows-1252"))


@dataclass
class _Job:
    table: TableSpec
    raw: RawTable
    hook: RowHook | None
    max_rows: int
    keep_rows: bool
    header_ok: bool
    max_per_code: int
    max_errors: int | None  # errors a span may still report (the report's limit less what it holds)


_job: _Job | None = None  # set in the parent before forking; the workers inherit it

SpanResult = tuple[Report, CheckedTable, int] | None  # None: the span is not in that encoding


def _check_span(span: tuple[int, int], encoding: str | None) -> SpanResult:
    assert _job is not None
    job, (start, end) = _job, span
    if encoding is None:
        assert job.raw.text is not None
        text = job.raw.text[start:end]
    else:
        assert job.raw.data is not None
        try:
            text = job.raw.data[start:end].decode(encoding)
        except UnicodeDecodeError:
            return None
    rows = csvtext.read_rows(text, job.raw.delimiter)
    raw = dataclasses.replace(job.raw, rows=iter(rows), first_row=0, text=text, data_start=0, data=None, spans=None)
    report = Report(max_per_code=job.max_per_code, max_errors=job.max_errors)
    checked = check_table(job.table, raw, report, job.hook, job.max_rows, job.keep_rows, job.header_ok)
    return report, checked, sum(report.rows.values())


def _in_process(function: Any, arguments: list[tuple[Any, ...]]) -> list[Any]:
    """Spans one after the other in this process (memory stays bounded by a span)."""
    return [function(*args) for args in arguments]


def _spans(raw: RawTable, workers: int) -> tuple[list[tuple[int, int]], bool] | None:
    """The spans to check and whether they are of undecoded bytes; None: check in one go."""
    if raw.data is not None and raw.spans:
        return raw.spans, True
    text = raw.text
    if workers < 2 or text is None or len(text) - raw.data_start < csvtext.PARALLEL_MIN_SIZE:
        return None
    spans = csvtext.split_records(text, raw.data_start, workers * csvtext.SPANS_PER_WORKER, raw.delimiter)
    return (spans, False) if spans and len(spans) > 1 else None


def check_table_parallel(table: TableSpec, raw: RawTable, report: Report, hook: RowHook | None, max_rows: int,
                         keep_rows: bool, workers: int) -> CheckedTable | None:
    """The checked table, or None when the file is small or cannot be split exactly (check it in one go)."""
    global _job
    found = _spans(raw, workers)
    if found is None:
        return None
    spans, undecoded = found
    header_ok = check_header(table, raw, report)
    if report.full:
        return CheckedTable(table.name, raw.source, [h for h in raw.header if h in table.by_name])
    left = None if report.max_errors is None else report.max_errors - report.error_total
    _job = _Job(table, raw, hook, max_rows, keep_rows, header_ok, report.max_per_code, left)
    out = CheckedTable(table.name, raw.source, [h for h in raw.header if h in table.by_name])
    try:
        pool = multiprocessing.get_context("fork").Pool(workers) if workers > 1 else None
        try:
            starmap = pool.starmap if pool is not None else _in_process
            results: list[SpanResult] = []
            chosen = ""
            encodings = [e for e in ENCODINGS if raw.encoding in (None, e[0])] if undecoded else [(None, "")]
            for encoding, label in encodings:
                results = starmap(_check_span, [(span, encoding) for span in spans])
                if all(r is not None for r in results):
                    chosen = label
                    break
            else:
                report.add(Issue("encoding-error", source=raw.source, resource=table.name, params={
                    "detail": "octets invalides en UTF-8 comme en Windows-1252"}))
                return out
        finally:
            if pool is not None:
                pool.close()
                pool.join()
    finally:
        _job = None
    if undecoded:
        report.note(*csvtext.dialect_note(chosen, raw.bom, raw.delimiter), source=raw.source, resource=table.name)
    offset = raw.first_row
    for result in results:
        assert result is not None
        if report.full:  # the error limit was reached in an earlier span: the rest is not reported
            break
        part, checked, count = result
        _merge(report, part, offset)
        out.rows.extend(checked.rows)
        out.row_numbers.extend(n + offset for n in checked.row_numbers)
        out.keys.extend((key, n + offset) for key, n in checked.keys)
        offset += count
        if report.progress:
            report.progress(table.name, offset - raw.first_row)
    if offset - raw.first_row > max_rows and not report.full:
        report.add(Issue("too-many-rows", resource=table.name, source=raw.source, params={"limit": str(max_rows)}))
    return out


def _shift(issue: Issue, offset: int) -> Issue:
    return issue if issue.row is None else dataclasses.replace(issue, row=issue.row + offset)


def _merge(report: Report, part: Report, offset: int) -> None:
    """Adds a span's issues (rows shifted) and counts, keeping the report's bound per code."""
    added: dict[tuple[str, str, str], int] = {}
    for issue in part.issues:
        if report.full:
            return  # the limit: the counts past it are not the report's
        key = (issue.severity, issue.resource or "", issue.code)
        added[key] = added.get(key, 0) + 1
        report.add(_shift(issue, offset))
    for key, count in part.counts.items():
        report.counts[key] += count - added.get(key, 0)
        if key[0] == "error":
            report.error_total += count - added.get(key, 0)
    if part.stopped is not None and report.stopped is None:
        report.stopped = _shift(part.stopped, offset)
    report.rows.update(part.rows)
