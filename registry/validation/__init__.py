"""Validation of experience reports: one API for files, folders, data packages, URLs and records.

    submission = validate_path("rex.csv")          # or validate_bytes(data, "rex.csv")
    submission.report.valid, submission.report.to_text(), submission.tables

`Limits(max_errors=N)` (or `Report(max_errors=N)`) stops the checks after N errors, and the report says
what was left unchecked. Validation does no network I/O: an http(s) URL given to `validate_path` is handed
to `registry.net.validate_url`, which fetches it and calls `validate_bytes`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from registry.geo import get_geography
from registry.standard import KEY_FIELD, MAIN_RESOURCE, Standard, get_standard
from registry.validation.geochecks import GeoChecker
from registry.validation.parallel import check_table_parallel
from registry.validation.raw import Limits, RawTable, SourceError
from registry.validation.report import Issue, Report
from registry.validation.sources import read_path, table_from_bytes
from registry.validation.tables import CheckedTable, check_table

KnownIds = Callable[[set[str]], set[str]]

__all__ = ["Limits", "Report", "Submission", "validate_bytes", "validate_path", "validate_tables"]


@dataclass
class Submission:
    """What was sent, checked: canonical rows per table (only when the whole is valid) and the report."""

    report: Report
    tables: dict[str, CheckedTable] = field(default_factory=dict)

    @property
    def valid(self) -> bool:
        return self.report.valid

    def experience_ids(self) -> list[str]:
        ids: dict[str, None] = {}  # in order of first appearance; a dict, not a list scanned for each row
        for table in self.tables.values():
            for row in table.rows:
                if row.get(KEY_FIELD):
                    ids.setdefault(row[KEY_FIELD])
        return list(ids)


def validate_tables(raws: Iterable[RawTable], report: Report | None = None, std: Standard | None = None,
                    known_ids: KnownIds | None = None, limits: Limits | None = None,
                    keep_rows: bool = True) -> Submission:
    """Checks raw tables; `keep_rows=False` (validation only) keeps the report, not the rows."""
    std = std or get_standard()
    report = report or Report()
    limits = limits or Limits()
    hook = GeoChecker(get_geography(), std.tables)
    checked: dict[str, CheckedTable] = {}
    pending = list(raws)
    unchecked: list[str] = []
    for pos, raw in enumerate(pending):
        if report.full:
            unchecked = [r.source for r in pending[pos:]]
            break
        if raw.resource in checked:
            report.add(Issue("unknown-resource", resource=raw.resource, source=raw.source, params={
                "name": raw.source, "detail": f"la table {raw.resource} est fournie deux fois"}))
            continue
        table = std.table(raw.resource)
        done = check_table_parallel(table, raw, report, hook, limits.max_rows, keep_rows, limits.workers)
        checked[raw.resource] = done or check_table(table, raw, report, hook, limits.max_rows, keep_rows)
    in_rows = report.full
    if not in_rows:
        _check_keys(std, checked, report)
        _check_references(checked, report, known_ids)
    report.stop_notice(unchecked, in_rows)
    return Submission(report, checked if report.valid else {})


def _check_keys(std: Standard, checked: dict[str, CheckedTable], report: Report) -> None:
    for name, table in checked.items():
        pk = std.table(name).primary_key
        if not pk:
            continue
        first: dict[tuple[str, ...], int] = {}
        for key, number in table.keys:
            if report.full:
                return
            if key in first:
                report.add(Issue("duplicate-key", resource=name, row=number, field=pk[0], value=" / ".join(key),
                                 params={"key": " / ".join(key), "first_row": str(first[key])},
                                 source=table.source))
            else:
                first[key] = number


def _check_references(checked: dict[str, CheckedTable], report: Report, known_ids: KnownIds | None) -> None:
    main = checked.get(MAIN_RESOURCE)
    # every id the submission describes, valid row or not: an invalid experience is reported once, not
    # again on each of its child rows
    local = {key[0] for key, _ in main.keys} if main else set()
    wanted = {r[KEY_FIELD] for n, t in checked.items() if n != MAIN_RESOURCE for r in t.rows} - local
    known = known_ids(wanted) if known_ids and wanted else set()
    for name, table in checked.items():
        if name == MAIN_RESOURCE:
            continue
        for row, number in zip(table.rows, table.row_numbers, strict=True):
            if report.full:
                return
            ref = row[KEY_FIELD]
            if ref not in local and ref not in known:
                report.add(Issue("foreign-key", resource=name, row=number, field=KEY_FIELD, value=ref,
                                 source=table.source))


def _report(report: Report | None, limits: Limits | None) -> Report:
    report = report or Report()
    if limits is not None and limits.max_errors is not None and report.max_errors is None:
        report.max_errors = limits.max_errors
    return report


def validate_path(target: str | Path, std: Standard | None = None, known_ids: KnownIds | None = None,
                  limits: Limits | None = None, report: Report | None = None, keep_rows: bool = True) -> Submission:
    """A file, a folder, a datapackage.json, or an http(s) URL (fetched by `registry.net.validate_url`)."""
    if str(target).startswith(("http://", "https://")):
        from registry.net import validate_url  # the only way out to the network, outside validation

        return validate_url(str(target), std, known_ids, limits, report, keep_rows)
    std = std or get_standard()
    report = _report(report, limits)
    try:
        raws = read_path(std, target, report, limits)
    except SourceError as exc:
        report.add(exc.issue)
        return Submission(report)
    return validate_tables(raws, report, std, known_ids, limits, keep_rows)


def validate_bytes(data: bytes, name: str, std: Standard | None = None, known_ids: KnownIds | None = None,
                   limits: Limits | None = None, report: Report | None = None, keep_rows: bool = True) -> Submission:
    std = std or get_standard()
    report = _report(report, limits)
    limits = limits or Limits()
    try:
        raws = table_from_bytes(std, data, name, report, limits)
    except SourceError as exc:
        report.add(exc.issue)
        return Submission(report)
    return validate_tables(raws, report, std, known_ids, limits, keep_rows)
