"""Checking a large CSV table with several processes.

The decoded text is cut into spans of whole records (`csvtext.split_records`); forked workers parse and
check one span each with the same `check_table`, numbering rows from 0; the parent then shifts row numbers
and merges reports in file order, so the result is the one a sequential check gives. Used when a caller asks
for workers (the CLI does; the web server does not fork).
"""

from __future__ import annotations

import dataclasses
import multiprocessing
from dataclasses import dataclass

from registry.standard import TableSpec
from registry.validation import csvtext
from registry.validation.report import Issue, Report
from registry.validation.sources import RawTable
from registry.validation.tables import CheckedTable, RowHook, check_table

MIN_CHARS = 4_000_000  # below this, starting processes costs more than it saves
SPANS_PER_WORKER = 2


@dataclass
class _Job:
    table: TableSpec
    raw: RawTable
    hook: RowHook | None
    max_rows: int
    keep_rows: bool
    header_ok: bool
    max_per_code: int


_job: _Job | None = None  # set in the parent before forking; the workers inherit it


def _check_span(span: tuple[int, int]) -> tuple[Report, CheckedTable, int]:
    assert _job is not None
    job, (start, end) = _job, span
    assert job.raw.text is not None
    text = job.raw.text[start:end]
    rows = csvtext.read_rows(text, job.raw.delimiter)
    raw = dataclasses.replace(job.raw, rows=iter(rows), first_row=0, text=text, data_start=0)
    report = Report(max_per_code=job.max_per_code)
    checked = check_table(job.table, raw, report, job.hook, job.max_rows, job.keep_rows, job.header_ok)
    return report, checked, sum(report.rows.values())


def _shift(issue: Issue, offset: int) -> Issue:
    return issue if issue.row is None else dataclasses.replace(issue, row=issue.row + offset)


def check_table_parallel(table: TableSpec, raw: RawTable, report: Report, hook: RowHook | None, max_rows: int,
                         keep_rows: bool, workers: int) -> CheckedTable | None:
    """The checked table, or None when the file is small or cannot be split exactly (check it in one go)."""
    global _job
    text = raw.text
    if workers < 2 or text is None or len(text) - raw.data_start < MIN_CHARS:
        return None
    spans = csvtext.split_records(text, raw.data_start, workers * SPANS_PER_WORKER, raw.delimiter)
    if spans is None or len(spans) < 2:
        return None
    from registry.validation.tables import check_header

    header_ok = check_header(table, raw, report)
    _job = _Job(table, raw, hook, max_rows, keep_rows, header_ok, report.max_per_code)
    out = CheckedTable(table.name, raw.source, [h for h in raw.header if h in table.by_name])
    offset = raw.first_row
    try:
        with multiprocessing.get_context("fork").Pool(workers) as pool:
            for part, checked, count in pool.imap(_check_span, spans):
                _merge(report, part, offset)
                out.rows.extend(checked.rows)
                out.row_numbers.extend(n + offset for n in checked.row_numbers)
                out.keys.extend((key, n + offset) for key, n in checked.keys)
                offset += count
                if report.progress:
                    report.progress(table.name, offset - raw.first_row)
    finally:
        _job = None
    if offset - raw.first_row > max_rows:
        report.add(Issue("too-many-rows", resource=table.name, source=raw.source, params={"limit": str(max_rows)}))
    return out


def _merge(report: Report, part: Report, offset: int) -> None:
    """Adds a span's issues (rows shifted) and counts, keeping the report's bound per code."""
    added: dict[tuple[str, str, str], int] = {}
    for issue in part.issues:
        key = (issue.severity, issue.resource or "", issue.code)
        added[key] = added.get(key, 0) + 1
        report.add(_shift(issue, offset))
    for key, count in part.counts.items():
        report.counts[key] += count - added.get(key, 0)
    report.rows.update(part.rows)
