"""Validation reports: what is wrong, where, in plain French (or English), and as stable JSON."""

from __future__ import annotations

import dataclasses as dc
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from registry.validation.messages import FRICTIONLESS, MESSAGES, render

Severity = Literal["error", "warning", "info"]
DEFAULT_MAX_PER_CODE = 100
PROGRESS_EVERY = 5000


@dataclass(frozen=True)
class Issue:
    code: str
    severity: Severity = "error"
    resource: str | None = None
    row: int | None = None
    field: str | None = None
    value: str | None = None
    params: dict[str, str] = dc.field(default_factory=dict, compare=False, hash=False)
    source: str | None = None

    def __post_init__(self) -> None:
        if self.code not in MESSAGES:
            raise ValueError(f"unknown issue code {self.code!r}")

    def message(self, lang: str = "fr") -> str:
        params = {"value": _short(self.value), **self.params}
        if lang == "en":
            params |= {k[:-3]: v for k, v in self.params.items() if k.endswith("_en")}
        params.setdefault("field", self.field or "")
        return render(self.code, params, lang)

    @property
    def frictionless_type(self) -> str | None:
        return FRICTIONLESS.get(self.code)

    def to_dict(self, lang: str = "fr") -> dict[str, Any]:
        return {
            "code": self.code,
            "severity": self.severity,
            "resource": self.resource,
            "source": self.source,
            "row": self.row,
            "field": self.field,
            "value": self.value,
            "message": self.message(lang),
        }


def _short(value: str | None, limit: int = 120) -> str:
    if value is None:
        return ""
    return value if len(value) <= limit else value[:limit] + "…"


@dataclass
class Report:
    """Issues found, bounded per (resource, code) so that a huge bad file gives a readable report.

    `max_errors`: the checks stop after that many errors (`full`); `stopped` is the last error kept, and
    `stop_notice` says in the report what was left unchecked."""

    max_per_code: int = DEFAULT_MAX_PER_CODE
    issues: list[Issue] = dc.field(default_factory=list)
    counts: Counter[tuple[str, str, str]] = dc.field(default_factory=Counter)
    rows: Counter[str] = dc.field(default_factory=Counter)
    progress: Callable[[str, int], None] | None = None  # called every PROGRESS_EVERY rows of a table
    max_errors: int | None = None
    stopped: Issue | None = None
    error_total: int = 0

    @property
    def full(self) -> bool:
        """Whether the error limit is reached: the checks stop."""
        return self.stopped is not None

    def add(self, issue: Issue) -> None:
        if issue.severity == "error":
            if self.full:
                return  # past the limit: the checks are stopping
            self.error_total += 1
            if self.max_errors is not None and self.error_total >= self.max_errors:
                self.stopped = issue
        key = (issue.severity, issue.resource or "", issue.code)
        self.counts[key] += 1
        if self.counts[key] <= self.max_per_code:
            self.issues.append(issue)

    def stop_notice(self, unchecked_tables: list[str], in_rows: bool) -> None:
        """Says, when the checks stopped at the error limit, what was not checked: the rest of the table
        (`in_rows`: the stop came while checking rows), the other tables, keys and references."""
        last = self.stopped
        if last is None:
            return
        fr: list[str] = []
        en: list[str] = []
        if in_rows:
            place = last.source or last.resource or ""
            nxt = (last.row or 1) + 1
            fr.append(f"{place}, lignes {nxt} et suivantes")
            en.append(f"{place}, rows {nxt} onwards")
        if unchecked_tables:
            fr.append("tables " + ", ".join(unchecked_tables))
            en.append("tables " + ", ".join(unchecked_tables))
        fr.append("clés et références entre tables" if in_rows else "la suite des clés et références")
        en.append("keys and references between tables" if in_rows else "the rest of the keys and references")
        self.add(Issue("validation-stopped", "info", resource=last.resource, source=last.source, params={
            "count": str(self.max_errors), "unchecked": " ; ".join(fr), "unchecked_en": "; ".join(en)}))

    def note(self, detail: str, detail_en: str, source: str | None = None, resource: str | None = None) -> None:
        """Says what was detected or decided about the input (in French and English)."""
        self.add(Issue("detected", "info", resource=resource, source=source,
                       params={"detail": detail, "detail_en": detail_en}))

    def count(self, severity: Severity = "error") -> int:
        return sum(n for (sev, _, _), n in self.counts.items() if sev == severity)

    @property
    def valid(self) -> bool:
        return self.count("error") == 0

    def errors(self) -> list[Issue]:
        return [i for i in self.issues if i.severity == "error"]

    def truncated(self) -> dict[str, int]:
        """For each (resource, code) with more issues than were kept, how many in all."""
        return {
            f"{res}:{code}" if res else code: n
            for (_, res, code), n in self.counts.items()
            if n > self.max_per_code
        }

    def to_dict(self, lang: str = "fr") -> dict[str, Any]:
        return {
            "valid": self.valid,
            "error_count": self.count("error"),
            "warning_count": self.count("warning"),
            "rows_checked": dict(self.rows),
            "counts": {
                f"{res}:{code}" if res else code: n for (sev, res, code), n in self.counts.items()
                if sev != "info"
            },
            "truncated": self.truncated(),
            "stopped_after_errors": self.max_errors if self.full else None,
            "issues": [i.to_dict(lang) for i in self.issues],
        }

    def to_text(self, lang: str = "fr") -> str:
        en = lang == "en"
        lines: list[str] = []
        for issue in self.issues:
            lines.append(_line(issue, en) + issue.message(lang))
        total = self.count("error")
        if total:
            head = f"{total} error(s)" if en else f"{total} erreur(s)"
        else:
            head = "Valid." if en else "Valide."
        lines.append(head)
        for key, n in self.truncated().items():
            shown = self.max_per_code
            lines.append(
                f"  {key}: {n} in all, first {shown} shown" if en
                else f"  {key} : {n} en tout, les {shown} premières affichées"
            )
        return "\n".join(lines)


def _line(issue: Issue, en: bool) -> str:
    tag = {"error": "ERREUR", "warning": "ATTENTION", "info": "NOTE"}[issue.severity]
    if en:
        tag = issue.severity.upper()
    where = [issue.source or issue.resource or ""]
    if issue.source and issue.resource and not _names_table(issue.source, issue.resource):
        where.append(f"table {issue.resource}")  # a file of several tables (JSON), or named otherwise
    if issue.row is not None:
        where.append(f"{'row' if en else 'ligne'} {issue.row}")
    if issue.field:
        where.append(f"{'column' if en else 'colonne'} {issue.field}")
    place = ", ".join(w for w in where if w)
    if not place:
        return f"{tag} [{issue.code}] "
    return f"{tag} [{issue.code}] {place}{': ' if en else ' : '}"


def _names_table(source: str, resource: str) -> bool:
    """Whether the file name already says the table (experiences.csv, or an XLSX sheet named after it)."""
    stem = source.rsplit("/", 1)[-1].split(".", 1)[0].lower()
    return stem == resource or source.endswith(f"(feuille {resource})")
